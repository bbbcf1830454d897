package resources

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const companiesDef = `{"name":"companies","key":["code"],"schema":{"type":"object","required":["code","name"],
 "properties":{"code":{"type":"string","minLength":1},"name":{"type":"string","minLength":1},
 "country":{"type":"string","pattern":"^[A-Z]{2}$"},"employees":{"type":"integer","minimum":0}},"additionalProperties":false}}`

const customersDef = `{"name":"customers","key":["email"],"alternate_keys":[["external_id"]],
 "references":{"company_code":"companies.code"},
 "schema":{"type":"object","required":["email","name"],"properties":{
  "email":{"type":"string","format":"email"},"external_id":{"type":"string"},
  "name":{"type":"string","minLength":1,"maxLength":20},"age":{"type":"integer","minimum":0,"maximum":150},
  "vip":{"type":"boolean"},"company_code":{"type":"string"},"signed_up":{"type":"string","format":"date"},
  "score":{"type":"number","exclusiveMinimum":0},"plan":{"enum":["free","pro"]},
  "nick":{"type":["string","null"]},"rank":{"type":["integer","string"]},
  "tags":{"type":"array","items":{"type":"string"}}},
 "additionalProperties":false}}`

const openDef = `{"name":"notes","key":["region","num"],"schema":{"type":"object","properties":{
  "region":{"type":"string"},"num":{"type":"integer"},"text":{"type":"string"}}}}`

