package resources

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/agnivade/levenshtein"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// HeaderKey is the form a file's header is matched to field names and
// aliases in: accents removed, lower case, without spaces, underscores and
// hyphens, so "E-mail Address", "email_address" and "Émail address" are one
// key.
func HeaderKey(s string) string {
	folded := s
	if !isASCII(s) {
		// Accents are combining marks once decomposed: "É" is "E" + U+0301.
		t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)))
		if f, _, err := transform.String(t, s); err == nil {
			folded = f
		}
	}
	var b strings.Builder
	b.Grow(len(folded))
	for _, r := range folded {
		if unicode.IsSpace(r) || r == '_' || r == '-' {
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// headerIndex is built once at load: every field name and alias by its
// HeaderKey. Two field names with one key (e_mail and email) match neither
// through it: only their exact names do.
type headerIndex struct {
	byKey map[string]string   // HeaderKey → field; "" when ambiguous
	keys  map[string][]string // field → its keys (name first, then aliases)
}

// indexHeaders builds res.headers and reports the aliases that cannot be
// told apart from another field or its aliases.
func (res *Resource) indexHeaders(fail func(field, format string, args ...any)) {
	idx := headerIndex{byKey: map[string]string{}, keys: map[string][]string{}}
	for _, f := range res.fields {
		k := HeaderKey(f)
		idx.keys[f] = append(idx.keys[f], k)
		if other, taken := idx.byKey[k]; taken && other != f {
			idx.byKey[k] = ""
			continue
		}
		idx.byKey[k] = f
	}
	fields := make([]string, 0, len(res.Aliases))
	for f := range res.Aliases {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		if !res.HasField(f) {
			fail("aliases."+f, "field %q is not a property of the schema", f)
			continue
		}
		for _, a := range res.Aliases[f] {
			k := HeaderKey(a)
			if k == "" {
				fail("aliases."+f, "alias %q is blank", a)
				continue
			}
			if other, taken := idx.byKey[k]; taken && other != f {
				who := "field " + other
				if other == "" {
					who = "two fields"
				}
				fail("aliases."+f, "alias %q matches %s: a header must lead to one field", a, who)
				continue
			}
			if idx.byKey[k] != f {
				idx.byKey[k] = f
				idx.keys[f] = append(idx.keys[f], k)
			}
		}
	}
	res.headers = idx
}

// FieldForHeader is the field a file's header (CSV or XLSX column, JSON
// key) names by its HeaderKey: a field's name or one of its aliases.
func (r *Resource) FieldForHeader(header string) (string, bool) {
	f := r.headers.byKey[HeaderKey(header)]
	return f, f != ""
}

// maxSuggestions is how many field names ClosestFields offers.
const maxSuggestions = 3

// maxSuggestedHeader: a header longer than this (as a HeaderKey) is no
// misspelt field name, and edit distances over it would cost time in
// proportion to a hostile header's size.
const maxSuggestedHeader = 128

// ClosestFields names the fields (at most three, closest first) whose name
// or an alias is near header by edit distance over their HeaderKeys: a
// suggestion for a header no field took. A field qualifies within a third of
// the longer key's length (at least 2 edits), or when one key contains the
// other ("email" in "emailaddress1"). Ties go by name, so the answer depends
// only on its arguments.
func (r *Resource) ClosestFields(header string, exclude func(field string) bool) []string {
	hk := HeaderKey(header)
	if hk == "" || len(hk) > maxSuggestedHeader {
		return nil
	}
	type cand struct {
		field string
		dist  int
	}
	var cands []cand
	for _, f := range r.fields {
		if exclude != nil && exclude(f) {
			continue
		}
		best := -1
		for _, k := range r.headers.keys[f] {
			d := levenshtein.ComputeDistance(hk, k)
			limit := max(2, max(len(hk), len(k))/3)
			if d > limit && !(len(k) >= 3 && strings.Contains(hk, k)) && !(len(hk) >= 3 && strings.Contains(k, hk)) {
				continue
			}
			if best < 0 || d < best {
				best = d
			}
		}
		if best >= 0 {
			cands = append(cands, cand{f, best})
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].dist != cands[j].dist {
			return cands[i].dist < cands[j].dist
		}
		return cands[i].field < cands[j].field
	})
	out := make([]string, 0, min(len(cands), maxSuggestions))
	for i := 0; i < len(cands) && i < maxSuggestions; i++ {
		out = append(out, cands[i].field)
	}
	return out
}
