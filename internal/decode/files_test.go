package decode

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	encjson "encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/rows"
)

// contacts is a resource with the fields spreadsheets get wrong: a date, a
// date-time, a zip code and a long id kept as text, numbers, and aliases.
func contacts(t testing.TB) *resources.Resource {
	t.Helper()
	reg, err := resources.Load(map[string][]byte{"contacts.json": []byte(`{"name":"contacts","key":["email_address"],
	  "aliases":{"email_address":["Mail"],"zip":["Postcode"]},
	  "schema":{"type":"object","additionalProperties":false,"properties":{
	    "email_address":{"type":"string"},"born":{"type":"string","format":"date"},
	    "seen_at":{"type":"string","format":"date-time"},"zip":{"type":"string"},
	    "account_id":{"type":"string"},"ratio":{"type":"string"},"amount":{"type":"number"},
	    "visits":{"type":"integer"},"zip_number":{"type":"integer"}}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := reg.Get("contacts")
	return r
}

// prepareAll reads data as format through a Prevalidator and prepares every
// record.
func prepareAll(t *testing.T, format events.Format, data []byte, opts events.Options, res *resources.Resource) ([]rows.Row, [][]rows.Problem, *Prevalidator) {
	t.Helper()
	opts.Format = format
	pv, err := NewPrevalidator(bytes.NewReader(data), opts, res, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pv.Close() })
	var out []rows.Row
	var probs [][]rows.Problem
	for {
		rec, err := pv.Next()
		if err == io.EOF {
			return out, probs, pv
		}
		if err != nil {
			t.Fatal(err)
		}
		row, p := pv.Prepare(rec)
		out = append(out, row)
		probs = append(probs, p)
	}
}

// spreadsheet is the workbook a person makes: a hidden sheet first, dates
// as serials (some formatted as dates, some not), a zip code stored as a
// number with a 00000 format, a long id, a formula with its cached value.
func spreadsheet(t *testing.T, date1904 bool) []byte {
	return workbook(t, func(f *excelize.File) {
		if date1904 {
			if err := f.SetWorkbookProps(&excelize.WorkbookPropsOptions{Date1904: &date1904}); err != nil {
				t.Fatal(err)
			}
		}
		// Sheet1 is hidden: lookups, not the data.
		must(t, f.SetSheetRow("Sheet1", "A1", &[]any{"email_address", "zip"}))
		must(t, f.SetSheetRow("Sheet1", "A2", &[]any{"hidden@x.io", "99999"}))
		for _, name := range []string{"Data", "Secret"} {
			if _, err := f.NewSheet(name); err != nil {
				t.Fatal(err)
			}
		}
		idx, _ := f.GetSheetIndex("Data")
		f.SetActiveSheet(idx) // excelize keeps the active sheet visible
		must(t, f.SetSheetVisible("Sheet1", false))
		must(t, f.SetSheetVisible("Secret", false, true)) // very hidden
		if v, _ := f.GetSheetVisible("Sheet1"); v {
			t.Fatal("Sheet1 is not hidden")
		}
		zip := style(t, f, &excelize.Style{CustomNumFmt: ptr("00000")})
		dateFmt := style(t, f, &excelize.Style{NumFmt: 14})
		// Serials of 2024-01-31 and 2024-01-31 13:45 in the workbook's system.
		day, at := 45322.0, 45322.5729166667
		if date1904 {
			day, at = day-1462, at-1462
		}
		must(t, f.SetSheetRow("Data", "A1", &[]any{"Mail", "Born", "Seen At", "Postcode", "Account ID", "Ratio", "Amount", "Visits", "Zip Number"}))
		must(t, f.SetSheetRow("Data", "A2", &[]any{"a@x.io", day, at, 501, 1234567890123450, 0.0, 0.0, 3, 501}))
		must(t, f.SetCellStyle("Data", "B2", "B2", dateFmt))
		must(t, f.SetCellStyle("Data", "D2", "D2", zip))
		must(t, f.SetCellStyle("Data", "I2", "I2", zip))
		// Formulas as Excel saves them: the formula and its cached result.
		for _, cell := range []string{"F2", "G2"} {
			must(t, f.SetCellFloat("Data", cell, 0.1+0.2, -1, 64))
			must(t, f.SetCellFormula("Data", cell, "=0.1+0.2"))
		}
		must(t, f.SetSheetRow("Secret", "A1", &[]any{"email_address"}))
		must(t, f.SetSheetRow("Secret", "A2", &[]any{"secret@x.io"}))
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestXLSXNumbersTakeTheirFieldsType(t *testing.T) {
	for _, date1904 := range []bool{false, true} {
		t.Run(fmt.Sprintf("date1904=%v", date1904), func(t *testing.T) {
			got, probs, pv := prepareAll(t, FormatXLSX, spreadsheet(t, date1904), events.Options{}, contacts(t))
			if len(got) != 1 || len(probs[0]) > 0 {
				t.Fatalf("rows %v, problems %v", got, probs)
			}
			want := map[string]any{
				"email_address": "a@x.io",
				"born":          "2024-01-31",           // a date-formatted serial
				"seen_at":       "2024-01-31T13:45:00Z", // a General serial, for a date-time field
				"zip":           "00501",                // the number 501 shown by 00000
				"account_id":    "1234567890123450",     // no exponent
				"ratio":         "0.3",                  // a formula's cached 0.30000000000000004, as shown
				"amount":        num("0.3"),
				"visits":        num("3"),
				"zip_number":    num("501"), // an integer field takes the number, not its layout
			}
			if !reflect.DeepEqual(got[0].Data, want) {
				t.Errorf("data = %#v\nwant   %#v", got[0].Data, want)
			}
			// The row's cells as kept for errors.csv and a retry say what
			// the fields took: a serial that became a date is that date.
			var raw map[string]string
			if err := encjson.Unmarshal(got[0].Raw, &raw); err != nil || raw["Born"] != "2024-01-31" ||
				raw["Seen At"] != "2024-01-31T13:45:00Z" || raw["Postcode"] != "00501" || raw["Mail"] != "a@x.io" {
				t.Errorf("raw cells = %s (%v), want the dates as the fields took them", got[0].Raw, err)
			}
			cols, unmapped := pv.Report()
			if cols["Mail"] != "email_address" || cols["Postcode"] != "zip" || cols["Seen At"] != "seen_at" || cols["Account ID"] != "account_id" {
				t.Errorf("columns = %v", cols)
			}
			if len(unmapped) != 0 {
				t.Errorf("unmapped = %v", unmapped)
			}
		})
	}
}

func num(s string) any { return encjson.Number(s) }

func TestXLSXHiddenSheets(t *testing.T) {
	data := spreadsheet(t, false)
	recs, _, err := readXLSX(t, data, Options{})
	if err != nil || len(recs) != 1 || recs[0].Cells["Mail"] != "a@x.io" {
		t.Fatalf("default sheet: %v %+v (want the first visible one, Data)", err, recs)
	}
	for sheet, want := range map[string]string{"Sheet1": "hidden@x.io", "secret": "secret@x.io"} {
		recs, _, err := readXLSX(t, data, Options{Sheet: sheet})
		if err != nil || len(recs) != 1 || recs[0].Cells["email_address"] != want {
			t.Errorf("sheet %s: %v %+v, want %s", sheet, err, recs, want)
		}
	}
	// excelize will not hide every sheet of a workbook it writes; Excel's
	// files can have it.
	hidden := func(string) bool { return false }
	if _, err := pickSheet([]string{"A", "B"}, "", hidden); err == nil || !strings.Contains(err.Error(), "every sheet of the workbook is hidden") {
		t.Errorf("all hidden: %v", err)
	}
	if s, err := pickSheet([]string{"A", "B"}, "b", hidden); err != nil || s != "B" {
		t.Errorf("a named hidden sheet: %q %v", s, err)
	}
}

func TestXLSXDateSerialProblems(t *testing.T) {
	data := workbook(t, func(f *excelize.File) {
		must(t, f.SetSheetRow("Sheet1", "A1", &[]any{"email_address", "born"}))
		must(t, f.SetSheetRow("Sheet1", "A2", &[]any{"a@x.io", 60}))
		must(t, f.SetSheetRow("Sheet1", "A3", &[]any{"b@x.io", "45322"})) // text, not a serial
	})
	got, probs, _ := prepareAll(t, FormatXLSX, data, events.Options{}, contacts(t))
	if len(probs[0]) != 1 || probs[0][0].Code != resources.CodeFormat || !strings.Contains(probs[0][0].Message, "29 February 1900") {
		t.Errorf("serial 60: %+v", probs[0])
	}
	if len(probs[1]) != 1 || probs[1][0].Code != resources.CodeFormat || got[1].Data["born"] != "45322" {
		t.Errorf("digits typed as text are not a serial: %+v %v", probs[1], got[1].Data)
	}
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	must(t, zw.Close())
	return out.Bytes()
}

func TestCSVAsExcelWritesIt(t *testing.T) {
	res := resource(t, "customers")
	// sep=; names the delimiter; a bad row keeps its row number and its
	// physical line (the sep line counts as a line, not as a row).
	const text = "sep=;\r\nEmail Address;Name;Customer ID;Signup Date;Favourite\r\na@x.io;Ann;0042;2024-01-31;tea\r\nb@x.io;Bob \"the\" Builder;7;2024-02-01;x\r\nc@x.io;Cy;8;2024-02-02;y\r\n"
	tests := map[string][]byte{
		"plain":   []byte(text),
		"gzip":    gzipped(t, []byte(text)),
		"cr-only": []byte(strings.ReplaceAll(text, "\r\n", "\r")),
		"gzip cr": gzipped(t, []byte(strings.ReplaceAll(text, "\r\n", "\r"))),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			src, err := Open(FormatCSV, bytes.NewReader(data), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			d := src.Detected()
			if d.Delimiter != ";" || (strings.HasPrefix(name, "gzip") != (d.Compression == CompressionGzip)) {
				t.Errorf("detected %+v", d)
			}
			if fmt.Sprint(src.Header()) != "[Email Address Name Customer ID Signup Date Favourite]" {
				t.Fatalf("header = %q (the sep line is not the header)", src.Header())
			}
			var recs []Record
			for {
				rec, err := src.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				recs = append(recs, rec)
			}
			if len(recs) != 3 || recs[0].Num != 1 || recs[0].Line != 3 || recs[2].Num != 3 || recs[2].Line != 5 {
				t.Fatalf("records %+v", recs)
			}
			if recs[1].Err == nil || recs[1].Err.Row != 2 || recs[1].Err.Line != 4 || !strings.Contains(recs[1].Err.Message, "line 4") {
				t.Errorf("bad row: %+v", recs[1].Err)
			}
			m, err := NewMapping(src.Header(), nil, res)
			if err == nil {
				t.Fatal("Favourite maps to no field of customers: want a mapping error")
			}
			cols, unmapped := m.Report()
			want := map[string]string{"Email Address": "email", "Name": "name", "Customer ID": "external_id", "Signup Date": "signed_up"}
			if !reflect.DeepEqual(cols, want) {
				t.Errorf("columns = %v", cols)
			}
			if len(unmapped) != 1 || unmapped[0].Header != "Favourite" {
				t.Errorf("unmapped = %+v", unmapped)
			}
		})
	}
}

func TestCSVCorruptGzipFailsTheFile(t *testing.T) {
	data := gzipped(t, []byte(strings.Repeat("email,name\na@x.io,Ann\n", 2000)))
	data = data[:len(data)/2]
	_, _, err := readAll(t, "csv", string(data), Options{})
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "gzip-compressed file is corrupt or cut short") {
		t.Fatalf("err = %v", err)
	}
}

func TestGzipBombIsRefused(t *testing.T) {
	defer func(was int64) { maxDecompressed = was }(maxDecompressed)
	maxDecompressed = 1 << 20
	line := "email,name\n" + strings.Repeat("a@x.io,Ann\n", 200000) // 2.2 MB, a few KB compressed
	_, _, err := readAll(t, "csv", string(gzipped(t, []byte(line))), Options{})
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "expands to more than 1048576 bytes") {
		t.Fatalf("err = %v, want the file refused for what it expands to", err)
	}
	maxDecompressed = 4 << 20
	if _, _, err := readAll(t, "csv", string(gzipped(t, []byte(line))), Options{}); err != nil {
		t.Fatalf("under the bound: %v", err)
	}
}

func TestGzippedWorkbookIsReadAsXLSX(t *testing.T) {
	data := gzipped(t, spreadsheet(t, false))
	// Named and typed as CSV: the content says what it is.
	got, probs, pv := prepareAll(t, FormatCSV, data, events.Options{}, contacts(t))
	if len(got) != 1 || len(probs[0]) != 0 || got[0].Data["zip"] != "00501" {
		t.Fatalf("rows %+v problems %v", got, probs)
	}
	if pv.Detected().Compression != CompressionGzip {
		t.Errorf("detected %+v", pv.Detected())
	}
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(body))
	}
	must(t, zw.Close())
	return b.Bytes()
}

func TestBinaryFilesAreRefusedByWhatTheyAre(t *testing.T) {
	var pngFile bytes.Buffer
	must(t, png.Encode(&pngFile, image.NewRGBA(image.Rect(0, 0, 4, 4))))
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"zip", zipOf(t, map[string]string{"customers.csv": "email\na@x.io\n"}), "the file is a ZIP archive, not CSV/JSON/XLSX"},
		{"gzip of a zip", gzipped(t, zipOf(t, map[string]string{"a.txt": "x"})), "the file is a ZIP archive, not CSV/JSON/XLSX"},
		{"docx", zipOf(t, map[string]string{"[Content_Types].xml": "<Types/>", "word/document.xml": "<w/>"}), "the file is a Word document (DOCX), not CSV/JSON/XLSX"},
		{"png", pngFile.Bytes(), "the file is a PNG image, not CSV/JSON/XLSX"},
		{"pdf", []byte("%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"), "the file is a PDF document, not CSV/JSON/XLSX"},
		{"unknown binary", []byte("email,name\x00\x01\x02\x03"), "the file is binary data, not CSV/JSON/XLSX"},
	}
	for _, tc := range tests {
		for _, format := range []events.Format{FormatCSV, FormatJSON, FormatJSONL, FormatXLSX} {
			t.Run(tc.name+"/"+string(format), func(t *testing.T) {
				dir := t.TempDir()
				_, err := Open(format, bytes.NewReader(tc.data), Options{TempDir: dir})
				var fe *FileError
				if !errors.As(err, &fe) || fe.Code != CodeFileType || fe.Error() != tc.want {
					t.Fatalf("err = %v, want %q", err, tc.want)
				}
			})
		}
	}
}

func TestHeadersMatchFieldsLoosely(t *testing.T) {
	res := contacts(t)
	header := []string{"E-mail Address", "BORN", "seen_at", "Émail", "Acount ID", "Post code", "zzz"}
	m, err := NewMapping(header, nil, res)
	if err == nil {
		t.Fatal("unplaced columns of a closed schema: want an error")
	}
	var fe *FileError
	if !errors.As(err, &fe) || fe.Code != CodeMapping || !strings.Contains(err.Error(), `"Acount ID" (did you mean account_id?)`) {
		t.Errorf("err = %v", err)
	}
	wantCols := map[string]string{"E-mail Address": "email_address", "BORN": "born", "seen_at": "seen_at", "Post code": "zip"}
	cols, unmapped := m.Report()
	if !reflect.DeepEqual(cols, wantCols) || !reflect.DeepEqual(fe.Columns, wantCols) {
		t.Errorf("columns = %v (error's %v), want %v", cols, fe.Columns, wantCols)
	}
	wantUnmapped := []UnmappedHeader{
		{Header: "Émail", Suggestions: []string{}}, // email_address is taken
		{Header: "Acount ID", Suggestions: []string{"account_id"}},
		{Header: "zzz", Suggestions: []string{}},
	}
	if !reflect.DeepEqual(unmapped, wantUnmapped) || !reflect.DeepEqual(fe.Unmapped, wantUnmapped) {
		t.Errorf("unmapped = %+v, want %+v", unmapped, wantUnmapped)
	}

	// column_mapping wins over a name that would match by itself.
	m, err = NewMapping([]string{"email_address", "Mail", "Émail Address"}, map[string]string{"email_address": "Mail"}, res)
	if err == nil {
		t.Fatal("two columns, one field")
	}
	cols, _ = m.Report()
	if cols["Mail"] != "email_address" || cols["email_address"] != "" {
		t.Errorf("explicit mapping: %v", cols)
	}
	m, err = NewMapping([]string{"Émail Address", "zip"}, map[string]string{"zip": "zip"}, res)
	if err != nil {
		t.Fatal(err)
	}
	if cols, unmapped := m.Report(); cols["Émail Address"] != "email_address" || len(unmapped) != 0 {
		t.Errorf("accents: %v %v", cols, unmapped)
	}
	// JSON keys go the same way.
	data, _, probs := m.MapValues(map[string]any{"E-Mail_Address": "a@x.io", "Born": "2024-01-31"})
	if len(probs) != 0 || data["email_address"] != "a@x.io" || data["born"] != "2024-01-31" {
		t.Errorf("json: %v %v", data, probs)
	}
}

// A header of thousands of long columns makes a bounded report.
func TestReportIsBounded(t *testing.T) {
	var header []string
	for i := 0; i < 3*MaxReported; i++ {
		header = append(header, fmt.Sprintf("%d %s", i, strings.Repeat("x", 5000)))
	}
	header = append(header, "email_address")
	m, err := NewMapping(header, nil, contacts(t))
	if err == nil {
		t.Fatal("want a mapping error")
	}
	cols, unmapped := m.Report()
	if len(unmapped) != MaxReported || len(cols) != 1 {
		t.Fatalf("%d unmapped, %d columns", len(unmapped), len(cols))
	}
	for _, u := range unmapped {
		if len(u.Header) > 256 || !strings.Contains(u.Header, "bytes in all") {
			t.Fatalf("header of %d bytes: %.80s", len(u.Header), u.Header)
		}
	}
	if len(err.Error()) > 64<<10 {
		t.Errorf("message of %d bytes", len(err.Error()))
	}
}

// gzip'd JSON Lines: decompressed, keys matched like headers.
func TestGzippedJSONL(t *testing.T) {
	data := gzipped(t, []byte(`{"E-mail Address":"a@x.io","Born":"2024-01-31"}`+"\n"))
	got, probs, pv := prepareAll(t, FormatJSONL, data, events.Options{}, contacts(t))
	if len(got) != 1 || len(probs[0]) != 0 || got[0].Data["email_address"] != "a@x.io" || got[0].Data["born"] != "2024-01-31" {
		t.Fatalf("rows %+v problems %v", got, probs)
	}
	if pv.Detected().Compression != CompressionGzip || pv.Detected().Encoding != EncodingUTF8 {
		t.Errorf("detected %+v", pv.Detected())
	}
	if cols, unmapped := pv.Report(); cols != nil || unmapped != nil {
		t.Errorf("JSON has no header to report: %v %v", cols, unmapped)
	}
}
