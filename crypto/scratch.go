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
// sent, a decrypted list before it is complete. Every file is sealed with
// age to a key pair that exists only in the memory of the process that
// wrote it, so a file left behind by a crash, a kill or a full disk can be
// read by nobody, the health office included; OpenScratchDir removes such
// leftovers.
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
	id, err := age.GenerateX25519Identity()
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	aw, err := age.Encrypt(bw, id.Recipient())
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &Scratch{f: f, id: id, bw: bw, aw: aw}, nil
}

// Scratch is one scratch file: written once through its age layer, then
// read back through it.
type Scratch struct {
	f    *os.File
	id   *age.X25519Identity
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

// Remove closes and removes the file and forgets its key. It is safe to
// call more than once.
func (s *Scratch) Remove() error {
	s.id = nil
	s.f.Close()
	err := os.Remove(s.f.Name())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
