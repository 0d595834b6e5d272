package registry

import (
	"slices"
	"sort"
	"strings"
	"unicode"
)

// Names that people compare by eye (approvers, staff) must not mix
// writing systems within a word: "Аnna" with a Cyrillic А looks like
// "Anna" but is another string. CheckScripts refuses such a word, the
// way UTS #39's "highly restrictive" level does (Latin may combine with
// Han, Hiragana, Katakana, Bopomofo and Hangul, as Japanese, Chinese and
// Korean names do); ShowScripts makes the scripts of a name visible where
// it is listed. Whole names that look alike across scripts are caught by
// registry/names (UTS #39 skeletons).

// scriptsOf returns the scripts of the letters of s, sorted by name
// (Common and Inherited, which every script uses, are left out).
func scriptsOf(s string) []string {
	var out []string
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsMark(r) {
			continue
		}
		for name, table := range unicode.Scripts {
			if name == "Common" || name == "Inherited" || !unicode.Is(table, r) {
				continue
			}
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
			break
		}
	}
	sort.Strings(out)
	return out
}

// eastAsian are the scripts Latin may combine with in one word.
var eastAsian = []string{"Han", "Hiragana", "Katakana", "Bopomofo", "Hangul"}

// mixedWord reports whether a word's letters come from scripts that do
// not belong together.
func mixedWord(w string) bool {
	scripts := scriptsOf(w)
	if len(scripts) < 2 {
		return false
	}
	for _, s := range scripts {
		if s != "Latin" && !slices.Contains(eastAsian, s) {
			return true
		}
	}
	return false
}

// words splits s at spaces, hyphens and punctuation.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) })
}

// CheckScripts returns EINVALID (naming field) when a word of s mixes
// scripts, for example a Cyrillic letter among Latin ones.
func CheckScripts(field, s string) error {
	for _, w := range words(s) {
		if mixedWord(w) {
			return FieldError(field, "%s mixes writing systems in one word (%s): type it in one script, so that it cannot be mistaken for another name.",
				field, strings.Join(scriptsOf(w), " and "))
		}
	}
	return nil
}

// ShowScripts returns s with its scripts made visible when its letters
// are not all Latin: "Anna" stays as it is, "Аnna" (Cyrillic А) becomes
// "Аnna [Cyrillic+Latin, mixed]" and "Анна" becomes "Анна [Cyrillic]".
func ShowScripts(s string) string {
	scripts := scriptsOf(s)
	if len(scripts) == 0 || len(scripts) == 1 && scripts[0] == "Latin" {
		return s
	}
	label := strings.Join(scripts, "+")
	if slices.ContainsFunc(words(s), mixedWord) {
		label += ", mixed"
	}
	return s + " [" + label + "]"
}
