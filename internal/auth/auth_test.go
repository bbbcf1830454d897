package auth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/auth"
	"github.com/inlet-dev/inlet/internal/httpapi"
)

const (
	acmeSecret  = "acme-secret-0123456789"
	otherSecret = "other-secret-0123456789"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFileAndEnv(t *testing.T) {
	file := writeFile(t, `[
	  {"id": "acme-ci", "organization_id": "acme", "key": "`+acmeSecret+`"},
	  {"id": "other-etl", "organization_id": "other", "key_sha256": "`+auth.HashHex(otherSecret)+`"},
	  {"id": "other-upper", "organization_id": "other", "key_sha256": "sha256:`+strings.ToUpper(auth.HashHex("upper-case-hash-secret"))+`"}
	]`)
	kr, err := auth.Load(file, " acme-2:acme:with:colons:inside-0123 , ,")
	if err != nil {
		t.Fatal(err)
	}
	if !kr.Enabled() || kr.Len() != 4 || strings.Join(kr.Orgs(), ",") != "acme,other" {
		t.Fatalf("keyring: enabled=%v len=%d orgs=%v", kr.Enabled(), kr.Len(), kr.Orgs())
	}
	for secret, want := range map[string]string{
		acmeSecret: "acme-ci/acme", otherSecret: "other-etl/other", "upper-case-hash-secret": "other-upper/other",
		"with:colons:inside-0123": "acme-2/acme",
	} {
		k, ok := kr.Authenticate(secret)
		if !ok || k.ID+"/"+k.Org != want {
			t.Errorf("Authenticate(%q) = %+v, %v; want %s", secret, k, ok, want)
		}
	}
	for _, bad := range []string{"", "nope", acmeSecret + " ", auth.HashHex(otherSecret)} {
		if k, ok := kr.Authenticate(bad); ok {
			t.Errorf("Authenticate(%q) matched %q", bad, k.ID)
		}
	}
}

func TestNoKeysIsDisabled(t *testing.T) {
	kr, err := auth.Load("", "")
	if err != nil || kr.Enabled() || kr.Len() != 0 {
		t.Fatalf("no configuration: %v enabled=%v", err, kr.Enabled())
	}
	if err := kr.Require(); err != auth.ErrNoKeys {
		t.Errorf("Require without keys = %v", err)
	}
	var nilKR *auth.Keyring
	if nilKR.Enabled() || auth.Disabled().Enabled() {
		t.Error("nil and Disabled keyrings must be disabled")
	}
	kr, _ = auth.Load("", "a:acme:"+acmeSecret)
	if kr.Require() != nil {
		t.Error("Require with a key must pass")
	}
}

func TestLoadRejects(t *testing.T) {
	for name, c := range map[string]struct{ file, env, want string }{
		"duplicate id":              {env: "a:acme:" + acmeSecret + ",a:other:" + otherSecret, want: `key id "a" is configured twice`},
		"duplicate secret":          {env: "a:acme:" + acmeSecret + ",b:other:" + acmeSecret, want: `keys "a" and "b" have the same secret`},
		"duplicate across sources":  {file: `[{"id":"a","organization_id":"acme","key_sha256":"` + auth.HashHex(acmeSecret) + `"}]`, env: "b:acme:" + acmeSecret, want: "same secret"},
		"id in both":                {file: `[{"id":"a","organization_id":"acme","key":"` + acmeSecret + `"}]`, env: "a:acme:" + otherSecret, want: "configured twice"},
		"bad org":                   {env: "a:ac.me:" + acmeSecret, want: `organization_id "ac.me" must match`},
		"wildcard org":              {env: "a:*:" + acmeSecret, want: "must match"},
		"bad id":                    {env: "a b:acme:" + acmeSecret, want: `key id "a b"`},
		"short secret":              {env: "a:acme:short", want: "at least 16"},
		"env shape":                 {env: "a:" + acmeSecret, want: "entry 1: want id:organization_id:secret"},
		"both key and hash":         {file: `[{"id":"a","organization_id":"acme","key":"` + acmeSecret + `","key_sha256":"` + auth.HashHex(acmeSecret) + `"}]`, want: "not both"},
		"neither":                   {file: `[{"id":"a","organization_id":"acme"}]`, want: "needs key"},
		"bad hash":                  {file: `[{"id":"a","organization_id":"acme","key_sha256":"abc"}]`, want: "64 hex digits"},
		"unknown field":             {file: `[{"id":"a","organization_id":"acme","key":"` + acmeSecret + `","org":"x"}]`, want: `unknown field "org"`},
		"not an array":              {file: `{"id":"a"}`, want: "JSON array"},
		"empty file":                {file: `[]`, want: "holds no keys"},
		"second entry named in err": {file: `[{"id":"a","organization_id":"acme","key":"` + acmeSecret + `"},{"id":"b","organization_id":"","key":"` + otherSecret + `"}]`, want: "entry 2"},
	} {
		t.Run(name, func(t *testing.T) {
			path := ""
			if c.file != "" {
				path = writeFile(t, c.file)
			}
			_, err := auth.Load(path, c.env)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
			for _, s := range []string{acmeSecret, otherSecret} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the error reveals a secret: %v", err)
				}
			}
		})
	}
	if _, err := auth.Load(filepath.Join(t.TempDir(), "missing.json"), ""); err == nil || !strings.Contains(err.Error(), auth.EnvFile) {
		t.Errorf("missing file: %v", err)
	}
}

