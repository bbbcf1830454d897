package app

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/projector"
)

// With no phase service running at all, the projector's deadline sweep still
// ends every import: one past its deadline times out, one still waiting for
// its file at expires_at expires.
func TestDeadlinesEndImportsWithNoPhaseRunning(t *testing.T) {
	cfg := Config{
		NATSListen: "127.0.0.1:-1", DataDir: t.TempDir(), ResourcesDir: filepath.Join(repoRoot(), "resources"),
		LogLevel: "warn", LogFormat: "console", BatchSize: 10, AckWait: 5 * time.Second, MaxDeliver: 5, Concurrency: 1,
		ImportTimeout: time.Hour, UploadTTL: 2 * time.Second, SweepEvery: 100 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Start(ctx, Projector); err != nil { // the projector only: no phase consumes anything
		t.Fatal(err)
	}
	publish := func(req events.ImportRequested) {
		t.Helper()
		ce, err := events.New("req:"+req.ID, "test", events.EventRequested, req.ID, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Broker.PublishEvent(context.Background(), events.Subject(req.OrganizationID, req.Resource, events.EventRequested), ce); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Second)
	late := events.ImportRequested{Options: events.Options{ID: imports.NewID(time.Now()), OrganizationID: "dl",
		Resource: "companies", Deadline: &deadline}, Source: &events.Source{Key: "nowhere.csv"}}
	waiting := events.ImportRequested{Options: events.Options{ID: imports.NewID(time.Now()), OrganizationID: "dl", Resource: "companies"}}
	publish(late)
	publish(waiting)
	want := map[string]events.Status{late.ID: events.StatusTimedOut, waiting.ID: events.StatusExpired}
	end := time.Now().Add(30 * time.Second)
	for id, status := range want {
		for {
			v, err := a.Store.GetView(ctx, id)
			if err == nil {
				imp, _ := projector.ImportOf(v)
				if imp.Status == status {
					if imp.Reason == nil || imp.CompletedAt == nil {
						t.Fatalf("%s: %s without reason or completed_at", id, status)
					}
					break
				}
				if imp.Status.Terminal() {
					t.Fatalf("%s ended %s, want %s", id, imp.Status, status)
				}
			}
			if time.Now().After(end) {
				t.Fatalf("%s never became %s", id, status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// A forced timeout (the phases did not stop in time: they are down) still
// counts a processing batch the store applied but whose commit died with its
// process: the settle step replays it. Without it the batch would be missing
// from the stats while its records are in the store.
func TestForcedTimeoutCountsAppliedBatches(t *testing.T) {
	for _, settle := range []bool{true, false} {
		t.Run(fmt.Sprintf("settle=%v", settle), func(t *testing.T) {
			a := startEmbedded(t) // batches of 3 rows
			var b strings.Builder
			b.WriteString("code,name\n")
			for i := 0; i < 30; i++ {
				fmt.Fprintf(&b, "S%d,Company %d\n", i, i)
			}
			opts := events.Options{ID: imports.NewID(time.Now()), OrganizationID: "f", Resource: "companies"}
			if imp := runImport(t, a, opts, "c.csv", b.String()); imp.Stats.Created != 30 {
				t.Fatalf("setup import: %+v", imp.Stats)
			}
			ctx := context.Background()
			// As if processing died after applying batch 4 but before committing
			// it (so the phase never completed: no sums), and the import never
			// finished.
			for _, key := range []string{imports.StatsKey(opts.ID, events.PhaseProcessing, 4), imports.SumsKey(opts.ID, events.PhaseProcessing),
				imports.SumsKey(opts.ID, events.PhaseCleanup), imports.TerminalKey(opts.ID)} {
				if err := a.Blobs.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
			}
			if !settle {
				a.Harness.Env.Settle = nil
			}
			full := opts
			_ = imports.Normalize(&full)
			for i := 0; i < 2; i++ { // ask to stop, then force once the grace (0) passed
				if err := a.Harness.TimeOut(ctx, full, "deadline passed", 0); err != nil {
					t.Fatal(err)
				}
			}
			rc, err := a.Blobs.Get(ctx, imports.TerminalKey(opts.ID))
			if err != nil {
				t.Fatal(err)
			}
			var imp events.Import
			err = json.NewDecoder(rc).Decode(&imp)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			want := int64(30)
			if !settle {
				want = 27
			}
			if imp.Status != events.StatusTimedOut || imp.Stats.Created != want {
				t.Fatalf("%s with %d created, want timed_out with %d (30 records are stored)", imp.Status, imp.Stats.Created, want)
			}
		})
	}
}
