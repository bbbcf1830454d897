package phases_test

import (
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/store"
)

// recRow is a row as parsing emits it: the final record decides.
func recRow(n int64, id, op string, rec map[string]any) rows.Row {
	r := row(n, rec)
	r.ID, r.Op, r.Record = id, op, rec
	return r
}

func TestValidationReferences(t *testing.T) {
	cases := []struct {
		mode     string
		found    []int64
		notFound map[int64]string // row → the value the message names
	}{
		// acme/live sees only ACME; OTHER lives in another organization, TST in test mode.
		// Live, batch 2 has no bad reference: it goes on as it came (passed through).
		{"live", []int64{1, 2, 5, 7, 8}, map[int64]string{3: "NOPE", 4: "OTHER", 6: "TST"}},
		{"test", []int64{5, 6, 8}, map[int64]string{1: "ACME", 2: "acme", 3: "NOPE", 4: "OTHER", 7: "ACME"}},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			f := newFixture(t)
			o := options(t, func(o *events.Options) { o.Mode = events.Mode(c.mode) })
			f.seed(t, store.Scope{Org: "acme", Mode: "live", Resource: "companies"},
				map[string]map[string]any{"co_acme": {"code": "ACME", "name": "Acme"}})
			f.seed(t, store.Scope{Org: "other", Mode: "live", Resource: "companies"},
				map[string]map[string]any{"co_other": {"code": "OTHER", "name": "Other"}})
			f.seed(t, store.Scope{Org: "acme", Mode: "test", Resource: "companies"},
				map[string]map[string]any{"co_test": {"code": "TST", "name": "Test"}})
			// A customer whose key value equals a company code: references look in companies only.
			f.seed(t, scopeOf(o), map[string]map[string]any{"rec_nope": cust("nope", "NOPE", "Not a company")})

			f.input(t, o, events.PhaseValidation,
				[]rows.Row{
					recRow(1, "r1", rows.OpCreate, with(cust("a@x.io", "", "A"), "company_code", "ACME")),
					recRow(2, "r2", rows.OpUpdate, with(cust("b@x.io", "", "B"), "company_code", " acme ")),
					recRow(3, "r3", rows.OpCreate, with(cust("c@x.io", "", "C"), "company_code", "NOPE")),
				},
				[]rows.Row{
					recRow(4, "r4", rows.OpCreate, with(cust("d@x.io", "", "D"), "company_code", "OTHER")),
					recRow(5, "r5", rows.OpCreate, cust("e@x.io", "", "E")), // no reference given
					recRow(6, "r6", rows.OpUnchanged, with(cust("f@x.io", "", "F"), "company_code", "TST")),
				},
				[]rows.Row{
					recRow(7, "r7", rows.OpUpdate, with(cust("g@x.io", "G7", "G"), "company_code", "ACME")),
					recRow(8, "r8", rows.OpCreate, cust("h@x.io", "", "H")),
				},
			)
			f.run(t, o, events.PhaseValidation, 3)
			out := f.allOut(t, o, events.PhaseValidation, 3)
			for _, n := range c.found {
				r, ok := out[n]
				if !ok {
					t.Errorf("row %d not emitted", n)
					continue
				}
				if r.ID == "" || r.Op == "" || r.Record["email"] == nil {
					t.Errorf("row %d changed on its way: %+v", n, r)
				}
			}
			if len(out) != len(c.found) {
				t.Errorf("emitted %v, want %v", keysOf(out), c.found)
			}
			rej := f.allRejects(t, o, events.PhaseValidation, 3)
			if len(rej) != len(c.notFound) {
				t.Errorf("rejected %v, want %v", keysOf(rej), c.notFound)
			}
			for n, val := range c.notFound {
				r, ok := rej[n]
				if !ok {
					t.Errorf("row %d not rejected", n)
					continue
				}
				if r.Code != "reference.not_found" || r.Field != "company_code" || r.Skipped || r.Phase != events.PhaseValidation {
					t.Errorf("row %d: %+v, want a failed reference.not_found on company_code", n, r)
				}
				if !strings.Contains(r.Message, val) || !strings.Contains(r.Message, "companies") {
					t.Errorf("row %d: message %q should name %q and companies", n, r.Message, val)
				}
				if len(r.Data) == 0 {
					t.Errorf("row %d: reject lost the raw row", n)
				}
			}
			var failed, outN int64
			for b := 0; b < 3; b++ {
				st := f.stats(t, o, events.PhaseValidation, b)
				checkStats(t, st, []int64{3, 3, 2}[b], st.RowsOut, st.RowsFailed, 0)
				failed += st.RowsFailed
				outN += st.RowsOut
			}
			if failed != int64(len(c.notFound)) || outN != int64(len(c.found)) {
				t.Errorf("stats failed %d out %d, want %d and %d", failed, outN, len(c.notFound), len(c.found))
			}
		})
	}
}

// A delete import does not check references: the record is going away.
func TestValidationDeleteSkipsReferences(t *testing.T) {
	f := newFixture(t)
	o := options(t, func(o *events.Options) { o.Action = "delete" })
	f.input(t, o, events.PhaseValidation, []rows.Row{
		recRow(1, "r1", rows.OpDelete, with(cust("a@x.io", "", ""), "company_code", "NOPE")),
	})
	f.run(t, o, events.PhaseValidation, 1)
	checkStats(t, f.stats(t, o, events.PhaseValidation, 0), 1, 1, 0, 0)
}
