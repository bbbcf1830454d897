package app

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/store"
)

func companies(t *testing.T, a *App, org string) []map[string]any {
	t.Helper()
	recs, err := a.Store.List(context.Background(), store.Scope{Org: org, Mode: "live", Resource: "companies"}, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]map[string]any, len(recs))
	for i, r := range recs {
		_ = json.Unmarshal(r.Data, &out[i])
	}
	return out
}

func codes(recs []map[string]any) string {
	var c []string
	for _, r := range recs {
		c = append(c, fmt.Sprint(r["code"]))
	}
	sort.Strings(c)
	return strings.Join(c, ",")
}

const fourCompanies = "code,name\nA,Alpha\nB,Beta\nC,Gamma\nD,Delta\n"

// Over the error threshold the import is interrupted before processing and
// nothing is written; skip_errors imports the valid rows.
func TestErrorThresholdStopsBeforeAnythingIsWritten(t *testing.T) {
	a := startEmbedded(t)
	file := "code,name\nA,Alpha\nB,\nC,Gamma\n" // one row of three fails: 33% > 10%
	imp := runImport(t, a, events.Options{OrganizationID: "t1", Resource: "companies"}, "c.csv", file)
	if imp.Status != events.StatusInterrupted || imp.Reason == nil || !strings.Contains(*imp.Reason, "error threshold") {
		t.Fatalf("got %s %v", imp.Status, imp.Reason)
	}
	if imp.Stats.Failed != 1 || imp.Stats.Total != 3 || imp.Stats.Created != 0 {
		t.Fatalf("stats %+v", imp.Stats)
	}
	if got := companies(t, a, "t1"); len(got) != 0 {
		t.Fatalf("an interrupted import wrote %v", got)
	}
	th := 0.5
	imp = runImport(t, a, events.Options{OrganizationID: "t1", Resource: "companies", ErrorThreshold: &th}, "c.csv", file)
	if imp.Status != events.StatusCompleted || imp.Stats.Created != 2 {
		t.Fatalf("threshold 0.5: %s %+v", imp.Status, imp.Stats)
	}
	imp = runImport(t, a, events.Options{OrganizationID: "t2", Resource: "companies", SkipErrors: true}, "c.csv", file)
	if imp.Status != events.StatusCompleted || imp.Stats.Created != 2 || imp.Stats.Failed != 1 {
		t.Fatalf("skip_errors: %s %+v", imp.Status, imp.Stats)
	}
}

// A dry run reports what would happen and writes nothing.
func TestDryRunWritesNothing(t *testing.T) {
	a := startEmbedded(t)
	runImport(t, a, events.Options{OrganizationID: "d", Resource: "companies"}, "c.csv", "code,name\nA,Alpha\nB,Beta\n")
	dry := runImport(t, a, events.Options{OrganizationID: "d", Resource: "companies", DryRun: true},
		"c.csv", "code,name\nA,Alpha\nB,Bravo\nE,Echo\n")
	want := events.Stats{Total: 3, Processed: 3, Created: 1, Updated: 1, Unchanged: 1}
	if dry.Status != events.StatusCompleted || dry.Stats != want || !dry.DryRun {
		t.Fatalf("dry run: %s %+v", dry.Status, dry.Stats)
	}
	if got := codes(companies(t, a, "d")); got != "A,B" {
		t.Fatalf("dry run changed the store: %s", got)
	}
	dryOver := runImport(t, a, events.Options{OrganizationID: "d", Resource: "companies", DryRun: true, Action: "overwrite"},
		"c.csv", "code,name\nA,Alpha\n")
	if dryOver.Stats.Overwritten != 1 || dryOver.Stats.Unchanged != 1 {
		t.Fatalf("dry overwrite: %+v", dryOver.Stats)
	}
	if got := codes(companies(t, a, "d")); got != "A,B" {
		t.Fatalf("dry overwrite changed the store: %s", got)
	}
}

