package resources_test

import (
	"encoding/json"
	"testing"

	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/rows"
)

// FuzzCoerce feeds any cell to every field of the customers resource, as a
// CSV cell and as a JSON value: coercion never panics, a refusal is a
// specific, bounded problem, and what it accepts validates or is refused
// with a problem, never an error of another kind.
func FuzzCoerce(f *testing.F) {
	reg, err := resources.LoadDir("../../resources")
	if err != nil {
		f.Fatal(err)
	}
	res, _ := reg.Get("customers")
	fields := []string{"email", "external_id", "name", "age", "vip", "company_code", "signed_up"}
	for _, s := range []string{"a@x.io", "30", "1e400", "-0", "yes", "2024-02-30", "", " ", "\x00", `{"a":1}`, "[1,2]", "0x10", "1_000", "NaN", "∞"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cell string) {
		for _, field := range fields {
			v, warn, p := res.CoerceCell(field, cell)
			for _, q := range []*rows.Problem{warn, p} {
				if q != nil && (q.Code == "" || len(q.Message) > 4096) {
					t.Fatalf("%s %q: problem %q of %d bytes", field, cell, q.Code, len(q.Message))
				}
			}
			if p == nil {
				problems := res.Validate(map[string]any{field: v, "email": "a@x.io", "name": "A"})
				for _, q := range problems {
					if q.Code == "" || len(q.Message) > 4096 {
						t.Fatalf("%s %q: validation problem %q of %d bytes", field, cell, q.Code, len(q.Message))
					}
				}
			}
			var jv any
			if json.Unmarshal([]byte(cell), &jv) == nil {
				if _, _, _, p := res.CoerceJSONValue(field, jv); p != nil && (p.Code == "" || len(p.Message) > 4096) {
					t.Fatalf("%s %s: JSON problem %q of %d bytes", field, cell, p.Code, len(p.Message))
				}
			}
		}
	})
}
