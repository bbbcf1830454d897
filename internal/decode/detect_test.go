package decode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/inlet-dev/inlet/internal/rows"
)

func utf16Bytes(s string, order binary.ByteOrder, bom bool) []byte {
	var b bytes.Buffer
	units := utf16.Encode([]rune(s))
	if bom {
		units = append([]uint16{0xFEFF}, units...)
	}
	for _, u := range units {
		_ = binary.Write(&b, order, u)
	}
	return b.Bytes()
}

func TestCSVEncodings(t *testing.T) {
	const text = "email,name\r\na@x.io,Zoë Ñúñez €5\r\nb@x.io,Ann\r\n"
	// 1252: ë=EB Ñ=D1 ú=FA ñ=F1 €=80
	win1252 := "email,name\r\na@x.io,Zo\xeb \xd1\xfa\xf1ez \x805\r\nb@x.io,Ann\r\n"
	long := strings.Repeat("x@x.io,plain ascii\n", 5000) // 95 KB before the first non-ASCII byte
	tests := []struct {
		name, in, enc string
		rows          int
		first         string // name of the first row
	}{
		{"utf-8", text, EncodingUTF8, 2, "Zoë Ñúñez €5"},
		{"utf-8 bom", "\xEF\xBB\xBF" + text, EncodingUTF8BOM, 2, "Zoë Ñúñez €5"},
		{"utf-16le", string(utf16Bytes(text, binary.LittleEndian, true)), EncodingUTF16LE, 2, "Zoë Ñúñez €5"},
		{"utf-16be", string(utf16Bytes(text, binary.BigEndian, true)), EncodingUTF16BE, 2, "Zoë Ñúñez €5"},
		{"windows-1252", win1252, EncodingWindows1252, 2, "Zoë Ñúñez €5"},
		{"ascii", "email,name\na@x.io,Ann\n", EncodingUTF8, 1, "Ann"},
		{"windows-1252 after 64 KiB of ascii", "email,name\n" + long + "c@x.io,Ren\xe9e\n", EncodingWindows1252, 5001, "plain ascii"},
		{"utf-8 after 64 KiB of ascii", "email,name\n" + long + "c@x.io,Renée\n", EncodingUTF8, 5001, "plain ascii"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, src, err := readAll(t, "csv", tc.in, Options{})
			if err != nil {
				t.Fatal(err)
			}
			d := src.Detected()
			if d.Encoding != tc.enc || d.Delimiter != "," || !d.HasHeader {
				t.Errorf("detected = %+v, want encoding %s", d, tc.enc)
			}
			if fmt.Sprint(src.Header()) != "[email name]" {
				t.Errorf("header = %q", src.Header())
			}
			if len(recs) != tc.rows || recs[0].Cells["name"] != tc.first {
				t.Fatalf("%d records, first %q", len(recs), recs[0].Cells["name"])
			}
			if last := recs[len(recs)-1].Cells["name"]; len(recs) > 2 && last != "Renée" {
				t.Errorf("last = %q", last)
			}
		})
	}
	// JSON and JSONL read UTF-16 with a byte-order mark too.
	recs, src, err := readAll(t, "jsonl", string(utf16Bytes(`{"name":"Zoë"}`+"\n", binary.LittleEndian, true)), Options{})
	if err != nil || len(recs) != 1 || recs[0].Values["name"] != "Zoë" || src.Detected().Encoding != EncodingUTF16LE {
		t.Fatalf("jsonl utf-16: %+v %v", recs, err)
	}
	recs, src, err = readAll(t, "json", string(utf16Bytes(`[{"name":"Zoë"}]`, binary.BigEndian, true)), Options{})
	if err != nil || len(recs) != 1 || recs[0].Values["name"] != "Zoë" || src.Detected() != (Detected{Encoding: EncodingUTF16BE}) {
		t.Fatalf("json utf-16: %+v %v", recs, err)
	}
	// JSON is UTF-8 by definition: no Windows-1252 fallback.
	if _, _, err := readAll(t, "jsonl", "{\"a\":\"caf\xe9\"}\n", Options{}); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Fatalf("jsonl latin-1: %v", err)
	}
}

