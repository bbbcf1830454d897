package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/rows"
)

func putJSONBlob(t *testing.T, blobs blob.Store, key string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := blobs.Put(context.Background(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

func readBlob(t *testing.T, blobs blob.Store, key string) string {
	t.Helper()
	rc, err := blobs.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A retry request over NATS (parent_import_id, no file) becomes the
// parent's options with its own and a source of the parent's failed rows;
// a redelivery gets the same; a parent that cannot be retried fails it.
func TestRetryRequestReadsTheParentsFailedRows(t *testing.T) {
	ctx := context.Background()
	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := New(&Env{Blobs: blobs, BatchSize: 10, TempDir: t.TempDir(), Log: zerolog.Nop()})
	po := events.Options{ID: "imp_parent", OrganizationID: "acme", Resource: "customers", Action: events.ActionOverwrite,
		ColumnMapping: map[string]string{"email": "E-mail"}, SkipErrors: true}
	if err := imports.Normalize(&po); err != nil {
		t.Fatal(err)
	}
	parent := imports.Initial(po, time.Now())
	parent.Status, parent.Stats.Failed = events.StatusCompleted, 1
	putJSONBlob(t, blobs, imports.TerminalKey(parent.ID), parent)
	putJSONBlob(t, blobs, imports.HeaderKey(parent.ID), []string{"E-mail", "name"})
	var rj bytes.Buffer
	enc := rows.NewEncoder(&rj)
	_ = enc.Encode(rows.Reject{Row: 4, Phase: events.PhaseValidation, Code: "reference.not_found", Data: json.RawMessage(`{"E-mail":"a@x.io","name":"Ann"}`)})
	_ = enc.Encode(rows.Reject{Row: 2, Phase: events.PhasePreparsing, Code: "duplicate", Skipped: true, Data: json.RawMessage(`{"E-mail":"d@x.io","name":"Dup"}`)})
	_ = enc.Flush()
	if err := blobs.Put(ctx, imports.RejectsKey(parent.ID, events.PhaseValidation, 0), &rj, int64(rj.Len())); err != nil {
		t.Fatal(err)
	}

	request := func(o events.Options) (events.ImportRequested, error) {
		req := events.ImportRequested{Options: o}
		_ = imports.Normalize(&req.Options) // as RequestHandler does
		return req, h.retry(ctx, &req)
	}
	own := events.Options{ID: "imp_child", OrganizationID: "acme", Resource: "customers", ParentImportID: parent.ID, Name: "again"}
	req, err := request(own)
	if err != nil {
		t.Fatal(err)
	}
	if req.Source == nil || req.Format != events.FormatCSV || req.Action != events.ActionMerge || req.ColumnMapping["email"] != "E-mail" ||
		req.Name != "again" || req.SkipErrors {
		t.Fatalf("retry request: source %+v format %s options %+v", req.Source, req.Format, req.Options)
	}
	first := readBlob(t, blobs, req.Source.Key)
	if want := "E-mail,name\na@x.io,Ann\n"; first != want {
		t.Errorf("the retry's file %q, want the failed row only, under the parent's header: %q", first, want)
	}
	again, err := request(own)
	if err != nil || *again.Source != *req.Source || readBlob(t, blobs, again.Source.Key) != first {
		t.Errorf("redelivery: %+v %v, want the same source", again.Source, err)
	}

	for _, c := range []struct {
		what string
		o    events.Options
		want string
	}{
		{"another organization", events.Options{ID: "imp_x1", OrganizationID: "globex", Resource: "customers", ParentImportID: parent.ID}, "not found"},
		{"another resource", events.Options{ID: "imp_x2", OrganizationID: "acme", Resource: "companies", ParentImportID: parent.ID}, "imported customers"},
		{"an unknown parent", events.Options{ID: "imp_x3", OrganizationID: "acme", Resource: "customers", ParentImportID: "imp_nope"}, "not found"},
	} {
		_, err := request(c.o)
		var fe *FatalError
		if !errors.As(err, &fe) || !strings.Contains(fe.Reason, c.want) {
			t.Errorf("%s: %v, want a fatal error saying %q", c.what, err, c.want)
		}
	}
}
