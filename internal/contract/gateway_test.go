package contract_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/gateway"
	"github.com/inlet-dev/inlet/internal/openapi"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/pkg/client"
)

// requests keeps the import-requested events the gateway publishes.
type requests struct {
	mu   sync.Mutex
	list []events.ImportRequested
}

func (r *requests) PublishEvent(_ context.Context, _ string, ce events.CloudEvent) error {
	var req events.ImportRequested
	if err := json.Unmarshal(ce.Data, &req); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, req)
	return nil
}

func (r *requests) last(t *testing.T) events.ImportRequested {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.list) == 0 {
		t.Fatal("the gateway published nothing")
	}
	return r.list[len(r.list)-1]
}

func newGateway(t *testing.T) (*httptest.Server, *requests) {
	t.Helper()
	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := resources.Load(map[string][]byte{
		"companies.json": []byte(`{"name":"companies","key":["code"],"schema":{"type":"object","required":["code","name"],
			"properties":{"code":{"type":"string"},"name":{"type":"string","minLength":1},"employees":{"type":"integer"}}}}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	pub := &requests{}
	srv := httptest.NewServer(gateway.New(gateway.Config{Blobs: blobs, Publisher: pub, Registry: reg, Log: zerolog.Nop()}))
	t.Cleanup(srv.Close)
	return srv, pub
}

// Every option the client sends in a multipart create is the option the
// gateway reads: the client encodes options by their JSON names, the
// gateway parses form fields by the same names.
func TestCreateCarriesEveryOptionToTheGateway(t *testing.T) {
	srv, pub := newGateway(t)
	c := newClient(t, nil, srv.URL)
	c.Org = "acme"
	threshold, parent := 0.3, "rec_parent"
	deadline := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	opts := events.Options{
		Mode: "test", Name: "nightly", Resource: "companies", Format: "csv", Action: "overwrite",
		DuplicateHandling: "use_first", UploadMode: "async", ColumnMapping: map[string]string{"code": "Code", "name": "Name"},
		ParentResourceID: &parent, ErrorThreshold: &threshold, SkipErrors: true, DryRun: true,
		Reference: "erp-42", ReferenceOrigin: "erp", Metadata: map[string]any{"run": 7.0, "tags": []any{"a"}},
		Delimiter: ";", Deadline: &deadline,
	}
	created, err := c.Create(context.Background(), client.CreateRequest{Options: opts,
		File: &client.File{Name: "c.txt", ContentType: "text/csv", Body: strings.NewReader("Code;Name\nA;Alpha\n")}})
	if err != nil {
		t.Fatal(err)
	}
	got := pub.last(t).Options
	want := opts
	want.ID, want.OrganizationID, want.CreatedBy = created.ID, "acme", "api"
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("options the gateway read:\n got %s\nwant %s", g, w)
	}
	if created.Repeated || created.Status != events.StatusQueued || created.File.Name != "c.txt" || created.File.ContentType != "text/csv" {
		t.Errorf("created: repeated %v status %s file %+v", created.Repeated, created.Status, created.File)
	}
}

func TestCreateUploadInterruptThroughTheGateway(t *testing.T) {
	srv, pub := newGateway(t)
	ctx := context.Background()
	c := newClient(t, nil, srv.URL)
	c.Org = "acme"

	// Options alone, then the file to the gateway's upload route.
	waiting, err := c.Create(ctx, client.CreateRequest{Options: events.Options{Resource: "companies", Format: "csv"}, IdempotencyKey: "link-1"})
	if err != nil {
		t.Fatal(err)
	}
	if waiting.Status != events.StatusRequested || waiting.Links.Upload == "" || waiting.ExpiresAt == nil {
		t.Fatalf("options alone: %s %q %v", waiting.Status, waiting.Links.Upload, waiting.ExpiresAt)
	}
	again, err := c.Create(ctx, client.CreateRequest{Options: events.Options{Resource: "companies", Format: "csv"}, IdempotencyKey: "link-1"})
	if err != nil || !again.Repeated || again.ID != waiting.ID || again.Links.Upload != waiting.Links.Upload {
		t.Fatalf("repeat under the key: %+v %v", again, err)
	}
	if err := c.Upload(ctx, waiting.Import, client.File{Body: strings.NewReader("code,name\nA,Alpha\n"), ContentType: "text/csv"}); err != nil {
		t.Fatal(err)
	}
	if req := pub.last(t); req.ID != waiting.ID || req.Source == nil {
		t.Errorf("after the upload the gateway published %+v, want the request of %s with its source", req, waiting.ID)
	}
	err = c.Upload(ctx, waiting.Import, client.File{Body: strings.NewReader("code,name\nB,Bravo\n")})
	if client.StatusCode(err) != http.StatusConflict {
		t.Errorf("a second upload: %v, want 409", err)
	}

	// Interrupt: 202 with the import as it stands; unknown ids are 404.
	other, err := c.Create(ctx, client.CreateRequest{Options: events.Options{Resource: "companies", Format: "csv"}})
	if err != nil {
		t.Fatal(err)
	}
	imp, err := c.Interrupt(ctx, other.ID)
	if err != nil || imp.ID != other.ID || imp.Status != events.StatusRequested {
		t.Errorf("interrupt: %s %s %v", imp.ID, imp.Status, err)
	}
	if _, err := c.Interrupt(ctx, "imp_01ZZZZZZZZZZZZZZZZZZZZZZZZ"); !client.IsNotFound(err) {
		t.Errorf("interrupt of an unknown import: %v", err)
	}

	// Inline inputs.
	inline, err := c.Create(ctx, client.CreateRequest{Options: events.Options{Resource: "companies"},
		Inputs: []json.RawMessage{json.RawMessage(`{"code":"C","name":"Charlie"}`)}})
	if err != nil || inline.Status != events.StatusQueued || inline.Format != "jsonl" {
		t.Errorf("inputs: %s %s %v", inline.Status, inline.Format, err)
	}

	_, err = c.Create(ctx, client.CreateRequest{Options: events.Options{Resource: "companies"}, Inputs: []json.RawMessage{}})
	if e := (*client.Error)(nil); !errors.As(err, &e) || e.Code != "invalid_inputs" {
		t.Errorf("empty inputs: %v, want 422 invalid_inputs", err)
	}

	// Refusals come back as the API's errors.
	_, err = c.Create(ctx, client.CreateRequest{Options: events.Options{Resource: "nope"}, File: &client.File{Name: "x.csv", Body: strings.NewReader("a\n1\n")}})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != http.StatusUnprocessableEntity || e.Code != "unknown_resource" || e.Details["field"] != "resource" {
		t.Errorf("unknown resource: %v", err)
	}
	_, err = c.Create(ctx, client.CreateRequest{Options: events.Options{Resource: "companies", ID: "imp_mine"}, File: &client.File{Name: "x.csv", Body: strings.NewReader("a\n1\n")}})
	if !errors.As(err, &e) || e.Code != "invalid_option" || e.Details["field"] != "id" {
		t.Errorf("a chosen id over HTTP: %v, want invalid_option on id", err)
	}
}

// An upload_mode sync create answers its prevalidation in the shape of
// events.Prevalidation.
func TestSyncPrevalidationHasTheClientsShape(t *testing.T) {
	srv, _ := newGateway(t)
	c := newClient(t, nil, srv.URL)
	file := "code,name,employees\nS1,One,1\nS2,,2\nS3,Three,x\n"
	created, err := c.Create(context.Background(), client.CreateRequest{
		Options: events.Options{Resource: "companies", UploadMode: "sync", SkipErrors: true},
		File:    &client.File{Name: "sync.csv", Body: strings.NewReader(file)},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := created.Prevalidation
	if p == nil || p.Total != 3 || p.Valid != 1 || p.Failed != 2 || len(p.Errors) != 2 || p.Errors[0].Row != 2 || p.Errors[1].Field != "employees" {
		t.Fatalf("prevalidation: %+v", p)
	}
	// The same request again, read raw, against the client's types.
	ct, body := multipartBody(t, map[string]string{"resource": "companies", "upload_mode": "sync", "skip_errors": "true"}, "sync.csv", file)
	resp, err := openapi.Client(t, nil).Post(srv.URL+"/v1/imports", ct, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw struct {
		Prevalidation json.RawMessage `json:"prevalidation"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("raw sync create: %d %v", resp.StatusCode, err)
	}
	sameShape(t, "prevalidation", raw.Prevalidation, *p)
	var errs struct {
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(raw.Prevalidation, &errs); err != nil || len(errs.Errors) != 2 {
		t.Fatalf("prevalidation errors: %v", err)
	}
	sameShape(t, "prevalidation error", errs.Errors[0], p.Errors[0])
}
