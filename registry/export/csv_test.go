package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

func TestCSVCell(t *testing.T) {
	tests := []struct {
		in       string
		keepText bool
		want     string
	}{
		{"Anna", false, "Anna"},
		{"", false, ""},
		{"=1+1", false, "'=1+1"},
		{"+1+1", false, "'+1+1"},
		{"-1+1", false, "'-1+1"},
		{"@SUM(1)", false, "'@SUM(1)"},
		{"\t=1+1", false, "'\t=1+1"},
		{"\r=1+1", false, "'\r=1+1"},
		{"\n=1+1", false, "'\n=1+1"},
		{"\x00=1+1", false, "'\uFFFD=1+1"},
		{"  =1+1", false, "'  =1+1"},
		{"\u00a0=1+1", false, "'\u00a0=1+1"},
		{"\u200b=1+1", false, "'\u200b=1+1"},
		{"＝1+1", false, "'＝1+1"},
		{"＋1", false, "'＋1"},
		{"－1", false, "'－1"},
		{"＠SUM(1)", false, "'＠SUM(1)"},
		{"−1", false, "'−1"},
		{"Müller-Lüdenscheidt", false, "Müller-Lüdenscheidt"},
		{"a=1", false, "a=1"},
		{"'=1+1", false, "'=1+1"},
		{"+49 2931 1234", false, wordJoiner + "+49 2931 1234"},
		{"+4929311234", false, wordJoiner + "+4929311234"},
		{"+49 2931 1234", true, wordJoiner + "+49 2931 1234"},
		{"+1+1", true, "'+1+1"},
		{"+49 2931 HYPERLINK", false, "'+49 2931 HYPERLINK"},
		{"02931 1234", false, "02931 1234"},
		{"02931 1234", true, wordJoiner + "02931 1234"},
		{"(02931) 1234", true, wordJoiner + "(02931) 1234"},
		{"01067", true, wordJoiner + "01067"},
		{"12-14", true, wordJoiner + "12-14"},
		{"1a", true, wordJoiner + "1a"},
		{"-12345", true, "'-12345"},
		{"bad\xffutf8", false, "bad\uFFFDutf8"},
		{"x\x00y", false, "x\uFFFDy"},
	}
	for _, tt := range tests {
		t.Run(strings.ToValidUTF8(tt.in, "?"), func(t *testing.T) {
			if got := csvCell(tt.in, tt.keepText); got != tt.want {
				t.Errorf("csvCell(%q, %v) = %q, want %q", tt.in, tt.keepText, got, tt.want)
			}
		})
	}
}

