package resources

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// Every keyword the fast validator decides, with edges to hit.
const fastDef = `{"name":"people","key":["email"],"schema":{"type":"object",
	"required":["email","name"],
	"properties":{
		"email":{"type":"string","format":"email"},
		"name":{"type":"string","minLength":2,"maxLength":6},
		"code":{"type":"string","pattern":"^[A-Z]{2}[0-9]?$"},
		"born":{"type":"string","format":"date"},
		"at":{"type":["string","null"],"format":"date-time"},
		"age":{"type":"integer","minimum":0,"maximum":150},
		"score":{"type":"number","minimum":-1.5,"maximum":99.5},
		"count":{"type":"number"},
		"vip":{"type":"boolean"},
		"tier":{"type":"string","enum":["gold","silver"]},
		"note":{},
		"opt":{"type":["integer","null"]}
	},
	"additionalProperties":false}}`

// The fast validator never calls valid what the general validator rejects,
// and accepts most of what it accepts (or it would be no use), on generated
// records that pass and fail every keyword.
func TestFastValidatorAgrees(t *testing.T) {
	reg, err := Load(map[string][]byte{"companies.json": []byte(companiesDef), "people.json": []byte(fastDef)})
	if err != nil {
		t.Fatal(err)
	}
	samples, err := LoadDir("../../resources")
	if err != nil {
		t.Fatal(err)
	}
	var all []*Resource
	all = append(all, reg.List()...)
	all = append(all, samples.List()...)
	rnd := rand.New(rand.NewSource(7))
	for _, res := range all {
		if res.fast == nil {
			t.Fatalf("%s: its schema uses only fast keywords, but has no fast validator", res.Name)
		}
		fields := append([]string{"unknown"}, res.fields...)
		var generalOK, fastOK int
		for i := 0; i < 20000; i++ {
			rec := map[string]any{}
			for _, f := range fields {
				if rnd.Intn(4) > 0 || f == "unknown" && rnd.Intn(8) > 0 {
					continue
				}
				rec[f] = randomValue(rnd, f)
			}
			// Mostly good records, so both paths see many of them.
			if rnd.Intn(3) > 0 {
				for _, f := range res.fields {
					if _, ok := rec[f]; !ok && rnd.Intn(2) == 0 {
						rec[f] = goodValue(rnd, f)
					}
				}
				for _, f := range res.schema.Required {
					rec[f] = goodValue(rnd, f)
				}
			}
			shaped := true // as the pipeline makes records: numbers are json.Number
			for _, v := range rec {
				switch v.(type) {
				case int, float64:
					shaped = false
				}
			}
			general := res.schema.Validate(rec) == nil
			fast := res.fast.valid(rec)
			if fast && !general {
				b, _ := json.Marshal(rec)
				t.Fatalf("%s: fast validator accepts %s, the general one says %v", res.Name, b, res.schema.Validate(rec))
			}
			if general && shaped {
				generalOK++
				if fast {
					fastOK++
				}
			}
		}
		if generalOK < 1000 || fastOK*10 < generalOK*9 {
			t.Errorf("%s: general validator accepted %d records, the fast one %d of them", res.Name, generalOK, fastOK)
		}
	}
}

func goodValue(rnd *rand.Rand, field string) any {
	switch field {
	case "email":
		return fmt.Sprintf("u%d@example.com", rnd.Intn(1000))
	case "name", "first_name":
		return []string{"Ann", "Bob", "Chloé", "Zoë"}[rnd.Intn(4)]
	case "code":
		return []string{"AB", "XY1", "C01", "C1"}[rnd.Intn(4)]
	case "born", "signed_up", "joined":
		return "2024-02-29"
	case "at":
		return "2024-02-29T10:00:00Z"
	case "age", "employees":
		return json.Number(fmt.Sprint(1 + rnd.Intn(100)))
	case "score":
		return json.Number("12.5")
	case "count":
		return json.Number("3")
	case "vip":
		return true
	case "tier":
		return "gold"
	case "country":
		return "DE"
	case "opt":
		return nil
	}
	return "x"
}

func randomValue(rnd *rand.Rand, field string) any {
	switch rnd.Intn(14) {
	case 0:
		return nil
	case 1:
		return rnd.Intn(2) == 0
	case 2:
		return []string{"", "a", "ab", "abcdef", "abcdefg", "é", "ééé", "AB", "AB1", "ab1", "ABC", "gold", "GOLD", "DE", "us"}[rnd.Intn(15)]
	case 3:
		return []string{"a@b.co", "not-an-email", "a@", "@b", "x y@z.io"}[rnd.Intn(5)]
	case 4:
		return []string{"2024-02-29", "2023-02-29", "2024-13-01", "24-1-1", "2024-02-29T10:00:00Z", "2024-02-29T25:00:00Z"}[rnd.Intn(6)]
	case 5:
		return json.Number([]string{"0", "-1", "150", "151", "-0", "1.0", "1.5", "99.5", "99.6", "-1.5", "-1.6", "1e2", "1E400", "+3",
			"9223372036854775807", "9223372036854775808", "-9223372036854775809", "00", "1."}[rnd.Intn(19)])
	case 6:
		return float64(rnd.Intn(300)-100) / 2
	case 7:
		return rnd.Intn(300) - 100
	case 8:
		return []any{"a"}
	case 9:
		return map[string]any{"a": 1}
	case 10:
		return strings.Repeat("Z", rnd.Intn(12))
	}
	return goodValue(rnd, field)
}

// A schema with a keyword the fast validator does not know is left to the
// general validator whole.
func TestFastValidatorStepsAside(t *testing.T) {
	for _, props := range []string{
		`{"id":{"type":"string"},"n":{"type":"integer","multipleOf":2}}`,
		`{"id":{"type":"string"},"o":{"type":"object","properties":{"a":{"type":"string"}}}}`,
		`{"id":{"type":"string"},"a":{"type":"array"}}`,
		`{"id":{"type":"string"},"x":{"allOf":[{"type":"string"}]}}`,
		`{"id":{"type":"string"},"x":{"$ref":"#/$defs/s"}},"$defs":{"s":{"type":"string"}}`,
		`{"id":{"type":"string"},"x":{"const":"a"}}`,
	} {
		reg, err := Load(map[string][]byte{"companies.json": []byte(companiesDef),
			"r.json": []byte(`{"name":"r","key":["id"],"schema":{"type":"object","properties":` + props + `}}`)})
		if err != nil {
			t.Fatalf("%s: %v", props, err)
		}
		if r, _ := reg.Get("r"); r.fast != nil {
			t.Errorf("%s: fast validator made", props)
		}
	}
}

// BenchmarkValidate: a valid record through Validate (the fast path) and
// through the general validator alone.
func BenchmarkValidate(b *testing.B) {
	reg, err := Load(map[string][]byte{"companies.json": []byte(companiesDef), "people.json": []byte(fastDef)})
	if err != nil {
		b.Fatal(err)
	}
	res, _ := reg.Get("people")
	rec := map[string]any{"email": "u1@example.com", "name": "Chloé", "code": "AB1", "born": "2024-02-29",
		"age": json.Number("42"), "score": json.Number("25.51"), "vip": true, "tier": "gold"}
	b.Run("fast", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if p := res.Validate(rec); p != nil {
				b.Fatal(p)
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := res.schema.Validate(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
