package e2e

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
)

// checkImport asserts a completed import with exactly want stats, the
// accounting identities of spec §3 and every phase completed.
func checkImport(t *testing.T, what string, imp events.Import, want events.Stats) {
	t.Helper()
	if imp.Status != events.StatusCompleted {
		t.Errorf("%s: status %s (reason %s), want completed", what, imp.Status, deref(imp.Reason))
	}
	if imp.Stats != want {
		t.Errorf("%s: stats\n got %+v\nwant %+v", what, imp.Stats, want)
	}
	s := imp.Stats
	if sum := s.Created + s.Updated + s.Unchanged + s.Deleted + s.Skipped + s.Failed; sum != s.Processed || s.Processed != s.Total {
		t.Errorf("%s: buckets sum to %d, processed %d, total %d: want all equal", what, sum, s.Processed, s.Total)
	}
	if len(imp.Phases) != len(events.Phases) {
		t.Errorf("%s: %d phases in the import object, want %d", what, len(imp.Phases), len(events.Phases))
	}
	for i, p := range imp.Phases {
		if i < len(events.Phases) && p.Name != events.Phases[i] {
			t.Errorf("%s: phase %d is %s, want %s", what, i, p.Name, events.Phases[i])
		}
		if p.Status != events.PhaseStatusCompleted {
			t.Errorf("%s: phase %s is %s, want completed", what, p.Name, p.Status)
		}
		if p.BatchesDone != p.BatchesTotal {
			t.Errorf("%s: phase %s has %d/%d batches done", what, p.Name, p.BatchesDone, p.BatchesTotal)
		}
	}
}

// errKey is the part of an errors.json entry a test pins.
type errKey struct {
	Row   int64
	Phase string
	Code  string
	Field string
}

func errKeys(list []RowError) []errKey {
	out := make([]errKey, 0, len(list))
	for _, e := range list {
		out = append(out, errKey{e.Row, e.Phase, e.Code, e.Field})
	}
	return out
}

func checkErrorsJSON(t *testing.T, what string, got []RowError, want []errKey) {
	t.Helper()
	g := errKeys(got)
	if fmt.Sprint(g) != fmt.Sprint(want) {
		var b strings.Builder
		for _, e := range got {
			fmt.Fprintf(&b, "  row %d %s %s %s: %s %s\n", e.Row, e.Phase, e.Code, e.Field, e.Message, e.Data)
		}
		t.Errorf("%s: errors.json\n got %v\nwant %v\nentries:\n%s", what, g, want, b.String())
	}
	for _, e := range got {
		if e.Message == "" {
			t.Errorf("%s: errors.json row %d (%s) has no message", what, e.Row, e.Code)
		}
	}
}

// fieldsOf returns a record's data, failing when the key finds none.
func fieldsOf(t *testing.T, c *Cluster, org, resource, key string) map[string]any {
	t.Helper()
	r, ok := c.RecordByKey(org, resource, key)
	if !ok {
		t.Errorf("no %s record with key %q in %s", resource, key, org)
		return nil
	}
	return r.Fields()
}

