package httpapi

import (
	"net/http/httptest"
	"testing"
)

func TestTextsComplete(t *testing.T) {
	for lang, m := range pageTexts {
		for other, om := range pageTexts {
			for key := range om {
				if m[key] == "" {
					t.Errorf("%s lacks the text %q that %s has", lang, key, other)
				}
			}
		}
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
