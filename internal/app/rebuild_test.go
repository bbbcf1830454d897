package app

import (
	"context"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/projector"
	"github.com/inlet-dev/inlet/internal/topology"
)

// A rebuild never loses an import: one whose events the stream no longer
// holds (they are kept seven days; here they are purged) is recovered from
// its final object in the blob store, stats and all.
func TestRebuildRecoversImportsTheStreamForgot(t *testing.T) {
	a := startEmbedded(t)
	ctx := context.Background()
	done := runImport(t, a, events.Options{OrganizationID: "acme", Resource: "companies"}, "c.csv", "code,name\nC1,One\nC2,Two\nC3,Three\nC4,Four\n")
	if done.Status != events.StatusCompleted {
		t.Fatalf("import %s", done.Status)
	}
	stream, err := a.Broker.JS.Stream(ctx, topology.EventsStream)
	if err == nil {
		err = stream.Purge(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := projector.New(a.Store, a.Log).Rebuild(ctx, a.Broker.JS, a.Blobs); err != nil {
		t.Fatal(err)
	}
	v, err := a.Store.GetView(ctx, done.ID)
	if err != nil {
		t.Fatalf("after the rebuild: %v", err)
	}
	got, err := projector.ImportOf(v)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != events.StatusCompleted || got.Stats != done.Stats || got.CompletedAt == nil || !got.CompletedAt.Equal(*done.CompletedAt) {
		t.Fatalf("recovered %s %+v completed %v, want %s %+v completed %v", got.Status, got.Stats, got.CompletedAt, done.Status, done.Stats, done.CompletedAt)
	}
}