func canon(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestEveryRowFate(t *testing.T) {
	start := time.Now()
	c := NewCluster(t, Options{BatchSize: 4})
	t.Logf("cluster up in %s", time.Since(start).Round(time.Millisecond))
	const org = "acme"

	companies := c.WaitTerminal(c.Upload(org, "companies", "companies.csv", "code,name\nACME,Acme\nGLOBEX,Globex\n", events.Options{}))
	checkImport(t, "companies", companies, events.Stats{Total: 2, Processed: 2, Created: 2})

	first := c.WaitTerminal(c.Upload(org, "customers", "c1.csv",
		"email,external_id,name,age,company_code\n"+
			"a@x.io,E1,Ann,30,ACME\n"+
			"b@x.io,E2,Bob,40,GLOBEX\n"+
			"c@x.io,E3,Cid,50,\n", events.Options{}))
	checkImport(t, "first customers", first, events.Stats{Total: 3, Processed: 3, Created: 3})

	// The second file is real-world CSV: a UTF-8 BOM, CRLF line ends, a blank
	// line, quoted commas, quotes and newlines; and every fate of a row.
	header := "email,external_id,name,age,company_code"
	lines := []string{
		"a@x.io,,Ann,30,",                          // 1 unchanged: empty cells keep stored values
		"B@X.io,,\"Bobby, Jr.\",41,",               // 2 updated: key matched case-insensitively; quoted comma
		"d@x.io,E4,\"Dee \"\"DD\"\" Doe\",20,ACME", // 3 created; quoted quotes
		"e@x.io,,Eve,20,",                          // 4 duplicate (ignore_all skips both)
		"e@x.io,,Eve2,21,",                         // 5 duplicate
		"not-an-email,,\"Bad, Name\",20,",          // 6 schema.format
		"g@x.io,,Gus,abc,",                         // 7 schema.type
		"h@x.io,,Hal,-1,",                          // 8 schema.minimum
		",,Ivy,30,",                                // 9 schema.required (the key)
		"f@x.io,E5,Fay,20,NOPE",                    // 10 reference.not_found
		"c@x.io,E1,Cid,50,",                        // 11 ambiguous: c@x.io is Cid, E1 is Ann
		"j@x.io,E9,Jay,30,ACME,extra",              // 12 parse.csv: one cell too many
		"k@x.io,,\"Kim\r\nMulti\",33,GLOBEX",       // 13 created; quoted newline
	}
	body := "\ufeff" + header + "\r\n" + strings.Join(lines[:6], "\r\n") + "\r\n\r\n" + strings.Join(lines[6:], "\r\n") + "\r\n"
	second := c.Upload(org, "customers", "c2.csv", body, events.Options{DuplicateHandling: "ignore_all", SkipErrors: true})
	imp := c.WaitTerminal(second)
	checkImport(t, "second customers", imp, events.Stats{Total: 13, Processed: 13, Created: 2, Updated: 1, Unchanged: 1, Skipped: 2, Failed: 7})
	if imp.File.Encoding == "" || !imp.File.HasHeader || imp.File.Delimiter != "," {
		t.Errorf("second customers: file detection %+v", imp.File)
	}

	checkErrorsJSON(t, "second customers", c.ErrorsJSON(second), []errKey{
		{4, "preparsing", "duplicate", "email"},
		{5, "preparsing", "duplicate", "email"},
		{6, "prevalidation", "schema.format", "email"},
		{7, "prevalidation", "schema.type", "age"},
		{8, "prevalidation", "schema.minimum", "age"},
		{9, "prevalidation", "schema.required", "email"},
		{10, "validation", "reference.not_found", "company_code"},
		{11, "transforming", "ambiguous", "email"}, // the first key that matched
		{12, "prevalidation", "parse.csv", ""},
	})
	gotCSV := c.ErrorsCSV(second)
	wantCSV := header + ",_row,_phase,_code,_field,_message\n"
	t.Logf("errors.csv:\n%s", gotCSV)
	checkErrorsCSV(t, gotCSV, wantCSV, []string{
		"e@x.io,,Eve,20,,4,preparsing,duplicate,email,",
		"e@x.io,,Eve2,21,,5,preparsing,duplicate,email,",
		"not-an-email,,\"Bad, Name\",20,,6,prevalidation,schema.format,email,",
		"g@x.io,,Gus,abc,,7,prevalidation,schema.type,age,",
		"h@x.io,,Hal,-1,,8,prevalidation,schema.minimum,age,",
		",,Ivy,30,,9,prevalidation,schema.required,email,",
		"f@x.io,E5,Fay,20,NOPE,10,validation,reference.not_found,company_code,",
		"c@x.io,E1,Cid,50,,11,transforming,ambiguous,email,",
		"j@x.io,E9,Jay,30,ACME,12,prevalidation,parse.csv,,", // the extra cell has no column
	})

	// use_first keeps the first row of a key and skips the rest.
	third := c.WaitTerminal(c.Upload(org, "customers", "c3.csv",
		"email,name,vip\nm@x.io,Mia,yes\nM@X.io,Mia2,no\nn@x.io,Nat,0\n", events.Options{DuplicateHandling: "use_first"}))
	checkImport(t, "use_first customers", third, events.Stats{Total: 3, Processed: 3, Created: 2, Skipped: 1})
	checkErrorsJSON(t, "use_first customers", c.ErrorsJSON(third.ID), []errKey{{2, "preparsing", "duplicate", "email"}})

	// JSON and JSONL inputs.
	jsonImp := c.WaitTerminal(c.Upload(org, "customers", "c4.json",
		`[{"email":"p@x.io","name":"Pat","age":5,"vip":true,"signed_up":"2024-02-29"},`+
			`{"email":"bad","name":"X"},`+
			`{"email":"a@x.io","name":"Ann","age":31}]`, events.Options{SkipErrors: true}))
	checkImport(t, "json customers", jsonImp, events.Stats{Total: 3, Processed: 3, Created: 1, Updated: 1, Failed: 1})
	checkErrorsJSON(t, "json customers", c.ErrorsJSON(jsonImp.ID), []errKey{{2, "prevalidation", "schema.format", "email"}})

	jsonlImp := c.WaitTerminal(c.Upload(org, "customers", "c5.jsonl",
		`{"email":"q@x.io","name":"Q","company_code":"GLOBEX"}`+"\n"+
			`{"email":"r@x.io","name":"R","age":"x"}`+"\n"+
			`{"email":"p@x.io","name":"Pat","age":5,"vip":true,"signed_up":"2024-02-29"}`+"\n",
		events.Options{SkipErrors: true}))
	checkImport(t, "jsonl customers", jsonlImp, events.Stats{Total: 3, Processed: 3, Created: 1, Unchanged: 1, Failed: 1})
	checkErrorsJSON(t, "jsonl customers", c.ErrorsJSON(jsonlImp.ID), []errKey{{2, "prevalidation", "schema.type", "age"}})

	// The stored records, through the records API.
	// b@x.io keeps the row's spelling of the key (B@X.io): matching is case-insensitive, the value is the row's.
	want := map[string]map[string]any{
		"a@x.io": {"email": "a@x.io", "external_id": "E1", "name": "Ann", "age": 31, "company_code": "ACME"},
		"b@x.io": {"email": "B@X.io", "external_id": "E2", "name": "Bobby, Jr.", "age": 41, "company_code": "GLOBEX"},
		"c@x.io": {"email": "c@x.io", "external_id": "E3", "name": "Cid", "age": 50},
		"d@x.io": {"email": "d@x.io", "external_id": "E4", "name": "Dee \"DD\" Doe", "age": 20, "company_code": "ACME"},
		"k@x.io": {"email": "k@x.io", "name": "Kim\nMulti", "age": 33, "company_code": "GLOBEX"},
		"m@x.io": {"email": "m@x.io", "name": "Mia", "vip": true},
		"n@x.io": {"email": "n@x.io", "name": "Nat", "vip": false},
		"p@x.io": {"email": "p@x.io", "name": "Pat", "age": 5, "vip": true, "signed_up": "2024-02-29"},
		"q@x.io": {"email": "q@x.io", "name": "Q", "company_code": "GLOBEX"},
	}
	recs := c.Records(org, "customers")
	got := map[string]string{}
	for _, r := range recs {
		f := r.Fields()
		e, _ := f["email"].(string)
		got[strings.ToLower(e)] = canon(f)
	}
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if w := canon(want[k]); got[k] != w {
			t.Errorf("record %s:\n got %s\nwant %s", k, got[k], w)
		}
	}
	if len(recs) != len(want) {
		var all []string
		for _, r := range recs {
			all = append(all, string(r.Data))
		}
		t.Errorf("%d customers stored, want %d:\n%s", len(recs), len(want), strings.Join(all, "\n"))
	}
	// ?key= finds by the normalized key; rows that failed or were skipped stored nothing.
	if f := fieldsOf(t, c, org, "customers", " B@x.IO "); f != nil && f["name"] != "Bobby, Jr." {
		t.Errorf("key lookup of B@x.IO: %v", f)
	}
	for _, k := range []string{"e@x.io", "f@x.io", "g@x.io", "h@x.io", "j@x.io", "r@x.io"} {
		if r, ok := c.RecordByKey(org, "customers", k); ok {
			t.Errorf("%s should not be stored: %s", k, r.Data)
		}
	}
	if n := len(c.Records("other", "customers")); n != 0 {
		t.Errorf("organization other sees %d customers of acme", n)
	}
	t.Logf("TestEveryRowFate took %s", time.Since(start).Round(time.Millisecond))
}

// checkErrorsCSV compares errors.csv with the header and, per line, the
// cells up to _message (messages are prose, checked non-empty).
func checkErrorsCSV(t *testing.T, got, wantHeader string, wantLines []string) {
	t.Helper()
	if !strings.HasPrefix(got, wantHeader) {
		t.Errorf("errors.csv header:\n got %q\nwant %q", firstLine(got), wantHeader)
		return
	}
	rest := strings.TrimSuffix(strings.TrimPrefix(got, wantHeader), "\n")
	var lines []string
	if rest != "" {
		lines = strings.Split(rest, "\n")
	}
	if len(lines) != len(wantLines) {
		t.Errorf("errors.csv has %d lines after the header, want %d:\n%s", len(lines), len(wantLines), got)
		return
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, wantLines[i]) || len(l) == len(wantLines[i]) {
			t.Errorf("errors.csv line %d:\n got %q\nwant %q + a message", i+2, l, wantLines[i])
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i+1]
	}
	return s
}
