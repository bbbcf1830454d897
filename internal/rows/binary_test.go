package rows_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"reflect"
	"testing"

	"github.com/inlet-dev/inlet/internal/rows"
)

func writeRows(t testing.TB, in []rows.Row) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := rows.NewRowWriter(&buf)
	for i := range in {
		if err := w.Write(&in[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.Count() != int64(len(in)) {
		t.Fatalf("Count = %d, want %d", w.Count(), len(in))
	}
	return buf.Bytes()
}

func readRows(t testing.TB, b []byte) []rows.Row {
	t.Helper()
	return readEvery[rows.Row](t, b, (*rows.Decoder).Decode)
}

// readEvery reads every row of batch b with read (Decode, DecodeRaw).
func readEvery[T any](t testing.TB, b []byte, read func(*rows.Decoder, any) error) []T {
	t.Helper()
	dec := rows.NewDecoder(bytes.NewReader(b))
	var out []T
	for {
		var r T
		err := read(dec, &r)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("row %d: %v", len(out)+1, err)
		}
		out = append(out, r)
	}
}

// randomValue builds the values decoding and coercion produce: strings,
// json.Number, bools, null, and (from JSON files) nested arrays and objects.
func randomValue(rnd *rand.Rand, depth int) any {
	switch k := rnd.Intn(8); {
	case k == 0:
		return nil
	case k == 1:
		return rnd.Intn(2) == 0
	case k == 2:
		return json.Number(fmt.Sprint(rnd.Int63()) + "12345678901234567890")
	case k == 3:
		return json.Number(fmt.Sprintf("%.6f", rnd.Float64()*1e6))
	case k == 4 && depth < 3:
		a := make([]any, rnd.Intn(4))
		for i := range a {
			a[i] = randomValue(rnd, depth+1)
		}
		return a
	case k == 5 && depth < 3:
		m := map[string]any{}
		for i := rnd.Intn(4); i > 0; i-- {
			m[fmt.Sprintf("k%d", rnd.Intn(10))] = randomValue(rnd, depth+1)
		}
		return m
	default:
		b := make([]byte, rnd.Intn(40))
		rnd.Read(b)
		return "s\n\"<&>é東" + string(bytes.ToValidUTF8(b, []byte("?")))
	}
}

func randomRows(n int) []rows.Row {
	rnd := rand.New(rand.NewSource(7))
	out := make([]rows.Row, n)
	for i := range out {
		r := rows.Row{Num: int64(i) * 977, ID: fmt.Sprintf("rec_%d", rnd.Int63())}
		if rnd.Intn(3) > 0 {
			r.Data = map[string]any{}
			for j := rnd.Intn(12); j > 0; j-- {
				r.Data[fmt.Sprintf("field_%d", rnd.Intn(15))] = randomValue(rnd, 0)
			}
			r.Raw, _ = json.Marshal(map[string]string{"cell": fmt.Sprint(i)})
		}
		switch rnd.Intn(4) {
		case 0:
			r.Op, r.Record = rows.OpCreate, r.Data
		case 1:
			r.Op, r.Record = rows.OpUpdate, map[string]any{"merged": json.Number("1"), "x": "y"}
		}
		if rnd.Intn(5) == 0 {
			r.Warnings = []rows.Problem{{Code: "w", Field: "f", Message: "m"}, {Code: "w2", Message: "n"}}
		}
		out[i] = r
	}
	return out
}

// The batch format must give back exactly what the NDJSON format gave back:
// a differential test of both readers on the same rows.
func TestRowBatchMatchesNDJSON(t *testing.T) {
	in := randomRows(2000)
	var nd bytes.Buffer
	enc := rows.NewEncoder(&nd)
	for i := range in {
		if err := enc.Encode(&in[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	want := readRows(t, nd.Bytes())
	bin := writeRows(t, in)
	got := readRows(t, bin)
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		// Raw is compacted by encoding/json and kept as is by the batch format;
		// both are the same JSON.
		g, w := got[i], want[i]
		if !bytes.Equal(g.Raw, in[i].Raw) {
			t.Fatalf("row %d raw %s, want %s", i, g.Raw, in[i].Raw)
		}
		g.Raw, w.Raw = nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("row %d:\n got %#v\nwant %#v", i, g, w)
		}
	}
	if len(bin) >= nd.Len() {
		t.Errorf("batch format %d bytes, NDJSON %d: expected smaller", len(bin), nd.Len())
	}
}

// Parsing's creates carry the same map as Data and Record: written once,
// read back as one map, and a Record of its own stays its own.
func TestRowBatchRecordSharesData(t *testing.T) {
	data := map[string]any{"email": "a@x.io"}
	got := readRows(t, writeRows(t, []rows.Row{
		{Num: 1, Data: data, Record: data},
		{Num: 2, Data: data, Record: map[string]any{"email": "a@x.io"}},
	}))
	if !reflect.DeepEqual(got[0].Record, data) || !reflect.DeepEqual(got[1].Record, data) {
		t.Fatalf("records %v %v", got[0].Record, got[1].Record)
	}
	if reflect.ValueOf(got[0].Record).UnsafePointer() != reflect.ValueOf(got[0].Data).UnsafePointer() {
		t.Error("a shared record was read back as a copy")
	}
	if reflect.ValueOf(got[1].Record).UnsafePointer() == reflect.ValueOf(got[1].Data).UnsafePointer() {
		t.Error("a record of its own was read back as Data")
	}
}

// A damaged batch is an error naming the row, never a panic or a huge allocation.
func TestRowBatchCorruptionIsAnError(t *testing.T) {
	good := writeRows(t, randomRows(50))
	rnd := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		b := append([]byte(nil), good...)
		switch i % 3 {
		case 0:
			b = b[:7+rnd.Intn(len(b)-7)] // truncated
		default:
			for j := 0; j < 1+rnd.Intn(4); j++ {
				b[7+rnd.Intn(len(b)-7)] = byte(rnd.Intn(256))
			}
		}
		dec := rows.NewDecoder(bytes.NewReader(b))
		for {
			var r rows.Row
			err := dec.Decode(&r)
			if err != nil {
				break
			}
		}
	}
	// A truncated batch ends with an error, not a quiet EOF.
	dec := rows.NewDecoder(bytes.NewReader(good[:len(good)-3]))
	var err error
	for err == nil {
		var r rows.Row
		err = dec.Decode(&r)
	}
	if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated batch read as complete: %v", err)
	}
}

