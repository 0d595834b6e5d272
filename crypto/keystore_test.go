package crypto_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// openKeyStore opens a key store in a fresh directory.
func openKeyStore(t *testing.T) *crypto.KeyStore {
	t.Helper()
	ks, err := crypto.OpenKeyStore(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatalf("OpenKeyStore: %v", err)
	}
	return ks
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("mode of %s = %04o, want %04o", filepath.Base(path), got, want)
	}
}

func TestOpenKeyStore(t *testing.T) {
	t.Run("creates missing directory 0700", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "keys")
		ks, err := crypto.OpenKeyStore(dir)
		if err != nil {
			t.Fatalf("OpenKeyStore: %v", err)
		}
		if ks.Dir != dir {
			t.Errorf("Dir = %q, want %q", ks.Dir, dir)
		}
		wantMode(t, dir, 0o700)
	})
	for _, mode := range []os.FileMode{0o750, 0o740, 0o705, 0o701, 0o770, 0o777} {
		t.Run("refuses "+mode.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, mode); err != nil {
				t.Fatal(err)
			}
			_, err := crypto.OpenKeyStore(dir)
			wantCode(t, err, registry.EINVALID)
			wantMessage(t, err, "chmod 700")
		})
	}
	t.Run("refuses a file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keys")
		writeFile(t, path, "")
		_, err := crypto.OpenKeyStore(path)
		wantCode(t, err, registry.EINVALID)
	})
	t.Run("refuses empty path", func(t *testing.T) {
		_, err := crypto.OpenKeyStore("")
		wantCode(t, err, registry.EINVALID)
	})
}

func TestKeyStoreCreate(t *testing.T) {
	for _, kind := range []crypto.KeyKind{crypto.Hybrid, crypto.X25519} {
		t.Run(kind.String(), func(t *testing.T) { testKeyStoreCreate(t, kind) })
	}
}

func testKeyStoreCreate(t *testing.T, kind crypto.KeyKind) {
	ks := openKeyStore(t)
	const day = registry.Day("2024-03-14")
	key, err := ks.Create(day, kind, testNow)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if key.Day != day || !key.CreatedAt.Equal(testNow) || key.DestroyedAt != nil {
		t.Errorf("key = %+v, want day %s created %v", key, day, testNow)
	}
	path := filepath.Join(ks.Dir, "epoch-2024-03-14.age")
	wantMode(t, path, 0o600)
	content := readFile(t, path)
	secretPrefix := map[crypto.KeyKind]string{crypto.Hybrid: "AGE-SECRET-KEY-PQ-1", crypto.X25519: "AGE-SECRET-KEY-1"}[kind]
	if !strings.HasPrefix(content, "# created: 2024-03-14T09:26:53Z\n# public key: "+key.Recipient+"\n"+secretPrefix) {
		t.Errorf("key file is not in age-keygen format")
	}
	if got, ok := crypto.KindOf(key.Recipient); !ok || got != kind {
		t.Errorf("recipient %.12s… is of kind %s, want %s", key.Recipient, got, kind)
	}

	// A second store on the same directory reads the file, not a cache.
	fresh, err := crypto.OpenKeyStore(ks.Dir)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := fresh.Recipient(day)
	if err != nil {
		t.Fatalf("Recipient: %v", err)
	}
	if rec != key.Recipient {
		t.Errorf("Recipient = %q, want %q", rec, key.Recipient)
	}
	id, err := fresh.Identity(day)
	if err != nil {
		t.Fatalf("Identity: %v", err)
	}
	var got string
	switch id := id.(type) {
	case *age.HybridIdentity:
		got = id.Recipient().String()
	case *age.X25519Identity:
		got = id.Recipient().String()
	}
	if got != key.Recipient {
		t.Errorf("identity's recipient = %q, want %q", got, key.Recipient)
	}
	if k, err := fresh.Kind(day); err != nil || k != kind {
		t.Errorf("Kind = %s, %v; want %s", k, err, kind)
	}

	t.Run("refuses to replace", func(t *testing.T) {
		_, err := ks.Create(day, crypto.Hybrid, testNow.Add(time.Hour))
		wantCode(t, err, registry.ECONFLICT)
		if got := readFile(t, path); got != content {
			t.Error("existing key file was changed")
		}
	})
	t.Run("refuses malformed day", func(t *testing.T) {
		for _, d := range []registry.Day{"", "2024-3-14", "../x", "2024-02-30"} {
			_, err := ks.Create(d, crypto.Hybrid, testNow)
			wantCode(t, err, registry.EINVALID)
		}
	})
}

