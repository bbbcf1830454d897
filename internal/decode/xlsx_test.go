package decode

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// workbook builds an XLSX in memory; fill writes the sheets with a
// StreamWriter, the way a large export is written.
func workbook(t testing.TB, fill func(f *excelize.File)) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	fill(f)
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func stream(t testing.TB, f *excelize.File, sheet string, rows map[int][]any) {
	t.Helper()
	if sheet != "Sheet1" {
		if _, err := f.NewSheet(sheet); err != nil {
			t.Fatal(err)
		}
	}
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		t.Fatal(err)
	}
	max := 0
	for r := range rows {
		max = maxInt(max, r)
	}
	for r := 1; r <= max; r++ {
		if cells, ok := rows[r]; ok {
			if err := sw.SetRow(fmt.Sprintf("A%d", r), cells); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func style(t testing.TB, f *excelize.File, s *excelize.Style) int {
	t.Helper()
	id, err := f.NewStyle(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func readXLSX(t testing.TB, data []byte, opts Options) ([]Record, Source, error) {
	t.Helper()
	src, err := Open(FormatXLSX, bytes.NewReader(data), opts)
	if err != nil {
		return nil, nil, err
	}
	var out []Record
	for {
		rec, err := src.Next()
		if err == io.EOF {
			return out, src, nil
		}
		if err != nil {
			return out, src, err
		}
		out = append(out, rec)
	}
}

func TestXLSX(t *testing.T) {
	day := time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC)
	data := workbook(t, func(f *excelize.File) {
		twoDec := style(t, f, &excelize.Style{NumFmt: 2})     // 0.00
		thousands := style(t, f, &excelize.Style{NumFmt: 3})  // #,##0
		shortDate := style(t, f, &excelize.Style{NumFmt: 14}) // m/d/yy
		dateTime := style(t, f, &excelize.Style{NumFmt: 22})  // m/d/yy h:mm
		timeOnly := style(t, f, &excelize.Style{NumFmt: 21})  // h:mm:ss
		dmy := "dd/mm/yyyy"
		custom := style(t, f, &excelize.Style{CustomNumFmt: &dmy})
		money := `"$"#,##0.00;[Red]-"$"#,##0.00`
		currency := style(t, f, &excelize.Style{CustomNumFmt: &money})
		stream(t, f, "Sheet1", map[int][]any{
			// row 1 left empty: the header is the first non-empty row
			2: {" email ", "name", "score", "count", "signed_up", "seen", "at", "vip", "", "_note", "price"},
			3: {"a@x.io", "Ann", excelize.Cell{StyleID: twoDec, Value: 12.5}, excelize.Cell{StyleID: thousands, Value: 1000},
				excelize.Cell{StyleID: shortDate, Value: day}, excelize.Cell{StyleID: dateTime, Value: day.Add(13*time.Hour + 45*time.Minute)},
				excelize.Cell{StyleID: timeOnly, Value: 0.5}, true, "no header", "n", excelize.Cell{StyleID: currency, Value: -3.25}},
			// row 4 empty, row 5 blank cells only
			5: {"", " ", nil},
			6: {"b@x.io", "Bob", "12.50", nil, excelize.Cell{StyleID: custom, Value: day}, excelize.Cell{StyleID: custom, Value: "not a date"}},
			7: {"c@x.io"},
		})
		stream(t, f, "People", map[int][]any{1: {"email"}, 2: {"p@x.io"}})
	})
	dir := t.TempDir()
	recs, src, err := readXLSX(t, data, Options{TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if want := []string{"email", "name", "score", "count", "signed_up", "seen", "at", "vip", "", "_note", "price"}; fmt.Sprint(src.Header()) != fmt.Sprint(want) {
		t.Fatalf("header = %q", src.Header())
	}
	if d := src.Detected(); d != (Detected{HasHeader: true}) {
		t.Errorf("detected = %+v", d)
	}
	want := []struct {
		num, line int64
		raw       string
	}{
		{1, 3, `{"email":"a@x.io","name":"Ann","score":"12.5","count":"1000","signed_up":"2024-01-31","seen":"2024-01-31T13:45:00","at":"12:00:00","vip":"TRUE","price":"-3.25"}`},
		{2, 6, `{"email":"b@x.io","name":"Bob","score":"12.50","count":"","signed_up":"2024-01-31","seen":"not a date","at":"","vip":"","price":""}`},
		{3, 7, `{"email":"c@x.io","name":"","score":"","count":"","signed_up":"","seen":"","at":"","vip":"","price":""}`},
	}
	if len(recs) != len(want) {
		t.Fatalf("got %d records: %+v", len(recs), recs)
	}
	for i, w := range want {
		r := recs[i]
		if r.Num != w.num || r.Line != w.line || string(r.Raw) != w.raw || r.Err != nil {
			t.Errorf("record %d = num %d line %d raw %s err %v\nwant num %d line %d raw %s", i, r.Num, r.Line, r.Raw, r.Err, w.num, w.line, w.raw)
		}
		if r.Cells["email"] == "" || len(r.Cells) != 9 {
			t.Errorf("record %d cells = %v", i, r.Cells)
		}
	}
	// Prevalidation reads the cells like CSV cells.
	cust := resource(t, "customers")
	m, err := NewMapping([]string{"email", "name", "signed_up", "vip"}, nil, cust)
	if err != nil {
		t.Fatal(err)
	}
	row, probs := Prepare(cust, m, recs[0])
	if len(probs) != 0 || row.Data["signed_up"] != "2024-01-31" || row.Data["vip"] != true {
		t.Errorf("prepared = %+v %v", row.Data, probs)
	}
	// The spooled upload is gone once the file is read (and Close is safe twice).
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("temp dir not cleaned: %v", left)
	}

	// A named sheet, matched case-insensitively.
	recs, src, err = readXLSX(t, data, Options{TempDir: dir, Sheet: "people"})
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	if len(recs) != 1 || recs[0].Cells["email"] != "p@x.io" || recs[0].Line != 2 {
		t.Fatalf("sheet People: %+v", recs)
	}
	// A sheet that is not there lists those that are.
	_, err = Open(FormatXLSX, bytes.NewReader(data), Options{TempDir: dir, Sheet: "Orders"})
	var fe *FileError
	if !errors.As(err, &fe) || fe.Code != CodeParseXLSX || fe.Message != `sheet "Orders" is not in the workbook (sheets: "Sheet1", "People")` {
		t.Fatalf("missing sheet: %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("temp dir not cleaned after a failed Open: %v", left)
	}
}

func TestXLSXFileErrors(t *testing.T) {
	empty := workbook(t, func(f *excelize.File) {})
	dupHeader := workbook(t, func(f *excelize.File) {
		stream(t, f, "Sheet1", map[int][]any{3: {"email", "name", "email"}})
	})
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"text", []byte("email,name\na@x.io,Ann\n"), "the file is text, not an XLSX workbook"},
		{"broken zip", []byte("PK\x03\x04 and then no zip at all"), "file is not a readable XLSX workbook"},
		{"empty sheet", empty, `sheet "Sheet1" is empty: an XLSX import needs a header row`},
		{"duplicate header", dupHeader, `line 3: header row: duplicate column name "email" (columns A and C)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, _, err := readXLSX(t, tc.in, Options{TempDir: dir})
			var fe *FileError
			if !errors.As(err, &fe) || fe.Code != CodeParseXLSX || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("temp dir not cleaned: %v", left)
			}
		})
	}
}

func TestFormatKind(t *testing.T) {
	for code, want := range map[string]int{
		"General": fmtOther, "0.00": fmtOther, "#,##0.00;[Red]-#,##0.00": fmtOther, "0.00E+00": fmtOther,
		`"days: "0`: fmtOther, `[$€-2] #,##0.00`: fmtOther, "@": fmtOther,
		"yyyy-mm-dd": fmtDate, "dd/mm/yyyy": fmtDate, "mmm-yy": fmtDate, "mmmm": fmtDate, `[$-409]d-mmm-yy;@`: fmtDate,
		"m/d/yy h:mm": fmtDateTime, "yyyy-mm-dd hh:mm:ss": fmtDateTime,
		"h:mm AM/PM": fmtTime, "mm:ss": fmtTime, "[h]:mm:ss": fmtElapsed, "[mm]:ss": fmtElapsed,
	} {
		if got := formatKind(code); got != want {
			t.Errorf("formatKind(%q) = %d, want %d", code, got, want)
		}
	}
}

// TestXLSXLarge reads 10k rows through the streaming iterator: every row
// arrives, and the heap does not grow with the rows read.
func TestXLSXLarge(t *testing.T) {
	const n = 10_000
	data := workbook(t, func(f *excelize.File) {
		rows := map[int][]any{1: {"email", "name", "age", "note"}}
		for i := 0; i < n; i++ {
			rows[i+2] = []any{fmt.Sprintf("user%d@example.com", i), fmt.Sprintf("Name %d", i), i % 90, strings.Repeat("x", 100)}
		}
		stream(t, f, "Sheet1", rows)
	})
	src, err := Open(FormatXLSX, bytes.NewReader(data), Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var ms runtime.MemStats
	var heapAt1k uint64
	count := 0
	for {
		rec, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		count++
		if rec.Cells["email"] != fmt.Sprintf("user%d@example.com", count-1) || rec.Cells["age"] != fmt.Sprint((count-1)%90) {
			t.Fatalf("row %d = %v", count, rec.Cells)
		}
		switch count {
		case 1000:
			runtime.GC()
			runtime.ReadMemStats(&ms)
			heapAt1k = ms.HeapAlloc
		case n:
			runtime.GC()
			runtime.ReadMemStats(&ms)
			if grown := int64(ms.HeapAlloc) - int64(heapAt1k); grown > 4<<20 {
				t.Errorf("heap grew by %d bytes reading rows 1k..10k", grown)
			}
		}
	}
	if count != n {
		t.Fatalf("read %d rows, want %d", count, n)
	}
}

// TestXLSXWithoutStyles reads a workbook that has no styles.xml (some
// generators write none): numbers come raw.
func TestXLSXWithoutStyles(t *testing.T) {
	data := workbook(t, func(f *excelize.File) {
		stream(t, f, "Sheet1", map[int][]any{1: {"email", "n"}, 2: {"a@x.io", 3.5}})
	})
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range zr.File {
		if f.Name == "xl/styles.xml" {
			continue
		}
		w, _ := zw.Create(f.Name)
		r, _ := f.Open()
		if _, err := io.Copy(w, r); err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	recs, src, err := readXLSX(t, b.Bytes(), Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	if len(recs) != 1 || string(recs[0].Raw) != `{"email":"a@x.io","n":"3.5"}` {
		t.Fatalf("records = %+v", recs)
	}
}
