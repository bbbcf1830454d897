package e2e

import (
	"bytes"
	"net/http"
	"net/url"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// TestAPIKeysAcrossProcesses: a key acts for its organization only, on the
// gateway and on the projector alike: another organization's import, its
// errors and its records are not found, lists are empty, creating in another
// organization is forbidden, and no key is unauthorized.
func TestAPIKeysAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{})
	const a, b = "acme", "other"
	imp := run(c, b, "companies", "b.csv", "code,name\nB1,Bee\nB2,\n", events.Options{SkipErrors: true})
	checkEnded(t, "b's import", imp, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 1, Failed: 1})
	if imp.CreatedBy != KeyID(b) {
		t.Errorf("created_by %q, want %q", imp.CreatedBy, KeyID(b))
	}
	rec, ok := c.RecordByKey(b, "companies", "B1")
	if !ok {
		t.Fatal("b's record not found")
	}
	keyA := c.Key(a)

	// What b owns is not found for a.
	for _, path := range []string{
		"/v1/imports/" + imp.ID, "/v1/imports/" + imp.ID + "/errors.csv", "/v1/imports/" + imp.ID + "/errors.json",
		"/v1/imports/" + imp.ID + "/upload.csv", "/v1/resources/companies/records/" + rec.ID,
	} {
		if r := c.Call("projector", http.MethodGet, path, keyA, nil, nil); r.Status != http.StatusNotFound {
			t.Errorf("GET %s with a's key: %d %s, want 404", path, r.Status, r.Body)
		}
	}
	if r := c.Call("gateway", http.MethodPost, "/v1/imports/"+imp.ID+"/interrupt", keyA, nil, nil); r.Status != http.StatusNotFound {
		t.Errorf("interrupt of b's import with a's key: %d %s, want 404", r.Status, r.Body)
	}
	// a's lists are empty.
	for _, path := range []string{"/v1/imports", "/v1/resources/companies/records", "/v1/resources/companies/records?key=B1"} {
		r := c.Call("projector", http.MethodGet, path, keyA, nil, nil)
		var page struct {
			Data []any `json:"data"`
		}
		r.JSON(t, &page)
		if r.Status != http.StatusOK || len(page.Data) != 0 {
			t.Errorf("GET %s with a's key: %d %s, want 200 and an empty list", path, r.Status, r.Body)
		}
	}
	// Naming b with a's key is forbidden, reading or writing.
	if r := c.Read(a, "/v1/imports", url.Values{"organization_id": {b}}); r.Status != http.StatusForbidden || r.ErrorCode() != "forbidden_organization" {
		t.Errorf("list naming b with a's key: %d %s, want 403 forbidden_organization", r.Status, r.Body)
	}
	ct, body, err := Multipart(map[string]string{"organization_id": b, "resource": "companies"}, "x.csv", []byte("code,name\nX,X\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Call("gateway", http.MethodPost, "/v1/imports", keyA, http.Header{"Content-Type": {ct}}, body); r.Status != http.StatusForbidden || r.ErrorCode() != "forbidden_organization" {
		t.Errorf("create in b with a's key: %d %s, want 403 forbidden_organization", r.Status, r.Body)
	}
	if r := c.Call("gateway", http.MethodPost, "/v1/imports", keyA, http.Header{"Content-Type": {"application/json"}},
		bytes.NewReader([]byte(`{"organization_id":"other","resource":"companies","inputs":[{"code":"X","name":"X"}]}`))); r.Status != http.StatusForbidden {
		t.Errorf("JSON create in b with a's key: %d %s, want 403", r.Status, r.Body)
	}
	// No key, a wrong key: 401 on both processes; the probes stay open.
	ct, body, _ = Multipart(map[string]string{"resource": "companies"}, "x.csv", []byte("code,name\nX,X\n"))
	for _, key := range []string{"", "not-a-configured-key-0123456789"} {
		if r := c.Call("gateway", http.MethodPost, "/v1/imports", key, http.Header{"Content-Type": {ct}}, bytes.NewReader(body.Bytes())); r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("create with key %q: %d %s, want 401 with a challenge", key, r.Status, r.Body)
		}
		for _, path := range []string{"/v1/imports", "/v1/imports/" + imp.ID, "/v1/resources/companies/records"} {
			if r := c.Call("projector", http.MethodGet, path, key, nil, nil); r.Status != http.StatusUnauthorized {
				t.Errorf("GET %s with key %q: %d %s, want 401", path, key, r.Status, r.Body)
			}
		}
	}
	for _, svc := range HTTPServices {
		if r := c.Call(svc, http.MethodGet, "/readyz", "", nil, nil); r.Status != http.StatusOK {
			t.Errorf("%s /readyz without a key: %d", svc, r.Status)
		}
	}
	// Nothing a's attempts did reached b's data or created anything.
	if l := c.listImports(b, client.Filters{}); len(l.Data) != 1 {
		t.Errorf("b has %d imports, want 1: %v", len(l.Data), ids(l.Data))
	}
	if n := len(c.Records(a, "companies")); n != 0 {
		t.Errorf("a has %d companies", n)
	}
	// And b's own key reads it all.
	if r := c.Read(b, "/v1/imports/"+imp.ID+"/errors.csv", nil); r.Status != http.StatusOK {
		t.Errorf("b's errors.csv with b's key: %d", r.Status)
	}
}
