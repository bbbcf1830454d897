package phases

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

// decodeStored reads what encoding/json reads (numbers as json.Number), on
// records as both stores give them back: compact, and PostgreSQL's jsonb text
// with its spaces; and refuses what it refuses.
func TestDecodeStoredMatchesEncodingJSON(t *testing.T) {
	rnd := rand.New(rand.NewSource(11))
	strs := []string{"", "a", "é東", `q"uote`, `back\\slash`, "\u2028", "<&>", "tab\tnl\n", "\\u00e9"}
	nums := []string{"0", "-1", "12.50", "1e3", "-2.5E-7", "12345678901234567890123", "3.0"}
	var value func(d int) string
	value = func(d int) string {
		switch rnd.Intn(7) {
		case 0:
			return "null"
		case 1:
			return []string{"true", "false"}[rnd.Intn(2)]
		case 2:
			return nums[rnd.Intn(len(nums))]
		case 3:
			if d < 3 {
				var parts []string
				for n := rnd.Intn(4); n > 0; n-- {
					parts = append(parts, value(d+1))
				}
				return "[" + strings.Join(parts, ", ") + "]"
			}
		case 4:
			if d < 3 {
				return object(rnd, d+1, value, strs)
			}
		}
		b, _ := json.Marshal(strs[rnd.Intn(len(strs))])
		return string(b)
	}
	for i := 0; i < 20000; i++ {
		doc := object(rnd, 0, value, strs)
		if i%50 == 0 {
			doc = []string{"null", "[]", "{", `{"a":}`, `{"a":1}x`, `"s"`, `{"a":1,}`, `{"a":01}`}[i/50%8]
		}
		var want map[string]any
		dec := json.NewDecoder(bytes.NewReader([]byte(doc)))
		dec.UseNumber()
		wantErr := dec.Decode(&want) // one value, as the store gives one
		got, err := decodeStored([]byte(doc))
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%s: error %v, encoding/json %v", doc, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %#v\nwant %#v", doc, got, want)
		}
	}
}

func object(rnd *rand.Rand, d int, value func(int) string, strs []string) string {
	var parts []string
	for n := rnd.Intn(6); n > 0; n-- {
		k, _ := json.Marshal(fmt.Sprintf("%s%d", strs[rnd.Intn(len(strs))], rnd.Intn(5)))
		parts = append(parts, string(k)+": "+value(d))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
