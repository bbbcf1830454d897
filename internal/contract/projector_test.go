package contract_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/broker"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/projector"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/sqlite"
	"github.com/inlet-dev/inlet/internal/topology"
	"github.com/inlet-dev/inlet/pkg/client"
)

func openStore(t *testing.T, name string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func publish(t *testing.T, b *broker.Broker, imp events.Import, name, ceID string, data any) {
	t.Helper()
	ce, err := events.New(ceID, "/test", name, imp.ID, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.PublishEvent(context.Background(), events.Subject(imp.OrganizationID, imp.Resource, name), ce); err != nil {
		t.Fatal(err)
	}
}

func publishProgress(t *testing.T, b *broker.Broker, imp events.Import, phase string, batch, total int, rowsIn int64) {
	t.Helper()
	at := imp.CreatedAt.Add(time.Duration(batch+1) * time.Second)
	bp := events.BatchProgress{ImportID: imp.ID, Phase: phase, Batch: batch, BatchesTotal: total,
		RowsIn: rowsIn, RowsOut: rowsIn, Created: rowsIn, StartedAt: at, CompletedAt: at.Add(time.Second)}
	publish(t, b, imp, events.EventProgress, "progress:"+imp.ID+":"+imports.ProgressKey(phase, batch), bp)
}

func docs(t *testing.T, st store.ViewStore) map[string]string {
	t.Helper()
	views, err := st.ListViews(context.Background(), store.ViewFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, v := range views {
		out[v.ID] = v.Status + " " + v.Org + " " + v.Resource + " " + v.CreatedAt.UTC().Format(time.RFC3339Nano) + " " + string(v.Doc)
	}
	return out
}

func TestClientProjectorRebuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := zerolog.Nop()
	b, err := broker.Connect(ctx, broker.Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	live := openStore(t, "live.db")
	stop := sync.OnceFunc(runProjector(t, ctx, b, live))
	defer stop()

	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := resources.Load(map[string][]byte{"customers.json": []byte(`{"name":"customers","key":["email"],
		"schema":{"type":"object","properties":{"email":{"type":"string"}}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(projector.NewHTTP(projector.Config{Views: live, Records: live, Blobs: blobs, Registry: reg, Log: log}))
	defer srv.Close()
	c := newClient(t, b.Conn, srv.URL)
	c.Org = "acme"

	// A request published twice is one message in the stream (Nats-Msg-Id).
	req := events.ImportRequested{
		Options: events.Options{OrganizationID: "acme", Resource: "customers"},
		Source:  &events.Source{Key: "imports/x/source/a.csv", Name: "a.csv"},
	}
	id1, err := c.RequestImport(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	req.ID = id1
	if again, err := c.RequestImport(ctx, req); err != nil || again != id1 {
		t.Fatalf("second publish: %q %v", again, err)
	}
	stream, err := b.JS.Stream(ctx, topology.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream after a duplicate request: %d messages (%v), want 1", info.State.Msgs, err)
	}
	if _, err := c.RequestImport(ctx, events.ImportRequested{Options: events.Options{Resource: "customers"}}); err == nil {
		t.Error("a request with neither source nor inputs was accepted")
	}

	opts := func(id string) events.Options {
		o := events.Options{ID: id, OrganizationID: "acme", Resource: "customers", CreatedBy: "api"}
		if err := imports.Normalize(&o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	imp1 := imports.Initial(opts(id1), time.Now())
	publish(t, b, imp1, events.EventQueued, "queued:"+id1, imp1)
	started := imp1
	started.Status = events.StatusProcessing
	publish(t, b, started, events.EventStarted, "started:"+id1, started)
	publishProgress(t, b, imp1, events.PhasePrevalidation, 0, 2, 10)
	publishProgress(t, b, imp1, events.PhasePrevalidation, 1, 2, 5)
	// The same batch again under another event id: a phase re-ran it.
	publish(t, b, imp1, events.EventProgress, "progress-redo", events.BatchProgress{ImportID: id1, Phase: events.PhasePrevalidation,
		Batch: 1, BatchesTotal: 2, RowsIn: 5, RowsOut: 5, Created: 5, StartedAt: imp1.CreatedAt, CompletedAt: imp1.CreatedAt})
	publish(t, b, imp1, events.EventPhaseCompleted, "pc:"+id1, events.PhaseCompleted{ImportID: id1, Phase: events.PhasePrevalidation, BatchesTotal: 2})
	final1 := started
	imports.Apply(&final1, imports.Progress{
		"a": {Phase: events.PhasePrevalidation, Batch: 0, BatchesTotal: 2, RowsIn: 10, Created: 10},
		"b": {Phase: events.PhasePrevalidation, Batch: 1, BatchesTotal: 2, RowsIn: 5, Created: 5},
	}, nil)
	imports.Finish(&final1, events.StatusCompleted, "", time.Now())
	publish(t, b, final1, events.EventCompleted, "completed:"+id1, final1)

	// Completed before the wait began: still found.
	got, err := c.WaitForCompletion(ctx, "acme", "customers", id1)
	if err != nil || got.ID != id1 || got.Status != events.StatusCompleted || got.Stats.Total != 15 {
		t.Fatalf("wait for a finished import: %+v %v", got.Stats, err)
	}

	// Waiting before the outcome exists: returns once it is published, and
	// skips other imports' outcomes.
	id2 := imports.NewID(time.Now())
	imp2 := imports.Initial(opts(id2), time.Now())
	waited := make(chan events.Import, 1)
	waitErr := make(chan error, 1)
	go func() {
		imp, err := c.WaitForCompletion(ctx, "acme", "customers", id2)
		waitErr <- err
		waited <- imp
	}()
	publishProgress(t, b, imp2, events.PhasePrevalidation, 0, 1, 3) // before queued
	publish(t, b, imp2, events.EventQueued, "queued:"+id2, imp2)
	time.Sleep(100 * time.Millisecond)
	failed2 := imp2
	imports.Finish(&failed2, events.StatusFailed, "store unreachable", time.Now())
	publish(t, b, failed2, events.EventFailed, "failed:"+id2, failed2)
	if err := <-waitErr; err != nil {
		t.Fatal(err)
	}
	if imp := <-waited; imp.ID != id2 || imp.Status != events.StatusFailed || imp.Reason == nil || *imp.Reason != "store unreachable" {
		t.Fatalf("waited import: %+v", imp)
	}

	// A third import stays open: its view is computed, not copied.
	id3 := imports.NewID(time.Now())
	imp3 := imports.Initial(opts(id3), time.Now())
	publishProgress(t, b, imp3, events.PhasePreparsing, 1, 3, 4)
	publish(t, b, imp3, events.EventQueued, "queued:"+id3, imp3)
	publishProgress(t, b, imp3, events.PhasePrevalidation, 0, 1, 12)
	publishProgress(t, b, imp3, events.PhasePreparsing, 0, 3, 8)
	publishProgress(t, b, imp3, events.PhasePreparsing, 0, 3, 8)

	// Wait for the live projector to catch up, reading through the client.
	deadline := time.Now().Add(20 * time.Second)
	for {
		a, e1 := c.Get(ctx, id1)
		bb, e2 := c.Get(ctx, id2)
		cc, e3 := c.Get(ctx, id3)
		if e1 == nil && e2 == nil && e3 == nil && a.Status == events.StatusCompleted && bb.Status == events.StatusFailed &&
			cc.Phases[1].BatchesDone == 2 && cc.Phases[0].BatchesDone == 1 {
			if cc.Stats.Total != 12 || cc.Status != events.StatusProcessing || cc.Phases[1].RowsIn != 12 {
				t.Fatalf("open import view: status %q stats %+v phases %+v", cc.Status, cc.Stats, cc.Phases)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live views did not catch up: %v %v %v / %q %q %+v", e1, e2, e3, a.Status, bb.Status, cc.Phases)
		}
		time.Sleep(50 * time.Millisecond)
	}
	page, err := c.List(ctx, client.Filters{Status: events.StatusCompleted})
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != id1 {
		t.Fatalf("list completed: %+v %v", page, err)
	}
	if _, err := c.Get(ctx, "imp_missing"); !client.IsNotFound(err) {
		t.Errorf("missing import: %v, want a not-found error", err)
	}
	want := docs(t, live)
	if len(want) != 3 {
		t.Fatalf("live views: %d, want 3", len(want))
	}
	wantFinal, _ := json.Marshal(final1)
	if gotFinal, _ := json.Marshal(got); string(gotFinal) != string(wantFinal) {
		t.Errorf("completion object differs from the published one:\n got %s\nwant %s", gotFinal, wantFinal)
	}

	// Rebuild from the stream into an empty store and into the live one: the
	// views must be identical to the live ones.
	fresh := openStore(t, "fresh.db")
	if err := projector.New(fresh, log).Rebuild(ctx, b.JS, nil); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := projector.New(live, log).Rebuild(ctx, b.JS, nil); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]store.ViewStore{"fresh": fresh, "live": live} {
		have := docs(t, st)
		for id, w := range want {
			if have[id] != w {
				t.Errorf("%s rebuild of %s:\n got %s\nwant %s", name, id, have[id], w)
			}
		}
		if len(have) != len(want) {
			t.Errorf("%s rebuild has %d views, want %d", name, len(have), len(want))
		}
	}
}
