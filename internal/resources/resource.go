package resources

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// KeySep joins the normalized values of a composite key. It is a control
// character no CSV or JSON user types, so "a"+"bc" and "ab"+"c" stay distinct.
const KeySep = "\x1f"

// Resource is a loaded, checked resource type: its Definition plus the
// compiled schema. It is immutable and safe for concurrent use. It marshals to
// JSON as its Definition.
type Resource struct {
	Definition

	file         string
	schema       *jsonschema.Schema
	fast         *fastSchema // nil: the schema uses keywords only the general validator knows
	props        map[string]*jsonschema.Schema
	types        map[string][]string // per field, resolved once: Coerce runs per cell
	fields       []string
	allowUnknown bool
	refs         []Reference
	formats      map[string]string // per field, the JSON Schema format ("date", "date-time"), resolved once
	headers      headerIndex
}

// Reference is one parsed entry of Definition.References: Field holds a value
// of Resource's key field Key.
type Reference struct {
	Field    string
	Resource string
	Key      string
}

// File is the definition file the resource was loaded from.
func (r *Resource) File() string { return r.file }

// Refs returns the resource's references, sorted by field.
func (r *Resource) Refs() []Reference { return append([]Reference(nil), r.refs...) }

// KeyName names a key by its fields: the name the store indexes it under.
func KeyName(fields []string) string { return strings.Join(fields, ",") }

// KeyName names a key by its fields (see the package function).
func (r *Resource) KeyName(fields []string) string { return KeyName(fields) }

// PrimaryKeyName is the name of the resource's primary key.
func (r *Resource) PrimaryKeyName() string { return KeyName(r.Key) }

// Fields returns the schema's property names, sorted.
func (r *Resource) Fields() []string { return append([]string(nil), r.fields...) }

// HasField reports whether name is a property of the schema.
func (r *Resource) HasField(name string) bool {
	_, ok := r.props[name]
	return ok
}

// AllowsUnknownFields reports whether the schema accepts properties it does
// not list (additionalProperties is not false).
func (r *Resource) AllowsUnknownFields() bool { return r.allowUnknown }

// FieldTypes returns the JSON Schema types declared for a field (following
// $ref), or nil when the field is unknown or its type is unconstrained.
// The slice is shared: do not modify it.
func (r *Resource) FieldTypes(name string) []string { return r.types[name] }

// FieldFormat is the JSON Schema format of a field (following $ref), or ""
// when it has none.
func (r *Resource) FieldFormat(name string) string { return r.formats[name] }

func resolveFormat(s *jsonschema.Schema) string {
	for depth := 0; s != nil && depth < 16; depth++ {
		if s.Format != nil {
			return s.Format.Name
		}
		s = s.Ref
	}
	return ""
}

func resolveTypes(s *jsonschema.Schema) []string {
	for depth := 0; s != nil && depth < 16; depth++ {
		if s.Types != nil {
			return s.Types.ToStrings()
		}
		s = s.Ref
	}
	return nil
}

// MissingKeyError says a record lacks (part of) its primary key.
type MissingKeyError struct {
	Resource string
	Field    string
}

func (e *MissingKeyError) Error() string {
	return fmt.Sprintf("%s: key field %s is missing", e.Resource, e.Field)
}

// Keys returns the normalized value of the primary key and of every alternate
// key data fully holds, by key name. A missing primary key is a
// *MissingKeyError; use KeyValues where an alternate key alone is enough
// (deletes).
func (r *Resource) Keys(data map[string]any) (map[string]string, error) {
	keys := r.KeyValues(data)
	if _, ok := keys[r.PrimaryKeyName()]; !ok {
		for _, f := range r.Key {
			if _, ok := NormalizeValue(data[f]); !ok {
				return nil, &MissingKeyError{Resource: r.Name, Field: f}
			}
		}
	}
	return keys, nil
}

// KeyValues is Keys without the primary-key requirement: every key (primary
// or alternate) that data fully holds.
// KeyFields lists the fields that make up the resource's keys (primary and
// alternate), each once.
func (r *Resource) KeyFields() []string {
	var out []string
	seen := map[string]bool{}
	for _, key := range append([][]string{r.Key}, r.AlternateKeys...) {
		for _, f := range key {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}

func (r *Resource) KeyValues(data map[string]any) map[string]string {
	keys := make(map[string]string, 1+len(r.AlternateKeys))
	r.EachKeyValue(data, func(name, value string) { keys[name] = value })
	return keys
}

// EachKeyValue is KeyValues one key at a time, without building a map.
func (r *Resource) EachKeyValue(data map[string]any, fn func(name, value string)) {
	if v, ok := keyValue(r.Key, data); ok {
		fn(KeyName(r.Key), v)
	}
	for _, ak := range r.AlternateKeys {
		if v, ok := keyValue(ak, data); ok {
			fn(KeyName(ak), v)
		}
	}
}

func keyValue(fields []string, data map[string]any) (string, bool) {
	if len(fields) == 1 {
		return NormalizeValue(data[fields[0]])
	}
	parts := make([]string, len(fields))
	for i, f := range fields {
		v, ok := NormalizeValue(data[f])
		if !ok {
			return "", false
		}
		parts[i] = v
	}
	return strings.Join(parts, KeySep), true
}

// NormalizeValue is the form a key value is matched in (spec §5): strings
// trimmed and lower-cased, numbers in canonical decimal form (so 7, 7.0 and
// "7" of an integer field all match), booleans as true/false. It reports false
// for absent, null, empty and non-scalar values, which cannot identify a
// record. The validation phase normalizes reference values with it too.
func NormalizeValue(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		s := strings.ToLower(strings.TrimSpace(v))
		return s, s != ""
	case json.Number:
		return CanonicalNumber(string(v))
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "", false
		}
		return CanonicalNumber(strconv.FormatFloat(v, 'g', -1, 64))
	case float32:
		return NormalizeValue(float64(v))
	case int:
		return strconv.FormatInt(int64(v), 10), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case int32:
		return strconv.FormatInt(int64(v), 10), true
	case uint64:
		return strconv.FormatUint(v, 10), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}
