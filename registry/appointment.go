package registry

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// AppointmentStatus is where an appointment stands. Expected, arrived and
// cancelled are stored; left and no-show are read from the linked visit
// and the clock (see Appointment.StatusAt).
type AppointmentStatus string

// The appointment states.
const (
	AppointmentExpected  AppointmentStatus = "expected"
	AppointmentArrived   AppointmentStatus = "arrived"
	AppointmentLeft      AppointmentStatus = "left"
	AppointmentNoShow    AppointmentStatus = "no-show"
	AppointmentCancelled AppointmentStatus = "cancelled"
)

// Appointment is a visit arranged beforehand, by phone with the service
// line or by the host: at a site, with a host (a staff member or
// department of the site's list), in an area, from Start to End. Its Code
// (T-4711) is what the visitor states at the desk or types on the phone,
// unique at its site for its day. It holds nothing about the visitor.
type Appointment struct {
	ID     string            `json:"id"`
	Site   string            `json:"site"`
	Day    Day               `json:"day"` // the German calendar day of Start
	Code   string            `json:"code"`
	Host   string            `json:"host"`
	Area   string            `json:"area,omitempty"`
	Start  time.Time         `json:"start"`
	End    time.Time         `json:"end"`
	Status AppointmentStatus `json:"status"`
	// Source says where it came from: desk, cli, api or ical; UID is the
	// calendar's event id for imports, so that importing a file again
	// changes nothing.
	Source string `json:"source"`
	UID    string `json:"uid,omitempty"`
	// VisitID is the visit registered for it (set on arrival).
	VisitID   string     `json:"visit_id,omitempty"`
	ArrivedAt *time.Time `json:"arrived_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	// VisitLeft is the linked visit's check-out, read with the
	// appointment (not stored with it).
	VisitLeft *time.Time `json:"-"`
	// HasNote says that the appointment carries a note for the health
	// office. The note itself (NoteSealed, two age layers around an
	// AppointmentNote, outer layer by the epoch key of NoteEpoch) is never
	// readable on the server and never listed.
	HasNote    bool   `json:"has_note,omitempty"`
	NoteEpoch  Day    `json:"-"`
	NoteSealed []byte `json:"-"`
}

// NoteVersion is the schema version of AppointmentNote.
const NoteVersion = 1

// MaxNoteLength is the longest note for the health office, in characters.
const MaxNoteLength = 500

// AppointmentNote is what the service line or the host notes for the
// health office when booking (for example "kommt mit Dolmetscherin,
// Tel. …"): sealed like a contact, opened only by the health office, and
// bound to its appointment (id, site, day, code) so that a note moved to
// another appointment's visit is detected.
type AppointmentNote struct {
	Version       int    `json:"v"`
	AppointmentID string `json:"appointment_id"`
	Site          string `json:"site"`
	Day           Day    `json:"day"`
	Code          string `json:"code"`
	Text          string `json:"text"`
}

// NewAppointmentNote returns a's note holding text.
func NewAppointmentNote(a *Appointment, text string) *AppointmentNote {
	return &AppointmentNote{Version: NoteVersion, AppointmentID: a.ID, Site: a.Site, Day: a.Day, Code: a.Code, Text: text}
}

// CheckBinding returns EINVALID unless the note belongs to the
// appointment id at site on day with code.
func (n *AppointmentNote) CheckBinding(id, site string, day Day, code string) error {
	if n.Version != NoteVersion || n.AppointmentID != id || n.Site != site || n.Day != day || n.Code != code {
		return Errorf(EINVALID, "The sealed note does not belong to this appointment.")
	}
	return nil
}

// CleanNote returns a note as it is sealed: lines joined with " / ", then
// the text rules (CleanText) and MaxNoteLength applied; "" when it is
// empty. EINVALID names the field "note".
func CleanNote(s string) (string, error) {
	lines := strings.FieldsFunc(strings.ReplaceAll(s, "\r\n", "\n"), func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	joined := strings.Join(slices.DeleteFunc(lines, func(l string) bool { return l == "" }), " / ")
	if err := (fieldRule{"note", &joined, false, MaxNoteLength, nil, ""}).apply(); err != nil {
		return "", err
	}
	return joined, nil
}

// NoteSealer seals a's note for the health office into a.NoteSealed,
// setting a.NoteEpoch and a.HasNote. AppointmentStore.CreateAppointment
// calls it once the code is final, again for every code it draws anew.
type NoteSealer func(a *Appointment) error

// AppointmentGrace is how long after its start an appointment still waits
// for its visitor before it counts as a no-show.
const AppointmentGrace = 30 * time.Minute

// StatusAt is the appointment's status at now: a stored status, left once
// the linked visit is checked out, no-show once it is still expected
// AppointmentGrace after its start.
func (a *Appointment) StatusAt(now time.Time) AppointmentStatus {
	switch {
	case a.Status == AppointmentArrived && a.VisitLeft != nil:
		return AppointmentLeft
	case a.Status == AppointmentExpected && now.After(a.Start.Add(AppointmentGrace)):
		return AppointmentNoShow
	}
	return a.Status
}

var codePattern = regexp.MustCompile(`^T-[0-9]{4}$`)

// NormalizeCode returns an appointment code as stored ("t 4711", "T4711"
// and "4711" are "T-4711"), or "" when s is none.
func NormalizeCode(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	s = strings.NewReplacer(" ", "", "-", "", "–", "").Replace(s)
	s = strings.TrimPrefix(s, "T")
	if c := "T-" + s; codePattern.MatchString(c) {
		return c
	}
	return ""
}

// NewAppointmentCode returns a random code T-1000 … T-9999 (four digits,
// easy to say on the phone; no leading zero to swallow).
func NewAppointmentCode() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return fmt.Sprintf("T-%04d", 1000+binary.BigEndian.Uint64(b[:])%9000)
}

// AppointmentInput is an appointment as the service line, a host, the
// booking system or a calendar import gives it.
type AppointmentInput struct {
	Site  string    `json:"site"`
	Host  string    `json:"host"`
	Area  string    `json:"area,omitempty"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// UID is the booking or calendar system's id (optional).
	UID string `json:"uid,omitempty"`
	// Note is for the health office only (optional, at most
	// MaxNoteLength characters): it is sealed at once (intake.Booking)
	// and never stored or shown readable.
	Note string `json:"note,omitempty"`
}