func TestImportCell(t *testing.T) {
	tests := []struct{ in, want, phone string }{
		{"Anna", "Anna", "Anna"},
		{"=1+1", "'=1+1", "'=1+1"},
		// An international number stays itself in the phone column only:
		// in a name, street or city it is neutralised like any formula.
		{"+49 2931 1234", "'+49 2931 1234", "+49 2931 1234"},
		{"+1-1-1-1-1", "'+1-1-1-1-1", "+1-1-1-1-1"},
		{"+1+1", "'+1+1", "'+1+1"},
		{"-1-1-1-1-1", "'-1-1-1-1-1", "'-1-1-1-1-1"},
		{"01067", "01067", "01067"},
		{"\x00=1", "'\uFFFD=1", "'\uFFFD=1"},
	}
	for _, tt := range tests {
		if got := importCell(tt.in); got != tt.want {
			t.Errorf("importCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := importPhone(tt.in); got != tt.phone {
			t.Errorf("importPhone(%q) = %q, want %q", tt.in, got, tt.phone)
		}
	}
}

// sampleBundle is a decrypted bundle with two records, one open.
func sampleBundle() *Bundle {
	in := time.Date(2021, 3, 5, 13, 30, 0, 0, time.UTC)
	c := &registry.Contact{
		Version: 1, GivenName: "Zoë", FamilyName: "O'Brien, \"Jr.\"", Street: "Am Markt", HouseNumber: "12-14",
		Postcode: "01067", City: "Dresden", Phone: "+49 351 1234", Email: "z@example.org",
		Host: "Frau Roth\nZimmer 3", Appointment: "A-12", VisitID: "0123456789abcdef0123456789abcdef", Site: "rathaus", CheckIn: in,
	}
	d := *c
	d.GivenName, d.Phone, d.VisitID = "=HYPERLINK(\"http://x\",\"y\")", "0351 1234", "fedcba9876543210fedcba9876543210"
	d.WalkIn = "urgent"
	return &Bundle{
		Header: Header{Format: Format, RequestID: "r1", CaseRef: "GA-2021/0815", From: in, To: in.Add(time.Hour), Sites: []string{"rathaus"}, Count: 2,
			Index: []string{"K7QD2M"}, IndexVisits: []string{c.VisitID}, Tolerance: 5},
		Records: []Record{
			{VisitID: c.VisitID, Site: "rathaus", Area: "Bürgerbüro", CheckIn: in, CheckOut: ptr(in.Add(45 * time.Minute)), CheckoutAuto: true, ContactMinutes: 45, Contact: c,
				Note: "=kommt mit Dolmetscherin", Role: RoleIndex},
			{VisitID: d.VisitID, Site: "rathaus", CheckIn: in, ContactMinutes: 60, Contact: &d, Role: RoleContact},
		},
	}
}

func TestWriteCSV(t *testing.T) {
	for _, sep := range []rune{',', ';', '\t'} {
		t.Run(string(sep), func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteCSV(&buf, sampleBundle(), sep); err != nil {
				t.Fatalf("WriteCSV: %v", err)
			}
			out := buf.String()
			if !strings.HasPrefix(out, "\uFEFFAktenzeichen"+string(sep)) {
				t.Errorf("output starts %q, want BOM and the header row", out[:20])
			}
			r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "\uFEFF")))
			r.Comma = sep
			rows, err := r.ReadAll()
			if err != nil {
				t.Fatalf("read back: %v", err)
			}
			want := [][]string{csvColumns,
				{"GA-2021/0815", "0123456789abcdef0123456789abcdef", "rathaus", "Bürgerbüro", "2021-03-05T14:30:00+01:00", "2021-03-05T15:15:00+01:00", "ja", "45",
					"Zoë", "O'Brien, \"Jr.\"", "Am Markt", wordJoiner + "12-14", wordJoiner + "01067", "Dresden", wordJoiner + "+49 351 1234", "z@example.org", "Frau Roth\nZimmer 3", "A-12", "", "'=kommt mit Dolmetscherin", "Indexfall"},
				{"GA-2021/0815", "fedcba9876543210fedcba9876543210", "rathaus", "", "2021-03-05T14:30:00+01:00", "noch anwesend (kein Verlassen erfasst)", "nein", "60",
					"'=HYPERLINK(\"http://x\",\"y\")", "O'Brien, \"Jr.\"", "Am Markt", wordJoiner + "12-14", wordJoiner + "01067", "Dresden", wordJoiner + "0351 1234", "z@example.org", "Frau Roth\nZimmer 3", "A-12", "ohne Termin: Dringende Angelegenheit (Notfall)", "", "Kontakt"},
			}
			if !reflect.DeepEqual(rows, want) {
				t.Errorf("rows =\n%q\nwant\n%q", rows, want)
			}
			if !strings.Contains(out, "\r\n") || strings.Count(out, "\r\n") != 3 {
				t.Errorf("want 3 CRLF row ends, got %d", strings.Count(out, "\r\n"))
			}
		})
	}
	if err := WriteCSV(&bytes.Buffer{}, sampleBundle(), '|'); registry.ErrorCode(err) != registry.EINVALID {
		t.Errorf("separator '|': error = %v, want EINVALID", err)
	}
}

