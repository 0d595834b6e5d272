package export

import (
	"bufio"
	"io"
	"strings"
	"unicode"

	"github.com/cityhall/registry/registry"
)

// formulaStarts are the characters that make a spreadsheet (Excel,
// LibreOffice, Google Sheets) read a cell as a formula when it starts with
// one of them (OWASP ASVS 5.0, 1.2.10), with their full-width and small
// variants, which some importers and input methods fold to ASCII, and the
// minus sign.
const formulaStarts = "=+-@＝＋－＠﹦﹢﹣−"

// wordJoiner (U+2060) is an invisible character that makes a spreadsheet
// import the cell as text: LibreOffice and Excel read "+4929311234" and
// "029311234" as numbers (dropping the '+' or the leading zero) and Excel
// reads "+49 2931 1234" as a formula, but "\u2060+4929311234" is text that
// shows as +4929311234. Tested with LibreOffice 7.4 in the package tests.
const wordJoiner = "\u2060"

// dangerous reports whether a spreadsheet could read s as a formula: its
// first character is a control character (tab, CR, LF, NUL, …) or, after
// leading white space and invisible format characters, which some
// importers skip, one of formulaStarts.
func dangerous(s string) bool {
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return true
		case unicode.IsSpace(r) || unicode.Is(unicode.Cf, r):
			continue
		default:
			return strings.ContainsRune(formulaStarts, r)
		}
	}
	return false
}

// isPlusPhone reports whether s is an international phone number such as
// "+49 2931 1234". Such a value holds only digits, '+', spaces and " /-()",
// so it cannot name a function: even a spreadsheet that read it as a
// formula could only compute arithmetic.
func isPlusPhone(s string) bool {
	return strings.HasPrefix(s, "+") && registry.ValidPhone(s)
}

// clean makes s valid UTF-8 and replaces control characters other than tab,
// CR and LF with U+FFFD: LibreOffice drops a NUL and then reads the rest of
// the cell as a formula. Intake refuses control characters, so only a
// forged bundle can hold them.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\t' && r != '\r' && r != '\n' {
			return '\uFFFD'
		}
		return r
	}, s)
}

// csvCell returns s as a spreadsheet-safe cell:
//   - an international phone number gets a leading word joiner, so that it
//     stays text and shows its '+' (see wordJoiner);
//   - any other dangerous value gets a leading apostrophe, which
//     spreadsheets show as is, so the cell is inert text ("'=1+1");
//   - with keepText (the phone, postcode and house number columns), a value
//     starting with a digit or '(' gets a leading word joiner, so that
//     "01067" keeps its zero and "12-14" does not turn into a date.
func csvCell(s string, keepText bool) string {
	raw := s
	s = clean(s)
	switch {
	case isPlusPhone(s):
		return wordJoiner + s
	case dangerous(raw):
		return "'" + s
	case keepText && s != "" && (s[0] >= '0' && s[0] <= '9' || s[0] == '('):
		return wordJoiner + s
	}
	return s
}

// importCell returns s as a cell of a file meant for import into another
// program (SORMAS): dangerous values get a leading apostrophe as in
// csvCell, and nothing invisible is added.
func importCell(s string) string {
	if dangerous(s) {
		return "'" + clean(s)
	}
	return clean(s)
}

// importPhone is importCell for a phone column: an international phone
// number, which cannot hold a function call, is left exactly as it is.
func importPhone(s string) string {
	if isPlusPhone(clean(s)) {
		return clean(s)
	}
	return importCell(s)
}

// validSeparator reports whether sep may separate cells.
func validSeparator(sep rune) error {
	if sep != ',' && sep != ';' && sep != '\t' {
		return registry.Errorf(registry.EINVALID, "The separator must be ',', ';' or a tab.")
	}
	return nil
}

// rowWriter writes RFC 4180 rows: fields that hold the separator, a quote,
// CR, LF or leading or trailing white space are quoted with inner quotes
// doubled; rows end in CRLF. Cells are written exactly as given (neutralise
// them first).
type rowWriter struct {
	w   *bufio.Writer
	sep rune
}

func newRowWriter(w io.Writer, sep rune) *rowWriter {
	return &rowWriter{w: bufio.NewWriter(w), sep: sep}
}

func (rw *rowWriter) row(cells ...string) {
	for i, c := range cells {
		if i > 0 {
			rw.w.WriteRune(rw.sep)
		}
		if !rw.needsQuotes(c) {
			rw.w.WriteString(c)
			continue
		}
		rw.w.WriteByte('"')
		rw.w.WriteString(strings.ReplaceAll(c, `"`, `""`))
		rw.w.WriteByte('"')
	}
	rw.w.WriteString("\r\n")
}

func (rw *rowWriter) needsQuotes(c string) bool {
	return strings.ContainsRune(c, rw.sep) || strings.ContainsAny(c, "\"\r\n") ||
		c != strings.TrimSpace(c)
}

// flush returns the first write error, if any.
func (rw *rowWriter) flush() error { return rw.w.Flush() }
