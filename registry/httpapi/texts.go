package httpapi

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

// The pages' texts live in go-i18n message files under locales/, one per
// audience and language, which translators' tools read:
//
//   - visitor.LANG.toml: everything a visitor sees (the check-in form,
//     its errors, the checked-in and checked-out pages, the landing
//     page), in every language of visitorLangs;
//   - desk.LANG.toml and dpo.LANG.toml: the staff's pages, German and
//     English.
//
// German and English are the reference; the other languages' files say in
// their header whether a person reviewed them. TestTextsComplete checks
// that every message exists in every language of its audience with the
// same placeholders. Plural forms follow CLDR through go-i18n (plural).

// visitorLangs are the visitors' languages, in the picker's order, with
// their own names and writing direction.
var visitorLangs = []struct{ Tag, Name, Dir string }{
	{"de", "Deutsch", "ltr"}, {"en", "English", "ltr"}, {"tr", "Türkçe", "ltr"}, {"ar", "العربية", "rtl"},
	{"uk", "Українська", "ltr"}, {"ru", "Русский", "ltr"}, {"pl", "Polski", "ltr"},
}

// staffLangs are the languages of the staff's pages.
var staffLangs = []string{"de", "en"}

var (
	// bundle holds every message file, for plural forms.
	bundle = i18n.NewBundle(language.German)
	// texts, deskTexts and dpoTexts are the messages' "other" forms by
	// language and id.
	texts, deskTexts, dpoTexts = loadTexts("visitor"), loadTexts("desk"), loadTexts("dpo")
	// pageTexts are the texts of every page: the visitors' and, in the
	// staff's languages, the desk's and the DPO's.
	pageTexts = mergeTexts(mergeTexts(texts, deskTexts), dpoTexts)
	// localizers are the bundle's per language, for plural.
	localizers = newLocalizers(pageTexts)
)

// newLocalizers makes a localizer per language of texts (after the
// message files are loaded).
func newLocalizers(texts map[string]map[string]string) map[string]*i18n.Localizer {
	out := map[string]*i18n.Localizer{}
	for lang := range texts {
		out[lang] = i18n.NewLocalizer(bundle, lang)
	}
	return out
}

// loadTexts reads the message files of an audience.
func loadTexts(audience string) map[string]map[string]string {
	bundle.RegisterUnmarshalFunc("toml", toml.Unmarshal) // before the first file; package variables initialise before init

	files, err := fs.Glob(assets, "locales/"+audience+".*.toml")
	if err != nil || len(files) == 0 {
		panic(fmt.Sprintf("no message files for %s", audience)) // embedded at build time
	}
	out := map[string]map[string]string{}
	for _, f := range files {
		b, err := assets.ReadFile(f)
		if err != nil {
			panic(err)
		}
		mf, err := bundle.ParseMessageFileBytes(b, path.Base(f))
		if err != nil {
			panic(fmt.Sprintf("message file %s: %v", f, err))
		}
		lang := strings.TrimSuffix(strings.TrimPrefix(path.Base(f), audience+"."), ".toml")
		m := map[string]string{}
		for _, msg := range mf.Messages {
			m[msg.ID] = msg.Other
		}
		out[lang] = m
	}
	return out
}

// plural returns message id in lang for the count n, by the language's
// CLDR plural rules ("one", "few", "many", "other"), with n in place of
// {{.Count}}.
func plural(lang, id string, n int) string {
	l := localizers[lang]
	if l == nil {
		return fmt.Sprint(n)
	}
	s, err := l.Localize(&i18n.LocalizeConfig{MessageID: id, PluralCount: n, TemplateData: map[string]int{"Count": n}})
	if err != nil {
		return fmt.Sprint(n)
	}
	return s
}

func mergeTexts(a, b map[string]map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for lang := range a {
		m := map[string]string{}
		for k, v := range a[lang] {
			m[k] = v
		}
		for k, v := range b[lang] {
			m[k] = v
		}
		out[lang] = m
	}
	return out
}
