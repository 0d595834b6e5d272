package export

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/cityhall/registry/registry"
)

// noteSet is two visits registered for appointments T-4711 and T-4712,
// the first with a sealed note, and a third without appointment.
func noteSet(t *testing.T, f *fixture) (*registry.TraceRequest, []*registry.Visit, *registry.Appointment) {
	t.Helper()
	from := time.Date(2021, 3, 5, 12, 0, 0, 0, time.UTC)
	req := testRequest(from, from.Add(6*time.Hour), "rathaus")
	var visits []*registry.Visit
	for i, code := range []string{"T-4711", "T-4712", ""} {
		in := from.Add(time.Duration(i) * time.Hour)
		v := &registry.Visit{ID: registry.NewVisitID(in), Site: "rathaus", CheckIn: in, Epoch: registry.DayOf(in), CreatedAt: in}
		c := testContact(v, "Gast")
		c.Appointment = code
		sealed, err := f.sealer.Seal(c, f.epoch(t, v.Epoch))
		if err != nil {
			t.Fatal(err)
		}
		v.Sealed = sealed
		visits = append(visits, v)
	}
	a := &registry.Appointment{ID: registry.NewID(), Site: "rathaus", Day: registry.LocalDay(from), Code: "T-4711", Start: from}
	sealed, err := f.sealer.SealNote(registry.NewAppointmentNote(a, "Begleitperson Frau Ösen, Tel. 0171 5550123"), f.epoch(t, registry.DayOf(a.Start)))
	if err != nil {
		t.Fatal(err)
	}
	visits[0].Note = &registry.SealedNote{AppointmentID: a.ID, Code: a.Code, Epoch: registry.DayOf(a.Start), Sealed: sealed}
	return req, visits, a
}

// TestNotes: an appointment's note reaches the health office beside its
// visitor's contact, sealed to the office inside the bundle, and a note
// moved to another visit or appointment is refused.
func TestNotes(t *testing.T) {
	f := newFixture(t)
	req, visits, a := noteSet(t, f)
	sealed := f.write(t, req, visits)
	b, err := Read(bytes.NewReader(sealed), f.office, f.trust)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Records[0].Note; got != "Begleitperson Frau Ösen, Tel. 0171 5550123" {
		t.Errorf("note = %q", got)
	}
	if b.Records[1].Note != "" || b.Records[2].Note != "" {
		t.Errorf("notes of the others = %q, %q; want none", b.Records[1].Note, b.Records[2].Note)
	}
	lines := f.plainLines(t, sealed)
	if strings.Contains(strings.Join(lines, "\n"), "Ösen") {
		t.Fatal("the note is readable inside the bundle's outer layer")
	}
	t.Run("written to every format", func(t *testing.T) {
		writers := map[string]func(w *bytes.Buffer) error{
			"csv":    func(w *bytes.Buffer) error { return WriteCSV(w, b, ';') },
			"json":   func(w *bytes.Buffer) error { return WriteJSON(w, b) },
			"sormas": func(w *bytes.Buffer) error { return WriteSORMAS(w, b, ';') },
			"iris":   func(w *bytes.Buffer) error { return WriteIRIS(w, b) },
			"xlsx":   func(w *bytes.Buffer) error { return WriteXLSX(w, b, testNow, t.TempDir()) },
		}
		for format, write := range writers {
			var out bytes.Buffer
			if err := write(&out); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			text := out.String()
			if format == "xlsx" {
				x, err := excelize.OpenReader(&out)
				if err != nil {
					t.Fatal(err)
				}
				rows, err := x.GetRows(sheetContacts)
				if err != nil || len(rows) != 4 {
					t.Fatalf("xlsx rows = %d, %v", len(rows), err)
				}
				text = strings.Join(rows[0], "|") + "\n" + strings.Join(rows[1], "|")
				if rows[0][17] != "Hinweis zum Termin" || rows[1][17] != b.Records[0].Note {
					t.Errorf("xlsx note column: %q / %q", rows[0][17], rows[1][17])
				}
			}
			if !strings.Contains(text, "0171 5550123") || format != "json" && format != "iris" && !strings.Contains(text, "Hinweis zum Termin") {
				t.Errorf("%s lacks the note:\n%s", format, text)
			}
		}
	})
	move := func(from, to int) func(t *testing.T, l []string) []string {
		return func(t *testing.T, l []string) []string {
			var m map[string]any
			json.Unmarshal([]byte(l[from]), &m)
			editLine(t, l, to, func(r map[string]any) { r["appointment"] = m["appointment"] })
			return l
		}
	}
	for _, tt := range []struct {
		name   string
		tamper func(t *testing.T, l []string) []string
	}{
		{"note moved to another appointment's visitor", move(1, 2)},
		{"note moved to a visitor without appointment", move(1, 3)},
		{"appointment code changed", func(t *testing.T, l []string) []string {
			editLine(t, l, 1, func(r map[string]any) { r["appointment"].(map[string]any)["code"] = "T-4712" })
			return l
		}},
		{"appointment id changed", func(t *testing.T, l []string) []string {
			editLine(t, l, 1, func(r map[string]any) { r["appointment"].(map[string]any)["id"] = registry.NewID() })
			return l
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			forged := f.reseal(t, tt.tamper(t, f.plainLines(t, sealed)))
			_, err := Read(bytes.NewReader(forged), f.office, f.trust)
			if registry.ErrorCode(err) != registry.EINVALID || !strings.Contains(err.Error(), "appointment note does not belong") {
				t.Fatalf("Read = %v; want the note refused", err)
			}
			if strings.Contains(err.Error(), "Ösen") {
				t.Errorf("error %q holds the note", err)
			}
		})
	}
	t.Run("missing key of the note's day", func(t *testing.T) {
		visits[0].Note.Epoch = "2021-02-01"
		var buf bytes.Buffer
		_, err := Write(&buf, f.sign(req), len(visits), visitSeq(visits), &Sealing{Keys: f.keys, Recipients: f.to, Instance: f.instance, MaxStay: 12 * time.Hour, Now: testNow})
		if registry.ErrorCode(err) != registry.EUNAVAILABLE || !strings.Contains(err.Error(), "appointment note of visit") {
			t.Errorf("Write = %v; want EUNAVAILABLE naming the note", err)
		}
		visits[0].Note.Epoch = registry.DayOf(a.Start)
	})
}
