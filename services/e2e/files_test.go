package e2e

import (
	"bytes"
	"compress/gzip"
	"image"
	"image/png"
	"reflect"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/inlet-dev/inlet/events"
)

// TestFilesAsPeopleMakeThem: what spreadsheets and their users send — a
// gzip'd Excel CSV with a sep=; line and messy headers, a 1904 workbook
// with a hidden first sheet, date serials and a zip-style id stored as a
// number, a header no field takes, and a PNG named .csv — through the whole
// pipeline, with the mapping each import used in its import object.
func TestFilesAsPeopleMakeThem(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 100})
	const org = "acme"

	t.Run("gzip sep csv", func(t *testing.T) {
		c.T = t
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write([]byte("sep=;\r\nEmail Address;NAME ;Âge;Customer-ID;signup_date\r\n" +
			"ann@x.io;Ann;30;0042;2024-01-31\r\nbob@x.io;Bob;forty;7;2024-02-01\r\n"))
		_ = zw.Close()
		imp := run(c, org, "customers", "export.csv.gz", gz.String(), events.Options{SkipErrors: true})
		checkEnded(t, "gzip sep csv", imp, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 1, Failed: 1})
		f := imp.File
		wantCols := map[string]string{"Email Address": "email", "NAME": "name", "Âge": "age", "Customer-ID": "external_id", "signup_date": "signed_up"}
		if f.Compression != "gzip" || f.Delimiter != ";" || imp.Format != events.FormatCSV || !reflect.DeepEqual(f.Columns, wantCols) || len(f.UnmappedHeaders) != 0 {
			t.Errorf("file %+v, format %s; want gzip, ; and columns %v", f, imp.Format, wantCols)
		}
		if got := canon(fieldsOf(t, c, org, "customers", "ann@x.io")); got != `{"age":30,"email":"ann@x.io","external_id":"0042","name":"Ann","signed_up":"2024-01-31"}` {
			t.Errorf("ann: %s", got)
		}
		// Bob's row failed on its row number, counted after the sep line.
		checkErrorsCSV(t, c.ErrorsCSV(imp.ID), "Email Address,NAME,Âge,Customer-ID,signup_date,_row,_phase,_code,_field,_message\n", []string{
			"bob@x.io,Bob,forty,7,2024-02-01,2,prevalidation,schema.type,age,",
		})
	})
	c.T = t

	t.Run("xlsx 1904", func(t *testing.T) {
		c.T = t
		body := workbook1904(t)
		imp := run(c, org, "customers", "people.xlsx", string(body), events.Options{})
		checkEnded(t, "xlsx 1904", imp, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 2})
		wantCols := map[string]string{"Mail": "email", "Name": "name", "Customer ID": "external_id", "Joined": "signed_up", "Age": "age"}
		if !reflect.DeepEqual(imp.File.Columns, wantCols) {
			t.Errorf("columns %v, want %v", imp.File.Columns, wantCols)
		}
		for key, want := range map[string]string{
			// A date-formatted serial and a General one, both in the 1904 system.
			"cy@x.io": `{"age":41,"email":"cy@x.io","external_id":"000042","name":"Cy","signed_up":"2024-01-31"}`,
			"di@x.io": `{"age":5,"email":"di@x.io","external_id":"1234567890123450","name":"Di","signed_up":"2000-02-29"}`,
		} {
			if got := canon(fieldsOf(t, c, org, "customers", key)); got != want {
				t.Errorf("%s:\n got %s\nwant %s", key, got, want)
			}
		}
		if _, ok := c.RecordByKey(org, "customers", "hidden@x.io"); ok {
			t.Error("the hidden sheet was imported")
		}
	})
	c.T = t

	t.Run("unplaced header", func(t *testing.T) {
		c.T = t
		imp := run(c, org, "customers", "typo.csv", "email,name,Signup Dte,Colour\nx@x.io,X,2024-01-01,red\n", events.Options{})
		if imp.Status != events.StatusFailed || imp.Reason == nil || !strings.Contains(*imp.Reason, `"Signup Dte" (did you mean signed_up?)`) {
			t.Fatalf("status %s reason %s", imp.Status, deref(imp.Reason))
		}
		want := []events.UnmappedHeader{{Header: "Signup Dte", Suggestions: []string{"signed_up"}}, {Header: "Colour", Suggestions: []string{}}}
		if !reflect.DeepEqual(imp.File.UnmappedHeaders, want) || !reflect.DeepEqual(imp.File.Columns, map[string]string{"email": "email", "name": "name"}) {
			t.Errorf("file %+v, want unmapped %+v", imp.File, want)
		}
	})
	c.T = t

	t.Run("aliases listed", func(t *testing.T) {
		c.T = t
		var list struct {
			Data []events.Resource `json:"data"`
		}
		c.Read(org, "/v1/resources", nil).JSON(t, &list)
		var aliases map[string][]string
		for _, r := range list.Data {
			if r.Name == "customers" {
				aliases = r.Aliases
			}
		}
		if !reflect.DeepEqual(aliases["signed_up"], []string{"Signup Date", "Joined"}) {
			t.Errorf("customers aliases %v", aliases)
		}
	})
	c.T = t

	t.Run("binary", func(t *testing.T) {
		c.T = t
		var img bytes.Buffer
		if err := png.Encode(&img, image.NewGray(image.Rect(0, 0, 8, 8))); err != nil {
			t.Fatal(err)
		}
		imp := run(c, org, "customers", "customers.csv", img.String(), events.Options{})
		if imp.Status != events.StatusFailed || imp.Reason == nil || !strings.Contains(*imp.Reason, "the file is a PNG image, not CSV/JSON/XLSX") {
			t.Errorf("png: status %s reason %s", imp.Status, deref(imp.Reason))
		}
		if imp.Stats.Processed != 0 {
			t.Errorf("png: stats %+v", imp.Stats)
		}
	})
}

// workbook1904 is a Mac-era workbook: the 1904 date system, a hidden first
// sheet, a date-formatted serial and a General one, an id stored as the
// number 42 shown by a 000000 format, and a long id.
func workbook1904(t *testing.T) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	yes := true
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check(f.SetWorkbookProps(&excelize.WorkbookPropsOptions{Date1904: &yes}))
	check(f.SetSheetRow("Sheet1", "A1", &[]any{"email", "name"}))
	check(f.SetSheetRow("Sheet1", "A2", &[]any{"hidden@x.io", "Hidden"}))
	idx, err := f.NewSheet("People")
	check(err)
	f.SetActiveSheet(idx)
	check(f.SetSheetVisible("Sheet1", false))
	padded, err := f.NewStyle(&excelize.Style{CustomNumFmt: func() *string { s := "000000"; return &s }()})
	check(err)
	date, err := f.NewStyle(&excelize.Style{NumFmt: 14})
	check(err)
	// 2024-01-31 and 2000-02-29 are 45322 and 36585 in the 1900 system;
	// the 1904 system counts 1462 days fewer.
	check(f.SetSheetRow("People", "A1", &[]any{"Mail", "Name", "Customer ID", "Joined", "Age"}))
	check(f.SetSheetRow("People", "A2", &[]any{"cy@x.io", "Cy", 42, 45322 - 1462, 41}))
	check(f.SetSheetRow("People", "A3", &[]any{"di@x.io", "Di", 1234567890123450, 36585 - 1462, 5}))
	check(f.SetCellStyle("People", "C2", "C2", padded))
	check(f.SetCellStyle("People", "D2", "D2", date))
	var buf bytes.Buffer
	check(f.Write(&buf))
	return buf.Bytes()
}
