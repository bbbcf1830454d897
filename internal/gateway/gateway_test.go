package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
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
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/resources"
)

var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type published struct {
	subject string
	ce      events.CloudEvent
}

// recorder is a Publisher that keeps what it was given.
type recorder struct {
	mu   sync.Mutex
	list []published
	err  error
}

func (r *recorder) PublishEvent(_ context.Context, subject string, ce events.CloudEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.list = append(r.list, published{subject, ce})
	return nil
}

type env struct {
	blobs *local.Store
	pub   *recorder
	h     http.Handler
}

func newEnv(t *testing.T, maxUpload int64) *env {
	t.Helper()
	return newEnvWith(t, func(c *gateway.Config) { c.MaxUpload = maxUpload })
}

// newEnvWith builds the gateway over a local store; tune changes its Config
// (Blobs may be replaced).
func newEnvWith(t *testing.T, tune func(*gateway.Config)) *env {
	t.Helper()
	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := resources.Load(map[string][]byte{"customers.json": []byte(`{"name":"customers","key":["email"],
		"schema":{"type":"object","additionalProperties":false,
		"properties":{"email":{"type":"string"},"name":{"type":"string"},"age":{"type":"integer","minimum":0}}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	pub := &recorder{}
	cfg := gateway.Config{Blobs: blobs, Publisher: pub, Registry: reg, Log: zerolog.Nop(),
		Now: func() time.Time { return now }}
	if tune != nil {
		tune(&cfg)
	}
	g := gateway.New(cfg)
	return &env{blobs: blobs, pub: pub, h: g}
}

func (e *env) do(t *testing.T, req *http.Request) (*httptest.ResponseRecorder, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec, rec.Body.Bytes()
}

type part struct{ name, file, contentType, body string }

func multipartReq(t *testing.T, parts ...part) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.file != "" {
			h := map[string][]string{
				"Content-Disposition": {`form-data; name="` + p.name + `"; filename="` + p.file + `"`},
			}
			if p.contentType != "" {
				h["Content-Type"] = []string{p.contentType}
			}
			w, err = mw.CreatePart(h)
		} else {
			w, err = mw.CreateFormField(p.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, p.body)
	}
	mw.Close()
	req := httptest.NewRequest(http.MethodPost, "/v1/imports", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return req
}

func jsonReq(body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/v1/imports", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

func (e *env) blob(t *testing.T, key string) string {
	t.Helper()
	rc, err := e.blobs.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

func (e *env) countBlobs(t *testing.T) int {
	t.Helper()
	infos, err := e.blobs.List(context.Background(), "imports/")
	if err != nil {
		t.Fatal(err)
	}
	return len(infos)
}

func TestMultipartUpload(t *testing.T) {
	e := newEnv(t, 0)
	csv := "email,name\r\na@x.io,\"Ann, A\"\r\n"
	// The file comes before some options: both orders must work.
	rec, b := e.do(t, multipartReq(t,
		part{name: "resource", body: "customers"},
		part{name: "file", file: `C:\exports\My File (1).CSV`, contentType: "text/csv", body: csv},
		part{name: "organization_id", body: "acme"},
		part{name: "dry_run", body: "true"},
		part{name: "error_threshold", body: "0.25"},
		part{name: "column_mapping", body: `{"email":"E-mail"}`},
		part{name: "metadata", body: `{"batch":7}`},
	))
	if rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, b)
	}
	var imp events.Import
	if err := json.Unmarshal(b, &imp); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(csv))
	wantFile := events.File{Name: "My File (1).CSV", Size: int64(len(csv)), ContentType: "text/csv", Checksum: "sha256:" + hex.EncodeToString(sum[:])}
	if !reflect.DeepEqual(imp.File, wantFile) {
		t.Errorf("file = %+v, want %+v", imp.File, wantFile)
	}
	if imp.Status != events.StatusQueued || imp.OrganizationID != "acme" || imp.Format != "csv" || !imp.DryRun ||
		imp.ErrorThreshold == nil || *imp.ErrorThreshold != 0.25 || imp.ColumnMapping["email"] != "E-mail" || imp.Metadata["batch"] != 7.0 || imp.CreatedBy != "api" {
		t.Errorf("import object: %s", b)
	}
	if !strings.HasPrefix(imp.ID, "imp_") || rec.Header().Get("Location") != "/v1/imports/"+imp.ID || !imp.CreatedAt.Equal(now) {
		t.Errorf("id %q, location %q, created_at %v", imp.ID, rec.Header().Get("Location"), imp.CreatedAt)
	}
	key := imports.SourceKey(imp.ID, "My_File__1_.CSV")
	if got := e.blob(t, key); got != csv {
		t.Errorf("stored file = %q, want %q", got, csv)
	}

	if len(e.pub.list) != 1 {
		t.Fatalf("published %d events, want 1", len(e.pub.list))
	}
	p := e.pub.list[0]
	if p.subject != "imports.acme.customers.requested" || p.ce.ID != "req:"+imp.ID || p.ce.Type != events.Type(events.EventRequested) ||
		p.ce.Subject != imp.ID || !p.ce.Time.Equal(now) || p.ce.SpecVersion != "1.0" {
		t.Errorf("event envelope: subject %q %+v", p.subject, p.ce)
	}
	var req events.ImportRequested
	if err := json.Unmarshal(p.ce.Data, &req); err != nil {
		t.Fatal(err)
	}
	if req.ID != imp.ID || req.CreatedBy != "api" || req.Source == nil || req.Source.Key != key ||
		req.Source.Name != "My File (1).CSV" || req.Source.ContentType != "text/csv" || req.Format != "csv" || req.Inputs != nil {
		t.Errorf("event data: %s", p.ce.Data)
	}
}

// Boolean options take the spellings a file's boolean cells take (issue 7:
// an import refused "yes" as an option that it accepted in its CSV).
func TestBooleanOptionsTakeTheFilesSpellings(t *testing.T) {
	for spelling, want := range map[string]bool{"true": true, "yes": true, "1": true, " YES ": true, "True": true,
		"false": false, "no": false, "0": false, "No": false, "": false} {
		t.Run(spelling, func(t *testing.T) {
			e := newEnv(t, 0)
			rec, b := e.do(t, multipartReq(t, part{name: "resource", body: "customers"},
				part{name: "skip_errors", body: spelling}, part{name: "dry_run", body: spelling},
				part{name: "deadline", body: now.Add(time.Hour).Format(time.RFC3339)},
				part{name: "file", file: "c.csv", body: "email\na@x.io\n"}))
			if rec.Code != 201 {
				t.Fatalf("create: %d %s", rec.Code, b)
			}
			var imp events.Import
			if err := json.Unmarshal(b, &imp); err != nil {
				t.Fatal(err)
			}
			if imp.SkipErrors != want || imp.DryRun != want {
				t.Errorf("skip_errors %v, dry_run %v, want both %v", imp.SkipErrors, imp.DryRun, want)
			}
		})
	}
}

func TestFormatInference(t *testing.T) {
	e := newEnv(t, 0)
	for _, c := range []struct{ file, ct, want string }{
		{"a.ndjson", "", "jsonl"}, {"a.json", "", "json"}, {"a.xlsx", "", "xlsx"},
		{"upload", "application/x-ndjson", "jsonl"}, {"upload", "application/octet-stream", "csv"},
	} {
		rec, b := e.do(t, multipartReq(t, part{name: "resource", body: "customers"}, part{name: "file", file: c.file, contentType: c.ct, body: "x"}))
		var imp events.Import
		json.Unmarshal(b, &imp)
		if rec.Code != 201 || string(imp.Format) != c.want {
			t.Errorf("%s (%s): %d format %q, want %q", c.file, c.ct, rec.Code, imp.Format, c.want)
		}
	}
	rec, b := e.do(t, multipartReq(t, part{name: "resource", body: "customers"}, part{name: "format", body: "json"}, part{name: "file", file: "a.csv", body: "x"}))
	if rec.Code != 201 || !bytes.Contains(b, []byte(`"format":"json"`)) {
		t.Errorf("explicit format must win over the extension: %d %s", rec.Code, b)
	}
}

func TestJSONInputs(t *testing.T) {
	e := newEnv(t, 0)
	req := jsonReq(`{"resource":"customers","action":"overwrite","inputs":[{"email":"a@x.io",
		"name":"A"},{"email":"b@x.io","n":[1, 2]}]}`)
	req.Header.Set(httpapi.OrgHeader, "hdr-org")
	rec, b := e.do(t, req)
	if rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, b)
	}
	var imp events.Import
	json.Unmarshal(b, &imp)
	want := "{\"email\":\"a@x.io\",\"name\":\"A\"}\n{\"email\":\"b@x.io\",\"n\":[1,2]}\n"
	if got := e.blob(t, imports.SourceKey(imp.ID, "inputs.jsonl")); got != want {
		t.Errorf("stored inputs = %q, want %q", got, want)
	}
	if imp.Format != "jsonl" || imp.OrganizationID != "hdr-org" || imp.Action != "overwrite" || imp.File.Size != int64(len(want)) {
		t.Errorf("import: %s", b)
	}
	if len(e.pub.list) != 1 || e.pub.list[0].subject != "imports.hdr-org.customers.requested" {
		t.Fatalf("published: %+v", e.pub.list)
	}
	var ev events.ImportRequested
	json.Unmarshal(e.pub.list[0].ce.Data, &ev)
	if ev.Source == nil || ev.Source.Key != imports.SourceKey(imp.ID, "inputs.jsonl") || ev.Format != "jsonl" {
		t.Errorf("event data: %s", e.pub.list[0].ce.Data)
	}
	// The body's organization wins over the header.
	req = jsonReq(`{"resource":"customers","organization_id":"body-org","inputs":[{"email":"a"}]}`)
	req.Header.Set(httpapi.OrgHeader, "hdr-org")
	if rec, b := e.do(t, req); rec.Code != 201 || !bytes.Contains(b, []byte(`"organization_id":"body-org"`)) {
		t.Errorf("body org: %d %s", rec.Code, b)
	}
}

func TestRefusals(t *testing.T) {
	file := part{name: "file", file: "a.csv", body: "email\nx\n"}
	res := part{name: "resource", body: "customers"}
	cases := []struct {
		name   string
		req    func(t *testing.T) *http.Request
		status int
		code   string
		field  string
	}{
		{"no content type", func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodPost, "/v1/imports", strings.NewReader("{}"))
		}, 415, "unsupported_media_type", ""},
		{"text body", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/v1/imports", strings.NewReader("x"))
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, 415, "unsupported_media_type", ""},
		{"broken JSON", func(*testing.T) *http.Request { return jsonReq(`{"resource":`) }, 400, "malformed_body", ""},
		{"two JSON values", func(*testing.T) *http.Request { return jsonReq(`{"resource":"customers"} {}`) }, 400, "malformed_body", ""},
		{"JSON wrong type", func(*testing.T) *http.Request {
			return jsonReq(`{"resource":"customers","error_threshold":"high","inputs":[{}]}`)
		}, 422, "invalid_option", "error_threshold"},
		{"JSON unknown option", func(*testing.T) *http.Request {
			return jsonReq(`{"resource":"customers","colour":"red","inputs":[{}]}`)
		}, 422, "unknown_option", "colour"},
		{"JSON id", func(*testing.T) *http.Request { return jsonReq(`{"id":"imp_1","resource":"customers","inputs":[{}]}`) }, 422, "invalid_option", "id"},
		{"missing resource", func(*testing.T) *http.Request { return jsonReq(`{"inputs":[{}]}`) }, 422, "invalid_option", "resource"},
		{"unknown resource", func(*testing.T) *http.Request { return jsonReq(`{"resource":"planets","inputs":[{}]}`) }, 422, "unknown_resource", "resource"},
		{"bad mode", func(*testing.T) *http.Request { return jsonReq(`{"resource":"customers","mode":"prod","inputs":[{}]}`) }, 422, "invalid_option", "mode"},
		{"bad threshold", func(*testing.T) *http.Request {
			return jsonReq(`{"resource":"customers","error_threshold":2,"inputs":[{}]}`)
		}, 422, "invalid_option", "error_threshold"},
		{"bad organization", func(*testing.T) *http.Request {
			return jsonReq(`{"resource":"customers","organization_id":"a.b","inputs":[{}]}`)
		}, 422, "invalid_option", "organization_id"},
		{"options alone in sync mode", func(*testing.T) *http.Request {
			return jsonReq(`{"resource":"customers","upload_mode":"sync"}`)
		}, 422, "invalid_option", "upload_mode"},
		{"empty inputs", func(*testing.T) *http.Request { return jsonReq(`{"resource":"customers","inputs":[]}`) }, 422, "invalid_inputs", "inputs"},
		{"non-object input", func(*testing.T) *http.Request { return jsonReq(`{"resource":"customers","inputs":[{},[1]]}`) }, 422, "invalid_inputs", "inputs[1]"},
		{"inputs as CSV", func(*testing.T) *http.Request {
			return jsonReq(`{"resource":"customers","format":"csv","inputs":[{}]}`)
		}, 422, "invalid_option", "format"},
		{"multipart without boundary", func(*testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/v1/imports", strings.NewReader("x"))
			r.Header.Set("Content-Type", "multipart/form-data")
			return r
		}, 400, "malformed_body", ""},
		{"truncated multipart", func(t *testing.T) *http.Request {
			r := multipartReq(t, res, file)
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b[:len(b)-20]))
			return r
		}, 400, "malformed_body", ""},
		{"multipart without file", func(t *testing.T) *http.Request { return multipartReq(t, res) }, 422, "missing_file", "file"},
		{"two files", func(t *testing.T) *http.Request { return multipartReq(t, res, file, file) }, 400, "malformed_body", "file"},
		{"empty file", func(t *testing.T) *http.Request {
			return multipartReq(t, res, part{name: "file", file: "a.csv"})
		}, 422, "empty_file", "file"},
		{"bad boolean", func(t *testing.T) *http.Request {
			return multipartReq(t, res, part{name: "skip_errors", body: "maybe"}, file)
		}, 422, "invalid_option", "skip_errors"},
		{"deadline passed", func(t *testing.T) *http.Request {
			return multipartReq(t, res, part{name: "deadline", body: now.Add(-time.Minute).Format(time.RFC3339)}, file)
		}, 422, "invalid_option", "deadline"},
		{"deadline now", func(t *testing.T) *http.Request {
			return multipartReq(t, res, part{name: "deadline", body: now.Format(time.RFC3339)}, file)
		}, 422, "invalid_option", "deadline"},
		{"JSON deadline passed", func(*testing.T) *http.Request {
			return jsonReq(`{"resource":"customers","deadline":"2025-03-01T11:00:00Z","inputs":[{}]}`)
		}, 422, "invalid_option", "deadline"},
		{"threshold not a number", func(t *testing.T) *http.Request {
			return multipartReq(t, res, file, part{name: "error_threshold", body: "ten"})
		}, 422, "invalid_option", "error_threshold"},
		{"mapping not an object", func(t *testing.T) *http.Request {
			return multipartReq(t, res, file, part{name: "column_mapping", body: `["a"]`})
		}, 422, "invalid_option", "column_mapping"},
		{"metadata not JSON", func(t *testing.T) *http.Request {
			return multipartReq(t, res, file, part{name: "metadata", body: `{`})
		}, 422, "invalid_option", "metadata"},
		{"unknown form field", func(t *testing.T) *http.Request {
			return multipartReq(t, res, file, part{name: "colour", body: "red"})
		}, 422, "unknown_option", "colour"},
		{"field twice", func(t *testing.T) *http.Request { return multipartReq(t, res, res, file) }, 400, "malformed_body", "resource"},
		{"unknown resource after file", func(t *testing.T) *http.Request {
			return multipartReq(t, file, part{name: "resource", body: "planets"})
		}, 422, "unknown_resource", "resource"},
		{"file too large", func(t *testing.T) *http.Request {
			return multipartReq(t, res, part{name: "file", file: "a.csv", body: strings.Repeat("x", 2000)})
		}, 413, "file_too_large", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, 1000)
			rec, b := e.do(t, c.req(t))
			var body httpapi.ErrorBody
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("%d, body is not an error object: %s", rec.Code, b)
			}
			if rec.Code != c.status || body.Error.Code != c.code || body.Error.Message == "" || body.Error.Details == nil {
				t.Fatalf("got %d %s, want %d %s", rec.Code, b, c.status, c.code)
			}
			if c.field != "" && body.Error.Details["field"] != c.field {
				t.Errorf("details = %v, want field %q", body.Error.Details, c.field)
			}
			if len(e.pub.list) != 0 {
				t.Errorf("a refused request published %d events", len(e.pub.list))
			}
			if n := e.countBlobs(t); n != 0 {
				t.Errorf("a refused request left %d blobs", n)
			}
		})
	}
}

func TestPublishFailureAndInterrupt(t *testing.T) {
	e := newEnv(t, 0)
	e.pub.err = errors.New("nats: timeout")
	rec, b := e.do(t, jsonReq(`{"resource":"customers","inputs":[{"email":"a"}]}`))
	if rec.Code != 503 || !bytes.Contains(b, []byte(`"publish_failed"`)) || !bytes.Contains(b, []byte("nats: timeout")) {
		t.Errorf("publish failure: %d %s", rec.Code, b)
	}
	rec, b = e.do(t, httptest.NewRequest(http.MethodPost, "/v1/imports/imp_1/interrupt", nil))
	if rec.Code != 404 || !bytes.Contains(b, []byte(`"not_found"`)) {
		t.Errorf("interrupt of an unknown import: %d %s", rec.Code, b)
	}
	rec, _ = e.do(t, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != 200 {
		t.Errorf("healthz: %d", rec.Code)
	}
	rec, b = e.do(t, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != 200 {
		t.Errorf("readyz: %d %s", rec.Code, b)
	}
	rec, b = e.do(t, httptest.NewRequest(http.MethodGet, events.OpenAPIPath, nil))
	if rec.Code != 200 || !bytes.Contains(b, []byte(`"openapi": "3.1.0"`)) {
		t.Errorf("the API description: %d %.200s", rec.Code, b)
	}
}

// Mount shares a mux with other routes (the all-in-one server).
func TestMount(t *testing.T) {
	e := newEnv(t, 0)
	mux := http.NewServeMux()
	e.h.(*gateway.Gateway).Mount(mux)
	mux.HandleFunc("GET /v1/imports/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, jsonReq(`{"resource":"customers","inputs":[{"email":"a"}]}`))
	if rec.Code != 201 {
		t.Errorf("mounted create: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/imports/x", nil))
	if rec.Code != 299 {
		t.Errorf("other route on the shared mux: %d", rec.Code)
	}
}
