package export

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry/strictjson"
)

// The IRIS connect client's own data-submission types
// (iris-client-bff/src/main/java/iris/client_bff/data_submission/dto:
// GuestList, Guest, Address, GuestAllOfAttendanceInformation,
// GuestListDataProvider), field for field; strictjson refuses any field
// they do not have.
type irisClientGuestList struct {
	Guests []struct {
		FirstName             string            `json:"firstName"`
		LastName              string            `json:"lastName"`
		DateOfBirth           string            `json:"dateOfBirth"`
		Sex                   string            `json:"sex"`
		Email                 string            `json:"email"`
		Phone                 string            `json:"phone"`
		MobilePhone           string            `json:"mobilePhone"`
		Address               irisClientAddress `json:"address"`
		AttendanceInformation struct {
			DescriptionOfParticipation string    `json:"descriptionOfParticipation"`
			AttendFrom                 time.Time `json:"attendFrom"`
			AttendTo                   time.Time `json:"attendTo"`
			AdditionalInformation      string    `json:"additionalInformation"`
		} `json:"attendanceInformation"`
		IdentityChecked bool `json:"identityChecked"`
	} `json:"guests"`
	DataProvider struct {
		Name    string            `json:"name"`
		Address irisClientAddress `json:"address"`
	} `json:"dataProvider"`
	AdditionalInformation string    `json:"additionalInformation"`
	StartDate             time.Time `json:"startDate"`
	EndDate               time.Time `json:"endDate"`
}

type irisClientAddress struct {
	Street      string `json:"street"`
	HouseNumber string `json:"houseNumber"`
	ZipCode     string `json:"zipCode"`
	City        string `json:"city"`
}

func TestWriteIRIS(t *testing.T) {
	b := pdfBundle()
	var buf bytes.Buffer
	if err := WriteIRIS(&buf, b); err != nil {
		t.Fatalf("WriteIRIS: %v", err)
	}
	var got irisClientGuestList
	if err := strictjson.Decode(buf.Bytes(), &got); err != nil {
		t.Fatalf("the guest list does not decode into the IRIS client's types: %v\n%s", err, buf.String())
	}
	if len(got.Guests) != 3 || got.DataProvider.Name != "Rathaus Meschede" || !got.StartDate.Equal(b.Header.From) || !got.EndDate.Equal(b.Header.To) ||
		!strings.Contains(got.AdditionalInformation, "GA-2021/0815") {
		t.Fatalf("guest list = %+v", got)
	}
	g := got.Guests[0]
	if g.FirstName != "Zoë" || g.LastName != "Müller-Lüdenscheidt" || g.Phone != "+4929312010" || g.Address.ZipCode != "59872" ||
		g.Address.HouseNumber != "1" || !g.AttendanceInformation.AttendFrom.Equal(b.Records[0].CheckIn) ||
		!g.AttendanceInformation.AttendTo.Equal(*b.Records[0].CheckOut) || g.AttendanceInformation.DescriptionOfParticipation != "Besuch Rathaus Meschede, Bürgerbüro" {
		t.Errorf("guest 1 = %+v", g)
	}
	open := got.Guests[2].AttendanceInformation
	if !open.AttendTo.Equal(b.Records[2].CheckIn.Add(12*time.Hour)) || !strings.Contains(open.AdditionalInformation, "noch anwesend") {
		t.Errorf("open visit = %+v", open)
	}
	if !strings.Contains(got.Guests[1].AttendanceInformation.AdditionalInformation, "1 Minute;") {
		t.Errorf("singular minute: %q", got.Guests[1].AttendanceInformation.AdditionalInformation)
	}
	if !strings.Contains(buf.String(), `"attendFrom": "2021-03-05T13:00:00Z"`) {
		t.Errorf("attendFrom is not an ISO-8601 instant in UTC: %s", buf.String())
	}
}
