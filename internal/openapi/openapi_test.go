package openapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/openapi"
)

func TestDocumentIsValidOpenAPI31(t *testing.T) {
	if err := openapi.Validate(); err != nil {
		t.Fatal(err)
	}
}

// The checker finds answers that break the document and lets through the
// ones that keep it, including refusals of what no route takes, and leaves
// paths that are not Inlet's alone.
func TestCheckerCatchesWhatTheDocumentDoesNotSay(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", httpapi.Healthz)
	mux.HandleFunc("GET /v1/resources", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"data": []any{}})
	})
	mux.HandleFunc("GET /v1/imports/{id}", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"id": "imp_1"}) // far from the import object
	})
	mux.HandleFunc("GET /v1/imports/{id}/errors.json", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteError(w, http.StatusTeapot, "teapot", "not a documented status", nil)
	})
	mux.HandleFunc("GET /v1/imports/{id}/errors.csv", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		_, _ = w.Write([]byte("not,checked\n"))
	})
	mux.HandleFunc("GET /v1/undocumented", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{})
	})
	mux.HandleFunc("GET /bucket/key", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusTeapot, "not Inlet's")
	})
	srv := httptest.NewServer(httpapi.Routes(mux))
	defer srv.Close()

	c := &openapi.Checker{}
	client := &http.Client{Transport: c.Transport(nil)}
	get := func(method, path string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, path := range []string{"/healthz", "/v1/resources", "/v1/imports/imp_1/errors.csv", "/v1/nothing", "/bucket/key"} {
		get("GET", path)
	}
	get("DELETE", "/v1/resources") // 405 in the error shape
	if v := c.Violations(); len(v) > 0 {
		t.Fatalf("answers that agree with the document were reported:\n%s", strings.Join(v, "\n"))
	}
	for _, path := range []string{"/v1/imports/imp_1", "/v1/imports/imp_1/errors.json", "/v1/undocumented"} {
		get("GET", path)
	}
	v := c.Violations()
	if len(v) != 3 {
		t.Fatalf("want 3 violations (a wrong body, an undocumented status, an undocumented route), got %d:\n%s", len(v), strings.Join(v, "\n"))
	}
	for i, want := range []string{"GET /v1/imports/imp_1 → 200", "→ 418", "the document has no GET /v1/undocumented"} {
		if !strings.Contains(v[i], want) {
			t.Errorf("violation %d: %s\nwant it to say %q", i, v[i], want)
		}
	}
}
