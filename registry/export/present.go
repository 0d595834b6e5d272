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
