package contract_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/projector"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/pkg/client"
)

// The rejected rows as the projector serves them are what the client reads:
// errors.json entry for entry (events.RowError), errors.csv byte for byte.
func TestClientReadsTheProjectorsErrors(t *testing.T) {
	ctx := context.Background()
	log := zerolog.Nop()
	views := openStore(t, "views.db")
	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := resources.Load(map[string][]byte{"companies.json": []byte(`{"name":"companies","key":["code"],
		"schema":{"type":"object","properties":{"code":{"type":"string"},"name":{"type":"string"}}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	o := events.Options{ID: events.NewID(time.Now()), OrganizationID: "acme", Resource: "companies", CreatedBy: "api", SkipErrors: true}
	if err := imports.Normalize(&o); err != nil {
		t.Fatal(err)
	}
	imp := imports.Initial(o, time.Now())
	imports.Finish(&imp, events.StatusCompleted, "", time.Now())
	ce, err := events.New("completed:"+imp.ID, "/test", events.EventCompleted, imp.ID, imp)
	if err != nil {
		t.Fatal(err)
	}
	if err := projector.New(views, log).Apply(ctx, events.Subject("acme", "companies", events.EventCompleted), ce); err != nil {
		t.Fatal(err)
	}
	var rejects bytes.Buffer
	for _, rj := range []rows.Reject{
		{Row: 2, Phase: events.PhasePrevalidation, Code: "schema.required", Field: "name", Message: "name: required", Data: json.RawMessage(`{"code":"B","name":""}`)},
		{Row: 4, Phase: events.PhasePrevalidation, Code: "schema.type", Field: "code", Message: "code: must be a string", Data: json.RawMessage(`{"code":"","name":"D"}`)},
	} {
		b, _ := json.Marshal(rj)
		rejects.Write(append(b, '\n'))
	}
	if err := blobs.Put(ctx, imports.RejectsKey(imp.ID, events.PhasePrevalidation, 0), bytes.NewReader(rejects.Bytes()), int64(rejects.Len())); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(projector.NewHTTP(projector.Config{Views: views, Records: views, Blobs: blobs, Registry: reg, Log: log}))
	defer srv.Close()
	c := newClient(t, nil, srv.URL)
	c.Org = "acme"

	got, err := c.ErrorsJSON(ctx, imp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Row != 2 || got[0].Code != "schema.required" || got[1].Field != "code" || string(got[1].Data) != `{"code":"","name":"D"}` {
		t.Errorf("errors.json through the client: %+v", got)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(get(t, srv.URL+"/v1/imports/"+imp.ID+"/errors.json", "acme"), &raw); err != nil || len(raw) != len(got) {
		t.Fatalf("errors.json: %d entries (%v)", len(raw), err)
	}
	for i := range raw {
		sameShape(t, "errors.json entry", raw[i], got[i])
	}

	var csv strings.Builder
	if err := c.ErrorsCSV(ctx, imp.ID, &csv); err != nil {
		t.Fatal(err)
	}
	if want := string(get(t, srv.URL+"/v1/imports/"+imp.ID+"/errors.csv", "acme")); csv.String() != want || !strings.Contains(want, "_row,_phase") {
		t.Errorf("errors.csv through the client:\n%s\nwant\n%s", csv.String(), want)
	}

	// Another organization's import is as unknown as a missing one.
	c.Org = "other"
	if _, err := c.ErrorsJSON(ctx, imp.ID); !client.IsNotFound(err) {
		t.Errorf("errors.json of another organization's import: %v", err)
	}
}
