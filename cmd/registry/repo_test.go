package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// binaryMagic are the first bytes of executables and object files of the
// platforms Go builds for: ELF, Mach-O (32, 64, universal) and PE/COFF.
var binaryMagic = [][]byte{
	{0x7f, 'E', 'L', 'F'},
	{0xfe, 0xed, 0xfa, 0xce}, {0xfe, 0xed, 0xfa, 0xcf}, {0xce, 0xfa, 0xed, 0xfe}, {0xcf, 0xfa, 0xed, 0xfe},
	{0xca, 0xfe, 0xba, 0xbe},
	{'M', 'Z'},
}

// TestNoBuildOutputTracked fails when git tracks a compiled program or a
// file larger than 5 MB: build output belongs in bin/ (ignored), never in
// the repository. It reads the index of the checkout the test runs in.
func TestNoBuildOutputTracked(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("git not found: the repository check needs it")
	}
	top, err := exec.Command(git, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("not inside a git checkout: %v", err)
	}
	root := strings.TrimSpace(string(top))
	out, err := exec.Command(git, "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatal(err)
	}
	for name := range strings.SplitSeq(strings.TrimRight(string(out), "\x00"), "\x00") {
		path := filepath.Join(root, name)
		fi, err := os.Lstat(path)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or a symlink
		}
		if fi.Size() > 5<<20 {
			t.Errorf("%s is %d bytes: build output or data does not belong in git", name, fi.Size())
			continue
		}
		head := make([]byte, 4)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := f.Read(head)
		f.Close()
		for _, m := range binaryMagic {
			if n >= len(m) && bytes.Equal(head[:len(m)], m) && !strings.HasSuffix(name, ".txt") {
				t.Errorf("%s is a compiled program (it starts with % x): remove it with git rm --cached and build into bin/", name, m)
			}
		}
	}
}
