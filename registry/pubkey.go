package registry

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
)

// An approver's public key is one of three kinds, each with one text form
// the registry stores and shows (no spaces, so that it fits a line of the
// trust file):
//
//   - "registry-ed25519:" and the 32-byte Ed25519 key in standard base64:
//     a key file made by `registry approvers keygen`; its signatures are
//     plain Ed25519 over Signed(purpose, message);
//   - "ssh-ed25519:" and the key's SSH wire encoding in standard base64:
//     an OpenSSH Ed25519 key, usually held by ssh-agent;
//   - "sk-ssh-ed25519@openssh.com:" likewise: a FIDO2 security key
//     (ssh-keygen -t ed25519-sk), which signs only after a touch.
//
// SSH keys sign in OpenSSH's SSHSIG format (PROTOCOL.sshsig: what
// `ssh-keygen -Y sign -n NAMESPACE` writes), with the purpose as the
// namespace, so that an approver can also sign a statement offline with
// the stock ssh-keygen. ParsePublicKey also reads the authorized_keys form
// ("ssh-ed25519 AAAA… comment") that `cat ~/.ssh/id_ed25519_sk.pub`
// prints.

// The key kinds.
const (
	KeyRegistry = "registry-ed25519"
	KeySSH      = "ssh-ed25519"
	KeySSHSK    = "sk-ssh-ed25519@openssh.com"
)

// PublicKey is an approver's public key.
type PublicKey struct {
	Kind string
	ed   ed25519.PublicKey
	app  string // the FIDO application of a security key ("ssh:")
	wire []byte // SSH wire encoding (SSH keys only)
}

// ParsePublicKey parses an approver's public key in its text form or, for
// SSH keys, the authorized_keys form. EINVALID for anything else (RSA and
// ECDSA keys included: approvers sign with Ed25519).
func ParsePublicKey(s string) (*PublicKey, error) {
	s = strings.TrimSpace(s)
	bad := Errorf(EINVALID, "Not an approver's public key: expected %s… (registry approvers keygen) or an OpenSSH ssh-ed25519 or sk-ssh-ed25519@openssh.com key.", PublicKeyPrefix)
	if b64, ok := strings.CutPrefix(s, PublicKeyPrefix); ok {
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, bad
		}
		return &PublicKey{Kind: KeyRegistry, ed: raw}, nil
	}
	kind, b64, ok := strings.Cut(s, ":")
	if !ok || strings.ContainsAny(kind, " \t") {
		// authorized_keys: "TYPE BASE64 [comment]"
		f := strings.Fields(s)
		if len(f) < 2 {
			return nil, bad
		}
		kind, b64 = f[0], f[1]
	}
	wire, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, bad
	}
	k, err := parseSSHKey(wire)
	if err != nil || k.Kind != kind {
		return nil, bad
	}
	return k, nil
}

// parseSSHKey parses the SSH wire encoding of an Ed25519 or security-key
// Ed25519 public key.
func parseSSHKey(wire []byte) (*PublicKey, error) {
	r := sshReader{b: wire}
	kind := string(r.str())
	k := &PublicKey{Kind: kind, ed: r.str(), wire: wire}
	switch kind {
	case KeySSH:
	case KeySSHSK:
		k.app = string(r.str())
	default:
		return nil, errors.New("unsupported key type")
	}
	if r.err || len(r.b) != 0 || len(k.ed) != ed25519.PublicKeySize {
		return nil, errors.New("malformed key")
	}
	return k, nil
}

// String returns the key's text form.
func (k *PublicKey) String() string {
	if k.Kind == KeyRegistry {
		return FormatPublicKey(k.ed)
	}
	return k.Kind + ":" + base64.StdEncoding.EncodeToString(k.wire)
}

// AuthorizedKey returns an SSH key in the authorized_keys form ("" for a
// registry key), for ssh-keygen's allowed signers file.
func (k *PublicKey) AuthorizedKey() string {
	if k.Kind == KeyRegistry {
		return ""
	}
	return k.Kind + " " + base64.StdEncoding.EncodeToString(k.wire)
}

