package app

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/store"
)

// slowStore makes every batch one organization writes take a while, so a big
// import's processing batches stay queued.
type slowStore struct {
	store.Store
	org     string
	delay   time.Duration
	applied atomic.Int64
}

func (s *slowStore) Apply(ctx context.Context, scope store.Scope, batchID string, ops []store.Op) (store.BatchResult, error) {
	if scope.Org == s.org {
		time.Sleep(s.delay)
		defer s.applied.Add(1)
	}
	return s.Store.Apply(ctx, scope, batchID, ops)
}

// An import of one batch does not wait behind the queued batches of a big
// import: it has a lane of its own in every phase. Without it, its
// processing message sat behind all of the big import's.
func TestSmallImportOvertakesBigOne(t *testing.T) {
	slow := &slowStore{org: "big", delay: 100 * time.Millisecond}
	a := startWrapped(t, 10, func(s store.Store) store.Store { slow.Store = s; return slow })
	const batches = 40
	var b strings.Builder
	b.WriteString("code,name\n")
	for i := 0; i < batches*10; i++ {
		fmt.Fprintf(&b, "B%d,Company %d\n", i, i)
	}
	done := make(chan events.Import, 1)
	go func() {
		done <- runImport(t, a, events.Options{OrganizationID: "big", Resource: "companies"}, "big.csv", b.String())
	}()
	for deadline := time.Now().Add(60 * time.Second); slow.applied.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the big import never reached processing")
		}
	}
	small := runImport(t, a, events.Options{OrganizationID: "small", Resource: "companies"}, "small.csv", "code,name\nS1,One\nS2,Two\nS3,Three\n")
	appliedThen := slow.applied.Load()
	if small.Status != events.StatusCompleted || small.Stats.Created != 3 {
		t.Fatalf("small import: %s %+v", small.Status, small.Stats)
	}
	big := <-done
	if big.Status != events.StatusCompleted || big.Stats.Created != batches*10 {
		t.Fatalf("big import: %s %+v", big.Status, big.Stats)
	}
	if appliedThen > batches*3/4 {
		t.Fatalf("the small import finished after %d of the big import's %d batches were written: it waited behind them", appliedThen, batches)
	}
	t.Logf("the small import finished after %d of the big import's %d batches", appliedThen, batches)
}

// Through the router, a message whose import cannot succeed ends the import
// (the delivery policy), instead of coming back until the consumer gives up.
func TestUnreadableFileFailsTheImportThroughTheRouter(t *testing.T) {
	a := startEmbedded(t)
	done := make(chan events.Import, 1)
	go func() {
		done <- runImport(t, a, events.Options{OrganizationID: "acme", Resource: "customers"}, "bad.csv", "email,email\nx,y\n")
	}()
	select {
	case imp := <-done:
		if imp.Status != events.StatusFailed || imp.Reason == nil || !strings.Contains(*imp.Reason, "email") {
			t.Fatalf("got %s %v, want failed naming the column", imp.Status, imp.Reason)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the import did not end: its message was not under the delivery policy")
	}
}
