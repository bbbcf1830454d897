package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/faults"
	"github.com/inlet-dev/inlet/internal/imports"
)

// downBlobs is a blob store that is unreachable (connection refused) for its
// first calls, then works.
type downBlobs struct {
	blob.Store
	outage  atomic.Int64 // calls still refused
	refused atomic.Int64
}

func (d *downBlobs) down(op, key string) error {
	if strings.Contains(key, "/source/") && op == "put" {
		return nil // the user's upload, before the import starts
	}
	if d.outage.Add(-1) >= 0 {
		d.refused.Add(1)
		return fmt.Errorf("blob: %s %q: dial tcp 127.0.0.1:9000: %w", op, key, syscall.ECONNREFUSED)
	}
	return nil
}

func (d *downBlobs) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := d.down("get", key); err != nil {
		return nil, err
	}
	return d.Store.Get(ctx, key)
}

func (d *downBlobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := d.down("put", key); err != nil {
		return err
	}
	return d.Store.Put(ctx, key, r, size)
}

func (d *downBlobs) Stat(ctx context.Context, key string) (blob.Info, error) {
	if err := d.down("stat", key); err != nil {
		return blob.Info{}, err
	}
	return d.Store.Stat(ctx, key)
}

// A blob store down for longer than every allowed delivery would last is
// waited out inside one delivery: the import completes with exact stats, no
// delivery is spent on the outage (each message is delivered once) and
// nothing fails.
func TestTransientFaultsAreWaitedOutNotCounted(t *testing.T) {
	f := newFixture(t)
	f.env.Backoff = faults.Backoff{First: time.Millisecond, Max: 5 * time.Millisecond}
	down := &downBlobs{Store: f.env.Blobs}
	f.env.Blobs = down
	opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "customers", SkipErrors: true}
	// MaxDeliver is 3: an outage of 25 calls would fail the import if each
	// refused call spent a delivery.
	down.outage.Store(25)
	want := events.Stats{Total: 6, Processed: 6, Created: 2, Skipped: 2, Failed: 2}
	imp := f.run(t, opts, customersCSV, 1) // run fails the test on any delivery error
	if imp.Status != events.StatusCompleted || imp.Stats != want {
		t.Fatalf("after an outage: %s %+v (reason %v), want completed %+v", imp.Status, imp.Stats, imp.Reason, want)
	}
	if got := down.refused.Load(); got != 25 {
		t.Fatalf("the outage refused %d calls, want 25", got)
	}
}
