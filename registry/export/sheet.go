package export

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// workbook writes an Office Open XML workbook (.xlsx) as a stream: each
// sheet's rows go through a compressor straight into w as they come, and
// nothing is kept but a bounded buffer. No temporary file is ever
// written, so a workbook of contact data exists only where w puts it (the
// decrypt's sealed scratch file). Cells are inline strings, numbers and
// date-times; styles are registered before the first sheet.
//
// excelize, which the registry used before, spills any sheet beyond 16
// MiB into a plaintext temporary file (a constant, StreamChunkSize) that a
// killed process leaves behind; this writer has no such file and is
// several times faster per cell.
type workbook struct {
	zw     *zip.Writer
	styles []cellStyle
	sheets []*sheetMeta
	open   *sheet
	err    error
}

// cellStyle is a cell format: number format (0 general, 1 integer, 49
// text, or a custom code), font, fill colour and alignment.
type cellStyle struct {
	numFmt   string // "" general, "0", "@", or a custom code such as "dd.mm.yyyy hh:mm"
	bold     bool
	size     float64 // font size, 0 for the default 11
	fill     string  // RGB like "DDE6F0", "" for none
	wrap     bool
	vertical string // "top", "center", …
}

type styleID int

type sheetMeta struct {
	name              string
	rows, cols        int
	filter            bool // autofilter over the whole used range
	printTitles       int  // rows repeated on every printed page
	landscape, active bool
}

// sheetOptions lay out a sheet.
type sheetOptions struct {
	name        string
	widths      []float64 // column widths in characters
	freezeRows  int       // rows frozen at the top
	freezeCols  int       // columns frozen at the left
	filter      bool
	printTitles int
	landscape   bool
	active      bool // the sheet shown when the workbook opens
}

func newWorkbook(w io.Writer) *workbook {
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, flate.BestSpeed)
	})
	return &workbook{zw: zw, styles: []cellStyle{{}}}
}

// style registers a cell style (before the first sheet).
func (wb *workbook) style(s cellStyle) styleID {
	wb.styles = append(wb.styles, s)
	return styleID(len(wb.styles) - 1)
}

// sheet is a worksheet being written.
type sheet struct {
	wb   *workbook
	meta *sheetMeta
	w    *bufio.Writer
	row  int
	buf  []byte
}

// newSheet starts a sheet; the one before must be closed.
func (wb *workbook) newSheet(o sheetOptions) (*sheet, error) {
	if wb.open != nil {
		return nil, fmt.Errorf("xlsx: sheet %q is still open", wb.open.meta.name)
	}
	meta := &sheetMeta{name: o.name, filter: o.filter, printTitles: o.printTitles, landscape: o.landscape, active: o.active, cols: len(o.widths)}
	wb.sheets = append(wb.sheets, meta)
	f, err := wb.zw.Create(fmt.Sprintf("xl/worksheets/sheet%d.xml", len(wb.sheets)))
	if err != nil {
		return nil, err
	}
	s := &sheet{wb: wb, meta: meta, w: bufio.NewWriterSize(f, 64<<10)}
	s.w.WriteString(xmlHeader + `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">`)
	s.w.WriteString(`<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr><sheetViews><sheetView workbookViewId="0"`)
	if o.active {
		s.w.WriteString(` tabSelected="1"`)
	}
	s.w.WriteString(`>`)
	if o.freezeRows > 0 || o.freezeCols > 0 {
		pane := "bottomLeft"
		switch {
		case o.freezeRows > 0 && o.freezeCols > 0:
			pane = "bottomRight"
		case o.freezeCols > 0:
			pane = "topRight"
		}
		fmt.Fprintf(s.w, `<pane`)
		if o.freezeCols > 0 {
			fmt.Fprintf(s.w, ` xSplit="%d"`, o.freezeCols)
		}
		if o.freezeRows > 0 {
			fmt.Fprintf(s.w, ` ySplit="%d"`, o.freezeRows)
		}
		fmt.Fprintf(s.w, ` topLeftCell="%s" activePane="%s" state="frozen"/>`, cellRef(o.freezeCols, o.freezeRows+1), pane)
	}
	s.w.WriteString(`</sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>`)
	if len(o.widths) > 0 {
		s.w.WriteString(`<cols>`)
		for i, wd := range o.widths {
			fmt.Fprintf(s.w, `<col min="%d" max="%d" width="%s" customWidth="1"/>`, i+1, i+1, strconv.FormatFloat(wd, 'f', -1, 64))
		}
		s.w.WriteString(`</cols>`)
	}
	s.w.WriteString(`<sheetData>`)
	wb.open = s
	return s, nil
}