func TestCSVDelimiters(t *testing.T) {
	tests := []struct {
		name, in string
		opts     Options
		delim    string
		header   []string
		first    map[string]string
	}{
		{"comma", "email,name,age\na@x.io,Ann,3\n", Options{}, ",", []string{"email", "name", "age"}, map[string]string{"email": "a@x.io", "name": "Ann", "age": "3"}},
		{"semicolon", "email;name;age\na@x.io;Ann, Jr;3,5\n", Options{}, ";", []string{"email", "name", "age"}, map[string]string{"email": "a@x.io", "name": "Ann, Jr", "age": "3,5"}},
		{"tab", "email\tname\na@x.io\tAnn; Bo\n", Options{}, "\t", []string{"email", "name"}, map[string]string{"email": "a@x.io", "name": "Ann; Bo"}},
		{"pipe", "email|name\na@x.io|Ann, Jr\n", Options{}, "|", []string{"email", "name"}, map[string]string{"email": "a@x.io", "name": "Ann, Jr"}},
		{"colon", "email:name\na@x.io:Ann\n", Options{}, ":", []string{"email", "name"}, map[string]string{"email": "a@x.io", "name": "Ann"}},
		{"quoted delimiters do not fool the sniffer",
			"email;note\n\"a@x.io\";\"x,y,z,w\"\n\"b@x.io\";\"1,2,3,4\"\n\"c@x.io\";\"p,q,\nr,s\"\n", Options{}, ";",
			[]string{"email", "note"}, map[string]string{"email": "a@x.io", "note": "x,y,z,w"}},
		{"times in a comma file", "email,at\na@x.io,12:30\nb@x.io,13:45:10\n", Options{}, ",", []string{"email", "at"}, map[string]string{"email": "a@x.io", "at": "12:30"}},
		{"consistency wins over the header alone", "a;b,c;d\n1;2,3\n4;5,6\n", Options{}, ",", []string{"a;b", "c;d"}, map[string]string{"a;b": "1;2", "c;d": "3"}},
		{"one column", "email\na@x.io\nb@x.io\n", Options{}, ",", []string{"email"}, map[string]string{"email": "a@x.io"}},
		{"one column with commas in quotes", "note\n\"a, b\"\n\"c, d\"\n", Options{}, ",", []string{"note"}, map[string]string{"note": "a, b"}},
		{"blank lines skipped", "\n\nemail;name\n;\n\na@x.io;Ann\n", Options{}, ";", []string{"email", "name"}, map[string]string{"email": "a@x.io", "name": "Ann"}},
		{"option wins", "email;name\na@x.io;Ann\n", Options{Delimiter: ','}, ",", []string{"email;name"}, map[string]string{"email;name": "a@x.io;Ann"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, src, err := readAll(t, "csv", tc.in, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if d := src.Detected(); d.Delimiter != tc.delim {
				t.Errorf("delimiter = %q, want %q", d.Delimiter, tc.delim)
			}
			if fmt.Sprint(src.Header()) != fmt.Sprint(tc.header) {
				t.Errorf("header = %q, want %q", src.Header(), tc.header)
			}
			if len(recs) == 0 || recs[0].Err != nil || fmt.Sprint(recs[0].Cells) != fmt.Sprint(tc.first) {
				t.Fatalf("records = %+v", recs)
			}
		})
	}
}

func TestPrepareWarnings(t *testing.T) {
	cust := resource(t, "customers")
	in := "email,name,Company_Code,age\n" +
		" a@x.io , Ann ,c1,  42\n" + // email and name trimmed (two warnings); age silently
		"b@x.io,Bob,c2,7\n" + // none
		"c@x.io,  ,c3,abc\n" // rejected: no warnings on a rejected row
	recs, src, err := readAll(t, "csv", in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMapping(src.Header(), map[string]string{"name": "name"}, cust)
	if err != nil {
		t.Fatal(err)
	}
	row, probs := Prepare(cust, m, recs[0])
	if len(probs) != 0 || row.Data["email"] != "a@x.io" || row.Data["name"] != "Ann" || fmt.Sprint(row.Data["age"]) != "42" {
		t.Fatalf("row 1 = %+v %v", row, probs)
	}
	want := []rows.Problem{
		{Code: WarnTrimmed, Field: "email", Message: "email: surrounding whitespace removed"},
		{Code: WarnTrimmed, Field: "name", Message: "name: surrounding whitespace removed"},
	}
	if fmt.Sprint(row.Warnings) != fmt.Sprint(want) {
		t.Errorf("warnings = %+v", row.Warnings)
	}
	if keys, _ := cust.Keys(row.Data); keys["email"] != "a@x.io" {
		t.Errorf("key = %v", keys)
	}
	if row, _ := Prepare(cust, m, recs[1]); row.Warnings != nil {
		t.Errorf("row 2 warnings = %+v", row.Warnings)
	}
	if row, probs := Prepare(cust, m, recs[2]); len(probs) == 0 || row.Warnings != nil {
		t.Errorf("row 3 = %+v %v", row, probs)
	}
	// A column renamed by column_mapping is named in the message.
	m2, err := NewMapping([]string{"E-mail", "name"}, map[string]string{"email": "E-mail"}, cust)
	if err != nil {
		t.Fatal(err)
	}
	row, _ = Prepare(cust, m2, Record{Num: 1, Cells: map[string]string{"E-mail": "a@x.io ", "name": "Ann"}})
	if len(row.Warnings) != 1 || row.Warnings[0].Message != `column "E-mail": email: surrounding whitespace removed` {
		t.Errorf("mapped warnings = %+v", row.Warnings)
	}
}

func TestUnknownColumnWarnings(t *testing.T) {
	notes := openResource(t) // additionalProperties allowed
	in := "id,text,Extra,_row\n1,hi,x,9\n2,ho,,9\n3,  ,   ,\n"
	recs, src, err := readAll(t, "csv", in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMapping(src.Header(), nil, notes)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rec := range recs {
		row, probs := Prepare(notes, m, rec)
		if len(probs) != 0 {
			t.Fatalf("row %d: %v", rec.Num, probs)
		}
		if _, ok := row.Data["Extra"]; ok {
			t.Errorf("row %d: ignored column imported: %v", rec.Num, row.Data)
		}
		got = append(got, fmt.Sprint(row.Warnings))
	}
	want := []string{
		`[{warning.unknown_column Extra Extra: column is not a field of notes; its value was not imported}]`,
		`[]`, // blank cell: nothing was lost
		`[]`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("warnings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// JSON: keys, same rule.
	jm, err := NewMapping(nil, nil, notes)
	if err != nil {
		t.Fatal(err)
	}
	jrecs, _, err := readAll(t, "jsonl", "{\"id\":1,\"text\":\"a \",\"zip\":\"1\",\"nil\":null,\"blank\":\" \",\"_x\":1}\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	row, probs := Prepare(notes, jm, jrecs[0])
	var codes []string
	for _, w := range row.Warnings {
		codes = append(codes, w.Code+":"+w.Field)
	}
	if len(probs) != 0 || fmt.Sprint(codes) != "[warning.trimmed:text warning.unknown_column:zip]" || row.Data["text"] != "a" {
		t.Errorf("json row = %+v %v", row, probs)
	}
	if row.Warnings[1].Message != "zip: key is not a field of notes; its value was not imported" {
		t.Errorf("message = %q", row.Warnings[1].Message)
	}
}
