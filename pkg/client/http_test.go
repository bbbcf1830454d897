package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// seen is one request as the fake API received it.
type seen struct {
	method, path, query string
	header              http.Header
	body                []byte
	contentLength       int64
}

// fakeAPI answers each "METHOD /path" with a status and body, and records
// what it received.
type fakeAPI struct {
	t      *testing.T
	mu     sync.Mutex
	routes map[string]func(w http.ResponseWriter, r *http.Request)
	got    []seen
}

func newFakeAPI(t *testing.T) (*fakeAPI, *httptest.Server) {
	f := &fakeAPI{t: t, routes: map[string]func(http.ResponseWriter, *http.Request){}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.got = append(f.got, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), b, r.ContentLength})
		h := f.routes[r.Method+" "+r.URL.Path]
		f.mu.Unlock()
		if h == nil {
			writeJSON(w, http.StatusNotFound, events.ErrorBody{Error: events.APIError{Code: "not_found", Message: "no route " + r.URL.Path, Details: map[string]any{}}})
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAPI) on(route string, h func(w http.ResponseWriter, r *http.Request)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[route] = h
}

// answer makes a handler that always answers status with body.
func answer(status int, body any) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, status, body) }
}

func (f *fakeAPI) last() seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		f.t.Fatal("the fake API received nothing")
	}
	return f.got[len(f.got)-1]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(status int, code, message string, details map[string]any) func(http.ResponseWriter, *http.Request) {
	return answer(status, events.ErrorBody{Error: events.APIError{Code: code, Message: message, Details: details}})
}

func sampleImport(id string, status events.Status) events.Import {
	imp := events.Import{Options: events.Options{ID: id, OrganizationID: "acme", Resource: "companies"}, Status: status,
		CreatedAt: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC), Links: events.Links{Self: "/v1/imports/" + id}}
	imp.Normalize()
	return imp
}

func newClient(srv *httptest.Server) *client.Client {
	c := client.New(nil, srv.URL+"/")
	c.APIKey, c.Org = "secret-key", "acme"
	c.PollInterval = time.Millisecond
	return c
}

// checkAPIError asserts err is the *client.Error of the answer.
func checkAPIError(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) || e.Status != status || e.Code != code || client.StatusCode(err) != status {
		t.Fatalf("%s: error %#v, want HTTP %d %s", what, err, status, code)
	}
}

func checkCredentials(t *testing.T, what string, s seen, org string) {
	t.Helper()
	if got := s.header.Get("Authorization"); got != "Bearer secret-key" {
		t.Errorf("%s: Authorization %q", what, got)
	}
	if got := s.header.Get(events.OrgHeader); got != org {
		t.Errorf("%s: %s %q, want %q", what, events.OrgHeader, got, org)
	}
}

