package resources

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/inlet-dev/inlet/internal/rows"
)

var printer = message.NewPrinter(language.English)

// Validate checks one record against the compiled schema and returns one
// problem per failed constraint (nil when valid), sorted by field then code so
// the first problem of a row is stable across runs. Each problem has a stable
// code (Code* constants), the field it concerns (nested fields joined by "."),
// and a message that names the field, the rule and the offending value.
func (r *Resource) Validate(data map[string]any) []rows.Problem {
	if r.fast != nil && r.fast.valid(data) {
		return nil
	}
	err := r.schema.Validate(data)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []rows.Problem{{Code: CodeInvalid, Message: err.Error()}}
	}
	var out []rows.Problem
	r.collect(ve, data, &out)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Field != out[j].Field {
			return out[i].Field < out[j].Field
		}
		return out[i].Code < out[j].Code
	})
	return out
}

func (r *Resource) collect(ve *jsonschema.ValidationError, data map[string]any, out *[]rows.Problem) {
	switch ve.ErrorKind.(type) {
	case *kind.AnyOf, *kind.OneOf, *kind.Not:
		// The branch failures of a combinator explain nothing on their own
		// ("got string, want integer" for every alternative): report the
		// combinator once.
		field := fieldName(ve.InstanceLocation)
		*out = append(*out, rows.Problem{Code: CodeInvalid, Field: field,
			Message: prefix(field) + ve.ErrorKind.LocalizedString(printer)})
		return
	}
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			r.collect(c, data, out)
		}
		return
	}
	if ve.ErrorKind == nil {
		return
	}
	loc := ve.InstanceLocation
	field := fieldName(loc)
	add := func(code, field, msg string) {
		*out = append(*out, rows.Problem{Code: code, Field: field, Message: prefix(field) + msg})
	}
	got := func() string { return display(valueAt(data, loc)) }
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			add(CodeRequired, join(loc, m), "required field is missing")
		}
	case *kind.DependentRequired:
		for _, m := range k.Missing {
			add(CodeRequired, join(loc, m), fmt.Sprintf("required when %s is given", k.Prop))
		}
	case *kind.Dependency:
		for _, m := range k.Missing {
			add(CodeRequired, join(loc, m), fmt.Sprintf("required when %s is given", k.Prop))
		}
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			what := "a field of " + r.Name
			if len(loc) > 0 {
				what = "an allowed property of " + field
			}
			add(CodeAdditionalProperties, join(loc, p), "is not "+what)
		}
	case *kind.Type:
		add(CodeType, field, fmt.Sprintf("must be %s, got %s %s", strings.Join(k.Want, " or "), k.Got, got()))
	case *kind.Format:
		msg := fmt.Sprintf("%s is not a valid %s", got(), k.Want)
		if k.Err != nil {
			msg += ": " + k.Err.Error()
		}
		add(CodeFormat, field, msg)
	case *kind.Minimum:
		add(CodeMinimum, field, fmt.Sprintf("must be >= %s, got %s", ratString(k.Want), got()))
	case *kind.ExclusiveMinimum:
		add(CodeMinimum, field, fmt.Sprintf("must be > %s, got %s", ratString(k.Want), got()))
	case *kind.Maximum:
		add(CodeMaximum, field, fmt.Sprintf("must be <= %s, got %s", ratString(k.Want), got()))
	case *kind.ExclusiveMaximum:
		add(CodeMaximum, field, fmt.Sprintf("must be < %s, got %s", ratString(k.Want), got()))
	case *kind.MinLength:
		add(CodeMinLength, field, fmt.Sprintf("must be at least %d characters long, got %d", k.Want, k.Got))
	case *kind.MaxLength:
		add(CodeMaxLength, field, fmt.Sprintf("must be at most %d characters long, got %d", k.Want, k.Got))
	case *kind.Pattern:
		add(CodePattern, field, fmt.Sprintf("%s does not match pattern %s", got(), k.Want))
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = display(w)
		}
		add(CodeEnum, field, fmt.Sprintf("must be one of %s, got %s", strings.Join(want, ", "), got()))
	case *kind.Const:
		add(CodeEnum, field, fmt.Sprintf("must be %s, got %s", display(k.Want), got()))
	case *kind.FalseSchema:
		add(CodeInvalid, field, "is not allowed")
	default:
		add(CodeInvalid, field, ve.ErrorKind.LocalizedString(printer))
	}
}

func fieldName(loc []string) string { return strings.Join(loc, ".") }

func join(loc []string, name string) string {
	if len(loc) == 0 {
		return name
	}
	return fieldName(loc) + "." + name
}

func prefix(field string) string {
	if field == "" {
		return ""
	}
	return field + ": "
}

func valueAt(v any, loc []string) any {
	for _, tok := range loc {
		switch c := v.(type) {
		case map[string]any:
			v = c[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

// display renders a value for a message: strings quoted and shortened,
// numbers as written, structures as compact JSON.
func display(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", truncate(v))
	case json.Number:
		return string(v)
	case nil:
		return "null"
	case map[string]any, []any:
		b, _ := json.Marshal(v)
		return truncate(string(b))
	}
	return fmt.Sprint(v)
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}
