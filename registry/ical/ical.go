// Package ical reads appointments from iCalendar files that staff export
// from their calendars (Outlook, Thunderbird, any RFC 5545 calendar),
// with github.com/emersion/go-ical. It keeps only what an appointment
// needs: the event's id, start, end and location, and whether it was
// cancelled. The summary, description, attendees and organiser, which
// often name the visitor, are never read out.
package ical

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	goical "github.com/emersion/go-ical"

	"github.com/cityhall/registry/registry"
)

// Event is an appointment as a calendar exports it.
type Event struct {
	UID       string
	Start     time.Time
	End       time.Time
	Location  string
	Cancelled bool
}

// MaxEvents bounds what one import reads, MaxBytes the file's size.
const (
	MaxEvents = 10000
	MaxBytes  = 16 << 20
)

// windowsZones maps the Windows time zone names Outlook writes as TZID to
// IANA zones (the ones German offices meet).
var windowsZones = map[string]string{
	"W. Europe Standard Time":        "Europe/Berlin",
	"Central Europe Standard Time":   "Europe/Budapest",
	"Central European Standard Time": "Europe/Warsaw",
	"Romance Standard Time":          "Europe/Paris",
	"GMT Standard Time":              "Europe/London",
	"UTC":                            "UTC",
	"Coordinated Universal Time":     "UTC",
}

// Parse reads the events of an iCalendar file. Times without a zone are
// German local time. Recurring events (RRULE) are refused: an appointment
// is one visit. Errors name the event by its number, never its text.
func Parse(r io.Reader) ([]Event, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	switch {
	case err != nil:
		return nil, registry.Errorf(registry.EINVALID, "The file cannot be read (%v).", err)
	case len(data) > MaxBytes:
		return nil, registry.Errorf(registry.EINVALID, "The file is larger than %d MiB: export a shorter period of the calendar.", MaxBytes>>20)
	}
	cal, err := goical.NewDecoder(bytes.NewReader(data)).Decode()
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "The file is not an iCalendar file (%v).", err)
	}
	var out []Event
	for i, ev := range cal.Events() {
		if i >= MaxEvents {
			return nil, registry.Errorf(registry.EINVALID, "The file holds more than %d events.", MaxEvents)
		}
		n := i + 1
		if ev.Props.Get(goical.PropRecurrenceRule) != nil {
			return nil, registry.Errorf(registry.EINVALID, "Event %d repeats (RRULE); export single appointments.", n)
		}
		for _, name := range []string{goical.PropDateTimeStart, goical.PropDateTimeEnd} {
			if p := ev.Props.Get(name); p != nil {
				if tz := p.Params.Get(goical.PropTimezoneID); windowsZones[tz] != "" {
					p.Params.Set(goical.PropTimezoneID, windowsZones[tz])
				}
			}
		}
		start, err := ev.DateTimeStart(registry.LocalZone)
		if err != nil || start.IsZero() {
			return nil, registry.Errorf(registry.EINVALID, "Event %d has no readable start (DTSTART).", n)
		}
		end, err := ev.DateTimeEnd(registry.LocalZone)
		if err != nil {
			return nil, registry.Errorf(registry.EINVALID, "Event %d has no readable end (DTEND).", n)
		}
		if end.IsZero() {
			if d := ev.Props.Get(goical.PropDuration); d != nil {
				dur, err := d.Duration()
				if err != nil {
					return nil, registry.Errorf(registry.EINVALID, "Event %d has a malformed DURATION.", n)
				}
				end = start.Add(dur)
			}
		}
		uid, _ := ev.Props.Text(goical.PropUID)
		loc, _ := ev.Props.Text(goical.PropLocation)
		status, _ := ev.Props.Text(goical.PropStatus)
		out = append(out, Event{UID: strings.TrimSpace(uid), Start: start.UTC(), End: end.UTC(),
			Location: strings.TrimSpace(loc), Cancelled: strings.EqualFold(status, "CANCELLED")})
	}
	if len(out) == 0 {
		return nil, registry.Errorf(registry.EINVALID, "The file holds no event (VEVENT).")
	}
	return out, nil
}

// String describes an event without anything personal.
func (e Event) String() string {
	return fmt.Sprintf("%s–%s", e.Start.In(registry.LocalZone).Format("02.01.2006 15:04"), e.End.In(registry.LocalZone).Format("15:04"))
}
