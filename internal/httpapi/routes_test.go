package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/httpapi"
)

// What no route takes is answered in the JSON error shape, as every error
// of the API is: an unknown path 404, a known path with another method 405
// with Allow; a route still gets its path values.
func TestRoutesAnswerWhatNoRouteTakesInJSON(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/imports/{id}", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	mux.HandleFunc("POST /v1/imports/{id}/interrupt", func(w http.ResponseWriter, r *http.Request) {})
	h := httpapi.Routes(mux)
	do := func(method, path string) (*httptest.ResponseRecorder, httpapi.ErrorBody) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		var body httpapi.ErrorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec, body
	}
	if rec, _ := do("GET", "/v1/imports/imp_1"); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"id":"imp_1"`) {
		t.Errorf("a route: %d %s", rec.Code, rec.Body)
	}
	rec, body := do("GET", "/v1/nothing")
	if rec.Code != 404 || body.Error.Code != "not_found" || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("unknown path: %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	rec, body = do("DELETE", "/v1/imports/imp_1")
	if rec.Code != 405 || body.Error.Code != "method_not_allowed" || !strings.Contains(rec.Header().Get("Allow"), "GET") ||
		rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("wrong method: %d allow %q %s", rec.Code, rec.Header().Get("Allow"), rec.Body)
	}
	if rec, body := do("GET", "/v1/imports/imp_1/interrupt"); rec.Code != 405 || !strings.Contains(rec.Header().Get("Allow"), "POST") || body.Error.Code != "method_not_allowed" {
		t.Errorf("GET on a POST route: %d allow %q %s", rec.Code, rec.Header().Get("Allow"), rec.Body)
	}
}