// cell is one cell of a row: text, a number, a date-time, or empty (with
// a style: a coloured slot of the timeline).
type cell struct {
	kind  cellKind
	text  string
	num   float64
	time  time.Time // written as the wall-clock time it shows
	style styleID
}

type cellKind uint8

const (
	cellEmpty cellKind = iota
	cellText
	cellNumber
	cellTime
)

func textCell(s string, st styleID) cell    { return cell{kind: cellText, text: clean(s), style: st} }
func numberCell(n float64, st styleID) cell { return cell{kind: cellNumber, num: n, style: st} }
func timeCell(t time.Time, st styleID) cell { return cell{kind: cellTime, time: t, style: st} }
func styledCell(st styleID) cell            { return cell{style: st} }

// wrappedHeight is the height (points) of a row whose text cells wrap in
// columns of widths (characters), so that printed and shown rows hold all
// their lines instead of overprinting the next row; 0 when one line fits.
func wrappedHeight(cells []cell, widths []float64) float64 {
	lines := 1
	for i, c := range cells {
		if c.kind != cellText || i >= len(widths) || widths[i] <= 0 {
			continue
		}
		n := 0
		for _, para := range strings.Split(c.text, "\n") {
			n += max(1, int(math.Ceil(float64(utf8.RuneCountInString(para))*1.1/widths[i])))
		}
		lines = max(lines, n)
	}
	if lines == 1 {
		return 0
	}
	return float64(lines)*14.5 + 2
}

// addRow writes the next row; height 0 leaves the height to the program.
func (s *sheet) addRow(height float64, cells ...cell) error {
	if s.wb.err != nil {
		return s.wb.err
	}
	s.row++
	b := s.buf[:0]
	b = append(b, `<row r="`...)
	b = strconv.AppendInt(b, int64(s.row), 10)
	if height > 0 {
		b = append(b, `" ht="`...)
		b = strconv.AppendFloat(b, height, 'f', 1, 64)
		b = append(b, `" customHeight="1`...)
	}
	b = append(b, `">`...)
	for i, c := range cells {
		if c.kind == cellEmpty && c.style == 0 {
			continue
		}
		b = append(b, `<c r="`...)
		b = appendCellRef(b, i, s.row)
		b = append(b, '"')
		if c.style != 0 {
			b = append(b, ` s="`...)
			b = strconv.AppendInt(b, int64(c.style), 10)
			b = append(b, '"')
		}
		switch c.kind {
		case cellEmpty:
			b = append(b, `/>`...)
		case cellText:
			b = append(b, ` t="inlineStr"><is><t xml:space="preserve">`...)
			b = appendXMLText(b, c.text)
			b = append(b, `</t></is></c>`...)
		case cellNumber:
			b = append(b, `><v>`...)
			b = strconv.AppendFloat(b, c.num, 'f', -1, 64)
			b = append(b, `</v></c>`...)
		case cellTime:
			b = append(b, `><v>`...)
			b = strconv.AppendFloat(b, excelSerial(c.time), 'f', -1, 64)
			b = append(b, `</v></c>`...)
		}
	}
	b = append(b, `</row>`...)
	s.buf = b
	if len(cells) > s.meta.cols {
		s.meta.cols = len(cells)
	}
	s.meta.rows = s.row
	_, err := s.w.Write(b)
	s.wb.err = err
	return err
}

// close ends the sheet: its filter, print options and page setup.
func (s *sheet) close() error {
	m := s.meta
	s.w.WriteString(`</sheetData>`)
	if m.filter && m.rows > 0 {
		fmt.Fprintf(s.w, `<autoFilter ref="A1:%s"/>`, cellRef(max(m.cols-1, 0), m.rows))
	}
	orientation := "portrait"
	if m.landscape {
		orientation = "landscape"
	}
	s.w.WriteString(`<printOptions gridLines="1"/><pageMargins left="0.4" right="0.4" top="0.5" bottom="0.6" header="0.3" footer="0.3"/>`)
	fmt.Fprintf(s.w, `<pageSetup paperSize="9" orientation="%s" fitToWidth="1" fitToHeight="0"/>`, orientation)
	s.w.WriteString(`<headerFooter><oddFooter>&amp;L&amp;A&amp;RSeite &amp;P von &amp;N</oddFooter></headerFooter></worksheet>`)
	err := s.w.Flush()
	s.wb.open = nil
	if s.wb.err == nil {
		s.wb.err = err
	}
	return s.wb.err
}

