package export

import (
	"fmt"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
)

// The health office's outputs (workbook, PDF) speak German: the tracers
// who read them work in German, with German dates in German local time.

// germanTime formats t in TimeZone as "05.03.2021 14:30".
func germanTime(t time.Time) string { return t.In(localZone()).Format("02.01.2006 15:04") }

// germanClock formats t in TimeZone as "14:30".
func germanClock(t time.Time) string { return t.In(localZone()).Format("15:04") }

// minutesText is "1 Minute", "0 Minuten", "45 Minuten".
func minutesText(n int) string {
	if n == 1 {
		return "1 Minute"
	}
	return fmt.Sprintf("%d Minuten", n)
}

// openText says that a visit was still open when the bundle was made and
// when it is checked out automatically at the latest.
func openText(h *Header, r *Record) string {
	if h.MaxStayMinutes <= 0 {
		return "noch anwesend (kein Verlassen erfasst)"
	}
	auto := r.CheckIn.Add(time.Duration(h.MaxStayMinutes) * time.Minute)
	return "noch anwesend, automatische Abmeldung spätestens " + germanTime(auto)
}

// departureText is the departure of a record in words: its time, marked
// when it was set automatically, or openText.
func departureText(h *Header, r *Record) string {
	switch {
	case r.CheckOut == nil:
		return openText(h, r)
	case r.CheckoutAuto:
		return germanTime(*r.CheckOut) + " (automatisch abgemeldet)"
	}
	return germanTime(*r.CheckOut)
}

// presumedEnd is when a record's stay ends for the timeline: its check-out
// or, while open, the automatic check-out (or the bundle's creation time
// without a maximum stay).
func presumedEnd(h *Header, r *Record) time.Time {
	switch {
	case r.CheckOut != nil:
		return *r.CheckOut
	case h.MaxStayMinutes > 0:
		return r.CheckIn.Add(time.Duration(h.MaxStayMinutes) * time.Minute)
	}
	return h.CreatedAt
}

// coverRows are the lines of the cover sheet and page: which case, office,
// window and places the list answers, who approved it and when, the
// bundle's digest, the number of records, and when it was decrypted.
func coverRows(h *Header, digest string, decrypted time.Time) [][2]string {
	if len(h.Parts) > 0 {
		return caseCoverRows(h, decrypted)
	}
	var sites []string
	for _, s := range h.Sites {
		name := h.SiteName(s)
		if name != s {
			name += " (" + s + ")"
		}
		sites = append(sites, name)
	}
	areas := "alle Bereiche"
	if len(h.Areas) > 0 {
		areas = strings.Join(h.Areas, ", ")
	}
	rows := [][2]string{
		{"Aktenzeichen", h.CaseRef},
		{"Gesundheitsamt", h.Office},
		{"Rechtsgrundlage", h.LegalBasis},
		{"Zeitraum", germanTime(h.From) + " bis " + germanTime(h.To) + " (deutsche Zeit)"},
		{"Standorte", strings.Join(sites, "; ")},
		{"Bereiche", areas},
	}
	if len(h.Hosts) > 0 {
		rows = append(rows, [2]string{"Nur Besuche mit Termin bei", strings.Join(h.Hosts, ", ")})
	}
	if len(h.Appointments) > 0 {
		rows = append(rows, [2]string{"Nur Besuche mit den Terminen", strings.Join(h.Appointments, ", ")})
	}
	for _, a := range h.Approvals {
		rows = append(rows, [2]string{"Freigegeben von", a.Name + " am " + germanTime(a.SignedAt)})
	}
	rows = append(rows,
		[2]string{"Datensätze", fmt.Sprint(h.Count)},
		[2]string{"Export erstellt", germanTime(h.CreatedAt)},
		[2]string{"Entschlüsselt", germanTime(decrypted)},
		[2]string{"Prüfsumme der Exportdatei (SHA-256)", digest},
		[2]string{"Anfrage-ID", h.RequestID},
		[2]string{"Hinweis", "Kontaktdauer = Überschneidung des Aufenthalts mit dem Zeitraum, auf volle Minuten aufgerundet. " +
			"Wer beim Export noch anwesend war, gilt bis zur automatischen Abmeldung als anwesend."},
	)
	return rows
}

// walkInText is a walk-in reason in words: "ohne Termin: Dringende
// Angelegenheit (Notfall)", "" for a visit with an appointment or at a
// site that needs none.
func walkInText(code string) string {
	if code == "" {
		return ""
	}
	return "ohne Termin: " + registry.WalkInLabel(code)
}

// caseCoverRows are the cover of a case of several registries (Merge):
// the case, then per registry its request, window (when it differs from
// the case's), places, approvals, count, export time and digest, then
// the totals.
func caseCoverRows(h *Header, decrypted time.Time) [][2]string {
	rows := [][2]string{
		{"Aktenzeichen", h.CaseRef},
		{"Gesundheitsamt", h.Office},
		{"Rechtsgrundlage", h.LegalBasis},
		{"Zeitraum des Falls", germanTime(h.From) + " bis " + germanTime(h.To) + " (deutsche Zeit)"},
		{"Register", fmt.Sprintf("%d", len(h.Parts))},
	}
	for _, p := range h.Parts {
		rows = append(rows, [2]string{"Register: " + p.Registry, fmt.Sprintf("%d Datensätze, Anfrage %s", p.Count, p.RequestID)})
		if !p.From.Equal(h.From) || !p.To.Equal(h.To) {
			rows = append(rows, [2]string{"  Zeitraum (eingeschränkt)", germanTime(p.From) + " bis " + germanTime(p.To)})
		}
		areas := "alle Bereiche"
		if len(p.Areas) > 0 {
			areas = strings.Join(p.Areas, ", ")
		}
		rows = append(rows, [2]string{"  Standorte · Bereiche", strings.Join(p.Sites, "; ") + " · " + areas})
		for _, a := range p.Approvals {
			rows = append(rows, [2]string{"  Freigegeben von", a.Name + " am " + germanTime(a.SignedAt)})
		}
		rows = append(rows,
			[2]string{"  Export erstellt", germanTime(p.CreatedAt)},
			[2]string{"  Prüfsumme (SHA-256)", p.Digest})
	}
	if len(h.Outstanding) > 0 {
		rows = append(rows, [2]string{"Noch nicht enthalten", strings.Join(h.Outstanding, "; ")})
	}
	dups := "keine"
	if h.Duplicates > 0 {
		dups = fmt.Sprintf("%d Datensätze von Personen, die in mehreren Registern erfasst sind (Spalte \"Auch erfasst in\"; gleicher Name und gleiche Telefonnummer, nicht zusammengeführt)", h.Duplicates)
	}
	return append(rows,
		[2]string{"Datensätze gesamt", fmt.Sprint(h.Count)},
		[2]string{"Mehrfach erfasst", dups},
		[2]string{"Entschlüsselt", germanTime(decrypted)},
		[2]string{"Hinweis", "Kontaktdauer = Überschneidung des Aufenthalts mit dem Zeitraum der jeweiligen Anfrage, auf volle Minuten aufgerundet. " +
			"Wer beim Export noch anwesend war, gilt bis zur automatischen Abmeldung als anwesend."},
	)
}
