package crypto_test

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// benchContact is a typical record: about 240 bytes of JSON. Benchmarks
// report the size after their loop (b.Loop resets reported metrics).
func benchContact(b *testing.B) (*registry.Contact, []byte) {
	b.Helper()
	c := &registry.Contact{
		Version: registry.ContactVersion, GivenName: "Anna", FamilyName: "Weber", Street: "Ring",
		HouseNumber: "12", Postcode: "50667", City: "Köln", Phone: "+49 221 1234567",
		VisitID: registry.NewID(), Site: "rathaus", CheckIn: testNow.Truncate(time.Microsecond),
	}
	plain, err := json.Marshal(c)
	if err != nil {
		b.Fatal(err)
	}
	return c, plain
}

// kinds runs fn as a sub-benchmark for hybrid and for X25519 keys on both
// layers.
func kinds(b *testing.B, fn func(b *testing.B, kind crypto.KeyKind)) {
	for _, kind := range []crypto.KeyKind{crypto.Hybrid, crypto.X25519} {
		b.Run(kind.String(), func(b *testing.B) { fn(b, kind) })
	}
}

// BenchmarkSeal is one record through both layers: two age.Encrypt calls.
// It reports the stored size: the JSON and what the two layers add.
func BenchmarkSeal(b *testing.B) {
	kinds(b, func(b *testing.B, kind crypto.KeyKind) {
		o := newOfficeKind(b, kind)
		e := newEpochKind(b, registry.DayOf(testNow), kind)
		c, plain := benchContact(b)
		s := crypto.NewSealer(o.recipients)
		var sealed []byte
		for b.Loop() {
			var err error
			if sealed, err = s.Seal(c, e.key.Recipient); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(plain)), "json-bytes")
		b.ReportMetric(float64(len(sealed)), "stored-bytes")
		b.ReportMetric(float64(len(sealed)-len(plain)), "added-bytes")
	})
}

// BenchmarkOpen is one record through both layers and the binding check.
func BenchmarkOpen(b *testing.B) {
	kinds(b, func(b *testing.B, kind crypto.KeyKind) {
		o := newOfficeKind(b, kind)
		e := newEpochKind(b, registry.DayOf(testNow), kind)
		c, plain := benchContact(b)
		sealed, err := crypto.NewSealer(o.recipients).Seal(c, e.key.Recipient)
		if err != nil {
			b.Fatal(err)
		}
		v := visitOf(c, sealed)
		for b.Loop() {
			if _, err := crypto.Open(v, e.id, o.identities); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(plain)), "json-bytes")
	})
}

// BenchmarkAgeEncryptOnce is the baseline of BenchmarkSeal: one
// single-layer age.Encrypt of the same JSON to one recipient of the kind.
func BenchmarkAgeEncryptOnce(b *testing.B) {
	kinds(b, func(b *testing.B, kind crypto.KeyKind) {
		o := newOfficeKind(b, kind)
		_, plain := benchContact(b)
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			w, err := age.Encrypt(&buf, o.recipients.List()...)
			if err != nil {
				b.Fatal(err)
			}
			w.Write(plain)
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(plain)), "json-bytes")
		b.ReportMetric(float64(buf.Len()), "file-bytes")
	})
}

// BenchmarkAgeDecryptOnce is the baseline of BenchmarkOpen: one
// single-layer age.Decrypt of the same JSON.
func BenchmarkAgeDecryptOnce(b *testing.B) {
	kinds(b, func(b *testing.B, kind crypto.KeyKind) {
		o := newOfficeKind(b, kind)
		_, plain := benchContact(b)
		ciphertext := sealInner(b, o, string(plain))
		for b.Loop() {
			r, err := age.Decrypt(bytes.NewReader(ciphertext), o.identities...)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(plain)), "json-bytes")
	})
}