// echo answers with what the handlers would see.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	org, fe := httpapi.ResolveOrg(r, r.Header.Get("X-Body-Org"))
	if fe != nil {
		httpapi.WriteForeignOrg(w, fe)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{
		"org": httpapi.Org(r, r.URL.Query().Get(httpapi.OrgParam)), "resolved": org, "principal": httpapi.Principal(r),
	})
})

func serve(h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestMiddleware(t *testing.T) {
	kr, err := auth.Load("", "acme-ci:acme:"+acmeSecret+",other-etl:other:"+otherSecret)
	if err != nil {
		t.Fatal(err)
	}
	h := auth.Middleware(kr, echo)
	bearerAcme := []string{"Authorization", "Bearer " + acmeSecret}

	for name, c := range map[string]struct {
		header    []string
		challenge string
	}{
		"no header":      {nil, `Bearer realm="inlet"`},
		"basic scheme":   {[]string{"Authorization", "Basic YTpi"}, `Bearer realm="inlet"`},
		"empty bearer":   {[]string{"Authorization", "Bearer "}, `Bearer realm="inlet"`},
		"wrong key":      {[]string{"Authorization", "Bearer not-a-key-0123456789"}, `Bearer realm="inlet", error="invalid_token"`},
		"hash as secret": {[]string{"Authorization", "Bearer " + auth.HashHex(acmeSecret)}, `Bearer realm="inlet", error="invalid_token"`},
	} {
		for _, target := range []string{"/v1/imports", "/v1/resources", "/v1/imports/imp_x/errors.csv", "/anything"} {
			rec := serve(h, "GET", target, c.header...)
			var body httpapi.ErrorBody
			if rec.Code != 401 || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Code != "unauthorized" || body.Error.Details == nil {
				t.Errorf("%s: GET %s: %d %s, want 401 unauthorized", name, target, rec.Code, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != c.challenge {
				t.Errorf("%s: WWW-Authenticate = %q, want %q", name, got, c.challenge)
			}
		}
	}
	for _, probe := range []string{"/healthz", "/readyz", events.OpenAPIPath} {
		if rec := serve(h, "GET", probe); rec.Code != 200 {
			t.Errorf("%s without a key: %d, want open", probe, rec.Code)
		}
	}

	check := func(rec *httptest.ResponseRecorder, want string) {
		t.Helper()
		var got map[string]string
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got["org"]+"/"+got["resolved"]+"/"+got["principal"] != want {
			t.Errorf("%d %s, want %s", rec.Code, rec.Body, want)
		}
	}
	check(serve(h, "GET", "/v1/imports", bearerAcme...), "acme/acme/acme-ci")
	check(serve(h, "GET", "/v1/imports", "Authorization", "bearer  "+otherSecret+" "), "other/other/other-etl")
	// Naming the key's own organization is fine.
	check(serve(h, "GET", "/v1/imports?organization_id=acme", append(bearerAcme, httpapi.OrgHeader, "acme", "X-Body-Org", "acme")...), "acme/acme/acme-ci")

	// Naming another: 403 forbidden_organization, whatever the path.
	for name, rec := range map[string]*httptest.ResponseRecorder{
		"query":        serve(h, "GET", "/v1/imports?organization_id=other", bearerAcme...),
		"second query": serve(h, "GET", "/v1/imports?organization_id=acme&organization_id=other", bearerAcme...),
		"header":       serve(h, "GET", "/v1/imports/imp_x", append(bearerAcme, httpapi.OrgHeader, "other")...),
		"unknown org":  serve(h, "POST", "/v1/imports/imp_x/interrupt?organization_id=nobody", bearerAcme...),
		"body":         serve(h, "POST", "/v1/imports", append(bearerAcme, "X-Body-Org", "other")...),
	} {
		var body httpapi.ErrorBody
		if rec.Code != 403 || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Code != httpapi.CodeForbiddenOrg {
			t.Errorf("%s: %d %s, want 403 forbidden_organization", name, rec.Code, rec.Body)
		}
	}

	// Keys off: the request's own organization, principal "api".
	off := auth.Middleware(auth.Disabled(), echo)
	check(serve(off, "GET", "/v1/imports?organization_id=other"), "other/default/api")
	check(serve(off, "GET", "/v1/imports", httpapi.OrgHeader, "hdr", "Authorization", "Bearer whatever"), "hdr/hdr/api")
	check(serve(auth.Middleware(nil, echo), "GET", "/v1/imports"), "default/default/api")
}

// A browser's EventSource sends no headers: the import event stream, and it
// alone, takes the key as ?access_token=, which the handlers never see.
func TestQueryTokenOnlyOnTheEventStream(t *testing.T) {
	kr, err := auth.Load("", "acme-ci:acme:"+acmeSecret)
	if err != nil {
		t.Fatal(err)
	}
	var seenQuery string
	h := auth.Middleware(kr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenQuery = r.URL.RawQuery
		echo.ServeHTTP(w, r)
	}))
	stream := "/v1/imports/imp_x/events?" + auth.QueryTokenParam + "=" + acmeSecret
	rec := serve(h, "GET", stream+"&organization_id=acme")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"principal":"acme-ci"`) {
		t.Errorf("GET the event stream with ?access_token: %d %s, want 200 as acme-ci", rec.Code, rec.Body)
	}
	if strings.Contains(seenQuery, acmeSecret) || seenQuery != "organization_id=acme" {
		t.Errorf("the handler saw the query %q: the key must be taken out of it", seenQuery)
	}
	if rec := serve(h, "GET", stream+"&organization_id=other"); rec.Code != 403 {
		t.Errorf("the event stream naming another organization: %d, want 403", rec.Code)
	}
	if rec := serve(h, "GET", "/v1/imports/imp_x/events?"+auth.QueryTokenParam+"=not-a-key-0123456789"); rec.Code != 401 {
		t.Errorf("the event stream with a wrong ?access_token: %d, want 401", rec.Code)
	}
	for _, target := range []string{
		"/v1/imports/imp_x",
		"/v1/imports",
		"/v1/imports/imp_x/errors.json",
		"/v1/imports/imp_x/events/more",
		"/v1/imports/a/b/events",
	} {
		if rec := serve(h, "GET", target+"?"+auth.QueryTokenParam+"="+acmeSecret); rec.Code != 401 {
			t.Errorf("GET %s with ?access_token: %d, want 401 (the query key is for the event stream alone)", target, rec.Code)
		}
	}
	if rec := serve(h, "POST", stream); rec.Code != 401 {
		t.Errorf("POST the event stream's path with ?access_token: %d, want 401", rec.Code)
	}
}
