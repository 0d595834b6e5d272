package crypto

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/cityhall/registry/registry"
)

// scratchPrefix names the files of a ScratchDir.
const scratchPrefix = "scratch-"

// ScratchDir is a private directory (mode 0700) for files that hold data
// only for the length of one operation: an export bundle before it is
// sent, a decrypted list before it is complete. Every file is unlinked as
// soon as it is created, so a crash or a kill leaves no file behind, and
// sealed with age to a (post-quantum hybrid) key pair that exists only in
// the memory of the process that wrote it, so its blocks on the disk can be
// read by nobody, the health office included. OpenScratchDir removes the
// named leftovers of libraries and of older versions.
type ScratchDir struct {
	Dir string
}

// OpenScratchDir opens (creating it with mode 0700 when missing) the
// scratch directory dir and removes the files earlier processes left in
// it. EINVALID when dir is not a directory or is open to group or others.
func OpenScratchDir(dir string) (*ScratchDir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Cannot create the scratch directory %q: %v.", dir, pathErrReason(err))
	}
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return nil, registry.Errorf(registry.EINVALID, "Cannot open the scratch directory %q: %v.", dir, pathErrReason(err))
	case !fi.IsDir():
		return nil, registry.Errorf(registry.EINVALID, "The scratch directory %q is not a directory.", dir)
	case fi.Mode().Perm()&0o077 != 0:
		return nil, registry.Errorf(registry.EINVALID, "The scratch directory %q is open to group or others (mode %04o): run chmod 700 %q.", dir, fi.Mode().Perm(), dir)
	}
	d := &ScratchDir{Dir: dir}
	if err := d.clean(); err != nil {
		return nil, err
	}
	return d, nil
}

// ForeignPrefix starts the temporary files that libraries write into the
// scratch directory (excelize's spill files while a workbook is built):
// they are not sealed, so the directory's privacy and the clean-up at the
// next start are what protects them.
const ForeignPrefix = "excelize-"

// clean removes leftover scratch files, ours and the libraries'.
func (d *ScratchDir) clean() error {
	entries, err := os.ReadDir(d.Dir)
	if err != nil {
		return fmt.Errorf("list scratch directory: %w", err)
	}
	for _, e := range entries {
		if (strings.HasPrefix(e.Name(), scratchPrefix) || strings.HasPrefix(e.Name(), ForeignPrefix)) && e.Type().IsRegular() {
			if err := os.Remove(filepath.Join(d.Dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove leftover scratch file: %w", err)
			}
		}
	}
	return nil
}

// Create returns a new scratch file for writing. Write to it, then Close
// it and read it back with Open; Remove it when done (also on error).
func (d *ScratchDir) Create() (*Scratch, error) {
	f, err := os.CreateTemp(d.Dir, scratchPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("create scratch file: %w", err)
	}
	// The file loses its name at once: only this descriptor reaches it,
	// and the kernel frees it when the descriptor is closed (Remove) or
	// the process dies, so nothing waits for a clean-up.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("unlink scratch file: %w", err)
	}
	// A hybrid key, so that a copy of the file's blocks stays sealed
	// against a future quantum computer; one per file, it costs nothing.
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		f.Close()
		return nil, err
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	aw, err := age.Encrypt(bw, id.Recipient())
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Scratch{f: f, id: id, bw: bw, aw: aw}, nil
}

// Scratch is one scratch file: written once through its age layer, then
// read back through it.
type Scratch struct {
	f    *os.File
	id   *age.HybridIdentity
	bw   *bufio.Writer
	aw   io.WriteCloser
	size int64
}

// Write writes plaintext.
func (s *Scratch) Write(p []byte) (int, error) {
	n, err := s.aw.Write(p)
	s.size += int64(n)
	return n, err
}

// Close finishes writing: the file is complete and synced.
func (s *Scratch) Close() error {
	err := s.aw.Close()
	if err == nil {
		err = s.bw.Flush()
	}
	if err == nil {
		err = s.f.Sync()
	}
	return err
}

// Size is the number of plaintext bytes written.
func (s *Scratch) Size() int64 { return s.size }

// Open returns a reader of the plaintext, from the start.
func (s *Scratch) Open() (io.Reader, error) {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return age.Decrypt(bufio.NewReaderSize(s.f, 64<<10), s.id)
}

// Remove closes the file, which frees it (it has no name since Create),
// and forgets its key. It is safe to call more than once.
func (s *Scratch) Remove() error {
	s.id = nil
	if err := s.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}
