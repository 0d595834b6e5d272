package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPackage builds the release files with scripts/package (make
// package) twice, from one commit into two directories, and checks:
//
//   - the build is reproducible: every file is byte-identical;
//   - the Debian packages hold what they should (dpkg-deb --contents and
//     --info): the binary, the unit, the configuration file as a conffile,
//     the maintainer scripts; amd64 and arm64;
//   - the amd64 package installs into a throwaway root (dpkg --root, its
//     maintainer scripts run with DPKG_ROOT; under fakeroot when not run
//     as root): the user registry, the state directory and the key store
//     beside it, both mode 0700 and the user's; the configuration readable
//     by its group only; the service neither enabled nor started;
//   - the installed unit passes systemd-analyze verify;
//   - the installed binary's doctor, with the installed environment file
//     (its paths moved into the root), finds what a fresh installation
//     lacks (recipients, database) and what it has right (the layout);
//   - the OCI image runs as a non-root user, without a shell, for both
//     architectures, and the SBOM names the registry's modules;
//   - SHA256SUMS covers every file.
func TestPackage(t *testing.T) {
	for _, name := range []string{"dpkg-deb", "dpkg", "systemd-analyze"} {
		tool(t, name)
	}
	build := func(dir string) map[string][]byte {
		t.Helper()
		cmd := exec.Command("../../scripts/package", "-o", dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("scripts/package: %v\n%s", err, out)
		}
		files := map[string][]byte{}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files[e.Name()] = b
		}
		return files
	}
	dist := filepath.Join(t.TempDir(), "dist")
	first := build(dist)
	second := build(filepath.Join(t.TempDir(), "dist"))
	var names []string
	for name := range first {
		names = append(names, name)
		if !bytes.Equal(first[name], second[name]) {
			t.Errorf("%s differs between two builds of one commit: the build is not reproducible", name)
		}
	}
	slices.Sort(names)
	if len(first) != len(second) {
		t.Errorf("the two builds wrote %d and %d files", len(first), len(second))
	}
	var deb, arm, image, sbom string
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, "_amd64.deb"):
			deb = filepath.Join(dist, n)
		case strings.HasSuffix(n, "_arm64.deb"):
			arm = filepath.Join(dist, n)
		case strings.HasSuffix(n, "_oci.tar"):
			image = filepath.Join(dist, n)
		case strings.HasSuffix(n, ".cdx.json"):
			sbom = filepath.Join(dist, n)
		}
	}
	if deb == "" || arm == "" || image == "" || sbom == "" || first["SHA256SUMS"] == nil {
		t.Fatalf("scripts/package wrote %v; want both .deb, the OCI image, the SBOM and SHA256SUMS", names)
	}
	sums := exec.Command("sha256sum", "--check", "--strict", "SHA256SUMS")
	sums.Dir = dist
	if out, err := sums.CombinedOutput(); err != nil || strings.Count(string(out), ": OK") != len(names)-1 {
		t.Errorf("sha256sum --check SHA256SUMS: %v\n%s", err, out)
	}

	t.Run("contents", func(t *testing.T) {
		for _, p := range []string{deb, arm} {
			out, err := exec.Command("dpkg-deb", "--contents", p).CombinedOutput()
			if err != nil {
				t.Fatalf("dpkg-deb --contents: %v\n%s", err, out)
			}
			for _, want := range []string{"-rwxr-xr-x root/root", "./usr/bin/registry", "./usr/lib/systemd/system/registry.service",
				"-rw-r----- root/root", "./etc/registry/registry.env", "./usr/share/doc/registry/README.md"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("%s lacks %q:\n%s", filepath.Base(p), want, out)
				}
			}
			info, err := exec.Command("dpkg-deb", "--info", p).CombinedOutput()
			if err != nil {
				t.Fatalf("dpkg-deb --info: %v\n%s", err, info)
			}
			arch := "amd64"
			if p == arm {
				arch = "arm64"
			}
			for _, want := range []string{"Package: registry", "Architecture: " + arch, "Depends: passwd", "postinst", "prerm", "postrm", "conffiles"} {
				if !strings.Contains(string(info), want) {
					t.Errorf("%s: dpkg-deb --info lacks %q:\n%s", filepath.Base(p), want, info)
				}
			}
		}
	})

	t.Run("install", func(t *testing.T) { testInstallPackage(t, deb) })
	t.Run("image", func(t *testing.T) { testImage(t, image) })
	t.Run("sbom", func(t *testing.T) {
		var bom struct {
			BOMFormat  string `json:"bomFormat"`
			Metadata   struct{ Component struct{ Name string } }
			Components []struct{ Name, Version string }
		}
		if err := json.Unmarshal(first[filepath.Base(sbom)], &bom); err != nil {
			t.Fatal(err)
		}
		var mods []string
		for _, c := range bom.Components {
			mods = append(mods, c.Name)
		}
		for _, want := range []string{"filippo.io/age", "github.com/lib/pq", "github.com/jmoiron/sqlx", "modernc.org/sqlite", "github.com/spf13/cobra"} {
			if !slices.Contains(mods, want) {
				t.Errorf("the SBOM lacks %s (it names %d components)", want, len(mods))
			}
		}
		if bom.BOMFormat != "CycloneDX" || bom.Metadata.Component.Name != "github.com/cityhall/registry" {
			t.Errorf("SBOM format %q for %q", bom.BOMFormat, bom.Metadata.Component.Name)
		}
	})
}

