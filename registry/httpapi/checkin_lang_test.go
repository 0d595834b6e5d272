package httpapi

import (
	"fmt"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/cityhall/registry/registry"
)

func TestTextsComplete(t *testing.T) {
	// Every message of an audience exists in each of its languages, with
	// the same placeholders as the German reference, and every plural
	// message gives each form the language's CLDR rules ask for.
	verbs := regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z]`)
	audiences := []struct {
		name  string
		texts map[string]map[string]string
		langs []string
	}{{"visitor", texts, nil}, {"desk", deskTexts, staffLangs}, {"dpo", dpoTexts, staffLangs}}
	for _, l := range visitorLangs {
		audiences[0].langs = append(audiences[0].langs, l.Tag)
	}
	if fmt.Sprint(audiences[0].langs) != fmt.Sprint(registry.VisitorLanguages) {
		t.Errorf("the picker's languages %v differ from registry.VisitorLanguages %v", audiences[0].langs, registry.VisitorLanguages)
	}
	for _, a := range audiences {
		if len(a.texts) != len(a.langs) {
			t.Errorf("%s: message files for %d languages, want %v", a.name, len(a.texts), a.langs)
		}
		ref := a.texts["de"]
		for _, lang := range a.langs {
			m := a.texts[lang]
			for key, want := range ref {
				got, ok := m[key]
				switch {
				case !ok || got == "":
					t.Errorf("%s.%s.toml lacks %q", a.name, lang, key)
				case fmt.Sprint(verbs.FindAllString(got, -1)) != fmt.Sprint(verbs.FindAllString(want, -1)):
					t.Errorf("%s.%s.toml %q has the placeholders %v, German %v", a.name, lang, key, verbs.FindAllString(got, -1), verbs.FindAllString(want, -1))
				}
			}
			for key := range m {
				if _, ok := ref[key]; !ok {
					t.Errorf("%s.%s.toml has %q, which German lacks", a.name, lang, key)
				}
			}
		}
	}
	for _, l := range visitorLangs {
		for _, n := range []int{0, 1, 2, 3, 5, 11, 21, 22, 28, 101} {
			got := plural(l.Tag, "privacy", n)
			if got == fmt.Sprint(n) || strings.Contains(got, "{{") || strings.Contains(got, "<no value>") {
				t.Errorf("privacy in %s for %d days: %q (a plural form missing?)", l.Tag, n, got)
			}
		}
	}
	if got := plural("ru", "privacy", 22); !strings.Contains(got, "22 дня") {
		t.Errorf("Russian plural for 22 days: %q, want 22 дня", got)
	}
	if got := plural("ru", "privacy", 28); !strings.Contains(got, "28 дней") {
		t.Errorf("Russian plural for 28 days: %q, want 28 дней", got)
	}
	for _, f := range append(append(append(append([]fieldSpec(nil), deskSpecs...), paperSpecs...), passwordSpecs...), companionSpecs...) {
		for _, key := range []string{"label_" + f.name, "err_" + f.name} {
			if pageTexts["de"][key] == "" && !(key == "label_"+f.name && pageTexts["de"]["label_c_"+f.name] != "") {
				t.Errorf("no text %q for the input %s", key, f.name)
			}
		}
	}
}

func TestPreferredLang(t *testing.T) {
	tests := []struct{ query, accept, want string }{
		{"", "", "de"},
		{"", "de-DE,de;q=0.9,en;q=0.8", "de"},
		{"", "en-US,en;q=0.9", "en"},
		{"", "fr, en;q=0.5, de;q=0.4", "en"},
		{"", "fr, en;q=0.4, de;q=0.5", "de"},
		{"", "en;q=0", "de"},
		{"", "en;q=bogus", "de"},
		{"", "EN-gb", "en"},
		{"lang=en", "de", "en"},
		{"lang=de", "en", "de"},
		{"lang=fr", "en", "en"},
	}
	for _, tt := range tests {
		t.Run(tt.query+"|"+tt.accept, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/checkin/rathaus?"+tt.query, nil)
			r.Header.Set("Accept-Language", tt.accept)
			if got := preferredLang(r); got != tt.want {
				t.Errorf("preferredLang = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseQ(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{{"1", 1}, {"0.5", 0.5}, {"0.125", 0.125}, {"1.0", 1}, {"0", 0}, {"2", 0}, {"0.5x", 0}, {"", 0}, {"0.12345", 0}, {"1.5", 1}}
	for _, tt := range tests {
		if got := parseQ(tt.in); got != tt.want {
			t.Errorf("parseQ(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestFormFieldOfError(t *testing.T) {
	f := newCheckinForm("rathaus", map[string]string{"c2_given_name": "A", "c3_family_name": "B"}, maxFormCompanions)
	tests := map[string]string{"phone": "phone", "companions/0/family_name": "c2_family_name",
		"companions/1/given_name": "c3_given_name", "companions/5/given_name": "companions", "companions": "companions"}
	for field, want := range tests {
		if got := f.formField(field); got != want {
			t.Errorf("formField(%q) = %q, want %q", field, got, want)
		}
	}
}
