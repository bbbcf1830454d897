package app

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/imports"
	"github.com/inlet-dev/inlet/pkg/projector"
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
	if err := a.runProjector(ctx); err != nil { // the projector only: no phase consumes anything
		t.Fatal(err)
	}
	publish := func(req events.ImportRequested) {
		t.Helper()
		ce, err := events.New("req:"+req.ID, "test", events.EventRequested, req.ID, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Broker.PublishEvent(events.Subject(req.OrganizationID, req.Resource, events.EventRequested), ce); err != nil {
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