// testInstallPackage installs the package into a throwaway root.
func testInstallPackage(t *testing.T, deb string) {
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "etc", "tmp"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	files := map[string]string{"var/lib/dpkg/status": "", "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group": "root:x:0:\n", "etc/shadow": "root:*:20000:0:99999:7:::\n", "etc/gshadow": "root:*::\n"}
	for name, text := range files {
		os.WriteFile(filepath.Join(root, name), []byte(text), 0o644)
	}
	os.Chmod(filepath.Join(root, "etc/shadow"), 0o640)
	// As root for real (CI); otherwise under fakeroot, whose state file
	// keeps the owners dpkg and the maintainer scripts set.
	state := filepath.Join(t.TempDir(), "fakeroot.state")
	os.WriteFile(state, nil, 0o600) // one session across the calls
	asRoot := func(args ...string) *exec.Cmd {
		if os.Geteuid() == 0 {
			return exec.Command(args[0], args[1:]...)
		}
		return exec.Command(tool(t, "fakeroot"), append([]string{"-i", state, "-s", state, "--"}, args...)...)
	}
	install := asRoot("dpkg", "--root="+root, "--force-script-chrootless", "--force-depends", "--force-not-root", "--log=/dev/null", "--install", deb)
	out, err := install.CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg --install: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "registry is installed but not started") {
		t.Errorf("the package does not say that the service waits for its configuration:\n%s", out)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	var uid string
	for _, line := range strings.Split(string(passwd), "\n") {
		if f := strings.Split(line, ":"); len(f) == 7 && f[0] == "registry" {
			uid = f[2]
			if f[6] != "/usr/sbin/nologin" || f[5] != "/var/lib/registry" {
				t.Errorf("the user registry: %s", line)
			}
		}
	}
	if uid == "" {
		t.Fatalf("the package created no user registry:\n%s", passwd)
	}
	stat := asRoot("stat", "-c", "%n %u %g %a",
		filepath.Join(root, "var/lib/registry"), filepath.Join(root, "var/lib/registry-keys"),
		filepath.Join(root, "etc/registry"), filepath.Join(root, "etc/registry/registry.env"))
	out, err = stat.CombinedOutput()
	if err != nil {
		t.Fatalf("stat: %v\n%s", err, out)
	}
	modes := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		rel, _ := filepath.Rel(root, f[0])
		modes[rel] = strings.Join(f[1:], " ")
	}
	for path, want := range map[string]string{"var/lib/registry": uid + " " + uid + " 700", "var/lib/registry-keys": uid + " " + uid + " 700",
		"etc/registry": "0 " + uid + " 750", "etc/registry/registry.env": "0 " + uid + " 640"} {
		if modes[path] != want {
			t.Errorf("%s: owner, group and mode %q, want %q", path, modes[path], want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/registry.service")); err == nil {
		t.Error("the package enabled the service before it was configured")
	}
	conffiles, _ := os.ReadFile(filepath.Join(root, "var/lib/dpkg/info/registry.conffiles"))
	if !strings.Contains(string(conffiles), "/etc/registry/registry.env") {
		t.Errorf("registry.env is not a conffile: %q", conffiles)
	}

	// The installed unit, with its binary in the root, beside the host's
	// own units (the targets every service depends on).
	unit := filepath.Join(root, "usr/lib/systemd/system/registry.service")
	hostUnits, _ := filepath.Glob("/usr/lib/systemd/system/*.target")
	for _, u := range hostUnits {
		if b, err := os.ReadFile(u); err == nil {
			os.WriteFile(filepath.Join(root, "usr/lib/systemd/system", filepath.Base(u)), b, 0o644)
		}
	}
	verify := exec.Command("systemd-analyze", "verify", "--man=no", "--root="+root, unit)
	out, _ = verify.CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "registry.service") && !strings.Contains(line, "EnvironmentFile") &&
			!strings.Contains(line, "Failed to connect") && !strings.Contains(line, "User") && line != "" {
			t.Errorf("systemd-analyze verify of the installed unit: %s", line)
		}
	}
	text, _ := os.ReadFile(unit)
	if !strings.Contains(string(text), "\nExecStart=/usr/bin/registry serve\n") {
		t.Errorf("the installed unit does not run the installed binary")
	}

	// doctor of the installed binary, with the installed settings.
	envFile, _ := os.ReadFile(filepath.Join(root, "etc/registry/registry.env"))
	vars := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + root}
	for _, line := range strings.Split(string(envFile), "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "REGISTRY_") {
			vars = append(vars, strings.ReplaceAll(strings.ReplaceAll(line, "/var/", root+"/var/"), "/etc/", root+"/etc/"))
		}
	}
	doctor := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(root, "usr/bin/registry"), args...)
		cmd.Env = vars
		out, err := cmd.CombinedOutput()
		if args[0] == "doctor" && err == nil {
			t.Errorf("doctor of an installation not yet configured passed:\n%s", out)
		}
		return string(out)
	}
	// Right after the installation: no database yet.
	out1 := doctor("doctor")
	for _, want := range []string{"ok    version      registry ", "ok    key store", "FAIL  database     there is no database at",
		"'registry migrate' creates a new one", "ok    layout       the key store lies outside the database's directory"} {
		if !strings.Contains(out1, want) {
			t.Errorf("doctor of the fresh installation lacks %q:\n%s", want, out1)
		}
	}
	// After migrate: the health office's recipients are missing.
	doctor("migrate")
	out2 := doctor("doctor")
	for _, want := range []string{"ok    files        database", "ok    database", "FAIL  recipients   Cannot read recipients file"} {
		if !strings.Contains(out2, want) {
			t.Errorf("doctor after migrate lacks %q:\n%s", want, out2)
		}
	}
	version, err := exec.Command(filepath.Join(root, "usr/bin/registry"), "version").Output()
	if err != nil || strings.Contains(string(version), "registry dev") || !strings.Contains(string(version), "+git") {
		t.Errorf("registry version of the package = %q (%v), want the package's version", version, err)
	}
}

