package rows_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"reflect"
	"testing"

	"github.com/inlet-dev/inlet/internal/jsonenc"
	"github.com/inlet-dev/inlet/internal/rows"
)

func readRaws(t testing.TB, b []byte) []rows.Raw {
	t.Helper()
	return readEvery[rows.Raw](t, b, func(d *rows.Decoder, r any) error { return d.DecodeRaw(r.(*rows.Raw)) })
}

// rawTestRows are randomRows plus the values only encoding/json writes: a
// Go value of another type (stored as its JSON) and an invalid number.
func rawTestRows() []rows.Row {
	in := randomRows(1500)
	in[5].Data = map[string]any{"when": struct{ At string }{"noon"}, "n": json.Number("7")}
	in[5].Op, in[5].Record = rows.OpCreate, in[5].Data
	in[6].Data = map[string]any{"bad": json.Number("1x")}
	in[7].Op, in[7].Record = rows.OpUpdate, map[string]any{"deep": map[string]any{"z": []any{}, "a": map[string]any{}}, "": "empty name"}
	return in
}

func sameErr(a, b error) bool { return (a == nil) == (b == nil) }

// Everything a Raw gives is what a full read gives: the row, chosen fields,
// warnings, and the JSON of Data and Record byte for byte as jsonenc
// writes the decoded maps (errors included).
func TestRawMatchesRow(t *testing.T) {
	in := rawTestRows()
	b := writeRows(t, in)
	full := readRows(t, b)
	raws := readRaws(t, b)
	if len(raws) != len(full) {
		t.Fatalf("%d raw rows, want %d", len(raws), len(full))
	}
	only := map[string]bool{"field_1": true, "field_7": true, "merged": true, "deep": true}
	pick := func(m map[string]any) map[string]any {
		out := map[string]any{}
		for f := range only {
			if v, ok := m[f]; ok {
				out[f] = v
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	for i := range raws {
		r, want := &raws[i], full[i]
		if r.Num != want.Num || r.ID != want.ID || r.Op != want.Op {
			t.Fatalf("row %d head %d %q %q, want %+v", i, r.Num, r.ID, r.Op, want)
		}
		got, err := r.Row()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("row %d: %v\n got %#v\nwant %#v", i, err, got, want)
		}
		if f := r.Fields(only); !reflect.DeepEqual(f, pick(want.Data)) {
			t.Fatalf("row %d fields %v, want %v", i, f, pick(want.Data))
		}
		if f := r.RecordFields(only); !reflect.DeepEqual(f, pick(want.Record)) {
			t.Fatalf("row %d record fields %v, want %v", i, f, pick(want.Record))
		}
		if r.HasWarnings() != (len(want.Warnings) > 0) {
			t.Fatalf("row %d HasWarnings %v", i, r.HasWarnings())
		}
		for _, part := range []struct {
			name string
			got  func([]byte) ([]byte, error)
			want map[string]any
		}{{"data", r.AppendDataJSON, want.Data}, {"record", r.AppendRecordJSON, want.Record}} {
			g, gerr := part.got([]byte("prefix:"))
			w, werr := jsonenc.Append([]byte("prefix:"), part.want)
			if !sameErr(gerr, werr) || gerr == nil && !bytes.Equal(g, w) {
				t.Fatalf("row %d %s JSON:\n got %s (%v)\nwant %s (%v)", i, part.name, g, gerr, w, werr)
			}
		}
	}
	if _, err := raws[6].AppendDataJSON(nil); err == nil {
		t.Error("an invalid number was written as JSON")
	}
}

// A batch written with WriteRaw, rows dropped, heads changed and records
// replaced, reads back as the same rows written whole would: whether the
// bytes are copied as they are (one source batch) or with their names
// translated (a second source, rows written whole in between), and from
// batches in an earlier format.
func TestWriteRawCopiesRows(t *testing.T) {
	in := rawTestRows()
	var nd bytes.Buffer
	enc := rows.NewEncoder(&nd)
	for i := 8; i < 300; i++ { // rows 5-7 hold what NDJSON cannot
		if err := enc.Encode(&in[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	first := writeRows(t, in[:900])
	second := writeRows(t, append(randomRows(3)[1:], in[900:]...))
	for _, tc := range []struct {
		name    string
		sources [][]byte
		whole   bool // rows written whole in between
	}{
		{"one source", [][]byte{first}, false},
		{"two sources", [][]byte{first, second}, false},
		{"rows written whole in between", [][]byte{first}, true},
		{"ndjson source", [][]byte{nd.Bytes()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rnd := rand.New(rand.NewSource(3))
			var out bytes.Buffer
			w := rows.NewRowWriter(&out)
			var want []rows.Row
			for _, src := range tc.sources {
				full, raws := readRows(t, src), readRaws(t, src)
				for i := range raws {
					if rnd.Intn(4) == 0 {
						continue // dropped: the names it gave first must still reach later rows
					}
					if tc.whole && rnd.Intn(10) == 0 {
						extra := rows.Row{Num: -1, Data: map[string]any{fmt.Sprintf("whole_%d", i): "x", "field_2": "y"}}
						if err := w.Write(&extra); err != nil {
							t.Fatal(err)
						}
						want = append(want, extra)
					}
					row := full[i]
					id, op, rec := fmt.Sprintf("id_%d", i), rows.OpUnchanged, rows.RecordAs(rnd.Intn(3))
					row.ID, row.Op = id, op
					switch rec {
					case rows.RecordIsData:
						row.Record = row.Data
					case rows.RecordNone:
						row.Record = nil
					}
					if err := w.WriteRaw(&raws[i], id, op, rec); err != nil {
						t.Fatal(err)
					}
					want = append(want, row)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			got := readRows(t, out.Bytes())
			if len(got) != len(want) {
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("row %d:\n got %#v\nwant %#v", i, got[i], want[i])
				}
			}
		})
	}
}

// A batch in the first binary version (names inline where first used) still
// reads, whole and as Raw.
func TestFirstBinaryVersionStillReads(t *testing.T) {
	body := func(num int64, nameDef bool) []byte {
		var b []byte
		b = binaryVarint(b, num)
		b = append(b, 2, 'i', 'd', 0) // id "id", op ""
		b = append(b, 1)              // one field
		if nameDef {
			b = append(b, 0, 5, 'e', 'm', 'a', 'i', 'l')
		} else {
			b = append(b, 1)
		}
		b = append(b, 3, 3, 'a', '@', 'b') // tagString "a@b"
		b = append(b, 0, 0, 0)             // no raw, no record, no warnings
		return append([]byte{byte(len(b))}, b...)
	}
	batch := append([]byte("\x00IRB1\n"), body(1, true)...)
	batch = append(batch, body(2, false)...)
	got := readRows(t, batch)
	want := []rows.Row{{Num: 1, ID: "id", Data: map[string]any{"email": "a@b"}}, {Num: 2, ID: "id", Data: map[string]any{"email": "a@b"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
	raws := readRaws(t, batch)
	if j, err := raws[1].AppendDataJSON(nil); err != nil || string(j) != `{"email":"a@b"}` {
		t.Fatalf("raw JSON %s %v", j, err)
	}
}

func binaryVarint(b []byte, v int64) []byte {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

func BenchmarkRaw(b *testing.B) {
	in := contactRows(2000)
	batch := writeRows(b, in)
	b.Run("decode+write", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			dec := rows.NewDecoder(bytes.NewReader(batch))
			w := rows.NewRowWriter(io.Discard)
			var r rows.Row
			for dec.Decode(&r) == nil {
				r.ID, r.Op = "rec_0123456789abcdef0123456789ab", rows.OpCreate
				_ = w.Write(&r)
			}
		}
		b.ReportMetric(float64(len(in)*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("raw+copy", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			dec := rows.NewDecoder(bytes.NewReader(batch))
			w := rows.NewRowWriter(io.Discard)
			var r rows.Raw
			for dec.DecodeRaw(&r) == nil {
				_ = w.WriteRaw(&r, "rec_0123456789abcdef0123456789ab", rows.OpCreate, rows.RecordKept)
			}
		}
		b.ReportMetric(float64(len(in)*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("decode+jsonenc", func(b *testing.B) {
		var buf []byte
		for i := 0; i < b.N; i++ {
			dec := rows.NewDecoder(bytes.NewReader(batch))
			var r rows.Row
			for dec.Decode(&r) == nil {
				buf, _ = jsonenc.Append(buf[:0], r.Data)
			}
		}
		b.ReportMetric(float64(len(in)*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("raw+transcode", func(b *testing.B) {
		var buf []byte
		for i := 0; i < b.N; i++ {
			dec := rows.NewDecoder(bytes.NewReader(batch))
			var r rows.Raw
			for dec.DecodeRaw(&r) == nil {
				buf, _ = r.AppendDataJSON(buf[:0])
			}
		}
		b.ReportMetric(float64(len(in)*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