// NewAppointment validates in against the site (host from its list when
// it has one, area from its areas when it has any; no appointment in the
// past or more than a year ahead, at most 12 hours long) and returns an
// expected appointment with a fresh code. EINVALID names every field at
// fault.
func NewAppointment(in *AppointmentInput, site *Site, source string, now time.Time) (*Appointment, error) {
	var errs []error
	rules := []fieldRule{
		{"host", &in.Host, true, 100, nil, ""},
		{"area", &in.Area, false, 64, nil, ""},
		{"uid", &in.UID, false, 255, nil, ""},
	}
	for _, f := range rules {
		if err := f.apply(); err != nil {
			errs = append(errs, err)
		}
	}
	if note, err := CleanNote(in.Note); err != nil {
		errs = append(errs, err)
	} else {
		in.Note = note
	}
	if in.Host != "" && len(site.Hosts) > 0 && !site.HasHost(in.Host) {
		errs = append(errs, FieldError("host", "host is not one of the site's hosts (%s).", strings.Join(site.Hosts, ", ")))
	}
	if in.Area != "" && len(site.Areas) > 0 && !site.HasArea(in.Area) {
		errs = append(errs, FieldError("area", "area is not one of the site's areas."))
	}
	switch {
	case in.Start.IsZero():
		errs = append(errs, FieldError("start", "start is required (RFC 3339)."))
	case in.End.IsZero() || !in.End.After(in.Start):
		errs = append(errs, FieldError("end", "end must lie after start."))
	case in.End.Sub(in.Start) > 12*time.Hour:
		errs = append(errs, FieldError("end", "an appointment lasts at most 12 hours."))
	case in.End.Before(now):
		errs = append(errs, FieldError("end", "the appointment is over already."))
	case in.Start.After(now.AddDate(1, 0, 0)):
		errs = append(errs, FieldError("start", "the appointment lies more than a year ahead."))
	}
	if err := Invalid(errs...); err != nil {
		return nil, err
	}
	start, end := in.Start.UTC().Truncate(time.Second), in.End.UTC().Truncate(time.Second)
	return &Appointment{ID: NewID(), Site: site.Code, Day: LocalDay(start), Code: NewAppointmentCode(), Host: in.Host,
		Area: in.Area, Start: start, End: end, Status: AppointmentExpected, Source: source, UID: in.UID,
		CreatedAt: now.UTC().Truncate(time.Microsecond)}, nil
}

