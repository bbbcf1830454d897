package e2e

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unicode/utf16"

	"github.com/xuri/excelize/v2"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// xlsxOf builds a workbook whose first sheet holds rows (numbers stay
// numbers in the cells).
func xlsxOf(t *testing.T, rows [][]any) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sheet := f.GetSheetName(0)
	for i, row := range rows {
		cell, err := excelize.CoordinatesToCellName(1, i+1)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.SetSheetRow(sheet, cell, &row); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func utf16LEWithBOM(s string) []byte {
	var buf bytes.Buffer
	buf.Write([]byte{0xFF, 0xFE})
	for _, u := range utf16.Encode([]rune(s)) {
		_ = binary.Write(&buf, binary.LittleEndian, u)
	}
	return buf.Bytes()
}

// TestFormats: XLSX, UTF-16 LE CSV with a BOM, Windows-1252 CSV, semicolon-
// and tab-delimited CSV all import, and the import's file object says what
// was received and detected.
func TestFormats(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 100})
	const org = "acme"
	for _, tc := range []struct {
		name, file       string
		body             []byte
		format, encoding string
		delimiter        string
		want             map[string]string // code (lower-case) → stored data
	}{
		{
			name: "xlsx", file: "companies.xlsx", format: "xlsx", encoding: "", delimiter: "",
			body: xlsxOf(t, [][]any{{"code", "name", "country", "employees"}, {"X1", "Excel One", "DE", 12}, {"X2", "Zoë Excel", nil, 7}}),
			want: map[string]string{
				"x1": `{"code":"X1","country":"DE","employees":12,"name":"Excel One"}`,
				"x2": `{"code":"X2","employees":7,"name":"Zoë Excel"}`,
			},
		},
		{
			name: "utf-16le", file: "u16.csv", format: "csv", encoding: "utf-16le", delimiter: ",",
			body: utf16LEWithBOM("code,name,employees\r\nU1,Zoë Ütf,3\r\nU2,日本,4\r\n"),
			want: map[string]string{
				"u1": `{"code":"U1","employees":3,"name":"Zoë Ütf"}`,
				"u2": `{"code":"U2","employees":4,"name":"日本"}`,
			},
		},
		{
			name: "windows-1252", file: "w.csv", format: "csv", encoding: "windows-1252", delimiter: ",",
			body: []byte("code,name\nW1,Ren\xe9 Caf\xe9\nW2,Plain\n"),
			want: map[string]string{
				"w1": `{"code":"W1","name":"René Café"}`,
				"w2": `{"code":"W2","name":"Plain"}`,
			},
		},
		{
			name: "semicolon", file: "semi.csv", format: "csv", encoding: "utf-8", delimiter: ";",
			body: []byte("code;name;employees\nS1;Semi, Colon;5\nS2;Two;6\n"),
			want: map[string]string{
				"s1": `{"code":"S1","employees":5,"name":"Semi, Colon"}`,
				"s2": `{"code":"S2","employees":6,"name":"Two"}`,
			},
		},
		{
			name: "tab", file: "tab.csv", format: "csv", encoding: "utf-8", delimiter: "\t",
			body: []byte("code\tname\tcountry\nT1\tTab One\tFR\nT2\tTab; Two\tIT\n"),
			want: map[string]string{
				"t1": `{"code":"T1","country":"FR","name":"Tab One"}`,
				"t2": `{"code":"T2","country":"IT","name":"Tab; Two"}`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.T = t
			imp := run(c, org, "companies", tc.file, string(tc.body), events.Options{})
			checkEnded(t, tc.name, imp, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 2})
			f := imp.File
			if string(imp.Format) != tc.format || f.Name != tc.file || f.Size != int64(len(tc.body)) || f.Checksum != sha256Hex(tc.body) ||
				f.Encoding != tc.encoding || f.Delimiter != tc.delimiter || !f.HasHeader {
				t.Errorf("%s: format %q file %+v\nwant format %q name %q size %d checksum %s encoding %q delimiter %q has_header true",
					tc.name, imp.Format, f, tc.format, tc.file, len(tc.body), sha256Hex(tc.body), tc.encoding, tc.delimiter)
			}
			got := fieldSet(t, c, org, "live", "companies", "code")
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s: record %s\n got %s\nwant %s", tc.name, k, got[k], v)
				}
			}
		})
	}
	c.T = t

	// errors.csv of a workbook: the sheet's header, the original cells.
	t.Run("xlsx errors", func(t *testing.T) {
		c.T = t
		body := xlsxOf(t, [][]any{{"code", "name", "employees"}, {"E1", "Good", 1}, {"E2", "Bad", "many"}, {"E3", "", 3}})
		imp := run(c, org, "companies", "errors.xlsx", string(body), events.Options{SkipErrors: true})
		checkEnded(t, "xlsx with errors", imp, events.StatusCompleted, events.Stats{Total: 3, Processed: 3, Created: 1, Failed: 2})
		checkErrorsCSV(t, c.ErrorsCSV(imp.ID), "code,name,employees,_row,_phase,_code,_field,_message\n", []string{
			"E2,Bad,many,2,prevalidation,schema.type,employees,",
			"E3,,3,3,prevalidation,schema.required,name,",
		})
	})
	c.T = t

	// A forced delimiter where detection would pick another: "," splits
	// this header and every row into two fields as well as ";" does, and
	// wins the tie. The option must hold everywhere the file is read.
	t.Run("forced delimiter", func(t *testing.T) {
		c.T = t
		body := []byte("code;company, name\nD1;Alpha, Inc\nD2;Beta, Ltd\n")
		created, err := c.Create(org, client.CreateRequest{
			Options: events.Options{Resource: "companies", Delimiter: ";", UploadMode: "sync", ColumnMapping: map[string]string{"name": "company, name"}},
			File:    &client.File{Name: "forced.csv", Body: bytes.NewReader(body)},
		})
		if err != nil || created.Repeated {
			t.Fatalf("create with delimiter ; (sync): %v (repeated %v), want 201 (the sync prevalidation ignores the delimiter option)", err, created.Repeated)
		}
		imp := c.WaitTerminal(created.ID)
		checkEnded(t, "forced delimiter", imp, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 2})
		if imp.File.Delimiter != ";" {
			t.Errorf("file.delimiter %q, want ;", imp.File.Delimiter)
		}
		if f := fieldsOf(t, c, org, "companies", "D1"); canon(f) != `{"code":"D1","name":"Alpha, Inc"}` {
			t.Errorf("D1: %s", canon(f))
		}
		var records []map[string]any
		jr := c.Read(org, "/v1/imports/"+imp.ID+"/upload.json", nil)
		jr.JSON(t, &records)
		if want := `[{"code":"D1","company, name":"Alpha, Inc"},{"code":"D2","company, name":"Beta, Ltd"}]`; canon(records) != want {
			t.Errorf("upload.json with delimiter ;:\n got %s\nwant %s (the delimiter option is not applied)", canon(records), want)
		}
	})
	c.T = t

	// The sheet option picks the worksheet: for the pipeline, for the sync
	// prevalidation inside the create request and for upload.json alike.
	t.Run("xlsx sheet", func(t *testing.T) {
		c.T = t
		f := excelize.NewFile()
		defer f.Close()
		old := f.GetSheetName(0)
		if err := f.SetSheetName(old, "Old"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.NewSheet("Current"); err != nil {
			t.Fatal(err)
		}
		for i, row := range [][]any{{"code", "name"}, {"O1", "Old One"}} {
			cell, _ := excelize.CoordinatesToCellName(1, i+1)
			_ = f.SetSheetRow("Old", cell, &row)
		}
		for i, row := range [][]any{{"code", "name", "employees"}, {"K1", "Current One", 1}, {"K2", "Current Two", 2}, {"K3", "Current Three", 3}} {
			cell, _ := excelize.CoordinatesToCellName(1, i+1)
			_ = f.SetSheetRow("Current", cell, &row)
		}
		var buf bytes.Buffer
		if err := f.Write(&buf); err != nil {
			t.Fatal(err)
		}
		created := c.Created(org, client.CreateRequest{
			Options: events.Options{Resource: "companies", Sheet: "Current", UploadMode: "sync"},
			File:    &client.File{Name: "two-sheets.xlsx", Body: &buf},
		})
		var p events.Prevalidation
		if created.Prevalidation != nil {
			p = *created.Prevalidation
		}
		if p.Total != 3 || p.Valid != 3 || p.Failed != 0 {
			t.Errorf("sync prevalidation of sheet Current: %+v, want total 3 valid 3 failed 0 (the sheet option is not applied)", p)
		}
		imp := c.WaitTerminal(created.ID)
		checkEnded(t, "sheet Current", imp, events.StatusCompleted, events.Stats{Total: 3, Processed: 3, Created: 3})
		if _, ok := c.RecordByKey(org, "companies", "O1"); ok {
			t.Errorf("a row of sheet Old was imported")
		}
		var records []map[string]any
		jr := c.Read(org, "/v1/imports/"+imp.ID+"/upload.json", nil)
		jr.JSON(t, &records)
		if len(records) != 3 || records[0]["code"] != "K1" {
			t.Errorf("upload.json of sheet Current: %s (the sheet option is not applied)", jr.Body)
		}
	})
	c.T = t
}
