package phases_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/pipeline"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/store"
)

// A phase run over pipeline.MemoryWork (no broker, no blob store) commits
// what the harness commits on the blob store, batch for batch: a phase's
// unit test may use either.
func TestPhasesCommitTheSameOnMemoryWork(t *testing.T) {
	refs := func(f *fixture, o events.Options) [][]rows.Row {
		f.seed(t, store.Scope{Org: "acme", Mode: "live", Resource: "companies"},
			map[string]map[string]any{"co_acme": {"code": "ACME", "name": "Acme"}})
		return [][]rows.Row{
			{recRow(1, "r1", rows.OpCreate, with(cust("a@x.io", "", "A"), "company_code", "ACME")),
				recRow(2, "r2", rows.OpCreate, with(cust("b@x.io", "", "B"), "company_code", "NOPE"))},
			{recRow(3, "r3", rows.OpCreate, cust("c@x.io", "", "C"))},
		}
	}
	cases := []struct {
		phase string
		input func(f *fixture, o events.Options) [][]rows.Row
	}{
		{events.PhasePreparsing, func(*fixture, events.Options) [][]rows.Row { return dupFile() }},
		{events.PhaseTransforming, func(f *fixture, o events.Options) [][]rows.Row {
			f.seed(t, scopeOf(o), map[string]map[string]any{"rec_ann": cust("ann@x.io", "E1", "Ann"), "rec_bob": cust("bob@x.io", "E2", "Bob")})
			// Row 2's email is Bob's and its external id Ann's: ambiguous.
			return [][]rows.Row{{row(1, cust("ann@x.io", "E1", "Ann")), row(2, cust("bob@x.io", "E1", "Bob"))}, {row(3, cust("cy@x.io", "E3", "Cy"))}}
		}},
		{events.PhaseValidation, refs},
	}
	for _, c := range cases {
		t.Run(c.phase, func(t *testing.T) {
			f := newFixture(t)
			o := options(t, nil)
			input := c.input(f, o)
			f.input(t, o, c.phase, input...)
			f.run(t, o, c.phase, len(input))

			res, _ := f.reg.Get(o.Resource)
			job := &pipeline.Job{Options: o, Resource: res, Batches: len(input)}
			m, err := pipeline.NewMemoryWork(job, c.phase, t.TempDir(), input...)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.phase(c.phase).Run(context.Background(), job, m); err != nil {
				t.Fatal(err)
			}
			someRejected := false
			for b := range input {
				got, ok, err := m.Committed(b)
				if err != nil || !ok {
					t.Fatalf("batch %d: committed %v, %v", b, ok, err)
				}
				want := f.stats(t, o, c.phase, b)
				if got.Stats.RowsIn != want.RowsIn || got.Stats.RowsOut != want.RowsOut ||
					got.Stats.RowsFailed != want.RowsFailed || got.Stats.Skipped != want.Skipped {
					t.Errorf("batch %d stats: memory %+v, blob %+v", b, got.Stats, want)
				}
				if g, w := rowKeys(got.Rows), rowKeys(f.out(t, o, c.phase, b)); !slices.Equal(g, w) {
					t.Errorf("batch %d rows: memory %v, blob %v", b, g, w)
				}
				if g, w := rejectKeys(got.Rejects), rejectKeys(f.rejects(t, o, c.phase, b)); !slices.Equal(g, w) {
					t.Errorf("batch %d rejects: memory %v, blob %v", b, g, w)
				}
				someRejected = someRejected || len(got.Rejects) > 0
			}
			if !someRejected {
				t.Fatal("the input rejects nothing: the comparison would not see rejects")
			}
		})
	}
}

func rowKeys(rs []rows.Row) []string {
	var ks []string
	for _, r := range rs {
		ks = append(ks, fmt.Sprintf("%d %s %s", r.Num, r.Op, r.ID))
	}
	return ks
}

func rejectKeys(rs []rows.Reject) []string {
	var ks []string
	for _, r := range rs {
		ks = append(ks, fmt.Sprintf("%d %s %s %t", r.Row, r.Code, r.Field, r.Skipped))
	}
	return ks
}
