package export

import (
	"bytes"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/cityhall/registry/registry"
)

// FuzzRead feeds Read sealed plaintexts (raw=false: the input is sealed to
// the office first, so the fuzzer reaches the line reader, the strict JSON
// and the verification) and raw files (raw=true). Read must not panic, must
// fail only with EINVALID, and what it accepts must be complete.
func FuzzRead(f *testing.F) {
	fx := newFixture(f)
	req, visits, _ := roundTripSet(f, fx)
	sealed := fx.write(f, req, visits)
	plain := strings.Join(fx.plainLines(f, sealed), "\n") + "\n"
	f.Add([]byte(plain), false)
	f.Add([]byte(strings.SplitAfter(plain, "\n")[0]), false)
	f.Add([]byte(`{"format":"registry-export/1","count":1}`+"\n{}\n"), false)
	f.Add(sealed, true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		in := data
		if !raw {
			in = fx.reseal(t, []string{strings.TrimSuffix(string(data), "\n")})
		}
		b, err := Read(bytes.NewReader(in), fx.office, fx.trust)
		if err != nil {
			if b != nil || registry.ErrorCode(err) != registry.EINVALID {
				t.Fatalf("Read = %v, %v; want nil and EINVALID", b, err)
			}
			return
		}
		if len(b.Records) != b.Header.Count {
			t.Fatalf("accepted %d records, header announces %d", len(b.Records), b.Header.Count)
		}
		for _, r := range b.Records {
			if r.Contact == nil || r.Contact.CheckBinding(r.VisitID, r.Site, r.CheckIn) != nil {
				t.Fatalf("accepted record %s without a bound contact", r.VisitID)
			}
		}
	})
}

// forbiddenFirst is the test's own list of characters no cell may start
// with (after white space and invisible format characters).
func forbiddenFirst(r rune) bool {
	return unicode.IsControl(r) || strings.ContainsRune("=+-@＝＋－＠﹦﹢﹣−", r)
}

func firstVisible(s string) (rune, bool) {
	for _, r := range s {
		if unicode.IsControl(r) || !unicode.IsSpace(r) && !unicode.Is(unicode.Cf, r) {
			return r, true
		}
	}
	return 0, false
}

// FuzzCSVCell checks that a cell never starts with a dangerous character
// unless the phone rule applies, and that neutralising only adds a prefix.
func FuzzCSVCell(f *testing.F) {
	for _, p := range append(append([]string{}, formulaCorpus...), phoneCorpus...) {
		f.Add(p, false)
		f.Add(p, true)
	}
	f.Fuzz(func(t *testing.T, s string, keepText bool) {
		for _, out := range []string{csvCell(s, keepText), importCell(s)} {
			checkCell(t, s, out)
		}
	})
}

func checkCell(t *testing.T, in, out string) {
	t.Helper()
	if !utf8.ValidString(out) || strings.ContainsRune(out, 0) {
		t.Fatalf("cell %q for %q is not clean UTF-8", out, in)
	}
	want := clean(in)
	switch out {
	case want: // unchanged: only harmless values and, in import files, phone numbers
		if r, ok := firstVisible(out); ok && forbiddenFirst(r) && !isPlusPhone(out) {
			t.Fatalf("cell %q for %q starts with %q", out, in, r)
		}
	case "'" + want: // neutralised
	case wordJoiner + want: // the phone rule, or keep-as-text for digits
		if !isPlusPhone(want) && !(want != "" && (want[0] >= '0' && want[0] <= '9' || want[0] == '(')) {
			t.Fatalf("cell %q for %q: word joiner before a value that is neither a phone number nor digits", out, in)
		}
	default:
		t.Fatalf("cell %q for %q: not the input %q with at most one prefix", out, in, want)
	}
}

// TestCheckCellCorpus runs the fuzz check on the corpora with both cell
// functions.
func TestCheckCellCorpus(t *testing.T) {
	for _, p := range append(append([]string{}, formulaCorpus...), phoneCorpus...) {
		checkCell(t, p, csvCell(p, false))
		checkCell(t, p, csvCell(p, true))
		checkCell(t, p, importCell(p))
	}
}
