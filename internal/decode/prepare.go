package decode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/inlet-dev/inlet/internal/jsonenc"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/rows"
)

// Prepare is the whole prevalidation of one record (spec §4 phase 1): read
// errors, mapping, coercion, schema validation and the primary key. It
// returns the row (Num, Raw, the coerced Data and, for a row without problems,
// its Warnings) and its problems; a row with problems is rejected, the first
// problem being the primary one. Warnings (README.md) never reject a row. Prepare is
// pure: it depends only on its arguments, so a phase may call it per row from
// any goroutine and a redelivered batch yields the same result.
func Prepare(res *resources.Resource, m *Mapping, rec Record) (rows.Row, []rows.Problem) {
	return prepare(res, m, rec, false)
}

// PrepareDelete is Prepare for a delete import, whose rows only identify
// records: fields the schema requires need not be given, but each row must
// hold a complete key (the primary key or an alternate key). Fields that are
// given are still coerced and validated.
func PrepareDelete(res *resources.Resource, m *Mapping, rec Record) (rows.Row, []rows.Problem) {
	return prepare(res, m, rec, true)
}

func prepare(res *resources.Resource, m *Mapping, rec Record, keysOnly bool) (rows.Row, []rows.Problem) {
	row := rows.Row{Num: rec.Num, Raw: rec.Raw}
	if rec.Err != nil {
		return row, []rows.Problem{rec.Err.Problem()}
	}
	var data map[string]any
	var warns, probs []rows.Problem
	if rec.Cells != nil {
		var asText map[string]string
		data, warns, probs, asText = m.applyCells(rec.Cells, rec.Numbers)
		if len(asText) > 0 {
			row.Raw = withCells(row.Raw, asText)
		}
	} else {
		data, warns, probs = m.MapValues(rec.Values)
	}
	row.Data = data

	// A field whose value could not be coerced was left out of data; the
	// schema would call it missing too, which only repeats the real problem.
	reported := make(map[string]bool, len(probs))
	for _, p := range probs {
		reported[p.Field] = true
	}
	for _, p := range res.Validate(data) {
		if reported[p.Field] || (keysOnly && p.Code == resources.CodeRequired) {
			continue
		}
		probs = append(probs, p)
	}
	for _, p := range probs {
		reported[p.Field] = true
	}

	if keysOnly {
		if len(res.KeyValues(data)) == 0 && !anyReported(reported, res.Key) {
			probs = append(probs, rows.Problem{Code: resources.CodeRequired, Field: res.Key[0],
				Message: fmt.Sprintf("%s: a delete row needs the key (%s)%s", res.Key[0], res.PrimaryKeyName(), altKeysHint(res))})
		}
	} else if _, err := res.Keys(data); err != nil {
		var mk *resources.MissingKeyError
		if errors.As(err, &mk) && !reported[mk.Field] {
			probs = append(probs, rows.Problem{Code: resources.CodeRequired, Field: mk.Field,
				Message: fmt.Sprintf("%s: key field is missing", mk.Field)})
		}
	}
	// Order: coercion problems (column order), then schema problems (by
	// field), then the key. Coercion comes first because it explains the rest.
	if len(probs) == 0 {
		// Warnings are for rows that are imported; a rejected row's problems
		// say all there is to fix.
		row.Warnings = warns
	}
	return row, probs
}

func anyReported(reported map[string]bool, fields []string) bool {
	for _, f := range fields {
		if reported[f] {
			return true
		}
	}
	return false
}

func altKeysHint(res *resources.Resource) string {
	if len(res.AlternateKeys) == 0 {
		return ""
	}
	s := " or an alternate key ("
	for i, ak := range res.AlternateKeys {
		if i > 0 {
			s += "; "
		}
		s += resources.KeyName(ak)
	}
	return s + ")"
}

// withCells is a row's raw cells (a JSON object of strings, in the file's
// column order) with some replaced by column; raw that is not such an
// object comes back as it was.
func withCells(raw []byte, cells map[string]string) []byte {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return raw
	}
	out := append(make([]byte, 0, len(raw)+16), '{')
	for first := true; dec.More(); first = false {
		k, err := dec.Token()
		key, isKey := k.(string)
		var v string
		if err != nil || !isKey || dec.Decode(&v) != nil {
			return raw
		}
		if text, ok := cells[key]; ok {
			v = text
		}
		if !first {
			out = append(out, ',')
		}
		out = jsonenc.AppendString(out, key)
		out = append(out, ':')
		out = jsonenc.AppendString(out, v)
	}
	return append(out, '}')
}
