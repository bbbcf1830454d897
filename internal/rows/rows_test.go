package rows_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/rows"
)

func encodeAll(t *testing.T, vals ...any) (*bytes.Buffer, *rows.Encoder) {
	t.Helper()
	var buf bytes.Buffer
	enc := rows.NewEncoder(&buf)
	for _, v := range vals {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &buf, enc
}

func TestRowRoundTrip(t *testing.T) {
	in := []rows.Row{
		{Num: 1, Data: map[string]any{"email": "a@x.io", "age": float64(30), "vip": true},
			Raw: json.RawMessage(`{"email":"a@x.io","age":"30","vip":"yes"}`)},
		{Num: 2, Data: map[string]any{"name": "Zoë 東京 🚀", "email": "<b>&amp;</b>"},
			Raw: json.RawMessage(`{"name":"Zoë 東京 🚀","email":"<b>&amp;</b>"}`)},
		{Num: 3, Data: map[string]any{"note": "line one\nline two\r\n\"quoted\", comma"},
			Raw: json.RawMessage(`{"note":"line one\nline two\r\n\"quoted\", comma"}`)},
		{Num: 1_000_000, ID: "rec_0123", Op: rows.OpUpdate,
			Record:   map[string]any{"email": "b@x.io", "name": "Bob"},
			Warnings: []rows.Problem{{Code: "w.code", Field: "name", Message: "careful"}}},
		{Num: 9_007_199_254_740_993}, // > 2^53: an int64 row number must survive exactly
	}
	vals := make([]any, len(in))
	for i := range in {
		vals[i] = &in[i]
	}
	buf, enc := encodeAll(t, vals...)
	if enc.Count() != int64(len(in)) {
		t.Errorf("Count = %d, want %d", enc.Count(), len(in))
	}
	text := buf.String()
	if n := strings.Count(text, "\n"); n != len(in) {
		t.Fatalf("%d lines for %d rows (a value's newline must be escaped):\n%s", n, len(in), text)
	}
	if !strings.Contains(text, "<b>&amp;</b>") {
		t.Errorf("HTML characters were escaped; the batch should keep them verbatim:\n%s", text)
	}
	dec := rows.NewDecoder(buf)
	for i, want := range in {
		var got rows.Row
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if got.Num != want.Num || got.ID != want.ID || got.Op != want.Op {
			t.Errorf("row %d: num/id/op %d/%q/%q, want %d/%q/%q", i, got.Num, got.ID, got.Op, want.Num, want.ID, want.Op)
		}
		if !bytes.Equal(got.Raw, want.Raw) {
			t.Errorf("row %d: raw %s, want verbatim %s", i, got.Raw, want.Raw)
		}
		// Compared as JSON: how numbers are represented in memory is not the contract.
		if !sameJSON(t, got.Data, want.Data) || !sameJSON(t, got.Record, want.Record) ||
			!reflect.DeepEqual(got.Warnings, want.Warnings) {
			t.Errorf("row %d: got %+v, want %+v", i, got, want)
		}
	}
	var extra rows.Row
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last row: %v, want io.EOF", err)
	}
}

// Numbers are coerced to json.Number by prevalidation precisely so that no
// precision is lost (resources.Coerce); the batch format between phases must
// keep them exact too.
func TestRowNumbersKeepPrecision(t *testing.T) {
	for _, n := range []string{"12345678901234567891", "9007199254740993", "0.10000000000000000000001", "3.141592653589793238462643"} {
		buf, _ := encodeAll(t, rows.Row{Num: 1, Data: map[string]any{"v": json.Number(n)}})
		var got rows.Row
		if err := rows.NewDecoder(buf).Decode(&got); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(got.Data["v"])
		if string(b) != n {
			t.Errorf("number %s came back as %s (%T)", n, b, got.Data["v"])
		}
	}
}

func TestRejectRoundTrip(t *testing.T) {
	in := []rows.Reject{
		{Row: 7, Phase: "prevalidation", Code: "schema.type", Field: "age", Message: `age: expected integer, got "x"`,
			Data: json.RawMessage(`{"age":"x","name":"Ann\nMulti"}`)},
		{Row: 8, Phase: "preparsing", Code: "duplicate", Field: "email", Message: "dup ✓", Skipped: true},
		{Row: 9, Phase: "processing", Code: "warn", Message: "m", Warning: true, Data: json.RawMessage(`["a","b"]`)},
	}
	buf, enc := encodeAll(t, in[0], in[1], in[2])
	if enc.Count() != 3 {
		t.Errorf("Count = %d", enc.Count())
	}
	dec := rows.NewDecoder(buf)
	for i, want := range in {
		var got rows.Reject
		if err := dec.Decode(&got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("reject %d: got %+v, want %+v", i, got, want)
		}
	}
	// Field is always present (errors.csv has a _field column even when empty).
	buf, _ = encodeAll(t, rows.Reject{Row: 1, Phase: "p", Code: "c", Message: "m"})
	if !strings.Contains(buf.String(), `"field":""`) {
		t.Errorf("empty field omitted: %s", buf)
	}
}

