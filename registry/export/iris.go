package export

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
)

// The guest list of IRIS connect (the health offices' client for
// location and event data), as its client's data-submission types define
// it (iris-client-bff, data_submission/dto: GuestList, Guest, Address,
// GuestAllOfAttendanceInformation, GuestListDataProvider). Times are
// ISO-8601 instants in UTC.
type irisGuestList struct {
	Guests                []irisGuest      `json:"guests"`
	DataProvider          irisDataProvider `json:"dataProvider"`
	AdditionalInformation string           `json:"additionalInformation"`
	StartDate             time.Time        `json:"startDate"`
	EndDate               time.Time        `json:"endDate"`
}

type irisGuest struct {
	FirstName             string         `json:"firstName"`
	LastName              string         `json:"lastName"`
	Email                 string         `json:"email,omitempty"`
	Phone                 string         `json:"phone,omitempty"`
	Address               irisAddress    `json:"address"`
	AttendanceInformation irisAttendance `json:"attendanceInformation"`
}

type irisAddress struct {
	Street      string `json:"street"`
	HouseNumber string `json:"houseNumber"`
	ZipCode     string `json:"zipCode"`
	City        string `json:"city"`
}

type irisAttendance struct {
	DescriptionOfParticipation string    `json:"descriptionOfParticipation"`
	AttendFrom                 time.Time `json:"attendFrom"`
	AttendTo                   time.Time `json:"attendTo"`
	AdditionalInformation      string    `json:"additionalInformation"`
}

type irisDataProvider struct {
	Name    string      `json:"name"`
	Address irisAddress `json:"address"`
}

// WriteIRIS writes the bundle as an IRIS connect guest list: one guest per
// visit with name, phone, email and address; attendFrom and attendTo its
// stay (an open visit ends at its automatic check-out, and says so);
// descriptionOfParticipation the site and area; additionalInformation the
// person visited, the appointment, the contact minutes and the visit id;
// the data provider is the first site's display name; startDate and
// endDate are the requested window. Text is passed on as registered: IRIS
// is an importer, not a spreadsheet.
func WriteIRIS(w io.Writer, src Source) error {
	h := src.BundleHeader()
	list := irisGuestList{Guests: []irisGuest{}, StartDate: h.From.UTC(), EndDate: h.To.UTC(),
		AdditionalInformation: fmt.Sprintf("Aktenzeichen %s; %s; Besucherregistrierung, Anfrage %s", h.CaseRef, h.Office, h.RequestID)}
	if len(h.Sites) > 0 {
		list.DataProvider.Name = h.SiteName(h.Sites[0])
	}
	if len(h.Parts) > 0 { // a case of several registries
		var names, ids []string
		for _, p := range h.Parts {
			names, ids = append(names, p.Registry), append(ids, p.Registry+" "+p.RequestID)
		}
		list.DataProvider.Name = strings.Join(names, "; ")
		list.AdditionalInformation = fmt.Sprintf("Aktenzeichen %s; %s; Besucherregistrierung, Anfragen %s", h.CaseRef, h.Office, strings.Join(ids, ", "))
	}
	for r, err := range src.All() {
		if err != nil {
			return err
		}
		c := r.Contact
		if c == nil {
			c = &registry.Contact{}
		}
		place := placeName(h, r)
		if r.Area != "" {
			place += ", " + r.Area
		}
		info := fmt.Sprintf("max. Kontaktdauer %s; Besuchs-ID %s", minutesText(r.ContactMinutes), r.VisitID)
		if role := RoleText(r.Role); role != "" {
			info = role + "; " + info
		}
		switch {
		case r.CheckOut == nil:
			info = "beim Export noch anwesend, Ende = automatische Abmeldung; " + info
		case r.CheckoutAuto:
			info = "automatisch abgemeldet; " + info
		}
		if c.Host != "" {
			info = "besucht: " + c.Host + "; " + info
		}
		if c.Appointment != "" {
			info = "Termin: " + c.Appointment + "; " + info
		}
		if c.WalkIn != "" {
			info = walkInText(c.WalkIn) + "; " + info
		}
		if r.Note != "" {
			info += "; Hinweis zum Termin: " + r.Note
		}
		if len(r.AlsoIn) > 0 {
			info += "; auch erfasst in: " + strings.Join(r.AlsoIn, ", ")
		}
		list.Guests = append(list.Guests, irisGuest{
			FirstName: c.GivenName, LastName: c.FamilyName, Email: c.Email, Phone: c.Phone,
			Address: irisAddress{Street: c.Street, HouseNumber: c.HouseNumber, ZipCode: c.Postcode, City: c.City},
			AttendanceInformation: irisAttendance{DescriptionOfParticipation: "Besuch " + place,
				AttendFrom: r.CheckIn.UTC(), AttendTo: presumedEnd(h, r).UTC(), AdditionalInformation: info},
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(list); err != nil {
		return fmt.Errorf("write iris: %w", err)
	}
	return nil
}