func TestRowBatchHoldsRowsOnly(t *testing.T) {
	b := writeRows(t, []rows.Row{{Num: 1}})
	var rej rows.Reject
	if err := rows.NewDecoder(bytes.NewReader(b)).Decode(&rej); err == nil {
		t.Fatal("decoded a row batch into a Reject")
	}
}

// contactRows are n rows as prevalidation makes them of a contacts file.
func contactRows(n int) []rows.Row {
	in := make([]rows.Row, n)
	for i := range in {
		d := map[string]any{"email": fmt.Sprintf("user%07d@example.com", i), "external_id": fmt.Sprintf("EXT-%07d", i),
			"first_name": "Chloe", "last_name": "Last74607", "age": json.Number("97"), "vip": true,
			"score": json.Number("25.51"), "company_code": "C016", "joined": "2024-08-21"}
		raw, _ := json.Marshal(d)
		in[i] = rows.Row{Num: int64(i + 1), Data: d, Raw: raw}
	}
	return in
}

func BenchmarkRowCodec(b *testing.B) {
	in := contactRows(2000)
	for i := range in {
		in[i].ID, in[i].Op, in[i].Record = "rec_01M8NMEPAJV6PVBVB5CCEG0RZ7", rows.OpCreate, in[i].Data
	}
	for _, f := range []struct {
		name  string
		write func(io.Writer, []rows.Row) error
	}{
		{"ndjson", func(w io.Writer, rs []rows.Row) error {
			e := rows.NewEncoder(w)
			for i := range rs {
				if err := e.Encode(&rs[i]); err != nil {
					return err
				}
			}
			return e.Flush()
		}},
		{"batch", func(w io.Writer, rs []rows.Row) error {
			e := rows.NewRowWriter(w)
			for i := range rs {
				if err := e.Write(&rs[i]); err != nil {
					return err
				}
			}
			return e.Flush()
		}},
	} {
		b.Run(f.name, func(b *testing.B) {
			var buf bytes.Buffer
			for i := 0; i < b.N; i++ {
				buf.Reset()
				if err := f.write(&buf, in); err != nil {
					b.Fatal(err)
				}
				dec := rows.NewDecoder(bytes.NewReader(buf.Bytes()))
				var r rows.Row
				for dec.Decode(&r) == nil {
				}
			}
			b.ReportMetric(float64(len(in)*b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(buf.Len())/float64(len(in)), "B/row")
		})
	}
}

// Reading with Only gives each row's Num, ID, Op and the chosen fields of
// Data exactly as a full read does, and nothing else; names first written in
// skipped parts (a Record, a nested object, an unchosen field) still resolve
// in later rows.
func TestRowBatchOnly(t *testing.T) {
	in := randomRows(1500)
	// A name first seen in an own Record, then chosen in a later row's Data.
	in[3].Op, in[3].Record = rows.OpUpdate, map[string]any{"late": "r", "k9": map[string]any{"deep": true}}
	in[4].Data = map[string]any{"late": "d", "deep": json.Number("1"), "field_1": "x"}
	b := writeRows(t, in)
	full := readRows(t, b)
	for _, only := range [][]string{nil, {"field_1"}, {"field_3", "late", "deep", "merged"}} {
		dec := rows.NewDecoder(bytes.NewReader(b))
		dec.Only(only...)
		for i := 0; ; i++ {
			var r rows.Row
			err := dec.Decode(&r)
			if errors.Is(err, io.EOF) {
				if i != len(full) {
					t.Fatalf("only %v: %d rows, want %d", only, i, len(full))
				}
				break
			}
			if err != nil {
				t.Fatalf("only %v: row %d: %v", only, i, err)
			}
			want := full[i]
			if r.Num != want.Num || r.ID != want.ID || r.Op != want.Op || r.Raw != nil || r.Warnings != nil {
				t.Fatalf("only %v: row %d: %+v, want head of %+v", only, i, r, want)
			}
			pick := func(m map[string]any) map[string]any {
				out := map[string]any{}
				for _, f := range only {
					if v, ok := m[f]; ok {
						out[f] = v
					}
				}
				if len(out) == 0 {
					return nil
				}
				return out
			}
			if !reflect.DeepEqual(r.Data, pick(want.Data)) {
				t.Fatalf("only %v: row %d: data %v, want %v", only, i, r.Data, pick(want.Data))
			}
			if !reflect.DeepEqual(r.Record, pick(want.Record)) {
				t.Fatalf("only %v: row %d: record %v, want %v", only, i, r.Record, pick(want.Record))
			}
		}
	}
	if full[4].Data["late"] != "d" {
		t.Fatal("the late name was not in the rows")
	}
}
