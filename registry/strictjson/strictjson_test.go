package strictjson_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/strictjson"
)

type inner struct {
	Name  string `json:"name"`
	Phone string `json:"phone,omitempty"`
}

type embedded struct {
	Site string `json:"site"`
}

type target struct {
	embedded
	Text    string     `json:"text"`
	Opt     *string    `json:"opt"`
	When    time.Time  `json:"when"`
	OptWhen *time.Time `json:"opt_when"`
	Flag    bool       `json:"flag"`
	N       int        `json:"n"`
	Raw     []byte     `json:"raw"`
	List    []string   `json:"list"`
	People  []inner    `json:"people"`
	One     *inner     `json:"one"`
	Skip    string     `json:"-"`
	hidden  string
}

func TestDecodeAccepts(t *testing.T) {
	body := `{"site":"rathaus","text":"Grüße \u00e9 \ud83d\ude00","opt":null,"when":"2025-03-04T10:15:00+01:00",
	"opt_when":"2025-03-04T10:15:00Z","flag":true,"n":-42,"raw":"AAEC","list":["a","b"],
	"people":[{"name":"Max"},{"name":"Lena","phone":"+49"}],"one":{"name":"Eins"}}`
	var got target
	if err := strictjson.Decode([]byte(body), &got); err != nil {
		t.Fatalf("Decode() = %v", err)
	}
	var want target
	if err := json.Unmarshal([]byte(body), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode() = %+v\nencoding/json = %+v", got, want)
	}
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct{ name, body, field, msg string }{
		{"empty", ``, "", "empty"},
		{"array", `[]`, "", "must be an object"},
		{"null", `null`, "", "must be an object"},
		{"trailing", `{} {}`, "", "after the object"},
		{"trailing comma", `{"text":"a",}`, "", "not valid JSON"},
		{"trailing comma in array", `{"list":["a",]}`, "list", "not valid JSON"},
		{"ends early", `{"text":"a"`, "", "ends early"},
		{"bad utf8", "{\"text\":\"\xff\"}", "", "UTF-8"},
		{"unknown", `{"nope":1}`, "nope", "not a known field"},
		{"case", `{"TEXT":"a"}`, "TEXT", "not a known field"},
		{"skipped field", `{"Skip":"a"}`, "Skip", "not a known field"},
		{"unexported", `{"hidden":"a"}`, "hidden", "not a known field"},
		{"duplicate", `{"text":"a","text":"b"}`, "text", "more than once"},
		{"escaped duplicate", `{"text":"a","\u0074ext":"b"}`, "text", "more than once"},
		{"duplicate embedded", `{"site":"a","site":"b"}`, "site", "more than once"},
		{"duplicate deep", `{"people":[{"name":"a"},{"name":"b","name":"c"}]}`, "people/1/name", "more than once"},
		{"unknown deep", `{"one":{"nope":1}}`, "one/nope", "not a known field"},
		{"null string", `{"text":null}`, "text", "not null"},
		{"null slice", `{"list":null}`, "list", "not null"},
		{"number for string", `{"text":1}`, "text", "must be a string"},
		{"object for string", `{"text":{"a":1}}`, "text", "must be a string"},
		{"float", `{"n":1.5}`, "n", "integer"},
		{"exponent", `{"n":1e3}`, "n", "integer"},
		{"leading zero", `{"n":01}`, "n", "integer"},
		{"huge", `{"n":99999999999999999999}`, "n", "out of range"},
		{"bad time", `{"when":"2025-13-01T00:00:00Z"}`, "when", "RFC 3339"},
		{"bad base64", `{"raw":"!!"}`, "raw", "base64"},
		{"bool", `{"flag":"true"}`, "flag", "true or false"},
		{"truex", `{"flag":truex}`, "flag", "true or false"},
		{"raw control", "{\"text\":\"a\tb\"}", "text", "control character"},
		{"escaped control", `{"text":"a\u0000b"}`, "text", "U+0000"},
		{"escaped newline", `{"text":"a\nb"}`, "text", "U+000A"},
		{"lone high surrogate", `{"text":"\ud800"}`, "text", "lone surrogate"},
		{"lone low surrogate", `{"text":"\udc00x"}`, "text", "lone surrogate"},
		{"reversed pair", `{"text":"\ude00\ud83d"}`, "text", "lone surrogate"},
		{"high then char", `{"text":"\ud83dx"}`, "text", "lone surrogate"},
		{"zero width space", `{"text":"al\u200bice"}`, "text", "U+200B"},
		{"raw zero width space", "{\"text\":\"al\u200bice\"}", "text", "U+200B"},
		{"right-to-left override", `{"list":["ok","\u202egnp.exe"]}`, "list/1", "U+202E"},
		{"line separator", `{"one":{"name":"a\u2028b"}}`, "one/name", "U+2028"},
		{"byte order mark", `{"opt":"\ufeffx"}`, "opt", "U+FEFF"},
		{"replacement character", `{"text":"\ufffd"}`, "text", "U+FFFD"},
		{"private use", `{"text":"\ue000"}`, "text", "U+E000"},
		{"latin joiner", `{"text":"al\u200dice"}`, "text", "U+200D"},
		{"bad key", `{"te\u200bxt":"a"}`, "", "U+200B"},
		{"bad escape", `{"text":"\x"}`, "text", "not valid JSON"},
		{"short unicode escape", `{"text":"\u12"}`, "text", "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got target
			err := strictjson.Decode([]byte(tt.body), &got)
			if registry.ErrorCode(err) != registry.EINVALID {
				t.Fatalf("Decode(%q) = %v, want EINVALID", tt.body, err)
			}
			if f := registry.ErrorField(err); f != tt.field {
				t.Errorf("field = %q, want %q (%v)", f, tt.field, err)
			}
			if msg := registry.ErrorMessage(err); !strings.Contains(msg, tt.msg) {
				t.Errorf("message %q does not contain %q", msg, tt.msg)
			}
		})
	}
}

