package jsonenc

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"testing"
)

// Append writes what encoding/json writes, on random values of every kind
// rows carry, strings with every escape included, and fails where it fails.
func TestAppendMatchesEncodingJSON(t *testing.T) {
	rnd := rand.New(rand.NewSource(3))
	pieces := []string{"a", "é", "\"", "\\", "<", ">", "&", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f",
		"\u2028", "\u2029", "\xff", "\xe2\x82", "😀", " ", "/"}
	str := func() string {
		var b []byte
		for n := rnd.Intn(6); n > 0; n-- {
			b = append(b, pieces[rnd.Intn(len(pieces))]...)
		}
		return string(b)
	}
	numbers := []string{"0", "-0", "12", "-3.25", "1e9", "1E-9", "2.5e+3", "", "01", "1.", ".5", "-", "1e", "+1", "abc", "1.5e"}
	var value func(depth int) any
	value = func(depth int) any {
		switch rnd.Intn(9) {
		case 0:
			return nil
		case 1:
			return rnd.Intn(2) == 0
		case 2, 3:
			return str()
		case 4:
			return json.Number(numbers[rnd.Intn(len(numbers))])
		case 5:
			return float64(rnd.Intn(1000)) / 7
		case 6:
			if depth > 2 {
				return str()
			}
			var a []any
			if rnd.Intn(5) > 0 {
				a = []any{}
			}
			for n := rnd.Intn(4); n > 0; n-- {
				a = append(a, value(depth+1))
			}
			return a
		case 7:
			return map[string]string{str(): str()}
		default:
			if depth > 2 {
				return json.Number("7")
			}
			var m map[string]any
			if rnd.Intn(8) > 0 {
				m = map[string]any{}
				for n := rnd.Intn(6); n > 0; n-- {
					m[str()] = value(depth + 1)
				}
			}
			return m
		}
	}
	var failures int
	for i := 0; i < 50000; i++ {
		v := value(0)
		want, wantErr := json.Marshal(v)
		got, err := Append(nil, v)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%#v: error %v, encoding/json %v", v, err, wantErr)
		}
		if wantErr != nil {
			failures++
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%#v:\n got %s\nwant %s", v, got, want)
		}
		if m, ok := v.(map[string]string); ok {
			if got := AppendStrings(nil, m); !bytes.Equal(got, want) {
				t.Fatalf("AppendStrings %#v:\n got %s\nwant %s", m, got, want)
			}
		}
	}
	if failures == 0 {
		t.Errorf("no value made encoding/json fail: the error path is untested")
	}
}

func BenchmarkAppend(b *testing.B) {
	rec := map[string]any{"email": "user0000001@example1.com", "external_id": "EXT-0000001", "first_name": "Gustavo",
		"last_name": "Last27520", "age": json.Number("12"), "vip": false, "score": json.Number("2.83"),
		"company_code": "C027", "joined": "2022-07-20"}
	b.Run("jsonenc", func(b *testing.B) {
		var buf []byte
		for i := 0; i < b.N; i++ {
			buf, _ = Append(buf[:0], rec)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_, _ = json.Marshal(rec)
		}
	})
}
