package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serve(t *testing.T, path string) *http.Response {
	t.Helper()
	mux := http.NewServeMux()
	Mount(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Result()
}

func TestThePageAndItsModulesAreServed(t *testing.T) {
	for path, wantType := range map[string]string{
		"/ui/":          "text/html",
		"/ui/app.js":    "text/javascript",
		"/ui/api.js":    "text/javascript",
		"/ui/style.css": "text/css",
	} {
		resp := serve(t, path)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), wantType) || len(body) == 0 {
			t.Errorf("GET %s: %d %q, %d bytes; want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), wantType)
		}
	}
	if resp := serve(t, "/ui/missing.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/missing.js: %d, want 404", resp.StatusCode)
	}
}

func TestTheRootSendsToThePage(t *testing.T) {
	resp := serve(t, "/")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != Path {
		t.Errorf("GET /: %d to %q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), Path)
	}
}