func TestPersianJoinerAccepted(t *testing.T) {
	// "Mi‌khaham": the non-joiner between two Arabic-script letters is
	// part of the spelling.
	var got target
	if err := strictjson.Decode([]byte(`{"text":"\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"}`), &got); err != nil {
		t.Fatalf("Decode() = %v", err)
	}
}

// TestErrorsNeverEchoValues: no value, also in keys, reaches a message.
func TestErrorsNeverEchoValues(t *testing.T) {
	for _, body := range []string{
		`{"text":1,"SECRETVALUE":2}`, `{"SECRETVALUE":1}`, `{"text":"SECRETVALUE\u0000"}`,
		`{"n":"SECRETVALUE"}`, `{"when":"SECRETVALUE"}`, `{"one":{"name":"SECRETVALUE\u202e"}}`,
	} {
		var got target
		err := strictjson.Decode([]byte(body), &got)
		msg := registry.ErrorMessage(err)
		if strings.Contains(msg, "SECRETVALUE") && !strings.Contains(registry.ErrorField(err), "SECRETVALUE") {
			t.Errorf("%s: message %q echoes the value", body, msg)
		}
		if err == nil {
			t.Errorf("%s: accepted", body)
		}
	}
	var got target
	err := strictjson.Decode([]byte(`{"a\u202eb":1}`), &got)
	if f := registry.ErrorField(err); strings.ContainsRune(f, '\u202e') {
		t.Errorf("field %q carries the invisible character", f)
	}
}

