package resources_test

import (
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/resources"
)

func TestHeaderKey(t *testing.T) {
	for _, h := range []string{"E-mail Address", "email_address", "Émail address", " EMAIL-ADDRESS ", "e_mail_áddress"} {
		if k := resources.HeaderKey(h); k != "emailaddress" {
			t.Errorf("HeaderKey(%q) = %q", h, k)
		}
	}
	if resources.HeaderKey("Straße") == resources.HeaderKey("Strase") {
		t.Error("ß is a letter, not an accent")
	}
}

func define(t *testing.T, aliases string) (*resources.Resource, error) {
	t.Helper()
	reg, err := resources.Load(map[string][]byte{"people.json": []byte(`{"name":"people","key":["email"],
	  "aliases":` + aliases + `,
	  "schema":{"type":"object","properties":{"email":{"type":"string"},"phone":{"type":"string"},"mobile_phone":{"type":"string"}}}}`)})
	if err != nil {
		return nil, err
	}
	r, _ := reg.Get("people")
	return r, nil
}

func TestAliases(t *testing.T) {
	r, err := define(t, `{"email":["E-mail","Mail"],"mobile_phone":["Cell"]}`)
	if err != nil {
		t.Fatal(err)
	}
	for h, want := range map[string]string{"MAIL": "email", "e mail": "email", "Mobile Phone": "mobile_phone", "cell": "mobile_phone", "Phone": "phone"} {
		if f, ok := r.FieldForHeader(h); !ok || f != want {
			t.Errorf("FieldForHeader(%q) = %q %v, want %s", h, f, ok, want)
		}
	}
	if f, ok := r.FieldForHeader("fax"); ok {
		t.Errorf("fax → %s", f)
	}
	if got := r.ClosestFields("Mobile phone no", nil); len(got) != 2 || got[0] != "mobile_phone" || got[1] != "phone" {
		t.Errorf("ClosestFields = %v", got)
	}
	if got := r.ClosestFields("phnoe", nil); len(got) != 1 || got[0] != "phone" {
		t.Errorf("ClosestFields(phnoe) = %v", got)
	}
	if got := r.ClosestFields("phnoe", func(f string) bool { return f == "phone" }); len(got) != 0 {
		t.Errorf("a taken field is no suggestion: %v", got)
	}

	for aliases, want := range map[string]string{
		`{"email":["Phone"]}`:                      `aliases.email: alias "Phone" matches field phone`,
		`{"email":["Tel"],"phone":["T-E-L"]}`:      `aliases.phone: alias "T-E-L" matches field email`,
		`{"fax":["F"]}`:                            `aliases.fax: field "fax" is not a property of the schema`,
		`{"email":["  "]}`:                         `aliases.email: alias "  " is blank`,
		`{"mobile_phone":["mobile-phone","Cell"]}`: "",
	} {
		_, err := define(t, aliases)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", aliases, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", aliases, err, want)
		}
	}
}

func TestSheetNumbers(t *testing.T) {
	for _, tc := range []struct {
		n    resources.SheetNumber
		want string // Time, or the error's words
	}{
		{resources.SheetNumber{Value: "1"}, "1900-01-01T00:00:00Z"},
		{resources.SheetNumber{Value: "59"}, "1900-02-28T00:00:00Z"},
		{resources.SheetNumber{Value: "60"}, "29 February 1900"},
		{resources.SheetNumber{Value: "61"}, "1900-03-01T00:00:00Z"},
		{resources.SheetNumber{Value: "45322.5729166667"}, "2024-01-31T13:45:00Z"},
		{resources.SheetNumber{Value: "0", Date1904: true}, "1904-01-01T00:00:00Z"},
		{resources.SheetNumber{Value: "43860.25", Date1904: true}, "2024-01-31T06:00:00Z"},
		{resources.SheetNumber{Value: "0.5"}, "time of day without a date"},
		{resources.SheetNumber{Value: "-1"}, "outside the dates"},
		{resources.SheetNumber{Value: "2958466"}, "outside the dates"},
	} {
		tm, err := tc.n.Time()
		got := tm.Format("2006-01-02T15:04:05Z07:00")
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%+v: %s, want %s", tc.n, got, tc.want)
		}
	}
	for _, tc := range []struct {
		n    resources.SheetNumber
		want string
	}{
		{resources.SheetNumber{Value: "1.2345678901234E+15"}, "1234567890123400"},
		{resources.SheetNumber{Value: "0.30000000000000004"}, "0.3"},
		{resources.SheetNumber{Value: "501", Shown: "00501"}, "00501"},
		{resources.SheetNumber{Value: "45322", Kind: resources.SheetNumberDate}, "2024-01-31"},
		{resources.SheetNumber{Value: "0.75", Kind: resources.SheetNumberTime}, "18:00:00"},
		{resources.SheetNumber{Value: "45322.75", Kind: resources.SheetNumberDateTime, Date1904: true}, "2028-02-01T18:00:00"},
	} {
		if got := tc.n.Text(); got != tc.want {
			t.Errorf("%+v: Text = %s, want %s", tc.n, got, tc.want)
		}
	}
}
