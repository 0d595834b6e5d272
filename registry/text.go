package registry

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Text rules. Every string the registry accepts from outside, whatever its
// field, passes BadRune: no control characters (tab and newline included),
// no format characters (zero-width space U+200B, the bidirectional
// overrides U+202A–U+202E and U+2066–U+2069, the byte order mark U+FEFF,
// soft hyphen U+00AD, word joiner U+2060, tag characters …), no line or
// paragraph separators (U+2028, U+2029), no private-use characters, no
// noncharacters and no U+FFFD (the mark of text that was broken before it
// arrived; a lone surrogate in a JSON escape ends up as one). The only
// format characters kept are the zero-width non-joiner and joiner (U+200C,
// U+200D) between two letters of a script that writes them (Arabic,
// Persian, the Indic scripts …), where they change how a name is spelt.
//
// Text fields are then normalised by CleanText: Unicode NFC (so that "é"
// typed as e + combining accent and "é" typed as one character are one
// name), surrounding white space trimmed, and a value made only of
// invisible characters counts as empty.
//
// golang.org/x/text is the one module outside the standard library this
// package imports: NFC needs the Unicode normalisation tables, which the
// standard library does not export.

// BadRune returns the first character of s that no text may hold and its
// byte offset, or ok = false when s is clean. s must be valid UTF-8;
// invalid bytes count as U+FFFD.
func BadRune(s string) (r rune, at int, bad bool) {
	var prev rune
	for i, c := range s {
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return c, i, true
			}
			prev = c
			continue
		}
		if forbidden(c) && !(isJoiner(c) && joins(prev, s[i+utf8.RuneLen(c):])) {
			return c, i, true
		}
		prev = c
	}
	return 0, 0, false
}

func forbidden(r rune) bool {
	switch {
	case r == utf8.RuneError:
		return true
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Zl, unicode.Zp, unicode.Cs):
		return true
	case r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE:
		return true // noncharacters
	}
	return false
}

func isJoiner(r rune) bool { return r == '\u200C' || r == '\u200D' }

// joinerScripts write the zero-width (non-)joiner inside words.
var joinerScripts = []*unicode.RangeTable{
	unicode.Arabic, unicode.Syriac, unicode.Thaana, unicode.Nko, unicode.Mongolian,
	unicode.Devanagari, unicode.Bengali, unicode.Gurmukhi, unicode.Gujarati, unicode.Oriya,
	unicode.Tamil, unicode.Telugu, unicode.Kannada, unicode.Malayalam, unicode.Sinhala,
	unicode.Khmer, unicode.Myanmar, unicode.Tibetan,
}

// joins reports whether a joiner between prev and the text after it sits
// between two letters (or marks) of a script that uses joiners.
func joins(prev rune, after string) bool {
	next, _ := utf8.DecodeRuneInString(after)
	return inJoinerScript(prev) && inJoinerScript(next)
}

func inJoinerScript(r rune) bool {
	return (unicode.IsLetter(r) || unicode.IsMark(r)) && unicode.In(r, joinerScripts...)
}

// invisible reports whether r shows nothing on its own: white space, marks
// without a base, format characters, and the fillers that render blank.
func invisible(r rune) bool {
	switch r {
	case '\u115F', '\u1160', '\u3164', '\uFFA0', '\u2800', '\u180E':
		return true
	}
	return unicode.IsSpace(r) || unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf)
}

// DescribeRune names a character for an error message: "U+200B", never the
// character itself, which might be invisible or reorder the message.
func DescribeRune(r rune) string { return fmt.Sprintf("U+%04X", r) }

// CleanText applies the text rules to the value of a field: it returns the
// value in NFC, trimmed of surrounding white space, or an EINVALID error
// naming the field and the offending character (never the value) when the
// value is not valid UTF-8 or holds a character BadRune refuses. A value
// made only of invisible characters (spaces, format characters, combining
// marks, fillers) comes back as "", so that "required" rules see it empty.
func CleanText(field, value string) (string, error) {
	if !utf8.ValidString(value) {
		return "", FieldError(field, "%s is not valid UTF-8.", field)
	}
	if r, _, bad := BadRune(value); bad {
		return "", FieldError(field, "%s contains an invisible, control or formatting character (%s), which a name or address never needs.", field, DescribeRune(r))
	}
	v := strings.TrimFunc(norm.NFC.String(value), unicode.IsSpace)
	if strings.IndexFunc(v, func(r rune) bool { return !invisible(r) }) < 0 {
		return "", nil
	}
	return v, nil
}
