package contract_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/gateway"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/pkg/client"
)

// parentImport stores what the pipeline leaves of a finished import in
// blobs: its terminal object, its header and one batch of rejects.
func parentImport(t *testing.T, blobs blob.Store, o events.Options, status events.Status, failed int64) events.Import {
	t.Helper()
	ctx := context.Background()
	if o.ID == "" {
		o.ID = imports.NewID(time.Now())
	}
	if err := imports.Normalize(&o); err != nil {
		t.Fatal(err)
	}
	imp := imports.Initial(o, time.Now())
	imp.Status, imp.Stats.Failed, imp.Stats.Total = status, failed, 3
	put := func(key string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := blobs.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	put(imports.TerminalKey(o.ID), imp)
	put(imports.HeaderKey(o.ID), []string{"Code", "Name"})
	var rj bytes.Buffer
	enc := rows.NewEncoder(&rj)
	_ = enc.Encode(rows.Reject{Row: 2, Phase: events.PhasePrevalidation, Code: "schema.required", Field: "name", Data: json.RawMessage(`{"Code":"B","Name":""}`)})
	_ = enc.Encode(rows.Reject{Row: 3, Phase: events.PhasePreparsing, Code: "duplicate", Skipped: true, Data: json.RawMessage(`{"Code":"A","Name":"Again"}`)})
	_ = enc.Flush()
	if err := blobs.Put(ctx, imports.RejectsKey(o.ID, events.PhasePrevalidation, 0), &rj, int64(rj.Len())); err != nil {
		t.Fatal(err)
	}
	return imp
}

// Retry carries the client's request to the gateway's route and back: the
// child takes its parent's options but for its own, is queued with
// links.parent, and every refusal is the API's error with its status.
func TestRetryThroughTheGateway(t *testing.T) {
	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := resources.Load(map[string][]byte{
		"companies.json": []byte(`{"name":"companies","key":["code"],"schema":{"type":"object","required":["code","name"],
			"properties":{"code":{"type":"string"},"name":{"type":"string","minLength":1}}}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	pub := &requests{}
	srv := httptest.NewServer(gateway.New(gateway.Config{Blobs: blobs, Publisher: pub, Registry: reg, Log: zerolog.Nop()}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	c := newClient(t, nil, srv.URL)
	c.Org = "acme"

	threshold := 0.5
	parent := parentImport(t, blobs, events.Options{OrganizationID: "acme", Resource: "companies", Mode: "test", Action: "overwrite",
		DuplicateHandling: "use_first", ColumnMapping: map[string]string{"code": "Code", "name": "Name"}, ErrorThreshold: &threshold,
		Name: "nightly", SkipErrors: true}, events.StatusCompleted, 1)

	// No file: the failed rows as they were, in the format their file allows.
	child, err := c.Retry(ctx, parent.ID, client.CreateRequest{Options: events.Options{Name: "again", DryRun: true}})
	if err != nil {
		t.Fatal(err)
	}
	req := pub.last(t)
	if req.ID != child.ID || req.Source != nil || req.Inputs != nil || req.ParentImportID != parent.ID {
		t.Fatalf("published %+v, want the child's request with parent_import_id and no file", req)
	}
	o := req.Options
	if o.Resource != "companies" || o.Mode != "test" || o.Action != events.ActionMerge || o.DuplicateHandling != "use_first" ||
		o.ColumnMapping["code"] != "Code" || o.Format != events.FormatCSV || o.Name != "again" || !o.DryRun ||
		o.SkipErrors || o.Threshold() != events.DefaultErrorThreshold {
		t.Errorf("the child's options %+v: want the parent's (overwrite as merge), its own name, dry_run, skip_errors and threshold", o)
	}
	if child.Status != events.StatusQueued || child.Links.Parent != "/v1/imports/"+parent.ID || child.ParentImportID != parent.ID {
		t.Errorf("child: status %s links %+v parent %q", child.Status, child.Links, child.ParentImportID)
	}

	// A file (the corrected errors.csv, underscore columns and all).
	fixed := "Code,Name,_row,_phase,_code,_field,_message\nB,Bravo,2,prevalidation,schema.required,name,missing\n"
	withFile, err := c.Retry(ctx, parent.ID, client.CreateRequest{Options: events.Options{SkipErrors: true},
		File: &client.File{Name: "errors.csv", ContentType: "text/csv", Body: strings.NewReader(fixed)}, IdempotencyKey: "fix-1"})
	if err != nil {
		t.Fatal(err)
	}
	req = pub.last(t)
	if req.ID != withFile.ID || req.Source == nil || req.ParentImportID != parent.ID || !req.SkipErrors || req.Action != events.ActionMerge {
		t.Errorf("published %+v, want the child's request with its file and the parent's options", req)
	}
	again, err := c.Retry(ctx, parent.ID, client.CreateRequest{Options: events.Options{SkipErrors: true},
		File: &client.File{Name: "errors.csv", ContentType: "text/csv", Body: strings.NewReader(fixed)}, IdempotencyKey: "fix-1"})
	if err != nil || !again.Repeated || again.ID != withFile.ID {
		t.Errorf("repeat under the same key: %+v %v, want %s again", again.Import.ID, err, withFile.ID)
	}

	refused := func(what, id string, req client.CreateRequest, status int, code string) {
		t.Helper()
		n := len(pub.list)
		_, err := c.Retry(ctx, id, req)
		var e *client.Error
		if !errors.As(err, &e) || e.Status != status || (code != "" && e.Code != code) {
			t.Errorf("%s: %v, want %d %s", what, err, status, code)
		}
		if len(pub.list) != n {
			t.Errorf("%s: the gateway published a request", what)
		}
	}
	refused("unknown parent", "imp_01ZZZZZZZZZZZZZZZZZZZZZZZZ", client.CreateRequest{}, http.StatusNotFound, "not_found")
	other := newClient(t, nil, srv.URL)
	other.Org = "globex"
	if _, err := other.Retry(ctx, parent.ID, client.CreateRequest{}); !client.IsNotFound(err) {
		t.Errorf("another organization's parent: %v, want 404", err)
	}
	running := parentImport(t, blobs, events.Options{OrganizationID: "acme", Resource: "companies"}, events.StatusProcessing, 1)
	refused("running parent", running.ID, client.CreateRequest{}, http.StatusConflict, "not_finished")
	clean := parentImport(t, blobs, events.Options{OrganizationID: "acme", Resource: "companies"}, events.StatusCompleted, 0)
	refused("parent without failed rows", clean.ID, client.CreateRequest{}, http.StatusUnprocessableEntity, "no_failed_rows")
	revert := parentImport(t, blobs, events.Options{OrganizationID: "acme", Resource: "companies", Action: events.ActionRevert, ParentImportID: parent.ID}, events.StatusCompleted, 1)
	refused("revert parent", revert.ID, client.CreateRequest{}, http.StatusUnprocessableEntity, "not_retryable")
	refused("an inherited option changed", parent.ID, client.CreateRequest{Options: events.Options{Action: events.ActionDelete}}, http.StatusUnprocessableEntity, "invalid_option")
	refused("sync without a file", parent.ID, client.CreateRequest{Options: events.Options{UploadMode: events.UploadSync}}, http.StatusUnprocessableEntity, "invalid_option")
}