func testRegistry(t testing.TB) *Registry {
	t.Helper()
	reg, err := Load(map[string][]byte{
		"companies.json": []byte(companiesDef),
		"customers.json": []byte(customersDef),
		"notes.json":     []byte(openDef),
	})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func mustGet(t testing.TB, reg *Registry, name string) *Resource {
	t.Helper()
	r, ok := reg.Get(name)
	if !ok {
		t.Fatalf("resource %s not found", name)
	}
	return r
}

func TestLoadDirSamples(t *testing.T) {
	reg, err := LoadDir("../../resources")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range reg.List() {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, ","); got != "companies,customers" {
		t.Fatalf("List = %s", got)
	}
	c := mustGet(t, reg, "customers")
	if c.PrimaryKeyName() != "email" || c.AllowsUnknownFields() || !c.HasField("age") || c.HasField("nope") {
		t.Fatalf("customers loaded wrong: %+v", c.Definition)
	}
	if refs := c.Refs(); len(refs) != 1 || refs[0] != (Reference{"company_code", "companies", "code"}) {
		t.Fatalf("Refs = %+v", refs)
	}
	b, err := json.Marshal(c)
	if err != nil || !strings.Contains(string(b), `"name":"customers"`) || strings.Contains(string(b), "file") {
		t.Fatalf("marshal = %s, %v", b, err)
	}
}

func TestLoadErrors(t *testing.T) {
	def := func(name, key, extra, props string) string {
		return `{"name":"` + name + `","key":` + key + extra + `,"schema":{"type":"object","properties":` + props + `}}`
	}
	okProps := `{"id":{"type":"string"},"o":{"type":"object"},"other":{"type":"string"}}`
	tests := []struct {
		name string
		file string
		want string
	}{
		{"bad name", def("bad name", `["id"]`, "", okProps), `x.json: name: "bad name" is not a token`},
		{"long name", def(strings.Repeat("a", 65), `["id"]`, "", okProps), "x.json: name:"},
		{"no key", def("r", `[]`, "", okProps), "x.json: key: must name at least one field"},
		{"key not in schema", def("r", `["nope"]`, "", okProps), `x.json: key: field "nope" is not a property`},
		{"key object", def("r", `["o"]`, "", okProps), `x.json: key: field "o" is of type object`},
		{"alt key missing", def("r", `["id"]`, `,"alternate_keys":[["id"],["zz"]]`, okProps), `x.json: alternate_keys[1]: field "zz"`},
		{"ref field missing", def("r", `["id"]`, `,"references":{"zz":"companies.code"}`, okProps), `x.json: references.zz: field "zz" is not a property`},
		{"ref syntax", def("r", `["id"]`, `,"references":{"other":"companies"}`, okProps), `x.json: references.other: target "companies" is not of the form`},
		{"ref unknown resource", def("r", `["id"]`, `,"references":{"other":"ghosts.code"}`, okProps), `x.json: references.other: resource "ghosts" is not defined`},
		{"ref unknown field", def("r", `["id"]`, `,"references":{"other":"companies.zip"}`, okProps), `x.json: references.other: "zip" is not a field of companies`},
		{"ref not a key", def("r", `["id"]`, `,"references":{"other":"companies.name"}`, okProps), `companies.name is not a key of companies`},
		{"parent unknown", def("r", `["id"]`, `,"parent":"ghosts"`, okProps), `x.json: parent: resource "ghosts" is not defined`},
		{"unknown option", def("r", `["id"]`, `,"alternate_key":[["id"]]`, okProps), `x.json: not a resource definition: json: unknown field "alternate_key"`},
		{"bad schema", `{"name":"r","key":["id"],"schema":{"type":"object","properties":{"id":{"type":"strin"}}}}`, "x.json: schema: does not compile"},
		{"bad pattern", `{"name":"r","key":["id"],"schema":{"type":"object","properties":{"id":{"type":"string","pattern":"(["}}}}`, "x.json: schema: does not compile"},
		{"not object", `{"name":"r","key":["id"],"schema":{"type":"string","properties":{"id":{}}}}`, `x.json: schema.type: must be "object"`},
		{"no properties", `{"name":"r","key":["id"],"schema":{"type":"object"}}`, "x.json: schema.properties: must list"},
		{"no schema", `{"name":"r","key":["id"]}`, "x.json: schema: missing"},
		{"duplicate name", def("companies", `["id"]`, "", okProps), `resource "companies" is already defined by companies.json`},
		{"not json", `{`, "x.json: not a resource definition"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(map[string][]byte{"companies.json": []byte(companiesDef), "x.json": []byte(tc.file)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadDirMissing(t *testing.T) {
	if _, err := LoadDir(t.TempDir()); err == nil {
		t.Fatal("empty dir loaded")
	}
}

func TestKeys(t *testing.T) {
	reg := testRegistry(t)
	c := mustGet(t, reg, "customers")
	n := mustGet(t, reg, "notes")
	tests := []struct {
		name string
		res  *Resource
		data map[string]any
		want map[string]string
		err  string
	}{
		{"primary trimmed lowercased", c, map[string]any{"email": "  Ann@Example.COM "}, map[string]string{"email": "ann@example.com"}, ""},
		{"with alternate", c, map[string]any{"email": "a@b.c", "external_id": "X-1"}, map[string]string{"email": "a@b.c", "external_id": "x-1"}, ""},
		{"blank alternate ignored", c, map[string]any{"email": "a@b.c", "external_id": "  "}, map[string]string{"email": "a@b.c"}, ""},
		{"missing primary", c, map[string]any{"external_id": "x"}, nil, "customers: key field email is missing"},
		{"composite", n, map[string]any{"region": "EU", "num": json.Number("7.0")}, map[string]string{"num,region": "", "region,num": "eu\x1f7"}, ""},
		{"composite partial", n, map[string]any{"region": "EU"}, nil, "key field num is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.res.Keys(tc.data)
			if tc.err != "" {
				var mk *MissingKeyError
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, &mk) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if v == "" {
					continue // documents a name that must not appear
				}
				if got[k] != v {
					t.Errorf("key %s = %q, want %q", k, got[k], v)
				}
			}
			if _, bad := got["num,region"]; bad {
				t.Error("key name must keep definition order")
			}
		})
	}
	if alt := c.KeyValues(map[string]any{"external_id": "Z"}); alt["external_id"] != "z" || len(alt) != 1 {
		t.Errorf("KeyValues = %v", alt)
	}
}

func TestNormalizeValue(t *testing.T) {
	tests := []struct {
		in   any
		want string
		ok   bool
	}{
		{"  AbC ", "abc", true}, {"", "", false}, {nil, "", false},
		{json.Number("007"), "7", true}, {json.Number("7.50"), "7.5", true}, {json.Number("1e3"), "1000", true},
		{7.0, "7", true}, {int64(-3), "-3", true}, {true, "true", true},
		{map[string]any{}, "", false}, {[]any{"a"}, "", false},
	}
	for _, tc := range tests {
		got, ok := NormalizeValue(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalizeValue(%#v) = %q,%v want %q,%v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCanonicalNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0", "0"}, {"-0", "0"}, {"+5", "5"}, {"007", "7"}, {"1.50", "1.5"}, {".5", "0.5"}, {"5.", "5"},
		{"-12.340", "-12.34"}, {"1e3", "1000"}, {"1.5E-3", "0.0015"}, {"12e-1", "1.2"},
		{"123456789012345678901234", "1.23456789012345678901234e23"}, {"1e-9", "1e-9"},
		{"98765432109876543210", "98765432109876543210"},
		{"abc", ""}, {"1,000", ""}, {"0x10", ""}, {"NaN", ""}, {"inf", ""}, {"", ""}, {"-", ""}, {"1e", ""},
		{"1e999999", ""}, {"1e-999999", ""}, {"1 2", ""},
		// What a double holds, and no further (issue 7: 1e400 was stored as given).
		{"1.7976931348623157e308", "1.7976931348623157e308"}, {"5e-324", "5e-324"},
		{"1.8e308", ""}, {"1e400", ""}, {"-1e309", ""}, {"1e-400", ""}, {"2e-324", ""},
	}
	for _, tc := range tests {
		got, ok := CanonicalNumber(tc.in)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("CanonicalNumber(%q) = %q,%v want %q", tc.in, got, ok, tc.want)
		}
		if ok && !json.Valid([]byte(got)) {
			t.Errorf("CanonicalNumber(%q) = %q is not valid JSON", tc.in, got)
		}
	}
}

func TestCoerce(t *testing.T) {
	c := mustGet(t, testRegistry(t), "customers")
	tests := []struct {
		field, cell string
		want        any
		problem     string
	}{
		{"age", "42", json.Number("42"), ""},
		{"age", " 042 ", json.Number("42"), ""},
		{"age", "-3", json.Number("-3"), ""},
		{"age", "12.0", json.Number("12"), ""},
		{"age", "1e2", json.Number("100"), ""},
		{"age", "12.5", nil, `age: expected integer, got "12.5" (not a whole number)`},
		{"age", "abc", nil, `age: expected integer, got "abc"`},
		{"age", "1,000", nil, `expected integer, got "1,000"`},
		{"age", "", nil, ""},
		{"age", "   ", nil, ""},
		{"score", "3.25", json.Number("3.25"), ""},
		{"score", "-.5", json.Number("-0.5"), ""},
		{"score", "x", nil, `score: expected number, got "x"`},
		{"score", "1e400", nil, `score: expected number, got "1e400" (beyond the range of a double)`},
		{"score", "-2e308", nil, `(beyond the range of a double)`},
		{"score", "1e-400", nil, `(beyond the range of a double)`},
		{"score", "12345678901234567890.5", json.Number("12345678901234567890.5"), ""}, // exact, beyond a double's precision
		{"vip", "TRUE", true, ""}, {"vip", " yes", true, ""}, {"vip", "1", true, ""},
		{"vip", "False", false, ""}, {"vip", "NO", false, ""}, {"vip", "0", false, ""},
		{"vip", "maybe", nil, `vip: expected boolean, got "maybe"`},
		{"name", "  Ann  ", "Ann", ""}, // trimmed; CoerceCell warns (TestCoerceWarnings)
		{"name", "", nil, ""},
		{"nick", "x", "x", ""},
		{"rank", "7", json.Number("7"), ""},
		{"rank", "gold", "gold", ""},
		{"plan", "pro", "pro", ""}, // untyped (enum only): text as is
		{"unknown", "v", "v", ""},
	}
	for _, tc := range tests {
		got, p := c.Coerce(tc.field, tc.cell)
		if tc.problem != "" {
			if p == nil || p.Code != CodeType || p.Field != tc.field || !strings.Contains(p.Message, tc.problem) {
				t.Errorf("Coerce(%s, %q) problem = %+v, want %q", tc.field, tc.cell, p, tc.problem)
			}
			continue
		}
		if p != nil || got != tc.want {
			t.Errorf("Coerce(%s, %q) = %#v, %+v want %#v", tc.field, tc.cell, got, p, tc.want)
		}
	}
}

func TestCoerceJSON(t *testing.T) {
	c := mustGet(t, testRegistry(t), "customers")
	tests := []struct {
		field   string
		in      any
		want    any
		given   bool
		problem string
	}{
		{"age", json.Number("42"), json.Number("42"), true, ""},
		{"age", json.Number("42.0"), json.Number("42"), true, ""},
		{"age", json.Number("42.5"), nil, true, "age: expected integer, got 42.5 (not a whole number)"},
		{"age", "12", json.Number("12"), true, ""},
		{"age", "twelve", nil, true, `age: expected integer, got "twelve"`},
		{"age", "", nil, false, ""},
		{"age", true, true, true, ""}, // left to Validate
		{"age", nil, nil, true, ""},
		{"score", json.Number("1.25"), json.Number("1.25"), true, ""},
		{"score", "1.25", json.Number("1.25"), true, ""},
		{"vip", "yes", true, true, ""},
		{"vip", false, false, true, ""},
		{"name", json.Number("5"), json.Number("5"), true, ""}, // left to Validate
		{"score", json.Number("1e400"), nil, true, "score: 1e400 is beyond the range of a double"},
		{"score", json.Number("1e-400"), nil, true, "score: 1e-400 is beyond the range of a double"},
		{"age", json.Number("1e309"), nil, true, "age: 1e309 is beyond the range of a double"},
		{"nick", json.Number("1e400"), nil, true, "nick: 1e400 is beyond the range of a double"},
		{"unknown", map[string]any{"deep": []any{json.Number("1"), json.Number("-1e999")}}, nil, true,
			"unknown: -1e999 is beyond the range of a double"},
		{"score", json.Number("0.1000000000000000055511151231257827"), json.Number("0.1000000000000000055511151231257827"), true, ""},
		{"name", "", "", true, ""},
	}
	for _, tc := range tests {
		got, given, p := c.CoerceJSON(tc.field, tc.in)
		if tc.problem != "" {
			if p == nil || p.Code != CodeType || p.Field != tc.field || p.Message != tc.problem {
				t.Errorf("CoerceJSON(%s, %#v) problem = %+v, want %q", tc.field, tc.in, p, tc.problem)
			}
			continue
		}
		if p != nil || got != tc.want || given != tc.given {
			t.Errorf("CoerceJSON(%s, %#v) = %#v,%v,%+v want %#v,%v", tc.field, tc.in, got, given, p, tc.want, tc.given)
		}
	}
}

func TestValidate(t *testing.T) {
	reg := testRegistry(t)
	c := mustGet(t, reg, "customers")
	base := func(kv ...any) map[string]any {
		m := map[string]any{"email": "ann@example.com", "name": "Ann"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
				continue
			}
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name  string
		data  map[string]any
		code  string
		field string
		msg   string
	}{
		{"required", base("name", nil), CodeRequired, "name", "name: required field is missing"},
		{"type", base("age", "abc"), CodeType, "age", `age: must be integer, got string "abc"`},
		{"format email", base("email", "not-an-email"), CodeFormat, "email", `email: "not-an-email" is not a valid email`},
		{"format date", base("signed_up", "2024-13-45"), CodeFormat, "signed_up", `signed_up: "2024-13-45" is not a valid date`},
		{"minimum", base("age", json.Number("-3")), CodeMinimum, "age", "age: must be >= 0, got -3"},
		{"exclusive minimum", base("score", json.Number("0")), CodeMinimum, "score", "score: must be > 0, got 0"},
		{"maximum", base("age", json.Number("200")), CodeMaximum, "age", "age: must be <= 150, got 200"},
		{"min length", base("name", ""), CodeMinLength, "name", "name: must be at least 1 characters long, got 0"},
		{"max length", base("name", strings.Repeat("x", 21)), CodeMaxLength, "name", "name: must be at most 20 characters long, got 21"},
		{"enum", base("plan", "gold"), CodeEnum, "plan", `plan: must be one of "free", "pro", got "gold"`},
		{"additional", base("zip", "1"), CodeAdditionalProperties, "zip", "zip: is not a field of customers"},
		{"nested type", base("tags", []any{"a", json.Number("1")}), CodeType, "tags.1", "tags.1: must be string, got number 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			probs := c.Validate(tc.data)
			if len(probs) != 1 {
				t.Fatalf("problems = %+v, want exactly one", probs)
			}
			p := probs[0]
			if p.Code != tc.code || p.Field != tc.field || !strings.HasPrefix(p.Message, tc.msg) {
				t.Fatalf("problem = %+v\nwant code %s field %s message %q", p, tc.code, tc.field, tc.msg)
			}
		})
	}
	if probs := c.Validate(base("age", json.Number("30"), "vip", true, "nick", nil)); probs != nil {
		t.Fatalf("valid record: %+v", probs)
	}
	// Several problems at once, stable order.
	probs := c.Validate(map[string]any{"age": json.Number("-1"), "zip": "x", "foo": "y"})
	var got []string
	for _, p := range probs {
		got = append(got, p.Code+":"+p.Field)
	}
	want := "schema.minimum:age,schema.required:email,schema.additional_properties:foo,schema.required:name,schema.additional_properties:zip"
	if strings.Join(got, ",") != want {
		t.Fatalf("problems = %s\nwant %s", strings.Join(got, ","), want)
	}
	// Country pattern on companies.
	co := mustGet(t, reg, "companies")
	probs = co.Validate(map[string]any{"code": "a", "name": "A", "country": "usa"})
	if len(probs) != 1 || probs[0].Code != CodePattern || probs[0].Field != "country" ||
		probs[0].Message != `country: "usa" does not match pattern ^[A-Z]{2}$` {
		t.Fatalf("pattern: %+v", probs)
	}
}

func TestValidateInvalidFallback(t *testing.T) {
	reg, err := Load(map[string][]byte{"r.json": []byte(`{"name":"r","key":["id"],"schema":{"type":"object",
	  "properties":{"id":{"type":"string"},"n":{"type":"integer","multipleOf":5},"x":{"anyOf":[{"type":"integer"},{"type":"boolean"}]}}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	r := mustGet(t, reg, "r")
	for _, data := range []map[string]any{
		{"id": "a", "n": json.Number("7")},
		{"id": "a", "x": "s"},
	} {
		probs := r.Validate(data)
		if len(probs) != 1 || probs[0].Code != CodeInvalid || probs[0].Field == "" {
			t.Errorf("Validate(%v) = %+v, want one schema.invalid with a field", data, probs)
		}
	}
	if !r.AllowsUnknownFields() {
		t.Error("schema without additionalProperties must allow unknown fields")
	}
}

func TestCoerceWarnings(t *testing.T) {
	c := mustGet(t, testRegistry(t), "customers")
	trimmed := func(f string) string { return WarnTrimmed + ":" + f + ": surrounding whitespace removed" }
	tests := []struct {
		field, cell string
		want        any
		warn        string
	}{
		{"name", "  Ann  ", "Ann", trimmed("name")},
		{"name", "Ann\n", "Ann", trimmed("name")},
		{"name", "\u00a0Ann", "Ann", trimmed("name")}, // no-break space from a spreadsheet
		{"name", "Ann", "Ann", ""},
		{"name", "   ", nil, ""},                    // blank: not given, no warning
		{"age", " 42 ", json.Number("42"), ""},      // numbers trimmed silently
		{"vip", " yes ", true, ""},                  // booleans too
		{"rank", " 7 ", json.Number("7"), ""},       // the integer of ["integer","string"]
		{"rank", " gold ", "gold", trimmed("rank")}, // its string
		{"nick", " x", "x", trimmed("nick")},
		{"plan", "pro ", "pro", trimmed("plan")}, // untyped: a CSV cell is text
		{"unknown", " v", "v", trimmed("unknown")},
	}
	for _, tc := range tests {
		got, w, p := c.CoerceCell(tc.field, tc.cell)
		gotWarn := ""
		if w != nil {
			gotWarn = w.Code + ":" + w.Field + ": " + strings.TrimPrefix(w.Message, w.Field+": ")
		}
		if p != nil || got != tc.want || gotWarn != tc.warn {
			t.Errorf("CoerceCell(%s, %q) = %#v, %q, %+v want %#v, %q", tc.field, tc.cell, got, gotWarn, p, tc.want, tc.warn)
		}
	}
	jsonTests := []struct {
		field string
		in    any
		want  any
		warn  bool
	}{
		{"name", " Ann ", "Ann", true},
		{"name", "Ann", "Ann", false},
		{"name", "  ", "", true},   // JSON gave a string: it stays given, as ""
		{"rank", " 7 ", "7", true}, // a string for a field that takes strings: trimmed, not parsed
		{"age", " 7 ", json.Number("7"), false},
		{"plan", " pro", "pro", true},
		{"tags", []any{" a "}, []any{" a "}, false}, // only top-level strings
	}
	for _, tc := range jsonTests {
		got, given, w, p := c.CoerceJSONValue(tc.field, tc.in)
		if p != nil || !given || fmt.Sprint(got) != fmt.Sprint(tc.want) || (w != nil) != tc.warn {
			t.Errorf("CoerceJSONValue(%s, %#v) = %#v, %v, %+v, %+v want %#v warn %v", tc.field, tc.in, got, given, w, p, tc.want, tc.warn)
		}
		if w != nil && (w.Code != WarnTrimmed || w.Field != tc.field || w.Message != tc.field+": surrounding whitespace removed") {
			t.Errorf("warning = %+v", w)
		}
	}
}
