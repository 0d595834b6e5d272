package names_test

import (
	"testing"

	"github.com/cityhall/registry/registry"
	"github.com/cityhall/registry/registry/names"
)

func TestConfusable(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"Anna Schmidt", "Anna Schmidt", true},
		{"Anna Schmidt", "anna  schmidt", true},
		{"Anna Schmidt", "\u0410nna Schmidt", true}, // Cyrillic А
		{"Bert Meier", "B\u0435rt Meier", true},     // Cyrillic е
		{"Paypal", "\U0001d52d\U0001d4b6\u1eff\U0001d561\U0001d552\u2113", true},
		{"Anna Schmidt", "Anna Schmitt", false},
		{"Ayşe Yılmaz", "Ayse Yilmaz", false},
		{"Анна Шмидт", "Anna Schmidt", false},
	} {
		if got := names.Confusable(tt.a, tt.b); got != tt.want {
			t.Errorf("Confusable(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestCheckUnlike(t *testing.T) {
	existing := []string{"Anna Schmidt (DSB)", "Bert Meier"}
	for _, ok := range []string{"Carla Weiß", "Анна Шмидт", "Ayşe Yılmaz", "李小龍", "Anna Schmitt"} {
		if err := names.CheckUnlike("name", ok, existing); err != nil {
			t.Errorf("CheckUnlike(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"\u0410nna Schmidt (DSB)", "ANNA SCHMIDT (DSB)", "Bert  Meier", "B\u0435rt Meier", "\u0410nna Neu"} {
		err := names.CheckUnlike("name", bad, existing)
		if registry.ErrorCode(err) != registry.EINVALID {
			t.Errorf("CheckUnlike(%q) = %v, want EINVALID", bad, err)
		}
	}
}

func TestShowScripts(t *testing.T) {
	for in, want := range map[string]string{
		"Anna":        "Anna",
		"Ayşe Yılmaz": "Ayşe Yılmaz",
		"\u0410nna":   "\u0410nna [Cyrillic+Latin, mixed]",
		"Анна Шмидт":  "Анна Шмидт [Cyrillic]",
		"Anna Шмидт":  "Anna Шмидт [Cyrillic+Latin]",
		"12 (DSB)":    "12 (DSB)",
		"山田 Taro":     "山田 Taro [Han+Latin]",
	} {
		if got := registry.ShowScripts(in); got != want {
			t.Errorf("ShowScripts(%q) = %q, want %q", in, got, want)
		}
	}
}
