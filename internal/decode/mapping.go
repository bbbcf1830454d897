package decode

import (
	"fmt"
	"sort"
	"strings"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/textlimit"
)

// Code of a FileError about column_mapping or the file's columns.
const CodeMapping = "mapping.invalid"

// Warning codes: notes on rows that are still imported (rows.Row.Warnings).
// See README.md for the table.
const (
	// WarnTrimmed: a string value had surrounding whitespace, removed.
	WarnTrimmed = resources.WarnTrimmed
	// WarnUnknownColumn: a column (CSV, XLSX) or key (JSON) that maps to no
	// field of a schema that allows unknown fields; its value is ignored.
	WarnUnknownColumn = "warning.unknown_column"
)

// Mapping ties a file's columns (CSV) or keys (JSON) to resource fields.
// Build it once per import; Apply and MapJSON are then safe for concurrent use.
type Mapping struct {
	res      *resources.Resource
	pairs    []pair              // CSV: column → field, in header order
	byKey    map[string][]string // JSON: explicit column_mapping, key → fields
	byName   map[string]string   // field name and its lower case → field, fields column_mapping does not target
	targeted map[string]bool     // fields column_mapping places: no other column or key lands on them
	ignored  []string
	unmapped []UnmappedHeader
}

// UnmappedHeader is a header column no field took, with the fields whose
// names are closest to it (resources.ClosestFields).
type UnmappedHeader = events.UnmappedHeader

type pair struct{ column, field string }

