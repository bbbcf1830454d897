package resources

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/inlet-dev/inlet/internal/rows"
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

// Warning codes of coercion: the row is still imported.
const (
	// WarnTrimmed: a string value had leading or trailing whitespace; it was
	// removed.
	WarnTrimmed = "warning.trimmed"
)

// Coerce turns a CSV cell into the field's schema type: integer and number
// from decimal text (canonicalized: "007" → 7), boolean from
// true/false/1/0/yes/no (any case, trimmed), string trimmed of surrounding
// whitespace. With a type list (["integer","string"]) the first type the cell
// parses as wins, in the order integer, number, boolean, string. A blank cell
// means "not given" and yields (nil, nil): the caller drops the field.
// Unknown or untyped fields keep the text, trimmed. Numbers come back as
// json.Number so no precision is lost. Coerce is CoerceCell without the
// warning.
func (r *Resource) Coerce(field, cell string) (any, *rows.Problem) {
	v, _, p := r.CoerceCell(field, cell)
	return v, p
}

// CoerceCell is Coerce that also says when the value was changed in a way
// the user should know about: a string value (of a string, untyped or
// unknown field) with surrounding whitespace is trimmed and a WarnTrimmed
// warning is returned. Numbers and booleans are trimmed silently: their value
// is the same either way. A blank cell is "not given", without a warning.
func (r *Resource) CoerceCell(field, cell string) (v any, warning, problem *rows.Problem) {
	t := strings.TrimSpace(cell)
	if t == "" {
		return nil, nil, nil
	}
	types := r.FieldTypes(field)
	if len(types) == 0 {
		return t, trimWarning(field, cell, t), nil
	}
	v, ok, why := coerceText(types, cell, t)
	if !ok {
		return nil, nil, typeProblem(field, types, fmt.Sprintf("%q", truncate(cell)), why)
	}
	if s, isString := v.(string); isString {
		return s, trimWarning(field, cell, s), nil
	}
	return v, nil, nil
}

// trimWarning is the WarnTrimmed warning when trimmed differs from given.
func trimWarning(field, given, trimmed string) *rows.Problem {
	if len(given) == len(trimmed) {
		return nil
	}
	return &rows.Problem{Code: WarnTrimmed, Field: field, Message: field + ": surrounding whitespace removed"}
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
		} else if _, bad := outOfRange(json.Number(trimmed)); bad && json.Valid([]byte(trimmed)) {
			why = whyOutOfRange
		}
	}
	if has("boolean") {
		if b, ok := ParseBool(trimmed); ok {
			return b, true, ""
		}
	}
	if has("string") {
		return trimmed, true, ""
	}
	return nil, false, why
}

// CoerceJSON adapts a value of a JSON record to the field's type. JSON is
// already typed, so it only bridges what spreadsheet exports get wrong:
// integral numbers for integer fields are canonicalized (12.0 → 12) and
// non-integral ones rejected; strings of integer, number and boolean fields
// are parsed like CSV cells; a blank string of a field that takes no strings
// is "not given" (given == false: drop the field, like an empty CSV cell);
// a string value of a field that takes strings is trimmed of surrounding
// whitespace. Everything else, null included, is returned unchanged for
// Validate to judge. CoerceJSON is CoerceJSONValue without the warning.
func (r *Resource) CoerceJSON(field string, v any) (out any, given bool, p *rows.Problem) {
	out, given, _, p = r.CoerceJSONValue(field, v)
	return out, given, p
}

// CoerceJSONValue is CoerceJSON that also returns a WarnTrimmed warning when
// a string value was trimmed (see CoerceCell). A string that is only
// whitespace becomes "" (JSON gave it explicitly), with the warning.
func (r *Resource) CoerceJSONValue(field string, v any) (out any, given bool, warning, p *rows.Problem) {
	types := r.FieldTypes(field)
	if s, ok := v.(string); ok && (len(types) == 0 || contains(types, "string")) {
		t := strings.TrimSpace(s)
		return t, true, trimWarning(field, s, t), nil
	}
	if n, bad := outOfRange(v); bad {
		// Stored, it would read back as infinity or zero.
		return nil, true, nil, &rows.Problem{Code: CodeType, Field: field,
			Message: fmt.Sprintf("%s: %s is %s", field, truncate(n), whyOutOfRange)}
	}
	if len(types) == 0 {
		return v, true, nil, nil
	}
	switch v := v.(type) {
	case json.Number:
		if !contains(types, "integer") && !contains(types, "number") {
			return v, true, nil, nil
		}
		d, ok := parseDecimal(string(v))
		if !ok {
			return v, true, nil, nil
		}
		if contains(types, "number") {
			return v, true, nil, nil
		}
		if !d.integral() {
			return nil, true, nil, typeProblem(field, types, string(v), "not a whole number")
		}
		return json.Number(d.String()), true, nil, nil
	case string:
		t := strings.TrimSpace(v)
		if t == "" {
			return nil, false, nil, nil
		}
		if !contains(types, "integer") && !contains(types, "number") && !contains(types, "boolean") {
			return v, true, nil, nil
		}
		out, ok, why := coerceText(types, v, t)
		if !ok {
			return nil, true, nil, typeProblem(field, types, fmt.Sprintf("%q", truncate(v)), why)
		}
		return out, true, nil, nil
	}
	return v, true, nil, nil
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

// BooleanSpellings is how a boolean may be written, in a cell or an option.
const BooleanSpellings = "true, false, 1, 0, yes or no"

// ParseBool reads s as a boolean the way a file's cells are read (the
// spellings of BooleanSpellings, any case, surrounding space ignored); ok
// is false for anything else. Options given as text use it too, so an
// import accepts the same spellings in its options as in its file.
func ParseBool(s string) (v, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes":
		return true, true
	case "false", "0", "no":
		return false, true
	}
	return false, false
}