func TestKeyStoreIdentityErrors(t *testing.T) {
	ks := openKeyStore(t)
	_, err := ks.Identity("2024-03-14")
	wantCode(t, err, registry.ENOTFOUND)
	_, err = ks.Recipient("2024-03-14")
	wantCode(t, err, registry.ENOTFOUND)
	_, err = ks.Identity("../../etc/passwd")
	wantCode(t, err, registry.EINVALID)

	tests := map[string]string{
		"garbage":        "not a key\n",
		"empty":          "",
		"two identities": newIdentity(t).String() + "\n" + newIdentity(t).String() + "\n",
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			writeFile(t, filepath.Join(ks.Dir, "epoch-2024-01-01.age"), content)
			_, err := ks.Identity("2024-01-01")
			wantCode(t, err, registry.EINVALID)
		})
	}
}

func TestKeyStoreDays(t *testing.T) {
	ks := openKeyStore(t)
	for _, d := range []registry.Day{"2024-03-14", "2024-02-29", "2024-03-01"} {
		if _, err := ks.Create(d, crypto.Hybrid, testNow); err != nil {
			t.Fatal(err)
		}
	}
	// A leftover of an interrupted Create holds a key: it is listed, so
	// that the purge destroys it.
	writeFile(t, filepath.Join(ks.Dir, ".epoch-2024-03-03.age.tmp-1"), "x")
	writeFile(t, filepath.Join(ks.Dir, ".epoch-2024-03-14.age.tmp-2"), "x")
	for _, name := range []string{"README", "epoch-2024-13-01.age", "epoch-2024-03-02.age.bak", "epoch-.age", ".epoch-2024-03-05.age", ".hidden"} {
		writeFile(t, filepath.Join(ks.Dir, name), "x")
	}
	if err := os.Mkdir(filepath.Join(ks.Dir, "epoch-2024-03-04.age"), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := ks.Days()
	if err != nil {
		t.Fatalf("Days: %v", err)
	}
	if want := []registry.Day{"2024-02-29", "2024-03-01", "2024-03-14"}; !slices.Equal(got, want) {
		t.Errorf("Days() = %v, want %v", got, want)
	}
	left, err := ks.LeftoverDays()
	if want := []registry.Day{"2024-03-03", "2024-03-14"}; err != nil || !slices.Equal(left, want) {
		t.Errorf("LeftoverDays() = %v, %v; want %v", left, err, want)
	}
}

func TestKeyStoreDestroy(t *testing.T) {
	ks := openKeyStore(t)
	const day, other = registry.Day("2024-03-14"), registry.Day("2024-03-15")
	for _, d := range []registry.Day{day, other} {
		if _, err := ks.Create(d, crypto.Hybrid, testNow); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ks.Identity(day); err != nil { // fills the cache
		t.Fatal(err)
	}
	path := filepath.Join(ks.Dir, "epoch-2024-03-14.age")
	before := readFile(t, path)
	// A hard link shares the inode: it shows what Destroy did to the
	// file's content before removing its name.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Link(path, link); err != nil {
		t.Fatal(err)
	}
	// A temporary file left by an interrupted Create holds a key too.
	leftover := filepath.Join(ks.Dir, ".epoch-2024-03-14.age.tmp-12345")
	writeFile(t, leftover, before)

	destroyed, err := ks.Destroy(day)
	if err != nil || !destroyed {
		t.Fatalf("Destroy = %v, %v; want true, nil", destroyed, err)
	}
	for _, p := range []string{path, leftover} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists after Destroy (stat: %v)", filepath.Base(p), err)
		}
	}
	after := readFile(t, link)
	if len(after) != len(before) {
		t.Errorf("overwritten length = %d, want %d", len(after), len(before))
	}
	if strings.Contains(after, "AGE-SECRET-KEY") || after == before || bytes.Count([]byte(after), []byte{0}) == len(after) {
		t.Error("key file content was not overwritten with random bytes")
	}
	_, err = ks.Identity(day)
	wantCode(t, err, registry.ENOTFOUND)
	_, err = ks.Recipient(day)
	wantCode(t, err, registry.ENOTFOUND)
	if days, err := ks.Days(); err != nil || !slices.Equal(days, []registry.Day{other}) {
		t.Errorf("Days() = %v, %v; want [%s]", days, err, other)
	}
	if _, err := ks.Identity(other); err != nil {
		t.Errorf("Identity of the other day: %v", err)
	}

	t.Run("absent key", func(t *testing.T) {
		for _, d := range []registry.Day{day, "2020-01-01"} {
			destroyed, err := ks.Destroy(d)
			if err != nil || destroyed {
				t.Errorf("Destroy(%s) = %v, %v; want false, nil", d, destroyed, err)
			}
		}
	})
	t.Run("malformed day", func(t *testing.T) {
		_, err := ks.Destroy("*")
		wantCode(t, err, registry.EINVALID)
	})
	t.Run("recreate after destroy", func(t *testing.T) {
		key, err := ks.Create(day, crypto.Hybrid, testNow)
		if err != nil {
			t.Fatalf("Create after Destroy: %v", err)
		}
		if rec, err := ks.Recipient(day); err != nil || rec != key.Recipient {
			t.Errorf("Recipient = %q, %v; want the new key %q", rec, err, key.Recipient)
		}
	})
}