// ID returns the key id: the first 8 bytes of the SHA-256 of the Ed25519
// key (registry keys, KeyID) or of the SSH wire encoding, in hex.
func (k *PublicKey) ID() string {
	if k.Kind == KeyRegistry {
		return KeyID(k.ed)
	}
	sum := sha256.Sum256(k.wire)
	return hex.EncodeToString(sum[:8])
}

// Equal reports whether k and o are the same key.
func (k *PublicKey) Equal(o *PublicKey) bool {
	return o != nil && k.Kind == o.Kind && k.ed.Equal(o.ed) && k.app == o.app
}

// Verify reports whether sig is k's signature over msg for purpose: plain
// Ed25519 over Signed(purpose, msg) for a registry key, an SSHSIG
// signature with namespace purpose for an SSH key (binary or armored; a
// security key's signature must carry the user-presence flag).
func (k *PublicKey) Verify(purpose string, msg, sig []byte) bool {
	if k == nil {
		return false
	}
	if k.Kind == KeyRegistry {
		return VerifySignature(k.ed, purpose, msg, sig)
	}
	return k.verifySSHSIG(purpose, msg, sig)
}

// SSHSIG (OpenSSH PROTOCOL.sshsig).
const (
	sshsigMagic   = "SSHSIG"
	sshsigVersion = 1
	sshsigBegin   = "-----BEGIN SSH SIGNATURE-----"
	sshsigEnd     = "-----END SSH SIGNATURE-----"
	// skUserPresent is the flag of a security key's signature made with
	// a touch.
	skUserPresent = 0x01
)

// SSHSigned returns the data an SSH key signs for an SSHSIG signature of
// msg in namespace with hash ("sha512" or "sha256").
func SSHSigned(namespace, hash string, msg []byte) []byte {
	var h []byte
	if hash == "sha256" {
		s := sha256.Sum256(msg)
		h = s[:]
	} else {
		s := sha512.Sum512(msg)
		h = s[:]
	}
	var b bytes.Buffer
	b.WriteString(sshsigMagic)
	putString(&b, []byte(namespace))
	putString(&b, nil) // reserved
	putString(&b, []byte(hash))
	putString(&b, h)
	return b.Bytes()
}

// SSHSIGBlob assembles an SSHSIG signature of key k in namespace, with
// hash, from the SSH signature encoding sig (as an agent returns it).
func SSHSIGBlob(k *PublicKey, namespace, hash string, sig []byte) []byte {
	var b bytes.Buffer
	b.WriteString(sshsigMagic)
	binary.Write(&b, binary.BigEndian, uint32(sshsigVersion))
	putString(&b, k.wire)
	putString(&b, []byte(namespace))
	putString(&b, nil)
	putString(&b, []byte(hash))
	putString(&b, sig)
	return b.Bytes()
}

// ArmorSSHSIG returns an SSHSIG blob armored as ssh-keygen -Y sign writes
// it.
func ArmorSSHSIG(blob []byte) []byte {
	var b bytes.Buffer
	b.WriteString(sshsigBegin + "\n")
	enc := base64.StdEncoding.EncodeToString(blob)
	for len(enc) > 70 {
		b.WriteString(enc[:70] + "\n")
		enc = enc[70:]
	}
	b.WriteString(enc + "\n" + sshsigEnd + "\n")
	return b.Bytes()
}