func TestDecoderSkipsBlankLines(t *testing.T) {
	input := "\n\n{\"n\":1}\n\n\n{\"n\":2}\n\n"
	dec := rows.NewDecoder(strings.NewReader(input))
	var nums []int64
	for {
		var r rows.Row
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		nums = append(nums, r.Num)
	}
	if !reflect.DeepEqual(nums, []int64{1, 2}) {
		t.Fatalf("rows %v, want [1 2]", nums)
	}
	// An empty batch is no rows, not an error; so is a batch without a final newline.
	for _, s := range []string{"", "\n", `{"n":5}`} {
		dec := rows.NewDecoder(strings.NewReader(s))
		var r rows.Row
		err := dec.Decode(&r)
		if s == `{"n":5}` {
			if err != nil || r.Num != 5 {
				t.Errorf("%q: %v %d", s, err, r.Num)
			}
			err = dec.Decode(&r)
		}
		if !errors.Is(err, io.EOF) {
			t.Errorf("%q: %v, want io.EOF", s, err)
		}
	}
}

func TestDecoderLongLine(t *testing.T) {
	big := strings.Repeat("é", 1<<19) // 1 MiB of UTF-8
	buf, _ := encodeAll(t, rows.Row{Num: 1, Data: map[string]any{"blob": big}}, rows.Row{Num: 2})
	if buf.Len() < 1<<20 {
		t.Fatalf("line is only %d bytes", buf.Len())
	}
	dec := rows.NewDecoder(buf)
	var r rows.Row
	if err := dec.Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Data["blob"] != big {
		t.Fatalf("1 MiB value changed (len %d)", len(r.Data["blob"].(string)))
	}
	if err := dec.Decode(&r); err != nil || r.Num != 2 {
		t.Fatalf("row after the long one: %v %d", err, r.Num)
	}
}

func TestDecoderErrorNamesLine(t *testing.T) {
	cases := []struct {
		input string
		line  string
		good  int
	}{
		{"{\"n\":1}\n{\"n\":2}\n{not json}\n", "line 3", 2},
		{"\n\n{\"n\":\"one\"}\n", "line 3", 0}, // blank lines still count as lines
		{"{\"n\":1}\n{\"n\":2", "line 2", 1},   // truncated last line
	}
	for _, c := range cases {
		dec := rows.NewDecoder(strings.NewReader(c.input))
		var err error
		good := 0
		for {
			var r rows.Row
			if err = dec.Decode(&r); err != nil {
				break
			}
			good++
		}
		if errors.Is(err, io.EOF) {
			t.Errorf("%q: no error for a malformed line", c.input)
			continue
		}
		if !strings.Contains(err.Error(), c.line) {
			t.Errorf("%q: error %q does not name %s", c.input, err, c.line)
		}
		if good != c.good {
			t.Errorf("%q: %d good rows before the error, want %d", c.input, good, c.good)
		}
	}
}

func TestEncoderCount(t *testing.T) {
	var buf bytes.Buffer
	enc := rows.NewEncoder(&buf)
	if enc.Count() != 0 {
		t.Fatalf("fresh encoder Count = %d", enc.Count())
	}
	for i := 1; i <= 5; i++ {
		if err := enc.Encode(rows.Row{Num: int64(i)}); err != nil {
			t.Fatal(err)
		}
		if enc.Count() != int64(i) {
			t.Fatalf("after %d encodes Count = %d", i, enc.Count())
		}
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 5 {
		t.Fatalf("%d lines after Flush, want 5", n)
	}
}

func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

// A row's problems as one: the first names code and field, the message
// holds all of them, in order.
func TestSummary(t *testing.T) {
	got := rows.Summary([]rows.Problem{
		{Code: "coerce.number", Field: "age", Message: "age: \"x\" is not a number"},
		{Code: "schema.required", Field: "email", Message: "email: required"},
	})
	want := rows.Problem{Code: "coerce.number", Field: "age", Message: "age: \"x\" is not a number; email: required"}
	if got != want {
		t.Fatalf("Summary = %+v, want %+v", got, want)
	}
	if one := (rows.Problem{Code: "c", Field: "f", Message: "m"}); rows.Summary([]rows.Problem{one}) != one {
		t.Fatal("the summary of one problem is not that problem")
	}
	if (rows.Summary(nil) != rows.Problem{}) {
		t.Fatal("the summary of no problem is not empty")
	}
}