// close writes the workbook's parts and ends the archive.
func (wb *workbook) close() error {
	if wb.open != nil {
		if err := wb.open.close(); err != nil {
			return err
		}
	}
	if wb.err != nil {
		return wb.err
	}
	parts := []struct {
		name string
		body func(*bufio.Writer)
	}{
		{"[Content_Types].xml", wb.contentTypes},
		{"_rels/.rels", func(w *bufio.Writer) {
			w.WriteString(xmlHeader + `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
				`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`)
		}},
		{"xl/workbook.xml", wb.workbookXML},
		{"xl/_rels/workbook.xml.rels", wb.workbookRels},
		{"xl/styles.xml", wb.stylesXML},
	}
	for _, p := range parts {
		f, err := wb.zw.Create(p.name)
		if err != nil {
			return err
		}
		bw := bufio.NewWriter(f)
		p.body(bw)
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	return wb.zw.Close()
}

const xmlHeader = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"

func (wb *workbook) contentTypes(w *bufio.Writer) {
	w.WriteString(xmlHeader + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
		`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
		`<Default Extension="xml" ContentType="application/xml"/>` +
		`<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>` +
		`<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>`)
	for i := range wb.sheets {
		fmt.Fprintf(w, `<Override PartName="/xl/worksheets/sheet%d.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>`, i+1)
	}
	w.WriteString(`</Types>`)
}

// order is the sheets' tab order: the active one first, then as written.
func (wb *workbook) order() []int {
	var out []int
	for i, s := range wb.sheets {
		if s.active {
			out = append(out, i)
		}
	}
	for i, s := range wb.sheets {
		if !s.active {
			out = append(out, i)
		}
	}
	return out
}

func (wb *workbook) workbookXML(w *bufio.Writer) {
	w.WriteString(xmlHeader + `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">`)
	w.WriteString(`<bookViews><workbookView activeTab="0"/></bookViews><sheets>`)
	order := wb.order()
	for _, i := range order {
		fmt.Fprintf(w, `<sheet name="%s" sheetId="%d" r:id="rId%d"/>`, xmlAttr(wb.sheets[i].name), i+1, i+1)
	}
	w.WriteString(`</sheets><definedNames>`)
	for pos, i := range order {
		s := wb.sheets[i]
		if s.rows == 0 || s.cols == 0 {
			continue
		}
		ref := fmt.Sprintf(`'%s'!$A$1:$%s$%d`, strings.ReplaceAll(s.name, "'", "''"), colName(s.cols-1), s.rows)
		fmt.Fprintf(w, `<definedName name="_xlnm.Print_Area" localSheetId="%d">%s</definedName>`, pos, xmlAttr(ref))
		if s.filter {
			fmt.Fprintf(w, `<definedName name="_xlnm._FilterDatabase" localSheetId="%d" hidden="1">%s</definedName>`, pos, xmlAttr(ref))
		}
		if s.printTitles > 0 {
			fmt.Fprintf(w, `<definedName name="_xlnm.Print_Titles" localSheetId="%d">'%s'!$1:$%d</definedName>`, pos, xmlAttr(strings.ReplaceAll(s.name, "'", "''")), s.printTitles)
		}
	}
	w.WriteString(`</definedNames></workbook>`)
}

func (wb *workbook) workbookRels(w *bufio.Writer) {
	w.WriteString(xmlHeader + `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`)
	for i := range wb.sheets {
		fmt.Fprintf(w, `<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet%d.xml"/>`, i+1, i+1)
	}
	fmt.Fprintf(w, `<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>`, len(wb.sheets)+1)
}

// stylesXML writes the number formats, fonts, fills and cell formats of
// the registered styles.
func (wb *workbook) stylesXML(w *bufio.Writer) {
	numFmts := map[string]int{}
	fonts := []string{`<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>`}
	fills := []string{`<fill><patternFill patternType="none"/></fill>`, `<fill><patternFill patternType="gray125"/></fill>`}
	var xfs []string
	var custom []string
	for _, st := range wb.styles {
		fmtID := 0
		switch st.numFmt {
		case "":
		case "0":
			fmtID = 1
		case "@":
			fmtID = 49
		default:
			id, ok := numFmts[st.numFmt]
			if !ok {
				id = 164 + len(numFmts)
				numFmts[st.numFmt] = id
				custom = append(custom, fmt.Sprintf(`<numFmt numFmtId="%d" formatCode="%s"/>`, id, xmlAttr(st.numFmt)))
			}
			fmtID = id
		}
		fontID := 0
		if st.bold || st.size != 0 {
			size := st.size
			if size == 0 {
				size = 11
			}
			bold := ""
			if st.bold {
				bold = "<b/>"
			}
			fonts = append(fonts, fmt.Sprintf(`<font>%s<sz val="%s"/><name val="Calibri"/><family val="2"/></font>`, bold, strconv.FormatFloat(size, 'f', -1, 64)))
			fontID = len(fonts) - 1
		}
		fillID := 0
		if st.fill != "" {
			fills = append(fills, fmt.Sprintf(`<fill><patternFill patternType="solid"><fgColor rgb="FF%s"/><bgColor indexed="64"/></patternFill></fill>`, st.fill))
			fillID = len(fills) - 1
		}
		align := ""
		if st.wrap || st.vertical != "" {
			align = "<alignment"
			if st.vertical != "" {
				align += fmt.Sprintf(` vertical="%s"`, st.vertical)
			}
			if st.wrap {
				align += ` wrapText="1"`
			}
			align += "/>"
		}
		xf := fmt.Sprintf(`<xf numFmtId="%d" fontId="%d" fillId="%d" borderId="0" xfId="0" applyNumberFormat="1" applyFont="1" applyFill="1"`, fmtID, fontID, fillID)
		if align != "" {
			xf += ` applyAlignment="1">` + align + `</xf>`
		} else {
			xf += `/>`
		}
		xfs = append(xfs, xf)
	}
	w.WriteString(xmlHeader + `<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">`)
	if len(custom) > 0 {
		fmt.Fprintf(w, `<numFmts count="%d">%s</numFmts>`, len(custom), strings.Join(custom, ""))
	}
	fmt.Fprintf(w, `<fonts count="%d">%s</fonts>`, len(fonts), strings.Join(fonts, ""))
	fmt.Fprintf(w, `<fills count="%d">%s</fills>`, len(fills), strings.Join(fills, ""))
	w.WriteString(`<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>`)
	w.WriteString(`<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>`)
	fmt.Fprintf(w, `<cellXfs count="%d">%s</cellXfs>`, len(xfs), strings.Join(xfs, ""))
	w.WriteString(`<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>`)
}

// excelSerial is t's wall-clock date and time as an Excel serial number
// (days since 1899-12-30): the cell shows that time whatever zone the
// spreadsheet program runs in.
func excelSerial(t time.Time) float64 {
	wall := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
	d := wall.Sub(time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC))
	return math.Round(d.Seconds()) / 86400
}

// colName is the letters of column i (0-based): A … Z, AA …
func colName(i int) string {
	name := ""
	for i++; i > 0; i = (i - 1) / 26 {
		name = string(rune('A'+(i-1)%26)) + name
	}
	return name
}

func cellRef(col, row int) string { return colName(col) + strconv.Itoa(row) }

func appendCellRef(b []byte, col, row int) []byte {
	b = append(b, colName(col)...)
	return strconv.AppendInt(b, int64(row), 10)
}

// appendXMLText appends s escaped for XML character data, leaving out
// what XML cannot hold (control characters but tab, CR and LF, and the
// non-characters U+FFFE and U+FFFF); clean has replaced them already, so
// this is a guard.
func appendXMLText(b []byte, s string) []byte {
	for _, r := range s {
		switch {
		case r == '&':
			b = append(b, "&amp;"...)
		case r == '<':
			b = append(b, "&lt;"...)
		case r == '>':
			b = append(b, "&gt;"...)
		case r == '"':
			b = append(b, "&quot;"...)
		case r == '\r':
			b = append(b, "&#13;"...)
		case r < 0x20 && r != '\t' && r != '\n', r == 0xFFFE, r == 0xFFFF:
			b = append(b, "\uFFFD"...)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}

func xmlAttr(s string) string { return string(appendXMLText(nil, s)) }
