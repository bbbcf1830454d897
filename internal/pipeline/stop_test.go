package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/phases"
	"github.com/inlet-dev/inlet/internal/pipeline"
	"github.com/inlet-dev/inlet/internal/topology"
)

// blockingPhase works on its first batch until its context ends (a batch
// that would take minutes), then behaves as the phase it wraps.
type blockingPhase struct {
	pipeline.Phase
	once    sync.Once
	started chan struct{}
}

func (p *blockingPhase) Run(ctx context.Context, job *pipeline.Job, w pipeline.Work) error {
	first := false
	p.once.Do(func() { first = true; close(p.started) })
	if !first {
		return p.Phase.Run(ctx, job, w)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(30 * time.Second):
		return errors.New("the long batch was never told to stop")
	}
}

// An interrupt takes effect inside a batch, within a few polls, instead of
// waiting for the batch to end: the batch is committed empty as at a
// boundary, and the import ends interrupted.
func TestInterruptStopsALongBatch(t *testing.T) {
	f := newFixture(t)
	f.env.StopPoll = 20 * time.Millisecond
	ctx := context.Background()
	opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "customers", SkipErrors: true}
	if err := imports.Normalize(&opts); err != nil {
		t.Fatal(err)
	}
	key := imports.SourceKey(opts.ID, "f.csv")
	if err := f.env.Blobs.Put(ctx, key, strings.NewReader(customersCSV), int64(len(customersCSV))); err != nil {
		t.Fatal(err)
	}
	req, _ := json.Marshal(events.ImportRequested{Options: opts, Source: &events.Source{Key: key}})
	msg := message.NewMessage("req", req)
	msg.Metadata.Set(topology.MetaSubject, events.Subject(opts.OrganizationID, opts.Resource, events.EventRequested))
	if err := f.h.Deliver(f.h.RequestHandler(phases.Prevalidation{}, nil))(msg); err != nil {
		t.Fatal(err)
	}
	slow := &blockingPhase{Phase: f.phase(events.PhaseTransforming), started: make(chan struct{})}
	blocked := false
	for round := 0; round < 100; round++ {
		work := f.pub.take(topology.WorkRoot + ".")
		if len(work) == 0 {
			break
		}
		for _, w := range work {
			var wm pipeline.WorkMessage
			if err := json.Unmarshal(w.body, &wm); err != nil {
				t.Fatal(err)
			}
			p := f.phase(wm.Phase)
			if wm.Phase == events.PhaseTransforming {
				p = slow
			}
			if wm.Phase != events.PhaseTransforming || blocked {
				if err := f.h.Deliver(f.h.WorkHandler(p))(message.NewMessage(w.id, w.body)); err != nil {
					t.Fatalf("%s: %v", w.id, err)
				}
				continue
			}
			blocked = true
			done := make(chan error, 1)
			go func() { done <- f.h.Deliver(f.h.WorkHandler(p))(message.NewMessage(w.id, w.body)) }()
			<-slow.started
			asked := time.Now()
			if err := f.h.RequestInterrupt(ctx, opts, events.Interrupt{By: "test"}); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("the stopped batch's delivery: %v", err)
				}
				t.Logf("the long batch stopped %s after the interrupt", time.Since(asked).Round(time.Millisecond))
			case <-time.After(10 * time.Second):
				t.Fatal("the interrupt did not stop the batch at work")
			}
		}
	}
	if !blocked {
		t.Fatal("no transforming work was delivered")
	}
	var imp events.Import
	for _, m := range f.pub.take("imports.") {
		if strings.HasSuffix(m.subject, ".interrupted") {
			ce, _ := events.Decode(m.body)
			_ = json.Unmarshal(ce.Data, &imp)
		}
	}
	if imp.Status != events.StatusInterrupted || imp.Reason == nil || !strings.Contains(*imp.Reason, "test") {
		t.Fatalf("import %s (reason %v), want interrupted on request of test", imp.Status, imp.Reason)
	}
	if imp.Stats.Created+imp.Stats.Updated != 0 {
		t.Fatalf("stats %+v: nothing should have been written", imp.Stats)
	}
}
