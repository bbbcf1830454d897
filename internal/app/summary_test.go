package app

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/store"
)

// withoutSummaries is a blob store in which no batch has a key summary: the
// whole-file counts read every row, as they did before summaries.
type withoutSummaries struct{ blob.Store }

func (w withoutSummaries) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if strings.Contains(key, "/keys/") {
		return nil, fmt.Errorf("%s: %w", key, blob.ErrNotFound)
	}
	return w.Store.Get(ctx, key)
}

// The whole-file counts (duplicate keys in preparsing, rows resolving to one
// record in parsing, the ids an overwrite keeps in cleanup) give the same
// outcome from the key summaries the phase before wrote as from its rows.
func TestKeySummariesCountAsTheRows(t *testing.T) {
	const first = "email,external_id,name\n" +
		"a@x.io,E1,Ann\nb@x.io,E2,Bob\nc@x.io,E3,Cid\nd@x.io,E4,Dee\n"
	// Batches of 3 rows: duplicates across batches by email and by
	// external_id, and two rows reaching one stored record by different keys.
	const second = "email,external_id,name\n" +
		"a@x.io,,Ann2\ne@x.io,E5,Eve\nf@x.io,E6,Fay\n" +
		"E@x.io,,Eve again\ng@x.io,E6,Gus\nh@x.io,,Hal\n" +
		"b@x.io,,Bob2\nq@x.io,E2,Bob via E2\ni@x.io,E9,Ivy\n"
	const overwrite = "email,external_id,name\n" +
		"a@x.io,,Ann3\nb@x.io,,Bob\nj@x.io,E10,Jo\nk@x.io,E11,Kai\n"
	type outcome struct {
		stats   []events.Stats
		phases  []string
		records []string
		last    string // the overwrite's id
	}
	run := func(t *testing.T, a *App) outcome {
		var o outcome
		for i, body := range []string{first, second, overwrite} {
			opts := events.Options{OrganizationID: "acme", Resource: "customers", SkipErrors: true}
			if i == 2 {
				opts.Action = "overwrite"
			}
			imp := runImport(t, a, opts, "c.csv", body)
			o.last = imp.ID
			if imp.Status != events.StatusCompleted {
				t.Fatalf("import %d: %s %v", i, imp.Status, imp.Reason)
			}
			o.stats = append(o.stats, imp.Stats)
			for _, p := range imp.Phases {
				o.phases = append(o.phases, fmt.Sprintf("%s in %d out %d failed %d", p.Name, p.RowsIn, p.RowsOut, p.RowsFailed))
			}
		}
		recs, err := a.Store.List(context.Background(), store.Scope{Org: "acme", Mode: "live", Resource: "customers"}, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			o.records = append(o.records, string(r.Data))
		}
		return o
	}
	a := startWith(t, 3)
	with := run(t, a)
	overwriteID := with.last
	without := run(t, startWrapping(t, 3, nil, func(b blob.Store) blob.Store { return withoutSummaries{b} }))
	with.last, without.last = "", ""
	if !reflect.DeepEqual(with, without) {
		t.Fatalf("from summaries:\n%v\nfrom rows:\n%v", with, without)
	}
	if want := (events.Stats{Total: 9, Processed: 9, Created: 2, Updated: 1, Skipped: 6}); with.stats[1] != want {
		t.Fatalf("second import %+v, want %+v", with.stats[1], want)
	}
	if with.stats[2].Overwritten == 0 {
		t.Fatalf("overwrite removed nothing: %+v", with.stats[2])
	}
	// The summaries were there to be read.
	for _, phase := range []string{events.PhasePrevalidation, events.PhaseTransforming, events.PhaseProcessing} {
		if _, err := a.Blobs.Stat(context.Background(), imports.KeysKey(overwriteID, phase, 0)); err != nil {
			t.Errorf("no key summary of the overwrite's %s: %v", phase, err)
		}
	}
}