// NewMapping maps columns to fields. columnMapping (field → column header)
// takes precedence; any other column maps to the field of the same name,
// else to the field whose name or alias it matches case-, space-,
// underscore-, hyphen- and accent-insensitively (resources.HeaderKey).
// header is the CSV header (Source.Header); pass nil for JSON, where keys
// are mapped per record.
//
// Every problem is reported at once in one *FileError: a column_mapping entry
// naming an unknown field or a column the header lacks, two columns landing
// on one field, and — when the schema forbids additional properties — every
// column that maps to no field (spec §5: reported, not silently dropped).
// When the schema allows them, such columns are ignored and listed by
// Ignored; each row with a value in one gets a warning.unknown_column
// warning from Prepare (ApplyCells). With a *FileError the mapping made so
// far is returned too: its Report says what was placed and what was not.
func NewMapping(header []string, columnMapping map[string]string, res *resources.Resource) (*Mapping, error) {
	targeted := map[string]bool{}
	m := &Mapping{res: res, targeted: targeted}
	var errs []string
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
			errs = append(errs, fmt.Sprintf("column_mapping: %s is not a field of %s", textlimit.Quote(f), res.Name))
			continue
		}
		if col == "" {
			errs = append(errs, fmt.Sprintf("column_mapping: field %s is mapped to an empty column name", textlimit.Quote(f)))
			continue
		}
		targeted[f] = true
		if header == nil {
			explicit[col] = append(explicit[col], f)
			continue
		}
		found := findColumn(cols, col)
		if found == "" {
			errs = append(errs, fmt.Sprintf("column_mapping: column %s (for field %s) is not in the file's header", textlimit.Quote(col), f))
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
				errs = append(errs, fmt.Sprintf("columns %s and %s both map to field %s", textlimit.Quote(prev), textlimit.Quote(col), f))
				continue
			}
			usedBy[f] = col
			m.pairs = append(m.pairs, pair{col, f})
		}
		taken := func(f string) bool { return targeted[f] || usedBy[f] != "" }
		for i, col := range unmapped {
			u := UnmappedHeader{Header: col, Suggestions: []string{}}
			if i < MaxReported {
				u.Suggestions = nonNil(res.ClosestFields(col, taken))
			}
			m.unmapped = append(m.unmapped, u)
		}
		if len(unmapped) > 0 {
			if res.AllowsUnknownFields() {
				m.ignored = unmapped
			} else {
				q := make([]string, len(m.unmapped))
				for i, u := range m.unmapped {
					q[i] = textlimit.Quote(u.Header)
					if len(u.Suggestions) > 0 {
						q[i] += " (did you mean " + strings.Join(u.Suggestions, " or ") + "?)"
					}
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
		fe := &FileError{Code: CodeMapping, Message: strings.Join(errs, "; ")}
		fe.Columns, fe.Unmapped = m.Report()
		return m, fe
	}
	return m, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
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

// fieldFor is the field a column or key lands on without column_mapping:
// the field of that name, else of that name in another case, else the one
// whose name or alias matches it by resources.HeaderKey.
func (m *Mapping) fieldFor(name string) string {
	if f, ok := m.byName[name]; ok {
		return f
	}
	if f, ok := m.byName[strings.ToLower(strings.TrimSpace(name))]; ok {
		return f
	}
	if f, ok := m.res.FieldForHeader(name); ok && !m.targeted[f] {
		return f
	}
	return ""
}

// MaxReported bounds each list of Report: the import object travels in
// events a broker must carry, whatever header a file has.
const MaxReported = 100

// Report is what the import object tells about the mapping (events.File):
// each mapped header column with its field, and the columns no field took
// with their suggestions, the first MaxReported of each in file order, a
// header clipped to textlimit.Field bytes. Both are nil for JSON, whose keys
// are mapped per record.
func (m *Mapping) Report() (columns map[string]string, unmapped []UnmappedHeader) {
	if m.pairs == nil && m.unmapped == nil {
		return nil, nil
	}
	columns = make(map[string]string, min(len(m.pairs), MaxReported))
	for _, p := range m.pairs {
		if len(columns) == MaxReported {
			break
		}
		columns[textlimit.Clip(p.column, textlimit.Field)] = p.field
	}
	for _, u := range m.unmapped[:min(len(m.unmapped), MaxReported)] {
		unmapped = append(unmapped, UnmappedHeader{Header: textlimit.Clip(u.Header, textlimit.Field), Suggestions: append([]string{}, u.Suggestions...)})
	}
	return columns, unmapped
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
// Apply is ApplyCells without the warnings.
func (m *Mapping) Apply(cells map[string]string) (map[string]any, []rows.Problem) {
	data, _, probs := m.ApplyCells(cells)
	return data, probs
}

// ApplyCells is Apply that also returns the row's warnings: a string value
// trimmed of surrounding whitespace (resources.WarnTrimmed) and, when the
// schema allows unknown fields, each ignored column (Ignored) in which this
// row has a non-blank cell (WarnUnknownColumn).
func (m *Mapping) ApplyCells(cells map[string]string) (data map[string]any, warnings, problems []rows.Problem) {
	data, warnings, problems, _ = m.applyCells(cells, nil)
	return data, warnings, problems
}

// applyCells is ApplyCells for a spreadsheet row too: a cell that holds a
// number (numbers, by column) is coerced as one (resources.CoerceSheetNumber),
// so the field decides whether it was a date, a number or a text of digits.
// asText holds, by column, the text such a cell became where it is not the
// cell's own (a date serial made a date): what the row's raw cells must say
// so that errors.csv and a retry give the row back as it was imported.
func (m *Mapping) applyCells(cells map[string]string, numbers map[string]resources.SheetNumber) (data map[string]any, warnings, problems []rows.Problem, asText map[string]string) {
	data = make(map[string]any, len(m.pairs))
	for _, p := range m.pairs {
		cell, ok := cells[p.column]
		if !ok {
			continue
		}
		var v any
		var warn, prob *rows.Problem
		if n, isNumber := numbers[p.column]; isNumber {
			v, warn, prob = m.res.CoerceSheetNumber(p.field, n)
			if text, isText := v.(string); isText && text != cell {
				if asText == nil {
					asText = map[string]string{}
				}
				asText[p.column] = text
			}
		} else {
			v, warn, prob = m.res.CoerceCell(p.field, cell)
		}
		if prob != nil {
			if p.column != p.field {
				prob.Message = fmt.Sprintf("column %s: %s", textlimit.Quote(p.column), prob.Message)
			}
			problems = append(problems, *prob)
			continue
		}
		if warn != nil {
			if p.column != p.field {
				warn.Message = fmt.Sprintf("column %s: %s", textlimit.Quote(p.column), warn.Message)
			}
			warnings = append(warnings, *warn)
		}
		if v != nil {
			data[p.field] = v
		}
	}
	for _, col := range m.ignored {
		if strings.TrimSpace(cells[col]) != "" {
			warnings = append(warnings, m.unknownColumn(col, "column"))
		}
	}
	return data, warnings, problems, asText
}

func (m *Mapping) unknownColumn(name, what string) rows.Problem {
	return rows.Problem{Code: WarnUnknownColumn, Field: name,
		Message: fmt.Sprintf("%s: %s is not a field of %s; its value was not imported", name, what, m.res.Name)}
}

// MapJSON is Apply for a JSON record: keys map to fields like CSV columns
// (column_mapping first, then the field of the same name, case-insensitive),
// values go through CoerceJSON. Keys starting with "_" are ignored; other
// keys that map to no field are a schema.additional_properties problem when
// the schema forbids them and ignored otherwise. MapJSON is MapValues
// without the warnings.
func (m *Mapping) MapJSON(values map[string]any) (map[string]any, []rows.Problem) {
	data, _, probs := m.MapValues(values)
	return data, probs
}

// MapValues is MapJSON that also returns the row's warnings: a string value
// trimmed of surrounding whitespace (resources.WarnTrimmed) and, when the
// schema allows unknown fields, each ignored key whose value is not null or
// a blank string (WarnUnknownColumn).
func (m *Mapping) MapValues(values map[string]any) (data map[string]any, warnings, problems []rows.Problem) {
	data = make(map[string]any, len(values))
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
				problems = append(problems, rows.Problem{Code: resources.CodeAdditionalProperties, Field: k,
					Message: fmt.Sprintf("%s: is not a field of %s", k, m.res.Name)})
			} else if given(values[k]) {
				warnings = append(warnings, m.unknownColumn(k, "key"))
			}
			continue
		}
		for _, f := range fields {
			if prev, dup := from[f]; dup {
				problems = append(problems, rows.Problem{Code: resources.CodeInvalid, Field: f,
					Message: fmt.Sprintf("%s: keys %s and %s both map to this field", f, textlimit.Quote(prev), textlimit.Quote(k))})
				continue
			}
			from[f] = k
			v, isGiven, warn, prob := m.res.CoerceJSONValue(f, values[k])
			if prob != nil {
				problems = append(problems, *prob)
				continue
			}
			if warn != nil {
				warnings = append(warnings, *warn)
			}
			if isGiven {
				data[f] = v
			}
		}
	}
	return data, warnings, problems
}

// given reports whether a JSON value says something: not null, not a blank
// string.
func given(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return strings.TrimSpace(v) != ""
	}
	return true
}
