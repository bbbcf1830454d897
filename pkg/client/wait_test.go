package client_test

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// WaitForCompletion reads from a little before the import was made, never
// the stream's history (internal/contract proves it against a server).
func TestWaitStartsAtTheImportsTime(t *testing.T) {
	now := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	c := client.New(nil, "")
	terminal := []string{"imports.acme.companies.completed", "imports.acme.companies.failed",
		"imports.acme.companies.interrupted", "imports.acme.companies.timed_out", "imports.acme.companies.expired"}

	created := now.Add(-time.Hour)
	cfg := c.WaitConsumer("acme", "companies", events.NewID(created), now)
	if cfg.DeliverPolicy != jetstream.DeliverByStartTimePolicy || cfg.OptStartTime == nil ||
		!cfg.OptStartTime.Equal(created.Add(-client.DefaultWaitMargin)) {
		t.Errorf("an hour-old import: policy %v from %v, want by start time from %v", cfg.DeliverPolicy, cfg.OptStartTime, created.Add(-client.DefaultWaitMargin))
	}
	if !slices.Equal(cfg.FilterSubjects, terminal) {
		t.Errorf("subjects %v, want the terminal ones of acme's companies", cfg.FilterSubjects)
	}

	c.WaitMargin = 5 * time.Second
	if cfg := c.WaitConsumer("acme", "companies", events.NewID(created), now); !cfg.OptStartTime.Equal(created.Add(-5 * time.Second)) {
		t.Errorf("WaitMargin 5s: from %v", cfg.OptStartTime)
	}
	// An id from a clock ahead of ours: from now (less the margin), so
	// nothing published meanwhile is skipped.
	if cfg := c.WaitConsumer("acme", "companies", events.NewID(now.Add(time.Hour)), now); !cfg.OptStartTime.Equal(now.Add(-5 * time.Second)) {
		t.Errorf("an id of the future: from %v, want %v", cfg.OptStartTime, now.Add(-5*time.Second))
	}
	// No time in the id: only what is new (the HTTP check finds an import
	// that ended before).
	for _, id := range []string{"imp_custom-1", "order-42", "imp_81ARZ3NDEKTSV4RRFFQ69G5FAV"} {
		if cfg := c.WaitConsumer("acme", "companies", id, now); cfg.DeliverPolicy != jetstream.DeliverNewPolicy || cfg.OptStartTime != nil {
			t.Errorf("%s: policy %v from %v, want new messages only", id, cfg.DeliverPolicy, cfg.OptStartTime)
		}
	}
}
