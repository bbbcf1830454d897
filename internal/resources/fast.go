package resources

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// fastSchema answers "is this record valid?" for the schemas resource
// definitions are made of (type, required, properties, additionalProperties,
// enum, format, minLength, maxLength, pattern, minimum, maximum), without the
// general validator's bookkeeping: profiled, the general validator was a
// tenth of an import's CPU. It only ever says "valid" or "not sure": every
// record it is not sure of (invalid, or a value it does not decide) goes to
// the general validator, which alone writes problems. The checks are the
// compiled schema's own (its Format and Pattern functions, its bounds), so
// the two cannot disagree on what they share; TestFastValidatorAgrees
// checks it on generated records.
type fastSchema struct {
	required   []string
	props      map[string]*fastProp
	closed     bool // additionalProperties: false
	objectOnly bool // type: "object"
}

type fastProp struct {
	anything         bool
	types            jsonschema.Types // 0: any type
	enum             []string         // string values only; nil: no enum
	format           *jsonschema.Format
	minLen, maxLen   int // -1: none
	pattern          jsonschema.Regexp
	minimum, maximum *big.Rat
}

// fastKeywords are the fields of a compiled schema the fast validator
// understands; any other field set (a keyword added in a later version of the
// library included) makes it leave the schema to the general validator.
var fastKeywords = map[string]bool{
	"DraftVersion": true, "Location": true, "ID": true,
	"Types": true, "Enum": true, "Format": true,
	"Required": true, "Properties": true, "AdditionalProperties": true,
	"MinLength": true, "MaxLength": true, "Pattern": true,
	"Minimum": true, "Maximum": true,
	"Title": true, "Description": true, "Default": true, "Comment": true,
	"ReadOnly": true, "WriteOnly": true, "Examples": true, "Deprecated": true,
}

func onlyFastKeywords(s *jsonschema.Schema) bool {
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || fastKeywords[f.Name] {
			continue
		}
		if !v.Field(i).IsZero() {
			return false
		}
	}
	return true
}

// compileFast returns nil when s uses anything the fast validator does not
// decide.
func compileFast(s *jsonschema.Schema) *fastSchema {
	if s == nil || !onlyFastKeywords(s) || s.Enum != nil || s.Format != nil || s.Pattern != nil ||
		s.MinLength != nil || s.MaxLength != nil || s.Minimum != nil || s.Maximum != nil {
		return nil
	}
	fs := &fastSchema{required: s.Required, props: map[string]*fastProp{}}
	if s.Types != nil {
		if *s.Types != typesOf("object") {
			return nil
		}
		fs.objectOnly = true
	}
	switch ap := s.AdditionalProperties.(type) {
	case nil:
	case bool:
		fs.closed = !ap
	default:
		return nil
	}
	for name, ps := range s.Properties {
		p := compileFastProp(ps)
		if p == nil {
			return nil
		}
		fs.props[name] = p
	}
	return fs
}

func typesOf(names ...string) jsonschema.Types {
	var t jsonschema.Types
	for _, n := range names {
		t.Add(n)
	}
	return t
}

var scalarTypes = typesOf("null", "boolean", "number", "integer", "string")

func compileFastProp(s *jsonschema.Schema) *fastProp {
	if s != nil && s.Bool != nil { // {} or true: anything; false: nothing
		if !*s.Bool {
			return nil
		}
		return &fastProp{anything: true}
	}
	if s == nil || !onlyFastKeywords(s) || len(s.Required) > 0 || len(s.Properties) > 0 || s.AdditionalProperties != nil {
		return nil
	}
	p := &fastProp{format: s.Format, pattern: s.Pattern, minimum: s.Minimum, maximum: s.Maximum, minLen: -1, maxLen: -1}
	if s.Types != nil {
		p.types = *s.Types
		if p.types|scalarTypes != scalarTypes {
			return nil // arrays and objects: left to the general validator
		}
	}
	if s.MinLength != nil {
		p.minLen = *s.MinLength
	}
	if s.MaxLength != nil {
		p.maxLen = *s.MaxLength
	}
	if s.Enum != nil {
		for _, v := range s.Enum.Values {
			str, ok := v.(string)
			if !ok {
				return nil
			}
			p.enum = append(p.enum, str)
		}
		if p.enum == nil {
			p.enum = []string{}
		}
	}
	return p
}

