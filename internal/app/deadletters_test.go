package app

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/topology"
)

// A work message whose every delivery dies with its process (here: a
// preparsing replica that takes it and never answers) used up its
// deliveries: JetStream's advisory ends the import failed at once, naming the
// work, instead of leaving it processing until its deadline.
func TestUndeliverableWorkEndsTheImport(t *testing.T) {
	cfg := Config{
		NATSListen: "127.0.0.1:-1", DataDir: t.TempDir(), ResourcesDir: filepath.Join(repoRoot(), "resources"),
		LogLevel: "error", LogFormat: "console", BatchSize: 3, AckWait: time.Second, MaxDeliver: 2, Concurrency: 1,
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); a.Close() })
	// The preparsing consumer exists, and a replica that dies on every
	// message it takes is all it has.
	opts := a.subscribeOptions(events.PhasePreparsing + durableVersion)
	opts.Subject = topology.WorkSubject(events.PhasePreparsing)
	if _, err := a.Broker.Subscriber(opts); err != nil {
		t.Fatal(err)
	}
	cons, err := a.Broker.JS.Consumer(ctx, topology.WorkStream, opts.Durable)
	if err != nil {
		t.Fatal(err)
	}
	var taken atomic.Int64
	go func() {
		for ctx.Err() == nil {
			batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				continue
			}
			for range batch.Messages() {
				taken.Add(1) // and never answered: the process "died"
			}
		}
	}()
	if err := a.Start(ctx, Intake); err != nil {
		t.Fatal(err)
	}

	var b strings.Builder
	b.WriteString("code,name\n")
	for i := range 10 {
		fmt.Fprintf(&b, "C%d,Company %d\n", i, i)
	}
	start := time.Now()
	imp := runImport(t, a, events.Options{OrganizationID: "acme", Resource: "companies"}, "c.csv", b.String())
	if imp.Status != events.StatusFailed || imp.Reason == nil {
		t.Fatalf("import %s (reason %v), want failed", imp.Status, imp.Reason)
	}
	if want := "the preparsing phase's work on the whole file was delivered 2 times"; !strings.Contains(*imp.Reason, want) {
		t.Fatalf("reason %q, want it to say %q", *imp.Reason, want)
	}
	if imp.Stats.Total != 10 || imp.Stats.Processed != 0 {
		t.Fatalf("stats %+v, want 10 rows counted and none processed", imp.Stats)
	}
	if n := taken.Load(); n != 2 {
		t.Fatalf("the dying replica took the message %d times, want 2", n)
	}
	t.Logf("ended %s after %s", imp.Status, time.Since(start).Round(time.Millisecond))
}
