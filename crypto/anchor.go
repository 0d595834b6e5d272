package crypto

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/cityhall/registry/registry"
)

// anchorFile is the instance's note of the audit log's head after its
// latest export, in the key store (outside the database, like every key).
const anchorFile = "audit.anchor"

// purposeAnchor is the purpose of the instance's signature over an
// anchor.
const purposeAnchor = "registry-audit-anchor/1"

// Anchors keeps the instance's anchor of the audit log in the key store,
// signed by the instance key, so that an export finds a log whose end was
// cut or rewritten since an earlier export (registry.LogAnchor). It is
// safe for concurrent use within a process; across processes the file is
// replaced atomically and only ever moves forward.
type Anchors struct {
	path     string
	instance *SigningKey
	mu       sync.Mutex
}

// Anchors returns the key store's anchors, signed by instance.
func (k *KeyStore) Anchors(instance *SigningKey) *Anchors {
	return &Anchors{path: filepath.Join(k.Dir, anchorFile), instance: instance}
}

func anchorSigned(a *registry.LogAnchor) []byte {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(a.Size))
	return append(n[:], a.Hash...)
}

// Anchor returns the noted anchor, nil when none was noted yet; EINVALID
// when the file is malformed or its signature is not the instance's (a
// key store edited by hand).
func (s *Anchors) Anchor() (*registry.LogAnchor, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read the audit anchor: %w", err)
	}
	a := &registry.LogAnchor{}
	var sig []byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch k {
		case "size":
			a.Size, err = strconv.ParseInt(v, 10, 64)
		case "hash":
			a.Hash, err = hex.DecodeString(v)
		case "signature":
			sig, err = base64.StdEncoding.DecodeString(v)
		}
		if err != nil {
			break
		}
	}
	bad := registry.Errorf(registry.EINVALID, "The audit anchor %q in the key store is malformed or not signed by this registry instance: the key store was edited.", s.path)
	if err != nil || a.Size <= 0 || len(a.Hash) != 32 || !registry.VerifySignature(s.instance.Public(), purposeAnchor, anchorSigned(a), sig) {
		return nil, bad
	}
	return a, nil
}

// Note notes a as the anchor, unless the noted one is as far or further.
func (s *Anchors) Note(a *registry.LogAnchor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.Anchor()
	if err != nil {
		return err
	}
	if cur != nil && cur.Size >= a.Size {
		return nil
	}
	body := fmt.Sprintf("# the audit log's head after the latest export, noted by this registry instance; never edit it\nsize %d\nhash %x\nsignature %s\n",
		a.Size, a.Hash, base64.StdEncoding.EncodeToString(s.instance.Sign(purposeAnchor, anchorSigned(a))))
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		return fmt.Errorf("note the audit anchor: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("note the audit anchor: %w", err)
	}
	return syncDir(filepath.Dir(s.path))
}
