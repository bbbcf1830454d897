package contract_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/projector"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/pkg/client"
)

// Client.Watch reads the projector's event stream: the import as it is,
// then each change as it happens, until the terminal one; an unknown import
// is waited for until ctx ends, and an error of fn ends the watch.
func TestClientWatchFollowsTheEventStream(t *testing.T) {
	oldPoll := projector.StreamPoll
	projector.StreamPoll = 10 * time.Millisecond
	t.Cleanup(func() { projector.StreamPoll = oldPoll })
	ctx := context.Background()
	views := openStore(t, "views.db")
	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := resources.Load(map[string][]byte{"companies.json": []byte(`{"name":"companies","key":["code"],
		"schema":{"type":"object","properties":{"code":{"type":"string"},"name":{"type":"string"}}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(projector.NewHTTP(projector.Config{Views: views, Records: views, Blobs: blobs, Registry: reg, Log: zerolog.Nop()}))
	t.Cleanup(srv.Close)
	p := projector.New(views, zerolog.Nop())
	publishTo := func(imp events.Import, name string) {
		t.Helper()
		ce, err := events.New(name+":"+imp.ID, "/test", name, imp.ID, imp)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Apply(ctx, events.Subject("acme", "companies", name), ce); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	o := events.Options{ID: events.NewID(now), OrganizationID: "acme", Resource: "companies"}
	if err := imports.Normalize(&o); err != nil {
		t.Fatal(err)
	}
	imp := imports.Initial(o, now)
	publishTo(imp, events.EventQueued)

	cl := client.New(nil, srv.URL)
	cl.Org, cl.PollInterval = "acme", 20*time.Millisecond
	seen := make(chan events.Status)
	next := make(chan struct{})
	type result struct {
		imp events.Import
		err error
	}
	ended := make(chan result, 1)
	go func() {
		imp, err := cl.Watch(ctx, imp.ID, func(imp events.Import) error {
			seen <- imp.Status
			<-next
			return nil
		})
		ended <- result{imp, err}
	}()
	if s := <-seen; s != events.StatusQueued {
		t.Fatalf("first state %s, want the import as it is (queued)", s)
	}
	started := imp
	started.Status, started.StartedAt, started.UpdatedAt = events.StatusProcessing, &now, now.Add(time.Second)
	publishTo(started, events.EventStarted)
	next <- struct{}{}
	if s := <-seen; s != events.StatusProcessing {
		t.Fatalf("after started: %s, want processing", s)
	}
	done := started
	imports.Finish(&done, events.StatusCompleted, "", now.Add(time.Minute))
	publishTo(done, events.EventCompleted)
	next <- struct{}{}
	if s := <-seen; s != events.StatusCompleted {
		t.Fatalf("after completed: %s, want completed", s)
	}
	next <- struct{}{}
	select {
	case r := <-ended:
		if r.err != nil || r.imp.Status != events.StatusCompleted || r.imp.ID != imp.ID {
			t.Errorf("Watch returned %s %v, want the completed import", r.imp.Status, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after the terminal state")
	}

	// An import the read side does not know (yet): waited for until ctx ends.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := cl.Watch(short, "imp_01ZZZZZZZZZZZZZZZZZZZZZZZZ", func(events.Import) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("watching an unknown import: %v, want the context's deadline", err)
	}
	// An error of fn ends the watch with it.
	stop := errors.New("enough")
	if _, err := cl.Watch(ctx, imp.ID, func(events.Import) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("fn's error: %v, want it back", err)
	}
}
