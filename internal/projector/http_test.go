package projector_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/projector"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/sqlite"
)

const customersDef = `{
  "name": "customers",
  "key": ["email"],
  "alternate_keys": [["external_id"]],
  "schema": {
    "type": "object",
    "required": ["email", "name"],
    "properties": {
      "email": {"type": "string"},
      "external_id": {"type": "string"},
      "name": {"type": "string"},
      "age": {"type": "integer"}
    },
    "additionalProperties": false
  }
}`

const ordersDef = `{
  "name": "orders",
  "key": ["number"],
  "references": {"customer": "customers.email"},
  "schema": {"type": "object", "properties": {"number": {"type": "integer"}, "customer": {"type": "string"}}}
}`

type env struct {
	st    *sqlite.Store
	blobs *local.Store
	p     *projector.Projector
	srv   *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st := openStore(t)
	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := resources.Load(map[string][]byte{"customers.json": []byte(customersDef), "orders.json": []byte(ordersDef)})
	if err != nil {
		t.Fatal(err)
	}
	h := projector.NewHTTP(projector.Config{Views: st, Records: st, Blobs: blobs, Registry: reg, Log: zerolog.Nop()})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{st: st, blobs: blobs, p: projector.New(st, zerolog.Nop()), srv: srv}
}

func (e *env) get(t *testing.T, path string, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
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

func (e *env) put(t *testing.T, key string, body string) {
	t.Helper()
	if err := e.blobs.Put(context.Background(), key, strings.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
}

func putRejects(t *testing.T, e *env, id, phase string, batch int, list ...rows.Reject) {
	t.Helper()
	var buf bytes.Buffer
	enc := rows.NewEncoder(&buf)
	for _, rj := range list {
		if err := enc.Encode(rj); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	e.put(t, imports.RejectsKey(id, phase, batch), buf.String())
}

type page struct {
	Data       []events.Import `json:"data"`
	HasMore    bool            `json:"has_more"`
	NextCursor *string         `json:"next_cursor"`
}

func decodeJSON[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("response is not the expected JSON: %v\n%s", err, b)
	}
	return v
}

func ids(list []events.Import) []string {
	out := make([]string, len(list))
	for i, imp := range list {
		out[i] = imp.ID
	}
	return out
}

func TestListImportsFiltersAndCursor(t *testing.T) {
	e := newEnv(t)
	var acme []events.Import // oldest first
	for i := range 5 {
		res := "customers"
		if i == 1 {
			res = "orders"
		}
		imp := newImport(t, "acme", res, t0.Add(time.Duration(i)*time.Minute))
		apply(t, e.p, importEvent(t, imp, events.EventQueued))
		acme = append(acme, imp)
	}
	done := acme[3]
	imports.Finish(&done, events.StatusCompleted, "", t0.Add(time.Hour))
	apply(t, e.p, importEvent(t, done, events.EventCompleted))
	other := newImport(t, "other", "customers", t0.Add(10*time.Minute))
	apply(t, e.p, importEvent(t, other, events.EventQueued))

	code, b := e.get(t, "/v1/imports?organization_id=acme&limit=2")
	p1 := decodeJSON[page](t, b)
	if code != 200 || !p1.HasMore || p1.NextCursor == nil || strings.Join(ids(p1.Data), ",") != acme[4].ID+","+acme[3].ID {
		t.Fatalf("page 1: %d %s", code, b)
	}
	if *p1.NextCursor != acme[3].ID {
		t.Errorf("next_cursor = %q, want the last id of the page", *p1.NextCursor)
	}
	_, b = e.get(t, "/v1/imports?limit=2&starting_after="+*p1.NextCursor, httpapi.OrgHeader, "acme")
	p2 := decodeJSON[page](t, b)
	_, b = e.get(t, "/v1/imports?limit=2&starting_after="+*p2.NextCursor, httpapi.OrgHeader, "acme")
	p3 := decodeJSON[page](t, b)
	if strings.Join(ids(p2.Data), ",") != acme[2].ID+","+acme[1].ID || p3.HasMore || p3.NextCursor != nil || len(p3.Data) != 1 || p3.Data[0].ID != acme[0].ID {
		t.Fatalf("pages 2/3: %v %v has_more=%v", ids(p2.Data), ids(p3.Data), p3.HasMore)
	}
	if !bytes.Contains(b, []byte(`"next_cursor":null`)) {
		t.Errorf("last page must say next_cursor null: %s", b)
	}

	_, b = e.get(t, "/v1/imports?organization_id=acme&status=completed")
	if got := decodeJSON[page](t, b); len(got.Data) != 1 || got.Data[0].ID != done.ID || got.Data[0].Status != events.StatusCompleted {
		t.Errorf("status filter: %s", b)
	}
	_, b = e.get(t, "/v1/imports?organization_id=acme&resource=orders")
	if got := decodeJSON[page](t, b); len(got.Data) != 1 || got.Data[0].ID != acme[1].ID {
		t.Errorf("resource filter: %s", b)
	}
	_, b = e.get(t, "/v1/imports")
	if got := decodeJSON[page](t, b); len(got.Data) != 0 || got.Data == nil {
		t.Errorf("default organization must see none of acme's or other's imports, as []: %s", b)
	}
	code, b = e.get(t, "/v1/imports?status=bogus")
	if code != 400 || !bytes.Contains(b, []byte(`"invalid_parameter"`)) {
		t.Errorf("bad status: %d %s", code, b)
	}
	code, _ = e.get(t, "/v1/imports?limit=0")
	if code != 400 {
		t.Errorf("limit=0: %d, want 400", code)
	}
}

func TestGetImportScopedToOrganization(t *testing.T) {
	e := newEnv(t)
	imp := newImport(t, "acme", "customers", t0)
	apply(t, e.p, importEvent(t, imp, events.EventQueued))

	code, b := e.get(t, "/v1/imports/"+imp.ID, httpapi.OrgHeader, "acme")
	if got := decodeJSON[events.Import](t, b); code != 200 || got.ID != imp.ID || got.Status != events.StatusQueued {
		t.Fatalf("own import: %d %s", code, b)
	}
	for _, path := range []string{"/v1/imports/" + imp.ID, "/v1/imports/" + imp.ID + "?organization_id=other", "/v1/imports/imp_unknown?organization_id=acme",
		"/v1/imports/" + imp.ID + "/errors.csv", "/v1/imports/" + imp.ID + "/errors.json"} {
		code, b := e.get(t, path)
		body := decodeJSON[httpapi.ErrorBody](t, b)
		if code != 404 || body.Error.Code != "not_found" || body.Error.Message == "" || body.Error.Details == nil {
			t.Errorf("GET %s: %d %s, want 404 not_found", path, code, b)
		}
	}
}

func TestErrorsCSVExactBytes(t *testing.T) {
	e := newEnv(t)
	imp := newImport(t, "acme", "customers", t0)
	apply(t, e.p, importEvent(t, imp, events.EventQueued))
	e.put(t, imports.HeaderKey(imp.ID), `["email","name","note"]`)
	// Batch 0 holds rows 1-10, batch 1 rows 11-20; within a file rows may
	// come in any order and a row may have several problems.
	putRejects(t, e, imp.ID, events.PhasePrevalidation, 0,
		rows.Reject{Row: 4, Phase: "prevalidation", Code: "schema.required", Field: "email", Message: "email is required",
			Data: json.RawMessage(`{"email":"","name":"Bob, Jr.","note":"said \"hi\""}`)},
		rows.Reject{Row: 2, Phase: "prevalidation", Code: "schema.type", Field: "name", Message: "bad",
			Data: json.RawMessage(`{"email":"a@x.io","name":"multi\nline","note":" lead"}`)},
		rows.Reject{Row: 2, Phase: "prevalidation", Code: "schema.format", Field: "email", Message: "not an email",
			Data: json.RawMessage(`{"email":"a@x.io","name":"multi\nline","note":" lead"}`)},
		rows.Reject{Row: 5, Phase: "prevalidation", Code: "note", Message: "imported with a warning", Warning: true,
			Data: json.RawMessage(`{"email":"w@x.io","name":"W","note":""}`)},
	)
	putRejects(t, e, imp.ID, events.PhasePreparsing, 0,
		rows.Reject{Row: 3, Phase: "preparsing", Code: "duplicate", Field: "email", Message: "duplicate of row 7", Skipped: true,
			Data: json.RawMessage(`{"email":"d@x.io","name":"Dup","note":"x"}`)},
	)
	putRejects(t, e, imp.ID, events.PhasePrevalidation, 1,
		rows.Reject{Row: 11, Phase: "prevalidation", Code: "schema.required", Field: "name", Message: "name is required",
			Data: json.RawMessage(`{"email":"z@x.io","name":"","note":"é"}`)},
	)

	code, b := e.get(t, "/v1/imports/"+imp.ID+"/errors.csv", httpapi.OrgHeader, "acme")
	want := "email,name,note,_row,_phase,_code,_field,_message\n" +
		"a@x.io,\"multi\nline\",\" lead\",2,prevalidation,schema.type; schema.format,name; email,bad; not an email\n" +
		"d@x.io,Dup,x,3,preparsing,duplicate,email,duplicate of row 7\n" +
		",\"Bob, Jr.\",\"said \"\"hi\"\"\",4,prevalidation,schema.required,email,email is required\n" +
		"w@x.io,W,,5,prevalidation,note,,imported with a warning\n" +
		"z@x.io,,é,11,prevalidation,schema.required,name,name is required\n"
	if code != 200 || string(b) != want {
		t.Fatalf("errors.csv: %d\n got %q\nwant %q", code, b, want)
	}

	code, b = e.get(t, "/v1/imports/"+imp.ID+"/errors.json", httpapi.OrgHeader, "acme")
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(b, &list); err != nil || code != 200 {
		t.Fatalf("errors.json: %d %v %s", code, err, b)
	}
	if len(list) != 6 {
		t.Fatalf("errors.json has %d entries, want 6 (one per problem, and the warning under its own code): %s", len(list), b)
	}
	for _, el := range list {
		if len(el) != 6 {
			t.Errorf("element keys: %s, want row, phase, code, field, message, data", b)
			break
		}
	}
	var first struct {
		Row     int64             `json:"row"`
		Phase   string            `json:"phase"`
		Code    string            `json:"code"`
		Field   string            `json:"field"`
		Message string            `json:"message"`
		Data    map[string]string `json:"data"`
	}
	raw, _ := json.Marshal(list[0])
	if err := json.Unmarshal(raw, &first); err != nil || first.Row != 2 || first.Code != "schema.type" || first.Data["name"] != "multi\nline" {
		t.Errorf("first element: %s (%v)", raw, err)
	}
}

func TestErrorsCSVForJSONInput(t *testing.T) {
	e := newEnv(t)
	imp := newImport(t, "acme", "customers", t0)
	apply(t, e.p, importEvent(t, imp, events.EventQueued))
	putRejects(t, e, imp.ID, events.PhasePrevalidation, 0,
		rows.Reject{Row: 1, Phase: "prevalidation", Code: "schema.type", Field: "age", Message: "not an integer",
			Data: json.RawMessage(`{"name":"A","age":"x","tags":["a","b"]}`)},
		rows.Reject{Row: 2, Phase: "prevalidation", Code: "schema.required", Field: "email", Message: "required",
			Data: json.RawMessage(`{"email":null,"age":3.5,"name":"B","vip":true}`)},
	)
	_, b := e.get(t, "/v1/imports/"+imp.ID+"/errors.csv?organization_id=acme")
	want := "name,age,tags,email,vip,_row,_phase,_code,_field,_message\n" +
		"A,x,\"[\"\"a\"\",\"\"b\"\"]\",,,1,prevalidation,schema.type,age,not an integer\n" +
		"B,3.5,,,true,2,prevalidation,schema.required,email,required\n"
	if string(b) != want {
		t.Fatalf("errors.csv for JSON input:\n got %q\nwant %q", b, want)
	}
	// An import without rejects has just the header.
	clean := newImport(t, "acme", "customers", t0.Add(time.Second))
	apply(t, e.p, importEvent(t, clean, events.EventQueued))
	if _, b := e.get(t, "/v1/imports/"+clean.ID+"/errors.csv?organization_id=acme"); string(b) != "_row,_phase,_code,_field,_message\n" {
		t.Errorf("no rejects: %q", b)
	}
	if _, b := e.get(t, "/v1/imports/"+clean.ID+"/errors.json?organization_id=acme"); string(b) != "[]\n" {
		t.Errorf("no rejects json: %q", b)
	}
}

type recordPage struct {
	Data []struct {
		ID        string          `json:"id"`
		ParentID  *string         `json:"parent_id"`
		Data      json.RawMessage `json:"data"`
		CreatedAt time.Time       `json:"created_at"`
		UpdatedAt time.Time       `json:"updated_at"`
	} `json:"data"`
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`
}

func TestRecordsAndResources(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope := store.Scope{Org: "acme", Mode: "live", Resource: "customers"}
	var ops []store.Op
	for i, email := range []string{"alice@example.com", "bob@example.com", "carol@example.com"} {
		ops = append(ops, store.Op{Kind: store.OpUpsert, Record: store.Record{
			ID:   imports.RecordID("imp_records", int64(i+1)),
			Data: json.RawMessage(`{"email":"` + email + `","name":"N` + string(rune('0'+i)) + `"}`),
			Keys: map[string]string{"email": email},
		}})
	}
	if _, err := e.st.Apply(ctx, scope, "b1", ops); err != nil {
		t.Fatal(err)
	}
	testScope := store.Scope{Org: "acme", Mode: "test", Resource: "customers"}
	if _, err := e.st.Apply(ctx, testScope, "b2", ops[:1]); err != nil {
		t.Fatal(err)
	}

	code, b := e.get(t, "/v1/resources/customers/records?organization_id=acme&key=%20%20ALICE@Example.COM%20")
	got := decodeJSON[recordPage](t, b)
	if code != 200 || len(got.Data) != 1 || got.Data[0].ID != ops[0].Record.ID || !bytes.Contains(got.Data[0].Data, []byte("alice@example.com")) {
		t.Fatalf("by key: %d %s", code, b)
	}
	if got.Data[0].ParentID != nil || got.Data[0].CreatedAt.IsZero() {
		t.Errorf("record JSON: %s", b)
	}
	_, b = e.get(t, "/v1/resources/customers/records?key=alice@example.com")
	if got := decodeJSON[recordPage](t, b); len(got.Data) != 0 {
		t.Errorf("default organization found acme's record: %s", b)
	}

	_, b = e.get(t, "/v1/resources/customers/records?limit=2", httpapi.OrgHeader, "acme")
	p1 := decodeJSON[recordPage](t, b)
	if len(p1.Data) != 2 || !p1.HasMore || p1.NextCursor == nil {
		t.Fatalf("records page 1: %s", b)
	}
	_, b = e.get(t, "/v1/resources/customers/records?limit=2&starting_after="+*p1.NextCursor, httpapi.OrgHeader, "acme")
	if p2 := decodeJSON[recordPage](t, b); len(p2.Data) != 1 || p2.HasMore || p2.Data[0].ID <= *p1.NextCursor {
		t.Fatalf("records page 2: %s", b)
	}
	_, b = e.get(t, "/v1/resources/customers/records?mode=test", httpapi.OrgHeader, "acme")
	if got := decodeJSON[recordPage](t, b); len(got.Data) != 1 {
		t.Errorf("mode=test: %s", b)
	}

	code, b = e.get(t, "/v1/resources/customers/records/"+ops[1].Record.ID+"?organization_id=acme")
	if code != 200 || !bytes.Contains(b, []byte("bob@example.com")) {
		t.Errorf("record by id: %d %s", code, b)
	}
	if code, _ := e.get(t, "/v1/resources/customers/records/"+ops[1].Record.ID+"?organization_id=acme&mode=test"); code != 404 {
		t.Errorf("record of another mode: %d, want 404", code)
	}
	if code, _ := e.get(t, "/v1/resources/nope/records"); code != 404 {
		t.Errorf("unknown resource: %d, want 404", code)
	}
	if code, _ := e.get(t, "/v1/resources/customers/records?mode=prod"); code != 400 {
		t.Errorf("bad mode: %d, want 400", code)
	}
	if code, b := e.get(t, "/v1/resources/customers/records?key=a&key=b"); code != 400 || !bytes.Contains(b, []byte(`"parameter":"key"`)) {
		t.Errorf("two values for a one-field key: %d %s", code, b)
	}

	_, b = e.get(t, "/v1/resources")
	var reg struct {
		Data []map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &reg); err != nil || len(reg.Data) != 2 {
		t.Fatalf("resources: %s", b)
	}
	c := reg.Data[0]
	if string(c["name"]) != `"customers"` || string(c["key"]) != `["email"]` || string(c["alternate_keys"]) != `[["external_id"]]` ||
		string(c["parent"]) != "null" || !bytes.Contains(c["schema"], []byte(`"required"`)) {
		t.Errorf("customers entry: %s", b)
	}
	if string(reg.Data[1]["references"]) != `{"customer":"customers.email"}` {
		t.Errorf("orders references: %s", reg.Data[1]["references"])
	}
}

func TestProbes(t *testing.T) {
	e := newEnv(t)
	if code, _ := e.get(t, "/healthz"); code != 200 {
		t.Errorf("healthz: %d", code)
	}
	if code, b := e.get(t, "/readyz"); code != 200 {
		t.Errorf("readyz: %d %s", code, b)
	}
	if code, b := e.get(t, events.OpenAPIPath); code != 200 || !strings.Contains(string(b), `"openapi": "3.1.0"`) {
		t.Errorf("the API description: %d %.200s", code, b)
	}
	h := projector.NewHTTP(projector.Config{Views: e.st, Ready: []httpapi.Check{
		{Name: "broker", Fn: func(context.Context) error { return io.ErrUnexpectedEOF }},
	}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"broker":"unexpected EOF"`) {
		t.Errorf("failing readyz: %d %s", rec.Code, rec.Body)
	}
}