// TestKeyStoreCacheFollowsFile runs two stores on one directory, as the
// server and a DPO's purge command do: a key destroyed or replaced by one
// is never served from the other's cache.
func TestKeyStoreCacheFollowsFile(t *testing.T) {
	server := openKeyStore(t)
	cli, err := crypto.OpenKeyStore(server.Dir)
	if err != nil {
		t.Fatal(err)
	}
	const day = registry.Day("2024-03-14")
	if _, err := cli.Create(day, crypto.Hybrid, testNow); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Identity(day); err != nil { // fills the server's cache
		t.Fatal(err)
	}
	if _, err := cli.Destroy(day); err != nil {
		t.Fatal(err)
	}
	_, err = server.Identity(day)
	wantCode(t, err, registry.ENOTFOUND)

	// Destroy and re-create between two reads: the file system may reuse
	// the inode, within the same timestamp tick, with the same size.
	if _, err := cli.Create(day, crypto.Hybrid, testNow); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := server.Identity(day); err != nil { // caches the current key
			t.Fatal(err)
		}
		if _, err := cli.Destroy(day); err != nil {
			t.Fatal(err)
		}
		key, err := cli.Create(day, crypto.Hybrid, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := server.Recipient(day); err != nil || got != key.Recipient {
			t.Fatalf("round %d: Recipient = %q, %v; want the replacement %q", i, got, err, key.Recipient)
		}
	}
}

// TestKeyStoreDestroyedDayUnreadable is the point of the outer layer: after
// Destroy, a sealed record of that day no longer opens with any key that
// remains, the health office's identity and the other days' keys of a key
// store reopened from disk included, for hybrid and classic day keys alike.
func TestKeyStoreDestroyedDayUnreadable(t *testing.T) {
	for _, kind := range []crypto.KeyKind{crypto.Hybrid, crypto.X25519} {
		t.Run(kind.String(), func(t *testing.T) {
			o := newOfficeKind(t, kind)
			day := registry.DayOf(testNow)
			e := newEpochKind(t, day, kind)
			for _, d := range []registry.Day{day.AddDays(-1), day.AddDays(1)} {
				if _, err := e.store.Create(d, kind, testNow); err != nil {
					t.Fatal(err)
				}
			}
			c := testContact()
			sealed, err := crypto.NewSealer(o.recipients).Seal(c, e.key.Recipient)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.Destroy(day); err != nil {
				t.Fatal(err)
			}
			reopened, err := crypto.OpenKeyStore(e.store.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reopened.Identity(day); registry.ErrorCode(err) != registry.ENOTFOUND {
				t.Fatalf("Identity after Destroy: %v, want ENOTFOUND", err)
			}
			remaining := slices.Clone(o.identities)
			days, err := reopened.Days()
			if err != nil || len(days) != 2 {
				t.Fatalf("Days after Destroy = %v, %v; want the 2 other days", days, err)
			}
			for _, d := range days {
				id, err := reopened.Identity(d)
				if err != nil {
					t.Fatal(err)
				}
				remaining = append(remaining, id)
			}
			for i, id := range remaining {
				_, err = crypto.OpenOuter(sealed, id)
				wantCode(t, err, registry.EINVALID)
				if err == nil {
					t.Errorf("remaining key %d opens the destroyed day's record", i)
				}
			}
		})
	}
}