func TestCreateWithAFileSendsTheOptionsAsFormFieldsThenTheFile(t *testing.T) {
	api, srv := newFakeAPI(t)
	c := newClient(srv)
	created := sampleImport("imp_1", events.StatusQueued)
	api.on("POST /v1/imports", answer(http.StatusCreated, created))

	threshold, parent, deadline := 0.25, "rec_9", time.Date(2026, 3, 14, 10, 0, 0, 500, time.UTC)
	got, err := c.Create(context.Background(), client.CreateRequest{
		Options: events.Options{Resource: "companies", Name: "nightly", Mode: "test", Action: "overwrite",
			SkipErrors: true, ErrorThreshold: &threshold, ParentResourceID: &parent, Deadline: &deadline,
			ColumnMapping: map[string]string{"code": "Code"}, Metadata: map[string]any{"run": 7.0}, UploadMode: "sync"},
		File:           &client.File{Name: "c.csv", Body: strings.NewReader("code,name\nA,Alpha\n")},
		IdempotencyKey: "nightly-2026-03-14",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "imp_1" || got.Repeated || got.Prevalidation != nil {
		t.Errorf("created: %+v", got)
	}
	s := api.last()
	checkCredentials(t, "create", s, "acme")
	if s.header.Get(events.IdempotencyHeader) != "nightly-2026-03-14" {
		t.Errorf("Idempotency-Key %q", s.header.Get(events.IdempotencyHeader))
	}
	mt, params, err := mime.ParseMediaType(s.header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		t.Fatalf("Content-Type %q", s.header.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(s.body), params["boundary"])
	var names []string
	fields := map[string]string{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		names = append(names, p.FormName())
		if p.FormName() == "file" {
			if p.FileName() != "c.csv" || p.Header.Get("Content-Type") != "application/octet-stream" || string(b) != "code,name\nA,Alpha\n" {
				t.Errorf("file part: %q %q %q", p.FileName(), p.Header.Get("Content-Type"), b)
			}
			continue
		}
		fields[p.FormName()] = string(b)
	}
	want := map[string]string{
		"resource": "companies", "name": "nightly", "mode": "test", "action": "overwrite", "skip_errors": "true",
		"error_threshold": "0.25", "parent_resource_id": "rec_9", "deadline": "2026-03-14T10:00:00.0000005Z",
		"column_mapping": `{"code":"Code"}`, "metadata": `{"run":7}`, "upload_mode": "sync",
	}
	if !reflect.DeepEqual(fields, want) {
		t.Errorf("form fields\n got %v\nwant %v", fields, want)
	}
	if names[len(names)-1] != "file" {
		t.Errorf("parts in order %v: the file must come last (upload_mode is read before it)", names)
	}
}

func TestCreateAnswers(t *testing.T) {
	api, srv := newFakeAPI(t)
	c := newClient(srv)
	ctx := context.Background()

	// Inline inputs: JSON, the options beside them.
	api.on("POST /v1/imports", answer(http.StatusCreated, sampleImport("imp_2", events.StatusQueued)))
	if _, err := c.Create(ctx, client.CreateRequest{Options: events.Options{Resource: "companies", OrganizationID: "acme"},
		Inputs: []json.RawMessage{json.RawMessage(`{"code":"A"}`)}}); err != nil {
		t.Fatal(err)
	}
	s := api.last()
	if s.header.Get("Content-Type") != "application/json" ||
		string(s.body) != `{"organization_id":"acme","resource":"companies","inputs":[{"code":"A"}]}` {
		t.Errorf("inputs create: %s %s", s.header.Get("Content-Type"), s.body)
	}

	// Empty inputs are sent as such (the server refuses them), not as a
	// request for an upload link.
	if _, err := c.Create(ctx, client.CreateRequest{Options: events.Options{Resource: "companies"}, Inputs: []json.RawMessage{}}); err != nil {
		t.Fatal(err)
	}
	if s := api.last(); string(s.body) != `{"organization_id":"","resource":"companies","inputs":[]}` {
		t.Errorf("empty inputs sent as %s", s.body)
	}

	// Options alone: JSON without inputs, answered with an upload link.
	waiting := sampleImport("imp_3", events.StatusRequested)
	waiting.Links.Upload = "/v1/imports/imp_3/upload?organization_id=acme"
	api.on("POST /v1/imports", answer(http.StatusCreated, waiting))
	got, err := c.Create(ctx, client.CreateRequest{Options: events.Options{Resource: "companies", Format: "csv"}})
	if err != nil || got.Links.Upload != waiting.Links.Upload || got.Status != events.StatusRequested {
		t.Fatalf("options alone: %+v %v", got, err)
	}
	if s := api.last(); string(s.body) != `{"organization_id":"","resource":"companies","format":"csv"}` {
		t.Errorf("options-alone body %s", s.body)
	}

	// A repeat under an Idempotency-Key: 200, Repeated.
	repeat := map[string]any{"id": "imp_1", "status": "completed", "prevalidation": map[string]any{
		"total": 2, "valid": 1, "failed": 1, "truncated": false,
		"errors": []any{map[string]any{"row": 2, "code": "schema.required", "field": "name", "message": "name: required"}}}}
	api.on("POST /v1/imports", answer(http.StatusOK, repeat))
	got, err = c.Create(ctx, client.CreateRequest{Options: events.Options{Resource: "companies"},
		File: &client.File{Name: "c.csv", Body: strings.NewReader("x")}, IdempotencyKey: "k"})
	if err != nil || !got.Repeated || got.ID != "imp_1" || got.Status != events.StatusCompleted {
		t.Fatalf("repeat: %+v %v", got, err)
	}
	if p := got.Prevalidation; p == nil || p.Total != 2 || len(p.Errors) != 1 || p.Errors[0].Code != "schema.required" {
		t.Errorf("prevalidation: %+v", p)
	}

	// Refused: the error body comes back as an *Error.
	api.on("POST /v1/imports", apiError(http.StatusUnprocessableEntity, "invalid_option", "mode: must be live or test", map[string]any{"field": "mode"}))
	_, err = c.Create(ctx, client.CreateRequest{Options: events.Options{Resource: "companies", Mode: "prod"},
		File: &client.File{Name: "c.csv", Body: strings.NewReader("x")}})
	checkAPIError(t, "refused create", err, http.StatusUnprocessableEntity, "invalid_option")
	var e *client.Error
	if errors.As(err, &e); e.Message != "mode: must be live or test" || e.Details["field"] != "mode" {
		t.Errorf("refused create: %+v", e)
	}

	// An answer that is not the API's JSON (a proxy's page).
	api.on("POST /v1/imports", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html>bad gateway</html>")
	})
	_, err = c.Create(ctx, client.CreateRequest{Options: events.Options{Resource: "companies"}})
	checkAPIError(t, "proxy error", err, http.StatusBadGateway, "http_error")
	if !client.IsUnavailable(err) || !strings.Contains(err.Error(), "bad gateway") {
		t.Errorf("proxy error: %v, want unavailable quoting the body", err)
	}

	// A 2xx the contract does not name is no success either.
	api.on("POST /v1/imports", answer(http.StatusAccepted, sampleImport("imp_4", events.StatusQueued)))
	_, err = c.Create(ctx, client.CreateRequest{Options: events.Options{Resource: "companies"}})
	checkAPIError(t, "202 to a create", err, http.StatusAccepted, "http_error")

	if _, err := c.Create(ctx, client.CreateRequest{File: &client.File{Name: "a"}, Inputs: []json.RawMessage{}}); err == nil {
		t.Error("a create with a file and inputs was sent")
	}
}

func TestUploadSendsCredentialsOnlyToTheAPI(t *testing.T) {
	api, srv := newFakeAPI(t)
	store, storeSrv := newFakeAPI(t)
	c := newClient(srv)
	ctx := context.Background()
	api.on("PUT /v1/imports/imp_3/upload", answer(http.StatusOK, sampleImport("imp_3", events.StatusQueued)))
	store.on("PUT /inlet/imports/imp_3/source", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })

	path := filepath.Join(t.TempDir(), "c.csv")
	if err := os.WriteFile(path, []byte("code,name\nA,Alpha\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func() *os.File {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}

	// The gateway's route (relative link): with the API key.
	imp := sampleImport("imp_3", events.StatusRequested)
	imp.Links.Upload = "/v1/imports/imp_3/upload?organization_id=acme"
	if err := c.Upload(ctx, imp, client.File{Body: open(), ContentType: "text/csv"}); err != nil {
		t.Fatal(err)
	}
	s := api.last()
	checkCredentials(t, "upload to the gateway", s, "acme")
	if s.query != "organization_id=acme" || string(s.body) != "code,name\nA,Alpha\n" || s.header.Get("Content-Type") != "text/csv" {
		t.Errorf("upload to the gateway: %q %q %q", s.query, s.body, s.header.Get("Content-Type"))
	}

	// A presigned URL of the blob store: its own signature, none of ours,
	// and a Content-Length (S3 refuses chunked uploads).
	imp.Links.Upload = storeSrv.URL + "/inlet/imports/imp_3/source?X-Amz-Signature=abc"
	if err := c.Upload(ctx, imp, client.File{Body: open()}); err != nil {
		t.Fatal(err)
	}
	s = store.last()
	if s.header.Get("Authorization") != "" || s.header.Get(events.OrgHeader) != "" {
		t.Errorf("the blob store got the client's credentials: %v", s.header)
	}
	if s.query != "X-Amz-Signature=abc" || s.contentLength != int64(len("code,name\nA,Alpha\n")) {
		t.Errorf("presigned upload: query %q, Content-Length %d", s.query, s.contentLength)
	}

	// 200 is the answer of both (the gateway's route, S3's PutObject).
	store.on("PUT /inlet/imports/imp_3/source", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	if err := c.Upload(ctx, imp, client.File{Body: strings.NewReader("x")}); client.StatusCode(err) != http.StatusNoContent {
		t.Errorf("a 204 to an upload: %v, want an error", err)
	}

	api.on("PUT /v1/imports/imp_3/upload", apiError(http.StatusConflict, "upload_exists", "import imp_3 already has its file", nil))
	imp.Links.Upload = "/v1/imports/imp_3/upload?organization_id=acme"
	checkAPIError(t, "second upload", c.Upload(ctx, imp, client.File{Body: strings.NewReader("x")}), http.StatusConflict, "upload_exists")

	imp.Links.Upload = ""
	if err := c.Upload(ctx, imp, client.File{Body: strings.NewReader("x")}); err == nil || !strings.Contains(err.Error(), "no upload link") {
		t.Errorf("upload without a link: %v", err)
	}
}

func TestInterrupt(t *testing.T) {
	api, srv := newFakeAPI(t)
	c := newClient(srv)
	ctx := context.Background()
	api.on("POST /v1/imports/imp_1/interrupt", answer(http.StatusAccepted, sampleImport("imp_1", events.StatusProcessing)))
	imp, err := c.Interrupt(ctx, "imp_1")
	if err != nil || imp.ID != "imp_1" || imp.Status != events.StatusProcessing {
		t.Fatalf("interrupt: %+v %v", imp, err)
	}
	checkCredentials(t, "interrupt", api.last(), "acme")

	api.on("POST /v1/imports/imp_1/interrupt", apiError(http.StatusConflict, "already_finished", "import imp_1 has already ended (completed)", nil))
	_, err = c.Interrupt(ctx, "imp_1")
	checkAPIError(t, "interrupt of an ended import", err, http.StatusConflict, "already_finished")
	_, err = c.Interrupt(ctx, "imp_unknown")
	if !client.IsNotFound(err) {
		t.Errorf("interrupt of an unknown import: %v", err)
	}
}

func TestReadsGoToTheReadURL(t *testing.T) {
	gw, gwSrv := newFakeAPI(t)
	api, srv := newFakeAPI(t)
	c := client.New(nil, gwSrv.URL)
	c.ReadURL, c.APIKey, c.Org = srv.URL, "secret-key", "acme"
	ctx := context.Background()

	api.on("GET /v1/imports/imp_1", answer(http.StatusOK, sampleImport("imp_1", events.StatusCompleted)))
	imp, err := c.Get(ctx, "imp_1")
	if err != nil || imp.ID != "imp_1" || imp.Status != events.StatusCompleted {
		t.Fatalf("get: %+v %v", imp, err)
	}
	checkCredentials(t, "get", api.last(), "acme")
	if _, err := c.Get(ctx, "imp_missing"); !client.IsNotFound(err) {
		t.Errorf("missing import: %v, want not found", err)
	}

	next := "imp_5"
	api.on("GET /v1/imports", answer(http.StatusOK, events.Page[events.Import]{
		Data: []events.Import{sampleImport("imp_6", events.StatusCompleted)}, HasMore: true, NextCursor: &next}))
	page, err := c.List(ctx, client.Filters{OrganizationID: "acme", Status: events.StatusCompleted, Resource: "companies", Limit: 1, StartingAfter: "imp_7"})
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != "imp_6" || !page.HasMore || page.NextCursor == nil || *page.NextCursor != "imp_5" {
		t.Fatalf("list: %+v %v", page, err)
	}
	if q := api.last().query; q != "limit=1&organization_id=acme&resource=companies&starting_after=imp_7&status=completed" {
		t.Errorf("list query %q", q)
	}
	api.on("GET /v1/imports", apiError(http.StatusBadRequest, "invalid_parameter", "status: \"bogus\" is not an import status", map[string]any{"parameter": "status"}))
	_, err = c.List(ctx, client.Filters{Status: "bogus"})
	checkAPIError(t, "bad list", err, http.StatusBadRequest, "invalid_parameter")

	api.on("GET /v1/imports/imp_1/errors.csv", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		_, _ = io.WriteString(w, "code,name,_row,_phase,_code,_field,_message\nB,,2,prevalidation,schema.required,name,name: required\n")
	})
	var csv strings.Builder
	if err := c.ErrorsCSV(ctx, "imp_1", &csv); err != nil || !strings.HasPrefix(csv.String(), "code,name,_row") {
		t.Fatalf("errors.csv: %q %v", csv.String(), err)
	}
	api.on("GET /v1/imports/imp_1/errors.json", answer(http.StatusOK, []map[string]any{
		{"row": 2, "phase": "prevalidation", "code": "schema.required", "field": "name", "message": "name: required", "data": map[string]any{"code": "B"}}}))
	rows, err := c.ErrorsJSON(ctx, "imp_1")
	if err != nil || len(rows) != 1 || rows[0].Row != 2 || rows[0].Code != "schema.required" || string(rows[0].Data) != `{"code":"B"}` {
		t.Fatalf("errors.json: %+v %v", rows, err)
	}
	if err := c.ErrorsCSV(ctx, "imp_missing", io.Discard); !client.IsNotFound(err) {
		t.Errorf("errors.csv of a missing import: %v", err)
	}
	if _, err := c.ErrorsJSON(ctx, "imp_missing"); !client.IsNotFound(err) {
		t.Errorf("errors.json of a missing import: %v", err)
	}

	gw.mu.Lock()
	defer gw.mu.Unlock()
	if len(gw.got) != 0 {
		t.Errorf("reads reached the gateway: %+v", gw.got)
	}
}

func TestWaitWaitsOutWhatPasses(t *testing.T) {
	api, srv := newFakeAPI(t)
	c := newClient(srv)
	ctx := context.Background()
	answers := []func(http.ResponseWriter, *http.Request){
		apiError(http.StatusNotFound, "not_found", "import imp_1 not found", nil), // not in the views yet
		apiError(http.StatusServiceUnavailable, "not_ready", "a dependency is not reachable", nil),
		answer(http.StatusOK, sampleImport("imp_1", events.StatusProcessing)),
		answer(http.StatusOK, sampleImport("imp_1", events.StatusInterrupted)),
	}
	n := 0
	api.on("GET /v1/imports/imp_1", func(w http.ResponseWriter, r *http.Request) {
		answers[min(n, len(answers)-1)](w, r)
		n++
	})
	imp, err := c.Wait(ctx, "imp_1")
	if err != nil || imp.Status != events.StatusInterrupted || n != 4 {
		t.Fatalf("wait: %s %v after %d reads", imp.Status, err, n)
	}

	// A refusal ends the wait at once.
	api.on("GET /v1/imports/imp_1", apiError(http.StatusUnauthorized, "unauthorized", "invalid API key", nil))
	_, err = c.Wait(ctx, "imp_1")
	checkAPIError(t, "wait refused", err, http.StatusUnauthorized, "unauthorized")

	// ctx ends a wait for an import that never ends.
	api.on("GET /v1/imports/imp_1", answer(http.StatusOK, sampleImport("imp_1", events.StatusProcessing)))
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	imp, err = c.Wait(short, "imp_1")
	if !errors.Is(err, context.DeadlineExceeded) || imp.Status != events.StatusProcessing || !strings.Contains(err.Error(), "still processing") {
		t.Errorf("wait past its context: %s %v", imp.Status, err)
	}
}

func TestReady(t *testing.T) {
	gw, gwSrv := newFakeAPI(t)
	api, srv := newFakeAPI(t)
	c := client.New(nil, gwSrv.URL)
	ctx := context.Background()
	gw.on("GET /readyz", answer(http.StatusOK, map[string]string{"status": "ready"}))
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	c.ReadURL = srv.URL
	api.on("GET /readyz", apiError(http.StatusServiceUnavailable, "not_ready", "a dependency is not reachable", map[string]any{"store": "down"}))
	if err := c.Ready(ctx); !client.IsUnavailable(err) {
		t.Errorf("read side not ready: %v", err)
	}
}

func TestUnreachableServerIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := client.New(nil, url).Get(context.Background(), "imp_1")
	if err == nil || !client.IsUnavailable(err) || client.StatusCode(err) != 0 {
		t.Errorf("closed server: %v, want unavailable", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := client.New(nil, url).Get(ctx, "imp_1"); client.IsUnavailable(err) {
		t.Errorf("a cancelled call is not the server's unavailability: %v", err)
	}
	if _, err := client.New(nil, "").Get(context.Background(), "imp_1"); err == nil {
		t.Error("a client without a base URL made an HTTP call")
	}
}

func TestBaseURLWithAPathPrefix(t *testing.T) {
	api, srv := newFakeAPI(t)
	api.on("GET /inlet/v1/imports/imp_1", answer(http.StatusOK, sampleImport("imp_1", events.StatusQueued)))
	if _, err := client.New(nil, srv.URL+"/inlet").Get(context.Background(), "imp_1"); err != nil {
		t.Fatal(err)
	}
}
