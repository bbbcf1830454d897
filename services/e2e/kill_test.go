package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
)

var recIDs = regexp.MustCompile(`rec_[0-9a-zA-Z]+`)

const mixedRows = 3000 // 30 batches of 100

var mixedOpts = events.Options{DuplicateHandling: "ignore_all", SkipErrors: true}

// TestKillPhaseMidImport imports the same mixed file into a clean
// organization and into organizations where one service is SIGKILLed in the
// middle of the import and restarted: the outcome must be identical.
func TestKillPhaseMidImport(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	start := time.Now()
	c := NewCluster(t, Options{BatchSize: 100, AckWait: "3s"})
	t.Logf("cluster up in %s", elapsed(start))
	body, wantStats, wantRecs := mixedCSV(mixedRows)
	batches := mixedRows / c.Opts.BatchSize

	seedOrg(t, c, "clean")
	cleanStart := time.Now()
	clean := c.WaitTerminal(c.Upload("clean", "customers", "mixed.csv", body, mixedOpts))
	t.Logf("clean import: %s", elapsed(cleanStart))
	checkImport(t, "clean", clean, wantStats)
	checkBatches(t, c, clean, batches)
	cleanRecs := checkCustomers(t, c, "clean", wantRecs)
	cleanErrors := recIDs.ReplaceAllString(c.ErrorsCSV(clean.ID), "rec_*")
	if n := int64(strings.Count(cleanErrors, "\n")); n != 1+wantStats.Skipped+wantStats.Failed {
		t.Errorf("clean errors.csv has %d lines, want a header and %d rows", n, wantStats.Skipped+wantStats.Failed)
	}
	if t.Failed() {
		t.FailNow()
	}

	for _, victim := range []struct {
		service string
		// watch is the phase whose first committed batch triggers the kill.
		watch string
	}{
		{"processing", events.PhaseProcessing},
		{"transforming", events.PhaseTransforming},
		{"prevalidation", events.PhasePrevalidation}, // it streams the file into batches: killed mid-file
		{"projector", events.PhaseProcessing},        // the view must still end correct
	} {
		t.Run(victim.service, func(t *testing.T) {
			c.T = t
			org := "kill-" + victim.service
			seedOrg(t, c, org)
			s := time.Now()
			id := c.Upload(org, "customers", "mixed.csv", body, mixedOpts)
			c.WaitProgress(id, victim.watch, 1, 2*time.Minute)
			c.Kill(victim.service, 0)
			done := len(c.Progress(id, victim.watch))
			t.Logf("SIGKILLed %s after %d/%d %s batches of %s were committed", victim.service, done, batches, victim.watch, id)
			if done >= batches {
				t.Logf("warning: %s had already committed every batch when it was killed; the kill tested a restart only", victim.watch)
			}
			time.Sleep(time.Second) // stay down for a moment, as a crashed pod would
			c.Restart(victim.service, 0)
			imp := c.WaitTerminalFor(id, 3*time.Minute)
			t.Logf("%s: import ended %s after %s", org, imp.Status, elapsed(s))
			checkImport(t, org, imp, wantStats)
			checkBatches(t, c, imp, batches)
			if imp.Stats != clean.Stats {
				t.Errorf("%s stats %+v differ from the clean import's %+v", org, imp.Stats, clean.Stats)
			}
			got := checkCustomers(t, c, org, wantRecs)
			if got != nil && len(got) != len(cleanRecs) {
				t.Errorf("%s stores %d customers, clean %d", org, len(got), len(cleanRecs))
			}
			for k, v := range cleanRecs {
				if got != nil && got[k] != v {
					t.Errorf("%s: customer %s differs from clean:\n got %s\nwant %s", org, k, got[k], v)
					break
				}
			}
			// Record ids (in ambiguity messages) differ between organizations.
			if e := recIDs.ReplaceAllString(c.ErrorsCSV(id), "rec_*"); e != cleanErrors {
				t.Errorf("%s: errors.csv differs from the clean import's (%d vs %d bytes)", org, len(e), len(cleanErrors))
			}
			// The import object went through the projector once more: the
			// terminal event must not be reapplied into something else.
			if again, _ := c.Import(id); again.Stats != imp.Stats || again.Status != imp.Status {
				t.Errorf("%s: view changed after the end: %s %+v", org, again.Status, again.Stats)
			}
		})
		c.T = t
	}
}