// Overwrite removes the records the file did not contain, and nothing when
// the file failed the threshold; delete removes the rows' records and skips
// the missing ones.
func TestOverwriteAndDelete(t *testing.T) {
	a := startEmbedded(t)
	runImport(t, a, events.Options{OrganizationID: "o", Resource: "companies"}, "c.csv", fourCompanies)
	other := runImport(t, a, events.Options{OrganizationID: "o", Resource: "companies", Mode: "test"}, "c.csv", fourCompanies)
	if other.Stats.Created != 4 {
		t.Fatalf("test-mode records: %+v", other.Stats)
	}
	bad := runImport(t, a, events.Options{OrganizationID: "o", Resource: "companies", Action: "overwrite"},
		"c.csv", "code,name\nA,Alpha\nB,\nC,\n")
	if bad.Status != events.StatusInterrupted || bad.Stats.Overwritten != 0 {
		t.Fatalf("failed overwrite: %s %+v", bad.Status, bad.Stats)
	}
	if got := codes(companies(t, a, "o")); got != "A,B,C,D" {
		t.Fatalf("a failed overwrite removed records: %s", got)
	}
	over := runImport(t, a, events.Options{OrganizationID: "o", Resource: "companies", Action: "overwrite"},
		"c.csv", "code,name\nA,Alpha\nC,Gamma2\nE,Echo\n")
	want := events.Stats{Total: 3, Processed: 3, Created: 1, Updated: 1, Unchanged: 1, Overwritten: 2}
	if over.Status != events.StatusCompleted || over.Stats != want {
		t.Fatalf("overwrite: %s %+v", over.Status, over.Stats)
	}
	if got := codes(companies(t, a, "o")); got != "A,C,E" {
		t.Fatalf("after overwrite: %s", got)
	}
	recs, _ := a.Store.List(context.Background(), store.Scope{Org: "o", Mode: "test", Resource: "companies"}, "", 100)
	if len(recs) != 4 {
		t.Fatalf("overwrite of live touched test records: %d left", len(recs))
	}
	del := runImport(t, a, events.Options{OrganizationID: "o", Resource: "companies", Action: "delete"},
		"c.csv", "code\nA\nZ\n")
	wantDel := events.Stats{Total: 2, Processed: 2, Deleted: 1, Skipped: 1}
	if del.Status != events.StatusCompleted || del.Stats != wantDel {
		t.Fatalf("delete: %s %+v", del.Status, del.Stats)
	}
	if n := len(companies(t, a, "o")); n != 2 {
		t.Fatalf("after delete: %d records", n)
	}
}

// An interrupt, or a deadline passing, stops a running import at a batch
// boundary: it ends interrupted (timed_out), and its stats count exactly what
// was applied.
func TestStopsAtABatchBoundary(t *testing.T) {
	for _, kind := range []string{"interrupt", "deadline"} {
		t.Run(kind, func(t *testing.T) {
			a := startEmbedded(t) // batches of 3 rows
			var b strings.Builder
			b.WriteString("code,name\n")
			for i := 0; i < 600; i++ {
				fmt.Fprintf(&b, "K%d,Company %d\n", i, i)
			}
			id := imports.NewID(time.Now())
			opts := events.Options{ID: id, OrganizationID: "i", Resource: "companies"}
			done := make(chan events.Import, 1)
			go func() { done <- runImport(t, a, opts, "big.csv", b.String()) }()
			deadline := time.Now().Add(60 * time.Second)
			for {
				list, _ := a.Blobs.List(context.Background(), imports.StatsPrefix(id, events.PhaseProcessing))
				if len(list) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("processing never started")
				}
				time.Sleep(5 * time.Millisecond)
			}
			full := opts
			_ = imports.Normalize(&full)
			want := events.StatusInterrupted
			if kind == "interrupt" {
				if err := a.Harness.RequestInterrupt(context.Background(), full, events.Interrupt{By: "test"}); err != nil {
					t.Fatal(err)
				}
			} else {
				want = events.StatusTimedOut
				if err := a.Harness.TimeOut(context.Background(), full, "deadline passed", time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			imp := <-done
			if imp.Status != want || imp.Reason == nil || imp.CompletedAt == nil {
				t.Fatalf("got %s: %v", imp.Status, imp.Reason)
			}
			if kind == "interrupt" && (imp.InterruptedAt == nil || !strings.Contains(*imp.Reason, "test") || imp.UpdatedBy != "test") {
				t.Fatalf("interrupt: at %v by %q: %v", imp.InterruptedAt, imp.UpdatedBy, *imp.Reason)
			}
			stored := int64(len(companies(t, a, "i")))
			if imp.Stats.Created != stored || stored == 0 || stored == 600 {
				t.Fatalf("stats say %d created, the store holds %d (of 600)", imp.Stats.Created, stored)
			}
			if imp.Stats.Processed != imp.Stats.Created {
				t.Fatalf("processed %d, created %d", imp.Stats.Processed, imp.Stats.Created)
			}
		})
	}
}
