package ical

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

func parseFile(t *testing.T, name string) []Event {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := Parse(f)
	if err != nil {
		t.Fatalf("Parse(%s) = %v", name, err)
	}
	return evs
}

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, registry.LocalZone)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// TestOutlook: Windows zone names, folded UIDs, a cancelled event.
func TestOutlook(t *testing.T) {
	evs := parseFile(t, "outlook.ics")
	if len(evs) != 2 {
		t.Fatalf("events = %d, want 2", len(evs))
	}
	e := evs[0]
	if !e.Start.Equal(at("2026-11-03 09:15")) || !e.End.Equal(at("2026-11-03 09:45")) || e.Location != "Bauamt" || e.Cancelled ||
		!strings.HasSuffix(e.UID, "0A1B2C3D4E5F60718293A4B5C6D7E8F90") {
		t.Errorf("event 1 = %+v", e)
	}
	if !evs[1].Cancelled {
		t.Errorf("event 2 is not cancelled: %+v", evs[1])
	}
	for _, e := range evs {
		if s := e.String() + e.UID + e.Location; strings.Contains(s, "Beispiel") || strings.Contains(s, "Muster") {
			t.Errorf("event keeps a visitor's name: %q", s)
		}
	}
}

// TestThunderbird: IANA zones, UTC times, DURATION instead of DTEND.
func TestThunderbird(t *testing.T) {
	evs := parseFile(t, "thunderbird.ics")
	if len(evs) != 2 {
		t.Fatalf("events = %d, want 2", len(evs))
	}
	if e := evs[0]; !e.Start.Equal(at("2026-11-03 14:00")) || !e.End.Equal(at("2026-11-03 14:30")) || e.Location != "Standesamt" ||
		e.UID != "6b1f8c2e-3d4a-4b5c-9e8f-0a1b2c3d4e5f" {
		t.Errorf("event 1 = %+v", e)
	}
	if e := evs[1]; !e.Start.Equal(time.Date(2026, 11, 3, 15, 0, 0, 0, time.UTC)) || e.End.Sub(e.Start) != 20*time.Minute {
		t.Errorf("event 2 = %+v", e)
	}
}

func TestRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"not ical":  "hello",
		"no events": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nEND:VCALENDAR\r\n",
		"recurring": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20261029T140000Z\r\nDTSTART:20261103T150000Z\r\nDTEND:20261103T160000Z\r\nRRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
		"bad zone":  "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20261029T140000Z\r\nDTSTART;TZID=Nowhere/Land:20261103T150000\r\nDTEND:20261103T160000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
	} {
		if _, err := Parse(strings.NewReader(in)); registry.ErrorCode(err) != registry.EINVALID {
			t.Errorf("%s: Parse = %v, want EINVALID", name, err)
		}
	}
}

// TestRefusesLargeFile: a file over MaxBytes is refused naming the limit,
// not as a broken file ("EOF").
func TestRefusesLargeFile(t *testing.T) {
	ev := "BEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20261029T140000Z\r\nDTSTART:20261103T150000Z\r\nDTEND:20261103T160000Z\r\nDESCRIPTION:" +
		strings.Repeat("x", 60) + "\r\nEND:VEVENT\r\n"
	big := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n" + strings.Repeat(ev, MaxBytes/len(ev)+1) + "END:VCALENDAR\r\n"
	_, err := Parse(strings.NewReader(big))
	if registry.ErrorCode(err) != registry.EINVALID || !strings.Contains(registry.ErrorMessage(err), "larger than 16 MiB") {
		t.Errorf("Parse of %d bytes = %v, want EINVALID naming the 16 MiB limit", len(big), err)
	}
}