// LocalDay is the German calendar day of t.
func LocalDay(t time.Time) Day { return Day(t.In(LocalZone).Format(time.DateOnly)) }

// LocalDayStart is the local midnight (LocalZone) that begins the local
// day d.
func LocalDayStart(d Day) time.Time {
	t, _ := time.ParseInLocation(time.DateOnly, string(d), LocalZone)
	return t
}

// WalkInReasons are the reasons the desk may choose to admit a visitor
// without an appointment at a site that requires one (recorded in the
// audit log), with their German labels.
var WalkInReasons = []struct{ Code, Label string }{
	{"urgent", "Dringende Angelegenheit (Notfall)"},
	{"escorted", "Vom Mitarbeiter an der Pforte abgeholt"},
	{"delivery", "Lieferung oder Abholung"},
	{"authority", "Behörde, Polizei, Rettungsdienst"},
	{"approved", "Von der Amtsleitung genehmigt"},
}

// WalkInLabel is the German label of a walk-in reason (the code itself
// for an unknown one, "" for none).
func WalkInLabel(code string) string {
	for _, r := range WalkInReasons {
		if r.Code == code {
			return r.Label
		}
	}
	return code
}

// ValidWalkInReason reports whether code is one of WalkInReasons.
func ValidWalkInReason(code string) bool {
	for _, r := range WalkInReasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

// AppointmentStore keeps appointments.
type AppointmentStore interface {
	// CreateAppointment stores a, drawing a new code while the site's day
	// has it already, with an AuditAppointmentChanged event. When note is
	// not nil it seals a's note after every code drawn (the note is bound
	// to its code). An appointment with the UID of a stored one of the
	// site is not stored again: the stored one is returned with created =
	// false, and its note is left as it was.
	CreateAppointment(ctx context.Context, actor Actor, a *Appointment, note NoteSealer) (stored *Appointment, created bool, err error)
	// Appointments lists a site's appointments of a day by start, with
	// the linked visits' check-outs.
	Appointments(ctx context.Context, site string, day Day) ([]*Appointment, error)
	// FindAppointment returns the appointment of a site's day with the
	// code, or ENOTFOUND.
	FindAppointment(ctx context.Context, site string, day Day, code string) (*Appointment, error)
	// CancelAppointment cancels an expected appointment (ECONFLICT after
	// arrival or when cancelled), with an AuditAppointmentChanged event.
	CancelAppointment(ctx context.Context, actor Actor, id string, now time.Time) (*Appointment, error)
	// ImportAppointments stores the appointments of a calendar import in
	// one transaction, all or nothing: each as CreateAppointment stores
	// it (an appointment with a stored UID is not stored again), and
	// those marked Cancelled then cancelled, unless already cancelled or
	// arrived. It returns one outcome per item, in order.
	ImportAppointments(ctx context.Context, actor Actor, items []ImportedAppointment, now time.Time) ([]ImportOutcome, error)
	// PendingArrivals lists the arrived appointments whose host was not
	// told yet (MarkNotified), arrived at or after since, oldest first,
	// at most limit: the outbox of the arrival webhooks.
	PendingArrivals(ctx context.Context, since time.Time, limit int) ([]*Appointment, error)
	// MarkNotified records that the arrival for appointment id was
	// delivered (or given up) at t; marking it again changes nothing.
	MarkNotified(ctx context.Context, id string, t time.Time) error
}

// ImportedAppointment is one event of a calendar import: the appointment
// it makes, and whether the calendar marks it cancelled.
type ImportedAppointment struct {
	Appointment *Appointment
	Cancelled   bool
}

// ImportOutcome is what ImportAppointments did with one item: the
// appointment as stored, whether it is new, whether it was cancelled now.
type ImportOutcome struct {
	Appointment *Appointment
	Created     bool
	Cancelled   bool
}