func TestWriteSORMAS(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSORMAS(&buf, sampleBundle(), ';'); err != nil {
		t.Fatalf("WriteSORMAS: %v", err)
	}
	lines := strings.Split(buf.String(), "\r\n")
	if got, want := lines[0], strings.Repeat("EventParticipant;", 9)+"EventParticipant"; got != want {
		t.Errorf("line 1 = %q, want %q", got, want)
	}
	if got, want := lines[1], "involvementDescription;person.firstName;person.lastName;person.sex;person.phone;person.emailAddress;person.address.postalCode;person.address.city;person.address.street;person.address.houseNumber"; got != want {
		t.Errorf("line 2 = %q, want %q", got, want)
	}
	if !strings.HasPrefix(lines[2], "## ") {
		t.Errorf("line 3 = %q, want a ## caption line", lines[2])
	}
	r := csv.NewReader(strings.NewReader(strings.Join(lines[3:], "\r\n")))
	r.Comma = ';'
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if got, want := len(rows), 2; got != want {
		t.Fatalf("rows = %d, want %d", got, want)
	}
	wantDesc := "Besuch Standort rathaus, Bereich Bürgerbüro, von 2021-03-05T14:30:00+01:00 bis 2021-03-05T15:15:00+01:00 (Ende automatisch gesetzt), max. Kontaktdauer 45 Minuten, Indexfall, besucht: Frau Roth\nZimmer 3, Termin: A-12, Hinweis zum Termin: =kommt mit Dolmetscherin, Besuchs-ID 0123456789abcdef0123456789abcdef"
	if got := rows[0][0]; got != wantDesc {
		t.Errorf("involvementDescription = %q, want %q", got, wantDesc)
	}
	if got, want := rows[0][1:], []string{"Zoë", "O'Brien, \"Jr.\"", "", "+49 351 1234", "z@example.org", "01067", "Dresden", "Am Markt", "12-14"}; !reflect.DeepEqual(got, want) {
		t.Errorf("row 1 = %q, want %q", got, want)
	}
	if got, want := rows[1][1], "'=HYPERLINK(\"http://x\",\"y\")"; got != want {
		t.Errorf("neutralised first name = %q, want %q", got, want)
	}
	// A phone-shaped value anywhere but the phone column is neutralised.
	b := sampleBundle()
	b.Records[1].Contact.FamilyName, b.Records[1].Contact.Street, b.Records[1].Contact.City = "+1-1-1-1-1", "+49 30 1234", "-1-1-1-1-1"
	buf.Reset()
	if err := WriteSORMAS(&buf, b, ';'); err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{";+1-1-1-1-1;", ";+49 30 1234;", ";-1-1-1-1-1;"} {
		if strings.Contains(buf.String(), raw) {
			t.Errorf("SORMAS output holds %q raw", raw)
		}
	}
	if !strings.Contains(rows[1][0], "Ende nicht erfasst") {
		t.Errorf("open visit's description %q does not say the end is unknown", rows[1][0])
	}
	if strings.HasPrefix(buf.String(), "\uFEFF") {
		t.Errorf("SORMAS file starts with a byte order mark")
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	b := sampleBundle()
	if err := WriteJSON(&buf, b); err != nil {
		t.Fatalf("WriteJSON: %v", err)
	}
	if !strings.HasPrefix(buf.String(), "{\n  \"header\": {\n    \"format\": \"registry-export/2\",") {
		t.Errorf("output starts %.60q, want an indented document", buf.String())
	}
	var got Bundle
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(got.Records, b.Records) || got.Header.CaseRef != b.Header.CaseRef {
		t.Errorf("JSON round trip differs:\n%+v\nwant\n%+v", got, *b)
	}
	buf.Reset()
	if err := WriteJSON(&buf, &Bundle{}); err != nil || !strings.Contains(buf.String(), `"records": []`) {
		t.Errorf("empty bundle: %v, %s; want \"records\": []", err, buf.String())
	}
}