// TestDeepNestingIsCheap: nesting of any depth, at the top or inside a
// field, is refused where it starts, without work or memory that grows
// with the depth.
func TestDeepNestingIsCheap(t *testing.T) {
	const depth = 1 << 20
	bodies := map[string][]byte{
		"in a string field": []byte(`{"text":` + strings.Repeat("[", depth)),
		"in a slice":        []byte(`{"people":[` + strings.Repeat("[", depth)),
		"objects":           []byte(`{"one":{"nope":` + strings.Repeat(`{"a":`, depth)),
		"unknown key":       []byte(`{"x":` + strings.Repeat("[", depth)),
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			var got target
			err := strictjson.Decode(body, &got)
			runtime.ReadMemStats(&after)
			if registry.ErrorCode(err) != registry.EINVALID {
				t.Fatalf("Decode() = %v, want EINVALID", err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
				t.Errorf("allocated %d bytes for a %d-byte body, want a small constant", grew, len(body))
			}
		})
	}
}

// FuzzDecode: whatever Decode accepts is a JSON object that encoding/json
// decodes to the same value, with clean strings.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"site":"a","text":"b","n":1,"flag":false,"list":["x"],"people":[{"name":"y"}]}`,
		`{"when":"2025-03-04T10:15:00+01:00","opt":null,"raw":"AAEC"}`, `{}`, `[]`, `{"text":"\ud83d\ude00"}`,
		`{"text":"a","text":"b"}`, `{"n":-0}`, `{"one":{"name":"\u0041"}}`, "{\"text\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got target
		if err := strictjson.Decode(body, &got); err != nil {
			if registry.ErrorCode(err) != registry.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var want target
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("encoding/json refuses accepted %q: %v", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %+v, encoding/json %+v", got, want)
		}
		for _, s := range append([]string{got.Site, got.Text}, got.List...) {
			if _, _, bad := registry.BadRune(s); bad {
				t.Fatalf("accepted a refused character in %q", s)
			}
		}
	})
}

func BenchmarkDecodeRegistration(b *testing.B) {
	type companion struct {
		GivenName  string `json:"given_name"`
		FamilyName string `json:"family_name"`
	}
	type reg struct {
		registry.Registration
		Companions []companion `json:"companions"`
	}
	body := []byte(`{"site":"rathaus","area":"Bürgerbüro","given_name":"Erika","family_name":"Mustermann",
"street":"Heidestraße","house_number":"17","postcode":"51147","city":"Köln","phone":"+49 221 1234567",
"email":"erika@example.org","host":"Frau Amt","companions":[{"given_name":"Max","family_name":"Mustermann"}]}`)
	b.Run("strictjson", func(b *testing.B) {
		for b.Loop() {
			var r reg
			if err := strictjson.Decode(body, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline=encoding/json", func(b *testing.B) {
		for b.Loop() {
			var r reg
			if err := json.Unmarshal(body, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type limited struct {
	People []inner `json:"people" strictjson:"max=3"`
}

// TestMaxElements: a slice tagged max=N takes N elements and refuses the
// next one where it starts: whatever follows it (here invalid JSON and a
// megabyte of elements) is never looked at.
func TestMaxElements(t *testing.T) {
	var ok limited
	if err := strictjson.Decode([]byte(`{"people":[{"name":"a"},{"name":"b"},{"name":"c"}]}`), &ok); err != nil || len(ok.People) != 3 {
		t.Fatalf("three elements: %v, %d", err, len(ok.People))
	}
	body := `{"people":[{},{},{},` + strings.Repeat(`{},`, 1<<18) + `{"name":` + "\x00"
	var v limited
	err := strictjson.Decode([]byte(body), &v)
	if registry.ErrorField(err) != "people" || !strings.Contains(registry.ErrorMessage(err), "people holds more than 3 elements") {
		t.Fatalf("Decode(%d elements) = %v, want people holds more than 3 elements", 1<<18, err)
	}
}

func TestMaxTagNeedsASlice(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a max tag on a string did not panic")
		}
	}()
	var v struct {
		S string `json:"s" strictjson:"max=3"`
	}
	strictjson.Decode([]byte(`{}`), &v)
}
