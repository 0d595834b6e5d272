// Package poster draws what the registry prints: the A4 entrance poster
// with the check-in QR code (PDF), and the QR codes of the visitor slips
// (inline SVG for the desk's slip page).
//
// QR codes come from github.com/yeqown/go-qrcode/v2 (error correction
// level M), PDFs from github.com/signintech/gopdf with the Go fonts
// embedded (every Latin letter a German city hall's names use), so the
// output needs nothing installed on the printing machine.
package poster

import (
	"fmt"
	"html/template"
	"strings"

	qrcode "github.com/yeqown/go-qrcode/v2"
)

// quietZone is the light border a QR code needs around it, in modules.
const quietZone = 4

// QRMatrix returns the modules of text's QR code (true: dark), without
// the quiet zone.
func QRMatrix(text string) ([][]bool, error) {
	q, err := qrcode.NewWith(text, qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium), qrcode.WithEncodingMode(qrcode.EncModeByte))
	if err != nil {
		return nil, fmt.Errorf("encode QR code: %w", err)
	}
	var w matrixWriter
	if err := q.Save(&w); err != nil {
		return nil, fmt.Errorf("encode QR code: %w", err)
	}
	return w.bitmap, nil
}

// matrixWriter keeps the matrix go-qrcode hands its writers.
type matrixWriter struct{ bitmap [][]bool }

func (w *matrixWriter) Write(m qrcode.Matrix) error {
	w.bitmap = m.Bitmap()
	return nil
}

func (w *matrixWriter) Close() error { return nil }

// QRSVG returns text's QR code as an inline SVG element with a quiet
// zone, scalable, one path of unit squares; label is its accessible name.
func QRSVG(text, label string) (template.HTML, error) {
	m, err := QRMatrix(text)
	if err != nil {
		return "", err
	}
	n := len(m) + 2*quietZone
	var d strings.Builder
	for y, row := range m {
		for x, dark := range row {
			if dark {
				fmt.Fprintf(&d, "M%d %dh1v1h-1z", x+quietZone, y+quietZone)
			}
		}
	}
	// Every value is ours: numbers, the path, the escaped label.
	return template.HTML(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s" shape-rendering="crispEdges"><rect width="%d" height="%d" fill="#fff"/><path d="%s" fill="#000"/></svg>`,
		n, n, template.HTMLEscapeString(label), n, n, d.String())), nil
}
