package decode

import (
	"fmt"
	"sort"
	"strings"

	"github.com/inlet-dev/inlet/pkg/resources"
	"github.com/inlet-dev/inlet/pkg/rows"
)

// Code of a FileError about column_mapping or the file's columns.
const CodeMapping = "mapping.invalid"

// Mapping ties a file's columns (CSV) or keys (JSON) to resource fields.
// Build it once per import; Apply and MapJSON are then safe for concurrent use.
type Mapping struct {
	res     *resources.Resource
	pairs   []pair              // CSV: column → field, in header order
	byKey   map[string][]string // JSON: explicit column_mapping, key → fields
	byName  map[string]string   // JSON: field name and its lower case → field, fields column_mapping does not target
	ignored []string
}

type pair struct{ column, field string }

// NewMapping maps columns to fields. columnMapping (field → column header)
// takes precedence; any other column maps to the field of the same name,
// compared case-insensitively after trimming. header is the CSV header
// (Source.Header); pass nil for JSON, where keys are mapped per record.
//
// Every problem is reported at once in one *FileError: a column_mapping entry
// naming an unknown field or a column the header lacks, two columns landing
// on one field, and — when the schema forbids additional properties — every
// column that maps to no field (spec §5: reported, not silently dropped).
// When the schema allows them, such columns are ignored and listed by
// Ignored so the caller can warn.
func NewMapping(header []string, columnMapping map[string]string, res *resources.Resource) (*Mapping, error) {
	m := &Mapping{res: res}
	var errs []string
	targeted := map[string]bool{}
	claimed := map[string]bool{}
	cols := ImportColumns(header)

	fields := make([]string, 0, len(columnMapping))
	for f := range columnMapping {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	explicit := map[string][]string{} // column → fields
	for _, f := range fields {
		col := strings.TrimSpace(columnMapping[f])
		if !res.HasField(f) && !res.AllowsUnknownFields() {
			errs = append(errs, fmt.Sprintf("column_mapping: %q is not a field of %s", f, res.Name))
			continue
		}
		if col == "" {
			errs = append(errs, fmt.Sprintf("column_mapping: field %q is mapped to an empty column name", f))
			continue
		}
		targeted[f] = true
		if header == nil {
			explicit[col] = append(explicit[col], f)
			continue
		}
		found := findColumn(cols, col)
		if found == "" {
			errs = append(errs, fmt.Sprintf("column_mapping: column %q (for field %s) is not in the file's header", col, f))
			continue
		}
		claimed[found] = true
		explicit[found] = append(explicit[found], f)
	}

	m.byName = map[string]string{}
	for _, f := range res.Fields() {
		if targeted[f] {
			continue
		}
		m.byName[f] = f
		if _, taken := m.byName[strings.ToLower(f)]; !taken {
			m.byName[strings.ToLower(f)] = f
		}
	}

	if header == nil {
		m.byKey = explicit
	} else {
		var unmapped []string
		usedBy := map[string]string{} // field → column
		for _, col := range cols {
			if fs, ok := explicit[col]; ok {
				for _, f := range fs {
					m.pairs = append(m.pairs, pair{col, f})
				}
				continue
			}
			f := m.fieldFor(col)
			if f == "" {
				unmapped = append(unmapped, col)
				continue
			}
			if prev, dup := usedBy[f]; dup {
				errs = append(errs, fmt.Sprintf("columns %q and %q both map to field %s", prev, col, f))
				continue
			}
			usedBy[f] = col
			m.pairs = append(m.pairs, pair{col, f})
		}
		if len(unmapped) > 0 {
			if res.AllowsUnknownFields() {
				m.ignored = unmapped
			} else {
				q := make([]string, len(unmapped))
				for i, c := range unmapped {
					q[i] = fmt.Sprintf("%q", c)
				}
				word := "column %s maps"
				if len(q) > 1 {
					word = "columns %s map"
				}
				errs = append(errs, fmt.Sprintf(word+" to no field of %s (fields: %s; set column_mapping or remove the column)",
					strings.Join(q, ", "), res.Name, strings.Join(res.Fields(), ", ")))
			}
		}
	}
	if len(errs) > 0 {
		return nil, &FileError{Code: CodeMapping, Message: strings.Join(errs, "; ")}
	}
	return m, nil
}

// findColumn prefers an exact header match, then a unique case-insensitive one.
func findColumn(cols []string, want string) string {
	var ci []string
	for _, c := range cols {
		if c == want {
			return c
		}
		if strings.EqualFold(c, want) {
			ci = append(ci, c)
		}
	}
	if len(ci) == 1 {
		return ci[0]
	}
	return ""
}

func (m *Mapping) fieldFor(name string) string {
	if f, ok := m.byName[name]; ok {
		return f
	}
	return m.byName[strings.ToLower(strings.TrimSpace(name))]
}

// Ignored lists the columns that map to no field of a resource that allows
// unknown fields: they are not imported, and the caller should say so.
func (m *Mapping) Ignored() []string { return append([]string(nil), m.ignored...) }

// Fields returns the field each mapped CSV column feeds, by column.
func (m *Mapping) Fields() map[string]string {
	out := make(map[string]string, len(m.pairs))
	for _, p := range m.pairs {
		out[p.column] = p.field
	}
	return out
}

// Apply turns the cells of one CSV row into field data, coercing each
// non-blank cell to its field's type. Blank cells are "not given" and left
// out. A cell that cannot be coerced is a problem and its field is left out.
func (m *Mapping) Apply(cells map[string]string) (map[string]any, []rows.Problem) {
	data := make(map[string]any, len(m.pairs))
	var probs []rows.Problem
	for _, p := range m.pairs {
		cell, ok := cells[p.column]
		if !ok {
			continue
		}
		v, prob := m.res.Coerce(p.field, cell)
		if prob != nil {
			if p.column != p.field {
				prob.Message = fmt.Sprintf("column %q: %s", p.column, prob.Message)
			}
			probs = append(probs, *prob)
			continue
		}
		if v != nil {
			data[p.field] = v
		}
	}
	return data, probs
}

// MapJSON is Apply for a JSON record: keys map to fields like CSV columns
// (column_mapping first, then the field of the same name, case-insensitive),
// values go through CoerceJSON. Keys starting with "_" are ignored; other
// keys that map to no field are a schema.additional_properties problem when
// the schema forbids them and ignored otherwise.
func (m *Mapping) MapJSON(values map[string]any) (map[string]any, []rows.Problem) {
	data := make(map[string]any, len(values))
	var probs []rows.Problem
	from := map[string]string{} // field → key it came from
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys) // problems and "which key wins" must not depend on map order
	for _, k := range keys {
		if !importColumn(k) {
			continue
		}
		fields := m.byKey[k]
		if fields == nil {
			if f := m.fieldFor(k); f != "" {
				fields = []string{f}
			}
		}
		if fields == nil {
			if !m.res.AllowsUnknownFields() {
				probs = append(probs, rows.Problem{Code: resources.CodeAdditionalProperties, Field: k,
					Message: fmt.Sprintf("%s: is not a field of %s", k, m.res.Name)})
			}
			continue
		}
		for _, f := range fields {
			if prev, dup := from[f]; dup {
				probs = append(probs, rows.Problem{Code: resources.CodeInvalid, Field: f,
					Message: fmt.Sprintf("%s: keys %q and %q both map to this field", f, prev, k)})
				continue
			}
			from[f] = k
			v, given, prob := m.res.CoerceJSON(f, values[k])
			if prob != nil {
				probs = append(probs, *prob)
				continue
			}
			if given {
				data[f] = v
			}
		}
	}
	return data, probs
}