// dearmor returns the blob of an armored SSHSIG signature, or sig itself.
func dearmor(sig []byte) []byte {
	s := strings.TrimSpace(string(sig))
	body, ok := strings.CutPrefix(s, sshsigBegin)
	if !ok {
		return sig
	}
	body, ok = strings.CutSuffix(body, sshsigEnd)
	if !ok {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	if err != nil {
		return nil
	}
	return raw
}

func (k *PublicKey) verifySSHSIG(namespace string, msg, sig []byte) bool {
	blob := dearmor(sig)
	if len(blob) < len(sshsigMagic)+4 || string(blob[:len(sshsigMagic)]) != sshsigMagic {
		return false
	}
	r := sshReader{b: blob[len(sshsigMagic):]}
	version := r.uint32()
	pub, ns, _, hash, inner := r.str(), r.str(), r.str(), string(r.str()), r.str()
	if r.err || len(r.b) != 0 || version != sshsigVersion || !bytes.Equal(pub, k.wire) || string(ns) != namespace ||
		(hash != "sha512" && hash != "sha256") {
		return false
	}
	return k.verifySSH(SSHSigned(namespace, hash, msg), inner)
}

// verifySSH verifies an SSH signature encoding over data.
func (k *PublicKey) verifySSH(data, sig []byte) bool {
	r := sshReader{b: sig}
	format, raw := string(r.str()), r.str()
	if format != k.Kind || len(raw) != ed25519.SignatureSize {
		return false
	}
	if k.Kind == KeySSH {
		return !r.err && len(r.b) == 0 && ed25519.Verify(k.ed, data, raw)
	}
	// A security key signs SHA-256(application) || flags || counter ||
	// SHA-256(data).
	flags, counter := r.byte(), r.uint32()
	if r.err || len(r.b) != 0 || flags&skUserPresent == 0 {
		return false
	}
	app, dh := sha256.Sum256([]byte(k.app)), sha256.Sum256(data)
	var signed bytes.Buffer
	signed.Write(app[:])
	signed.WriteByte(flags)
	binary.Write(&signed, binary.BigEndian, counter)
	signed.Write(dh[:])
	return ed25519.Verify(k.ed, signed.Bytes(), raw)
}

// Wire returns the SSH wire encoding of an SSH key (nil for a registry
// key).
func (k *PublicKey) Wire() []byte { return k.wire }

// Ed25519 returns the key's Ed25519 public key.
func (k *PublicKey) Ed25519() ed25519.PublicKey { return k.ed }

func putString(b *bytes.Buffer, s []byte) {
	binary.Write(b, binary.BigEndian, uint32(len(s)))
	b.Write(s)
}

// sshReader reads SSH wire encodings; err is set on a short read.
type sshReader struct {
	b   []byte
	err bool
}

func (r *sshReader) uint32() uint32 {
	if len(r.b) < 4 {
		r.err = true
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *sshReader) byte() byte {
	if len(r.b) < 1 {
		r.err = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *sshReader) str() []byte {
	n := r.uint32()
	if r.err || uint64(n) > uint64(len(r.b)) {
		r.err = true
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// signatureFilePrefix starts a signature file of a registry key.
const signatureFilePrefix = "registry-signature"

// FormatSignatureFile returns the file an approver brings back from
// signing a statement offline: for a registry key one line
// "registry-signature KEYID BASE64"; for an SSH key the armored SSHSIG
// signature, as ssh-keygen -Y sign writes it.
func FormatSignatureFile(k *PublicKey, sig []byte) []byte {
	if k.Kind == KeyRegistry {
		return []byte(signatureFilePrefix + " " + k.ID() + " " + base64.StdEncoding.EncodeToString(sig) + "\n")
	}
	if blob := dearmor(sig); blob != nil && len(blob) > len(sshsigMagic) && string(blob[:len(sshsigMagic)]) == sshsigMagic {
		return ArmorSSHSIG(blob)
	}
	return ArmorSSHSIG(sig)
}

// ParseSignatureFile reads a signature file (FormatSignatureFile, or what
// ssh-keygen -Y sign wrote) and returns the id of the key that signed and
// the signature as Verify takes it. EINVALID for anything else.
func ParseSignatureFile(data []byte) (keyID string, sig []byte, err error) {
	bad := Errorf(EINVALID, "This is not a signature file: expected the file 'registry approvers sign' or 'ssh-keygen -Y sign' wrote.")
	s := strings.TrimSpace(string(data))
	if rest, ok := strings.CutPrefix(s, signatureFilePrefix+" "); ok {
		f := strings.Fields(rest)
		if len(f) != 2 {
			return "", nil, bad
		}
		sig, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil || len(sig) != ed25519.SignatureSize || SafeKeyID(f[0]) != f[0] {
			return "", nil, bad
		}
		return f[0], sig, nil
	}
	blob := dearmor(data)
	if len(blob) < len(sshsigMagic)+4 || string(blob[:len(sshsigMagic)]) != sshsigMagic || !strings.HasPrefix(s, sshsigBegin) {
		return "", nil, bad
	}
	r := sshReader{b: blob[len(sshsigMagic):]}
	r.uint32()
	wire := r.str()
	if r.err {
		return "", nil, bad
	}
	k, err := parseSSHKey(wire)
	if err != nil {
		return "", nil, bad
	}
	return k.ID(), blob, nil
}
