package crypto

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
	"filippo.io/age/plugin"
	"golang.org/x/term"

	"github.com/cityhall/registry/registry"
)

// Passphrase returns the passphrase for a protected file named by what
// (for example `identity file "ga.key"`). The CLI asks on the terminal;
// it is never a flag.
type Passphrase func(what string) ([]byte, error)

// ageHeader starts every binary age file; armorHeader an armored one.
const (
	ageHeader   = "age-encryption.org/v1\n"
	armorHeader = "-----BEGIN AGE ENCRYPTED FILE-----"
)

// protected reports whether data is an age-encrypted file (as `age -p`
// writes a passphrase-protected identity file).
func protected(data []byte) bool {
	return bytes.HasPrefix(data, []byte(ageHeader)) || bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte(armorHeader))
}

// protect seals data with an age passphrase (scrypt), as `age -p` does.
func protect(data, passphrase []byte) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, registry.Errorf(registry.EINVALID, "The passphrase is empty.")
	}
	r, err := age.NewScryptRecipient(string(passphrase))
	if err != nil {
		return nil, fmt.Errorf("passphrase: %w", err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		return nil, fmt.Errorf("protect key file: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// unprotect returns data itself, or, for a passphrase-protected file, its
// contents opened with the passphrase ask returns. A wrong passphrase is
// EINVALID.
func unprotect(data []byte, what string, ask Passphrase) ([]byte, error) {
	if !protected(data) {
		return data, nil
	}
	if ask == nil {
		return nil, registry.Errorf(registry.EINVALID, "The %s is protected by a passphrase, and there is no terminal to ask for it.", what)
	}
	pass, err := ask(what)
	if err != nil {
		return nil, err
	}
	id, err := age.NewScryptIdentity(string(pass))
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "The passphrase for the %s is empty.", what)
	}
	var src io.Reader = bytes.NewReader(data)
	if !bytes.HasPrefix(data, []byte(ageHeader)) {
		src = armor.NewReader(bytes.NewReader(bytes.TrimLeft(data, " \t\r\n")))
	}
	r, err := age.Decrypt(src, id)
	if err != nil {
		var wrong *age.NoIdentityMatchError
		if errors.As(err, &wrong) || strings.Contains(err.Error(), "incorrect passphrase") {
			return nil, registry.Errorf(registry.EINVALID, "The passphrase for the %s is wrong.", what)
		}
		return nil, registry.Errorf(registry.EINVALID, "The %s is not a passphrase-protected age file.", what)
	}
	out, err := io.ReadAll(io.LimitReader(r, keyFileSizeLimit+1))
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "The %s is corrupt: %v.", what, err)
	}
	if len(out) > keyFileSizeLimit {
		return nil, registry.Errorf(registry.EINVALID, "The %s is larger than %d MiB.", what, keyFileSizeLimit>>20)
	}
	return out, nil
}

// ReadIdentityFiles reads several identity files with ReadIdentityFile
// and returns all their identities, as `age -i A -i B` does: an office
// that moved to a new key keeps the old one until the records sealed to it
// are purged.
func ReadIdentityFiles(paths []string, ask Passphrase, ui *plugin.ClientUI) ([]age.Identity, error) {
	var all []age.Identity
	for _, p := range paths {
		ids, err := ReadIdentityFile(p, ask, ui)
		if err != nil {
			return nil, err
		}
		all = append(all, ids...)
	}
	return all, nil
}

// ReadIdentityFile reads the health office's identity file as `age -i`
// does: plain identities (AGE-SECRET-KEY-1…, AGE-SECRET-KEY-PQ-1…), a passphrase-protected
// identity file (`age -p` of one; the passphrase comes from ask), and age
// plugin identities (AGE-PLUGIN-…, for example from age-plugin-yubikey, so
// that the key lives on a hardware token; the plugin talks to the user
// through ui). Errors name the file and line, never its content.
func ReadIdentityFile(path string, ask Passphrase, ui *plugin.ClientUI) ([]age.Identity, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("identity file %q", path)
	if data, err = unprotect(data, name, ask); err != nil {
		return nil, err
	}
	var ids []age.Identity
	err = scanKeyLines(bufio.NewReader(bytes.NewReader(data)), name, func(n int, line string) error {
		if strings.HasPrefix(line, "AGE-PLUGIN-") {
			if ui == nil {
				return registry.Errorf(registry.EINVALID, "The %s holds a plugin identity (line %d), and there is no terminal for the plugin.", name, n)
			}
			id, err := plugin.NewIdentity(line, ui)
			if err != nil {
				return registry.Errorf(registry.EINVALID, "The %s is malformed: line %d is not a plugin identity.", name, n)
			}
			ids = append(ids, id)
			return nil
		}
		parsed, err := age.ParseIdentities(strings.NewReader(line))
		if err != nil || len(parsed) != 1 {
			return registry.Errorf(registry.EINVALID, "The %s is malformed: line %d is not an age identity (AGE-SECRET-KEY-PQ-1…, AGE-SECRET-KEY-1… or AGE-PLUGIN-…).", name, n)
		}
		ids = append(ids, parsed[0])
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, registry.Errorf(registry.EINVALID, "The %s holds no identity.", name)
	}
	return ids, nil
}

// readPassphraseFile reads the first line of a passphrase file, refusing
// one that group or others may read, as an unprotected key file is
// refused: the passphrase is as secret as the key.
func readPassphraseFile(f string) ([]byte, error) {
	fi, err := os.Stat(f)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Cannot read REGISTRY_PASSPHRASE_FILE %q: %v.", f, pathErrReason(err))
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, registry.Errorf(registry.EINVALID, "REGISTRY_PASSPHRASE_FILE %q may be read by others (mode %04o); chmod 600 it.", f, fi.Mode().Perm())
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Cannot read REGISTRY_PASSPHRASE_FILE %q: %v.", f, pathErrReason(err))
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), nil
}

// TerminalPassphrase asks for a passphrase on the controlling terminal
// (/dev/tty), so that it works with redirected standard input and output,
// and never echoes it. When the environment variable
// REGISTRY_PASSPHRASE_FILE names a file, its first line is the passphrase
// instead (for scripted use; the file should be as private as the key).
func TerminalPassphrase() Passphrase {
	return func(what string) ([]byte, error) {
		if f := os.Getenv("REGISTRY_PASSPHRASE_FILE"); f != "" {
			return readPassphraseFile(f)
		}
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return nil, registry.Errorf(registry.EINVALID, "The %s is protected by a passphrase, and there is no terminal to ask for it (or set REGISTRY_PASSPHRASE_FILE).", what)
		}
		defer tty.Close()
		fmt.Fprintf(tty, "Passphrase for the %s: ", what)
		pass, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return nil, fmt.Errorf("read passphrase: %w", err)
		}
		return pass, nil
	}
}
