// Command ociimage writes the registry's OCI image, for every platform
// given, as one OCI image layout packed in a tar file: no base image, one
// layer holding the static binary (/usr/bin/registry), /etc/passwd and
// /etc/group naming the non-root user registry (65532), its state
// directories and the host's CA certificates (for SMTP and webhooks over
// TLS). No shell, no package manager. The image runs as 65532 with the
// entrypoint /usr/bin/registry and the command serve. Every time in it is
// SOURCE_DATE_EPOCH, so two builds of one commit are byte-identical.
//
//	ociimage -o dist/registry_VERSION_oci.tar -version VERSION linux/amd64=dist/amd64/registry linux/arm64=dist/arm64/registry
//
// It is built with the tools module (scripts/tools/go.mod) by scripts/package.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const uid = 65532

func main() {
	out := flag.String("o", "", "write the image layout, packed in a tar file, to `FILE`")
	version := flag.String("version", "", "the image's version label")
	flag.Parse()
	if *out == "" || *version == "" || flag.NArg() == 0 {
		fail(fmt.Errorf("usage: ociimage -o FILE -version V OS/ARCH=BINARY…"))
	}
	epoch, err := sourceDate()
	if err != nil {
		fail(err)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arg := range flag.Args() {
		platform, binary, ok := strings.Cut(arg, "=")
		osName, arch, ok2 := strings.Cut(platform, "/")
		if !ok || !ok2 {
			fail(fmt.Errorf("%q is not OS/ARCH=BINARY", arg))
		}
		img, err := image(osName, arch, binary, *version, epoch)
		if err != nil {
			fail(fmt.Errorf("%s: %w", platform, err))
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: osName, Architecture: arch}}})
	}
	dir, err := os.MkdirTemp("", "ociimage-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	if _, err := layout.Write(dir, idx); err != nil {
		fail(err)
	}
	if err := packDir(dir, *out, epoch); err != nil {
		fail(err)
	}
}

// image is one platform's image: the layer and its configuration.
func image(osName, arch, binary, version string, epoch time.Time) (v1.Image, error) {
	layerTar, err := rootfs(binary, epoch)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "scripts/package", Comment: "registry " + version}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = osName, arch, v1.Time{Time: epoch}
	cf.Config = v1.Config{
		Entrypoint: []string{"/usr/bin/registry"},
		Cmd:        []string{"serve", "--listen", "0.0.0.0:8080"},
		User:       strconv.Itoa(uid) + ":" + strconv.Itoa(uid),
		WorkingDir: "/var/lib/registry",
		Env: []string{"REGISTRY_DB=/var/lib/registry/registry.db", "REGISTRY_KEYSTORE=/var/lib/registry-keys",
			"REGISTRY_RECIPIENTS=/etc/registry/recipients.txt"},
		ExposedPorts: map[string]struct{}{"8080/tcp": {}},
		Volumes:      map[string]struct{}{"/var/lib/registry": {}, "/var/lib/registry-keys": {}},
		Labels: map[string]string{"org.opencontainers.image.title": "registry",
			"org.opencontainers.image.version":     version,
			"org.opencontainers.image.description": "Contact-tracing visitor registry for city halls"},
	}
	return mutate.ConfigFile(img, cf)
}

// rootfs is the layer's tar: directories, the user, the binary, the CA
// certificates.
func rootfs(binary string, epoch time.Time) ([]byte, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64, owner int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: owner, Gid: owner, ModTime: epoch, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	steps := []func() error{
		func() error { return dir("etc", 0o755, 0) },
		func() error {
			return file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/nonexistent\nregistry:x:65532:65532:visitor registry:/var/lib/registry:/nonexistent\n"))
		},
		func() error { return file("etc/group", 0o644, []byte("root:x:0:\nregistry:x:65532:\n")) },
		func() error { return dir("etc/registry", 0o755, 0) },
		func() error { return dir("etc/ssl", 0o755, 0) },
		func() error { return dir("etc/ssl/certs", 0o755, 0) },
		func() error {
			ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
			if err != nil {
				return fmt.Errorf("the CA certificates for TLS (Debian: ca-certificates): %w", err)
			}
			return file("etc/ssl/certs/ca-certificates.crt", 0o644, ca)
		},
		func() error { return dir("tmp", 0o1777, 0) },
		func() error { return dir("usr", 0o755, 0) },
		func() error { return dir("usr/bin", 0o755, 0) },
		func() error { return file("usr/bin/registry", 0o755, bin) },
		func() error { return dir("var", 0o755, 0) },
		func() error { return dir("var/lib", 0o755, 0) },
		func() error { return dir("var/lib/registry", 0o700, uid) },
		func() error { return dir("var/lib/registry-keys", 0o700, uid) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// packDir writes the files under dir into a tar file at out, sorted, with
// fixed owners and times.
func packDir(dir, out string, epoch time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		names = append(names, rel)
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(names)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, name := range names {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(name), ModTime: epoch, Mode: 0o644, Format: tar.FormatPAX}
		if fi.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

func sourceDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH is not set (scripts/package sets it to the commit's time)")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
	}
	return time.Unix(n, 0).UTC(), nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ociimage:", err)
	os.Exit(1)
}