// testImage reads the OCI layout in the image tar: an index of both
// platforms, each an image whose configuration runs /usr/bin/registry as
// user 65532, and whose one layer holds no shell.
func testImage(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blobs := map[string][]byte{}
	var index []byte
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		switch {
		case h.Name == "index.json":
			index = b
		case strings.HasPrefix(h.Name, "blobs/sha256/"):
			blobs["sha256:"+strings.TrimPrefix(h.Name, "blobs/sha256/")] = b
		}
	}
	type desc struct {
		MediaType string
		Digest    string
		Platform  *struct{ OS, Architecture string }
	}
	var idx struct{ Manifests []desc }
	if err := json.Unmarshal(index, &idx); err != nil || len(idx.Manifests) != 2 {
		t.Fatalf("index.json: %v %s", err, index)
	}
	var archs []string
	for _, m := range idx.Manifests {
		archs = append(archs, m.Platform.Architecture)
		var man struct {
			Config desc
			Layers []desc
		}
		json.Unmarshal(blobs[m.Digest], &man)
		var cfg struct {
			Architecture string
			Config       struct {
				User       string
				Entrypoint []string
			}
		}
		json.Unmarshal(blobs[man.Config.Digest], &cfg)
		if cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/bin/registry"}) || cfg.Architecture != m.Platform.Architecture {
			t.Errorf("%s image config: user %q, entrypoint %q, architecture %q", m.Platform.Architecture, cfg.Config.User, cfg.Config.Entrypoint, cfg.Architecture)
		}
		if len(man.Layers) != 1 {
			t.Fatalf("%s image has %d layers, want 1", m.Platform.Architecture, len(man.Layers))
		}
		layer := gunzipTar(t, blobs[man.Layers[0].Digest])
		for _, want := range []string{"usr/bin/registry", "etc/passwd", "etc/ssl/certs/ca-certificates.crt", "var/lib/registry-keys/"} {
			if !slices.Contains(layer, want) {
				t.Errorf("%s image lacks %s: %v", m.Platform.Architecture, want, layer)
			}
		}
		for _, shell := range []string{"bin/sh", "bin/bash", "usr/bin/sh", "bin/busybox"} {
			if slices.Contains(layer, shell) {
				t.Errorf("%s image holds a shell (%s)", m.Platform.Architecture, shell)
			}
		}
	}
	slices.Sort(archs)
	if !slices.Equal(archs, []string{"amd64", "arm64"}) {
		t.Errorf("the image's platforms are %v, want amd64 and arm64", archs)
	}
}

// gunzipTar lists the names in a gzipped tar.
func gunzipTar(t *testing.T, b []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		} else if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}
