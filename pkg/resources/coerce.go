package resources

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/inlet-dev/inlet/pkg/rows"
)

// Problem codes of prevalidation (spec §6); stable strings users match on.
const (
	CodeRequired             = "schema.required"
	CodeType                 = "schema.type"
	CodeFormat               = "schema.format"
	CodeMinimum              = "schema.minimum"
	CodeMaximum              = "schema.maximum"
	CodeMinLength            = "schema.min_length"
	CodeMaxLength            = "schema.max_length"
	CodePattern              = "schema.pattern"
	CodeEnum                 = "schema.enum"
	CodeAdditionalProperties = "schema.additional_properties"
	CodeInvalid              = "schema.invalid"
)

// Coerce turns a CSV cell into the field's schema type: integer and number
// from decimal text (canonicalized: "007" → 7), boolean from
// true/false/1/0/yes/no (any case, trimmed), string as is. With a type list
// (["integer","string"]) the first type the cell parses as wins, in the order
// integer, number, boolean, string. A blank cell means "not given" and yields
// (nil, nil): the caller drops the field. Unknown or untyped fields keep the
// text. Numbers come back as json.Number so no precision is lost.
func (r *Resource) Coerce(field, cell string) (any, *rows.Problem) {
	t := strings.TrimSpace(cell)
	if t == "" {
		return nil, nil
	}
	types := r.FieldTypes(field)
	if len(types) == 0 {
		return cell, nil
	}
	v, ok, why := coerceText(types, cell, t)
	if ok {
		return v, nil
	}
	return nil, typeProblem(field, types, fmt.Sprintf("%q", truncate(cell)), why)
}

func coerceText(types []string, cell, trimmed string) (any, bool, string) {
	has := func(t string) bool { return contains(types, t) }
	var why string
	if has("integer") || has("number") {
		if d, ok := parseDecimal(trimmed); ok {
			if d.integral() || has("number") {
				return json.Number(d.String()), true, ""
			}
			why = "not a whole number"
		}
	}
	if has("boolean") {
		switch strings.ToLower(trimmed) {
		case "true", "1", "yes":
			return true, true, ""
		case "false", "0", "no":
			return false, true, ""
		}
	}
	if has("string") {
		return cell, true, ""
	}
	return nil, false, why
}

// CoerceJSON adapts a value of a JSON record to the field's type. JSON is
// already typed, so it only bridges what spreadsheet exports get wrong:
// integral numbers for integer fields are canonicalized (12.0 → 12) and
// non-integral ones rejected; strings of integer, number and boolean fields
// are parsed like CSV cells; a blank string of a field that takes no strings
// is "not given" (given == false: drop the field, like an empty CSV cell).
// Everything else, null included, is returned unchanged for Validate to judge.
func (r *Resource) CoerceJSON(field string, v any) (out any, given bool, p *rows.Problem) {
	types := r.FieldTypes(field)
	if len(types) == 0 {
		return v, true, nil
	}
	switch v := v.(type) {
	case json.Number:
		if !contains(types, "integer") && !contains(types, "number") {
			return v, true, nil
		}
		d, ok := parseDecimal(string(v))
		if !ok {
			return v, true, nil
		}
		if contains(types, "number") {
			return v, true, nil
		}
		if !d.integral() {
			return nil, true, typeProblem(field, types, string(v), "not a whole number")
		}
		return json.Number(d.String()), true, nil
	case string:
		if contains(types, "string") {
			return v, true, nil
		}
		t := strings.TrimSpace(v)
		if t == "" {
			return nil, false, nil
		}
		if !contains(types, "integer") && !contains(types, "number") && !contains(types, "boolean") {
			return v, true, nil
		}
		out, ok, why := coerceText(types, v, t)
		if !ok {
			return nil, true, typeProblem(field, types, fmt.Sprintf("%q", truncate(v)), why)
		}
		return out, true, nil
	}
	return v, true, nil
}

func typeProblem(field string, types []string, got, why string) *rows.Problem {
	var want []string
	for _, t := range types {
		if t != "null" { // a cell cannot hold null; naming it would only confuse
			want = append(want, t)
		}
	}
	msg := fmt.Sprintf("%s: expected %s, got %s", field, strings.Join(want, " or "), got)
	if why != "" {
		msg += " (" + why + ")"
	}
	return &rows.Problem{Code: CodeType, Field: field, Message: msg}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// truncate keeps messages readable when a cell holds a paragraph.
func truncate(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max]) + "…"
}
