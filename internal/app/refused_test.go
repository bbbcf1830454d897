package app

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
)

// An import request on NATS that cannot be read, or whose body names
// another organization than its subject, is answered: a failed import with
// the reason on the subject's organization and resource, where the publisher
// listens. Before, it was dropped with a log line.
func TestRefusedRequestsAreAnsweredOnTheirSubject(t *testing.T) {
	a := startEmbedded(t)
	failed := make(chan events.Import, 4)
	sub, err := a.Broker.Conn.Subscribe(events.Subject("acme", "companies", string(events.StatusFailed)), func(m *nats.Msg) {
		ce, err := events.Decode(m.Data)
		if err != nil {
			return
		}
		var imp events.Import
		if json.Unmarshal(ce.Data, &imp) == nil {
			failed <- imp
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	subject := events.Subject("acme", "companies", events.EventRequested)
	other, _ := events.New("req:other", "test", events.EventRequested, "",
		events.ImportRequested{Options: events.Options{OrganizationID: "other", Resource: "companies"}})
	otherBody, _ := json.Marshal(other)
	for _, tc := range []struct {
		name, id string
		body     []byte
		want     string
	}{
		{"not JSON", "bad-json", []byte("{not json"), "the import request was refused"},
		{"another organization", "other-org", otherBody, "organization and resource must match the subject"},
	} {
		if err := a.Broker.Publish(context.Background(), subject, tc.id, tc.body); err != nil {
			t.Fatal(err)
		}
		select {
		case imp := <-failed:
			if imp.OrganizationID != "acme" || imp.Resource != "companies" || imp.Reason == nil || !strings.Contains(*imp.Reason, tc.want) {
				t.Errorf("%s: failed import %s/%s reason %v, want acme/companies saying %q", tc.name, imp.OrganizationID, imp.Resource, imp.Reason, tc.want)
			}
			if imp.ID == "" {
				t.Errorf("%s: no import id", tc.name)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: no failed event on %s", tc.name, subject)
		}
	}
}

// An import requested over NATS records who asked: the event's source.
func TestRequestsOverNATSRecordWhoAsked(t *testing.T) {
	a := startEmbedded(t)
	imp := runImport(t, a, events.Options{ID: imports.NewID(time.Now()), OrganizationID: "acme", Resource: "companies"}, "c.csv", "code,name\nC1,One\n")
	if imp.Status != events.StatusCompleted || imp.CreatedBy != "test" {
		t.Fatalf("import %s created_by %q, want completed and created by the event's source \"test\"", imp.Status, imp.CreatedBy)
	}
}
