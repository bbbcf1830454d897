package contract_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/broker"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/projector"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/pkg/client"
)

// oldImports is how many imports ended before the one a test waits for.
const oldImports = 300

// finish publishes the terminal event of a new import of acme's companies.
func finish(t *testing.T, b *broker.Broker, id string, status events.Status) events.Import {
	t.Helper()
	o := events.Options{ID: id, OrganizationID: "acme", Resource: "companies", CreatedBy: "api"}
	if err := imports.Normalize(&o); err != nil {
		t.Fatal(err)
	}
	imp := imports.Initial(o, time.Now())
	reason := ""
	if status != events.StatusCompleted {
		reason = "test"
	}
	imports.Finish(&imp, status, reason, time.Now())
	ev := events.TerminalEvent(status)
	publish(t, b, imp, ev, ev+":"+id, imp)
	return imp
}

// waiter is a client on a connection of its own, so the messages it
// receives can be counted.
func waiter(t *testing.T, b *broker.Broker, baseURL string) (*client.Client, *nats.Conn) {
	t.Helper()
	nc, err := nats.Connect(b.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c := newClient(t, nc, baseURL)
	c.Org = "acme"
	return c, nc
}

// WaitForCompletion reads the stream from the import's creation (its id's
// time, less the margin), not from its start: the terminal events of the
// imports that ended before never reach the waiting client.
func TestWaitForCompletionDoesNotReplayTheStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := broker.Connect(ctx, broker.Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := 0; i < oldImports; i++ {
		finish(t, b, events.NewID(time.Now()), []events.Status{events.StatusCompleted, events.StatusFailed, events.StatusInterrupted}[i%3])
	}
	time.Sleep(20 * time.Millisecond) // the import below is newer than all of them by more than the margin

	// wait waits for a new import that ends while it waits, and returns how
	// many messages its connection received meanwhile.
	wait := func(margin time.Duration) uint64 {
		t.Helper()
		c, nc := waiter(t, b, "")
		c.WaitMargin = margin
		id := events.NewID(time.Now())
		done := make(chan error, 1)
		go func() {
			imp, err := c.WaitForCompletion(ctx, "acme", "companies", id)
			if err == nil && (imp.ID != id || imp.Status != events.StatusCompleted) {
				t.Errorf("waited for %s, got %s %s", id, imp.ID, imp.Status)
			}
			done <- err
		}()
		time.Sleep(200 * time.Millisecond) // the consumer is in place
		finish(t, b, id, events.StatusCompleted)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return nc.Stats().InMsgs
	}
	n := wait(10 * time.Millisecond)
	t.Logf("messages received: %d", n)
	if n >= oldImports/10 {
		t.Errorf("waiting for a new import received %d messages: the %d older terminal events were replayed", n, oldImports)
	}
	// The measure would see a replay: a margin reaching back over the
	// older imports reads every one of them.
	if n := wait(time.Hour); n < oldImports {
		t.Errorf("with an hour's margin the wait received %d messages, want ≥ %d: the count does not see a replay", n, oldImports)
	}
}

// An id without a time is waited for from now on; the import's status over
// HTTP finds one that ended before the wait began.
func TestWaitForCompletionOfAnIDWithoutTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := zerolog.Nop()
	b, err := broker.Connect(ctx, broker.Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	views := openStore(t, "views.db")
	defer runProjector(t, ctx, b, views)()
	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := resources.Load(map[string][]byte{"companies.json": []byte(`{"name":"companies","key":["code"],
		"schema":{"type":"object","properties":{"code":{"type":"string"}}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(projector.NewHTTP(projector.Config{Views: views, Records: views, Blobs: blobs, Registry: reg, Log: log}))
	defer srv.Close()

	// Ended before the wait: over NATS alone it is never seen...
	ended := finish(t, b, "imp_chosen-by-client", events.StatusFailed)
	natsOnly, _ := waiter(t, b, "")
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelShort()
	if imp, err := natsOnly.WaitForCompletion(short, "acme", "companies", ended.ID); err == nil {
		t.Errorf("without HTTP an import that ended before the wait was found (%s): the stream was replayed", imp.Status)
	}
	// ...with HTTP it is read once the projector has it.
	withHTTP, _ := waiter(t, b, srv.URL)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := withHTTP.Get(ctx, ended.ID); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the projector never showed the ended import")
		}
		time.Sleep(50 * time.Millisecond)
	}
	imp, err := withHTTP.WaitForCompletion(ctx, "acme", "companies", ended.ID)
	if err != nil || imp.ID != ended.ID || imp.Status != events.StatusFailed {
		t.Fatalf("wait with HTTP for an ended import: %s %s %v", imp.ID, imp.Status, err)
	}

	// One that ends while the wait runs is read from the stream.
	done := make(chan events.Import, 1)
	go func() {
		imp, err := natsOnly.WaitForCompletion(ctx, "acme", "companies", "order-42")
		if err != nil {
			t.Error(err)
		}
		done <- imp
	}()
	time.Sleep(200 * time.Millisecond)
	finish(t, b, "order-42", events.StatusCompleted)
	if imp := <-done; imp.ID != "order-42" || imp.Status != events.StatusCompleted {
		t.Errorf("wait for order-42: %s %s", imp.ID, imp.Status)
	}
}
