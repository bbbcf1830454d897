package decode

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/resources"
)

// readAll drains a source; it fails the test on a non-EOF error unless
// wantErr is set, in which case it returns that error.
func readAll(t testing.TB, format, in string, opts Options) ([]Record, Source, error) {
	t.Helper()
	src, err := Open(events.Format(format), strings.NewReader(in), opts)
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

func TestCSV(t *testing.T) {
	type row struct {
		num   int64
		line  int64
		cells map[string]string
		err   string
	}
	tests := []struct {
		name   string
		in     string
		opts   Options
		header []string
		rows   []row
	}{
		{
			name:   "bom crlf",
			in:     "\xEF\xBB\xBFemail,name\r\na@x.io,Ann\r\nb@x.io,Bob\r\n",
			header: []string{"email", "name"},
			rows: []row{
				{1, 2, map[string]string{"email": "a@x.io", "name": "Ann"}, ""},
				{2, 3, map[string]string{"email": "b@x.io", "name": "Bob"}, ""},
			},
		},
		{
			name:   "quoted comma quote newline",
			in:     "email,name,note\na@x.io,\"Smith, Ann\",\"she said \"\"hi\"\"\"\nb@x.io,Bob,\"two\nlines\"\nc@x.io,Cy,x",
			header: []string{"email", "name", "note"},
			rows: []row{
				{1, 2, map[string]string{"email": "a@x.io", "name": "Smith, Ann", "note": `she said "hi"`}, ""},
				{2, 3, map[string]string{"email": "b@x.io", "name": "Bob", "note": "two\nlines"}, ""},
				{3, 5, map[string]string{"email": "c@x.io", "name": "Cy", "note": "x"}, ""},
			},
		},
		{
			name:   "blank lines and empty rows are not rows",
			in:     "\n\nemail,name\n\na@x.io,Ann\n,\n  ,  \n\nb@x.io,Bob\n\n",
			header: []string{"email", "name"},
			rows: []row{
				{1, 5, map[string]string{"email": "a@x.io", "name": "Ann"}, ""},
				{2, 9, map[string]string{"email": "b@x.io", "name": "Bob"}, ""},
			},
		},
		{
			name:   "ragged rows continue",
			in:     "email,name\na@x.io\nb@x.io,Bob,extra\nc@x.io,Cy,\nd@x.io,Di",
			header: []string{"email", "name"},
			rows: []row{
				{1, 2, nil, "row 1 (line 2): has 1 fields, the header has 2"},
				{2, 3, nil, "row 2 (line 3): has 3 fields, the header has 2; cells beyond the header: \"extra\""},
				{3, 4, map[string]string{"email": "c@x.io", "name": "Cy"}, ""},
				{4, 5, map[string]string{"email": "d@x.io", "name": "Di"}, ""},
			},
		},
		{
			name:   "bare quote is a row error",
			in:     "email,name\na@x.io,An\"n\nb@x.io,Bob\n",
			header: []string{"email", "name"},
			rows: []row{
				{1, 2, nil, "row 1 (line 2): a quote inside an unquoted field (line 2, column 10): quote the whole field and double the quotes inside it"},
				{2, 3, map[string]string{"email": "b@x.io", "name": "Bob"}, ""},
			},
		},
		{
			name:   "header trimmed, underscore and empty columns ignored",
			in:     " email , name ,,_row,_code\na@x.io,Ann,zz,7,schema.type\n",
			header: []string{"email", "name", "", "_row", "_code"},
			rows:   []row{{1, 2, map[string]string{"email": "a@x.io", "name": "Ann"}, ""}},
		},
		{
			name:   "semicolon delimiter",
			in:     "email;name\na@x.io;Ann, Jr\n",
			opts:   Options{Delimiter: ';'},
			header: []string{"email", "name"},
			rows:   []row{{1, 2, map[string]string{"email": "a@x.io", "name": "Ann, Jr"}, ""}},
		},
		{
			name:   "header only",
			in:     "email,name\n",
			header: []string{"email", "name"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, src, err := readAll(t, "csv", tc.in, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(src.Header()) != fmt.Sprint(tc.header) {
				t.Fatalf("header = %q, want %q", src.Header(), tc.header)
			}
			if len(recs) != len(tc.rows) {
				t.Fatalf("got %d records, want %d: %+v", len(recs), len(tc.rows), recs)
			}
			for i, want := range tc.rows {
				got := recs[i]
				if got.Num != want.num || got.Line != want.line {
					t.Errorf("record %d: num/line = %d/%d, want %d/%d", i, got.Num, got.Line, want.num, want.line)
				}
				if want.err != "" {
					if got.Err == nil || got.Err.Error() != want.err || got.Err.Code != CodeParseCSV {
						t.Errorf("record %d: err = %v, want %q", i, got.Err, want.err)
					}
					continue
				}
				if got.Err != nil {
					t.Errorf("record %d: unexpected err %v", i, got.Err)
				}
				if fmt.Sprint(got.Cells) != fmt.Sprint(want.cells) {
					t.Errorf("record %d: cells = %q, want %q", i, got.Cells, want.cells)
				}
				var raw map[string]string
				if err := json.Unmarshal(got.Raw, &raw); err != nil || fmt.Sprint(raw) != fmt.Sprint(want.cells) {
					t.Errorf("record %d: raw = %s (%v)", i, got.Raw, err)
				}
			}
		})
	}
}

func TestCSVRawOrderAndEscapes(t *testing.T) {
	recs, _, err := readAll(t, "csv", "b,a,c\n\"x\"\"y\",\"1\n2\",\t\\\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"b":"x\"y","a":"1\n2","c":"\t\\"}`
	if string(recs[0].Raw) != want {
		t.Fatalf("raw = %s, want %s", recs[0].Raw, want)
	}
}

func TestCSVFileErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     string
	}{
		{"empty", "", "file is empty"},
		{"only blank lines", "\n\n,,\n", "file is empty"},
		{"duplicate header", "email,name,Email,email\n", `line 1: header row: duplicate column name "email" (columns 1 and 4)`},
		// UTF-16 and Windows-1252 are read now (TestCSVEncodings); a file
		// that starts as UTF-8 and then is not is still refused.
		{"mixed encodings", "name\ncaf\xc3\xa9\ncaf\xe9\n", "row 2 (line 3): file is not valid UTF-8 here though it is before"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readAll(t, "csv", tc.in, Options{})
			var fe *FileError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || fe.Code != CodeParseCSV {
				t.Fatalf("err = %v, want *FileError containing %q", err, tc.want)
			}
		})
	}
	if _, err := Open("xml", strings.NewReader(""), Options{}); err == nil {
		t.Fatal("unknown format accepted")
	}
	if _, err := Open("csv", strings.NewReader("a\n"), Options{Delimiter: '"'}); err == nil {
		t.Fatal("quote delimiter accepted")
	}
}

func TestJSON(t *testing.T) {
	in := "[\n {\"email\": \"a@x.io\", \"age\": 12.50},\n 42,\n {\"email\": \"b@x.io\", \"tags\": [1, {\"k\": null}]},\n null\n]\n"
	recs, src, err := readAll(t, "json", in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if src.Header() != nil {
		t.Fatal("JSON has no header")
	}
	if len(recs) != 4 {
		t.Fatalf("got %d records", len(recs))
	}
	if recs[0].Num != 1 || recs[0].Line != 2 || recs[0].Values["age"] != json.Number("12.50") || string(recs[0].Raw) != `{"email": "a@x.io", "age": 12.50}` {
		t.Errorf("rec 1 = %+v", recs[0])
	}
	if recs[1].Err == nil || recs[1].Err.Error() != "row 2 (line 3): array element is a number, not an object" || recs[1].Err.Code != CodeParseJSON {
		t.Errorf("rec 2 err = %v", recs[1].Err)
	}
	if recs[2].Err != nil || recs[2].Num != 3 || recs[2].Line != 4 {
		t.Errorf("rec 3 = %+v", recs[2])
	}
	if recs[3].Err == nil || !strings.Contains(recs[3].Err.Message, "null, not an object") {
		t.Errorf("rec 4 = %+v", recs[3])
	}
}

func TestJSONFileErrors(t *testing.T) {
	tests := []struct {
		name, in string
		rows     int
		want     string
	}{
		{"empty", "", 0, "file is empty"},
		{"object not array", `{"a":1}`, 0, "it starts with an object (wrap the records in [ ])"},
		{"syntax error position", "[\n{\"a\": 1},\n{\"a\": 2,,}\n]", 1, "row 2 (line 3): invalid JSON at line 3, column 9 (byte offset 20): invalid character ','"},
		{"syntax error after tokens", "[1,2,3,   {\"abc\": 2,,}]", 3, "row 4 (line 1): invalid JSON at line 1, column 21 (byte offset 20)"},
		{"missing colon", "[  {\"a\":1}  ,  {\"b\" 1}]", 1, "column 21 (byte offset 20): invalid character '1' after object key"},
		{"truncated", "[{\"a\":1},{\"a\":", 1, "truncated upload"},
		{"missing close", "[{\"a\":1}", 1, "truncated upload"},
		{"trailing data", "[{\"a\":1}]\n[]", 1, "unexpected data after the closing ]"},
		{"bad utf8", "[{\"a\":\"caf\xe9\"}]", 0, "row 1 (line 1): file is not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, _, err := readAll(t, "json", tc.in, Options{})
			var fe *FileError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || fe.Code != CodeParseJSON {
				t.Fatalf("err = %v, want *FileError containing %q", err, tc.want)
			}
			if len(recs) != tc.rows {
				t.Fatalf("read %d rows before the error, want %d", len(recs), tc.rows)
			}
		})
	}
	recs, _, err := readAll(t, "json", "\xEF\xBB\xBF [ ] \n", Options{})
	if err != nil || len(recs) != 0 {
		t.Fatalf("empty array with BOM: %v %v", recs, err)
	}
}

func TestJSONL(t *testing.T) {
	in := "{\"email\":\"a@x.io\"}\r\n\n   \n[1,2]\n{\"email\": oops}\n\"str\"\n{\"email\":\"b@x.io\",\"n\":1e2}\n{\"a\":1} {\"b\":2}\n"
	recs, src, err := readAll(t, "jsonl", in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if src.Header() != nil {
		t.Fatal("JSONL has no header")
	}
	type want struct {
		num, line int64
		err       string
	}
	wants := []want{
		{1, 1, ""},
		{2, 4, "row 2 (line 4): line is an array, not a JSON object"},
		{3, 5, "row 3 (line 5): not a JSON value: invalid character 'o'"},
		{4, 6, "row 4 (line 6): line is a string, not a JSON object"},
		{5, 7, ""},
		{6, 8, "row 6 (line 8): not a JSON value: invalid character '{' after top-level value"},
	}
	if len(recs) != len(wants) {
		t.Fatalf("got %d records: %+v", len(recs), recs)
	}
	for i, w := range wants {
		r := recs[i]
		if r.Num != w.num || r.Line != w.line {
			t.Errorf("rec %d num/line = %d/%d want %d/%d", i, r.Num, r.Line, w.num, w.line)
		}
		if !json.Valid(r.Raw) {
			t.Errorf("rec %d raw is not JSON: %s", i, r.Raw)
		}
		if w.err == "" {
			if r.Err != nil || r.Values == nil {
				t.Errorf("rec %d = %+v", i, r)
			}
			continue
		}
		if r.Err == nil || !strings.HasPrefix(r.Err.Error(), w.err) || r.Err.Code != CodeParseJSON {
			t.Errorf("rec %d err = %v, want %q", i, r.Err, w.err)
		}
	}
	if recs[4].Values["n"] != json.Number("1e2") {
		t.Errorf("number not kept as json.Number: %#v", recs[4].Values["n"])
	}
	if string(recs[2].Raw) != `"{\"email\": oops}"` {
		t.Errorf("unparseable line raw = %s", recs[2].Raw)
	}

	_, _, err = readAll(t, "jsonl", "{\"a\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n", Options{MaxRecordBytes: 16})
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "longer than 16 bytes") {
		t.Fatalf("long line: %v", err)
	}
}

func registry(t testing.TB) *resources.Registry {
	t.Helper()
	reg, err := resources.LoadDir("../../resources")
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func resource(t testing.TB, name string) *resources.Resource {
	t.Helper()
	r, ok := registry(t).Get(name)
	if !ok {
		t.Fatal(name)
	}
	return r
}

func openResource(t testing.TB) *resources.Resource {
	t.Helper()
	reg, err := resources.Load(map[string][]byte{"notes.json": []byte(`{"name":"notes","key":["id"],
	  "schema":{"type":"object","properties":{"id":{"type":"integer"},"text":{"type":"string"}}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := reg.Get("notes")
	return r
}

func TestNewMapping(t *testing.T) {
	cust := resource(t, "customers")
	tests := []struct {
		name    string
		header  []string
		mapping map[string]string
		res     *resources.Resource
		fields  map[string]string
		ignored []string
		err     string
	}{
		{"by name, case-insensitive", []string{"Email", "NAME", "age", "_row"}, nil, cust,
			map[string]string{"Email": "email", "NAME": "name", "age": "age"}, nil, ""},
		{"mapping wins", []string{"E-mail", "Full name"}, map[string]string{"email": "E-mail", "name": "full NAME"}, cust,
			map[string]string{"E-mail": "email", "Full name": "name"}, nil, ""},
		{"mapping takes the field from a same-named column", []string{"email", "work_email", "name"}, map[string]string{"email": "work_email"}, cust,
			nil, nil, `column "email" maps to no field of customers`},
		{"unknown columns listed", []string{"email", "name", "foo", "bar"}, nil, cust,
			nil, nil, `columns "foo", "bar" map to no field of customers`},
		{"mapping unknown field", []string{"email", "name"}, map[string]string{"zip": "email"}, cust,
			nil, nil, `column_mapping: "zip" is not a field of customers`},
		{"mapping missing column", []string{"email", "name"}, map[string]string{"age": "Age (years)"}, cust,
			nil, nil, `column_mapping: column "Age (years)" (for field age) is not in the file's header`},
		{"two columns one field", []string{"email", "EMAIL", "name"}, nil, cust,
			nil, nil, `columns "email" and "EMAIL" both map to field email`},
		{"unknown allowed is ignored", []string{"id", "text", "extra"}, nil, openResource(t),
			map[string]string{"id": "id", "text": "text"}, []string{"extra"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewMapping(tc.header, tc.mapping, tc.res)
			if tc.err != "" {
				var fe *FileError
				if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.err) || fe.Code != CodeMapping {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(m.Fields()) != fmt.Sprint(tc.fields) || fmt.Sprint(m.Ignored()) != fmt.Sprint(tc.ignored) {
				t.Fatalf("fields = %v ignored = %v", m.Fields(), m.Ignored())
			}
		})
	}
}

func TestPrepareCSV(t *testing.T) {
	cust := resource(t, "customers")
	in := "email,name,age,vip,signed_up\n" +
		"a@x.io,Ann,42,yes,2024-01-31\n" + // 1 ok
		"b@x.io,Bob,abc,maybe,\n" + // 2 two coercion problems
		"c@x.io,,,,\n" + // 3 required name
		"not-an-email,Cy,-3,,2024-02-30\n" + // 4 format, minimum, format
		",Di,,,\n" + // 5 key missing → required
		"e@x.io,Ed\n" // 6 ragged
	recs, src, err := readAll(t, "csv", in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMapping(src.Header(), nil, cust)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		nil,
		{"schema.type:age", "schema.type:vip"},
		{"schema.required:name"},
		{"schema.minimum:age", "schema.format:email", "schema.format:signed_up"},
		{"schema.required:email"},
		{"parse.csv:"},
	}
	for i, rec := range recs {
		row, probs := Prepare(cust, m, rec)
		var got []string
		for _, p := range probs {
			got = append(got, p.Code+":"+p.Field)
			if p.Message == "" {
				t.Errorf("row %d: empty message", rec.Num)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want[i]) {
			t.Errorf("row %d problems = %v, want %v (%+v)", rec.Num, got, want[i], probs)
		}
		if row.Num != rec.Num || string(row.Raw) != string(rec.Raw) {
			t.Errorf("row %d: num/raw not carried", rec.Num)
		}
	}
	row, _ := Prepare(cust, m, recs[0])
	if row.Data["age"] != json.Number("42") || row.Data["vip"] != true || row.Data["email"] != "a@x.io" {
		t.Errorf("data = %#v", row.Data)
	}
	if _, ok := row.Data["signed_up"]; !ok {
		t.Error("signed_up dropped")
	}
	_, probs := Prepare(cust, m, recs[1])
	if probs[0].Message != `age: expected integer, got "abc"` {
		t.Errorf("message = %q", probs[0].Message)
	}
}

func TestPrepareJSON(t *testing.T) {
	cust := resource(t, "customers")
	in := `[{"email":"a@x.io","name":"Ann","age":"42","vip":"no","_row":3},
	{"email":"b@x.io","name":"Bob","age":4.5},
	{"email":"c@x.io","name":"Cy","zip":"1"},
	{"Email":"d@x.io","name":"Di","age":""},
	{"email":"e@x.io","EMAIL":"E@x.io","name":"Ed"},
	"nope"]`
	recs, _, err := readAll(t, "json", in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMapping(nil, nil, cust)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{nil, {"schema.type:age"}, {"schema.additional_properties:zip"}, nil, {"schema.invalid:email"}, {"parse.json:"}}
	for i, rec := range recs {
		row, probs := Prepare(cust, m, rec)
		var got []string
		for _, p := range probs {
			got = append(got, p.Code+":"+p.Field)
		}
		if fmt.Sprint(got) != fmt.Sprint(want[i]) {
			t.Errorf("row %d problems = %v, want %v (%+v)", rec.Num, got, want[i], probs)
		}
		if i == 0 && (row.Data["age"] != json.Number("42") || row.Data["vip"] != false || len(row.Data) != 4) {
			t.Errorf("data = %#v", row.Data)
		}
		if i == 3 && (row.Data["email"] != "d@x.io" || row.Data["age"] != nil) {
			t.Errorf("data = %#v", row.Data)
		}
	}
	// column_mapping by key for JSON.
	m2, err := NewMapping(nil, map[string]string{"email": "mail"}, cust)
	if err != nil {
		t.Fatal(err)
	}
	data, probs := m2.MapJSON(map[string]any{"mail": "x@y.io", "name": "X"})
	if len(probs) != 0 || data["email"] != "x@y.io" {
		t.Fatalf("mapped JSON = %v %v", data, probs)
	}
}

func TestPrepareDelete(t *testing.T) {
	cust := resource(t, "customers")
	m, err := NewMapping([]string{"email", "external_id", "age"}, nil, cust)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		cells map[string]string
		want  string
	}{
		{map[string]string{"email": "a@x.io"}, ""},
		{map[string]string{"external_id": "X1"}, ""},
		{map[string]string{"age": "3"}, "schema.required:email"},
		{map[string]string{"email": "a@x.io", "age": "x"}, "schema.type:age"},
	}
	for _, c := range cases {
		_, probs := PrepareDelete(cust, m, Record{Num: 1, Cells: c.cells})
		got := ""
		if len(probs) > 0 {
			got = probs[0].Code + ":" + probs[0].Field
		}
		if got != c.want || len(probs) > 1 {
			t.Errorf("PrepareDelete(%v) = %+v, want %s", c.cells, probs, c.want)
		}
	}
}

func FuzzCSVRowNumbers(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n", "\xEF\xBB\xBFa,b\r\n\"x,y\",\"q\"\"\"\r\n", "a\n\"unterminated\n", "a,b\n1\n1,2,3\n,\n",
		"a,a\n", "", "a\n\"\n\"\n", "_x,a\n1,2\n", "a\n\xff\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		src, err := Open("csv", strings.NewReader(in), Options{})
		if err != nil {
			return
		}
		var last int64
		for i := 0; ; i++ {
			rec, err := src.Next()
			if err != nil {
				return
			}
			if rec.Num <= last {
				t.Fatalf("row numbers not increasing: %d after %d", rec.Num, last)
			}
			last = rec.Num
			if rec.Raw != nil && !json.Valid(rec.Raw) {
				t.Fatalf("raw is not JSON: %q", rec.Raw)
			}
			if i > len(in)+1 {
				t.Fatal("more records than bytes")
			}
		}
	})
}
