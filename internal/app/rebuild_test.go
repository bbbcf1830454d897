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

// A rebuild lists a parent's children again, from the stream and, once the
// stream forgot them, from the blob store (parents recover before their
// children: ids sort by creation).
func TestRebuildKeepsChildren(t *testing.T) {
	a := startEmbedded(t)
	ctx := context.Background()
	parent := runImport(t, a, events.Options{OrganizationID: "acme", Resource: "companies", SkipErrors: true}, "c.csv", "code,name\nK1,One\nK2,\n")
	if parent.Status != events.StatusCompleted || parent.Stats.Failed != 1 {
		t.Fatalf("parent %s %+v", parent.Status, parent.Stats)
	}
	child := runImport(t, a, events.Options{OrganizationID: "acme", Resource: "companies", ParentImportID: parent.ID}, "errors.csv",
		"code,name,_row,_phase,_code,_field,_message\nK2,Two,3,prevalidation,schema.required,name,missing\n")
	if child.Status != events.StatusCompleted || child.Stats.Created != 1 || child.ParentImportID != parent.ID {
		t.Fatalf("child %s %+v parent %q", child.Status, child.Stats, child.ParentImportID)
	}
	children := func(what string) {
		t.Helper()
		v, err := a.Store.GetView(ctx, parent.ID)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got, err := projector.ImportOf(v)
		if err != nil || len(got.Children) != 1 || got.Children[0] != child.ID {
			t.Errorf("%s: parent's children %v %v, want [%s]", what, got.Children, err, child.ID)
		}
	}
	if err := projector.New(a.Store, a.Log).Rebuild(ctx, a.Broker.JS, a.Blobs); err != nil {
		t.Fatal(err)
	}
	children("after a rebuild from the stream")
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
	children("after a rebuild from the blob store")
}