// valid reports true only for a record the schema accepts.
func (fs *fastSchema) valid(data map[string]any) bool {
	for _, name := range fs.required {
		if _, ok := data[name]; !ok {
			return false
		}
	}
	for name, v := range data {
		p, ok := fs.props[name]
		if !ok {
			if fs.closed {
				return false
			}
			continue
		}
		if !p.valid(v) {
			return false
		}
	}
	return true
}

func (p *fastProp) valid(v any) bool {
	if p.anything {
		return true
	}
	var t jsonschema.Types
	switch v := v.(type) {
	case nil:
		t = typesOf("null")
	case bool:
		t = typesOf("boolean")
	case string:
		t = typesOf("string")
		if !p.validString(v) {
			return false
		}
	case json.Number:
		return p.validNumber(v)
	default:
		return false
	}
	if p.types != 0 && p.types&t == 0 {
		return false
	}
	return p.validAny(v)
}

// validAny applies the keywords that take any type: enum, format.
func (p *fastProp) validAny(v any) bool {
	if p.enum != nil {
		s, ok := v.(string)
		if !ok {
			return false
		}
		found := false
		for _, e := range p.enum {
			if e == s {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return p.format == nil || p.format.Validate(v) == nil
}

func (p *fastProp) validString(s string) bool {
	if p.minLen >= 0 || p.maxLen >= 0 {
		n := utf8.RuneCountInString(s)
		if p.minLen >= 0 && n < p.minLen || p.maxLen >= 0 && n > p.maxLen {
			return false
		}
	}
	return p.pattern == nil || p.pattern.MatchString(s)
}

// validNumber decides numbers as the general validator does: integer type
// by the digits, bounds compared exactly (as rationals, like it, when a
// bound or the number is not an int64).
func (p *fastProp) validNumber(n json.Number) bool {
	s := string(n)
	i, err := strconv.ParseInt(s, 10, 64)
	isInt := err == nil
	var f float64
	if !isInt {
		if f, err = strconv.ParseFloat(s, 64); err != nil && !errors.Is(err, strconv.ErrRange) {
			return false
		}
		if strings.ContainsAny(s, "eE") || errors.Is(err, strconv.ErrRange) {
			// 1e2 is an integer to the general validator: ask a rational.
			r, ok := new(big.Rat).SetString(s)
			if !ok || r.IsInt() && p.types&typesOf("number") == 0 {
				return false
			}
		}
	}
	switch {
	case p.types == 0 || p.types&typesOf("number") != 0:
	case p.types&typesOf("integer") != 0 && isInt:
	default:
		return false
	}
	if !within(s, i, f, isInt, p.minimum, false) || !within(s, i, f, isInt, p.maximum, true) {
		return false
	}
	if p.enum != nil {
		return false
	}
	return p.format == nil || p.format.Validate(n) == nil
}

// within reports whether the number (text s; i when isInt, else about f) is
// on the right side of bound, an upper bound when upper. Floats decide only
// far from the bound; near it, rationals decide exactly.
func within(s string, i int64, f float64, isInt bool, bound *big.Rat, upper bool) bool {
	if bound == nil {
		return true
	}
	var c int
	bf, _ := bound.Float64()
	if !isInt && !math.IsInf(f, 0) && math.Abs(f-bf) > 1e-6*(1+math.Abs(bf)) {
		c = 1
		if f < bf {
			c = -1
		}
	} else if isInt && bound.IsInt() && bound.Num().IsInt64() {
		b := bound.Num().Int64()
		switch {
		case i < b:
			c = -1
		case i > b:
			c = 1
		}
	} else {
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return false
		}
		c = r.Cmp(bound)
	}
	if upper {
		return c <= 0
	}
	return c >= 0
}
