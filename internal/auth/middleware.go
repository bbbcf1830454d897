package auth

import (
	"net/http"
	"strings"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/httpapi"
)

// Realm is the realm of the WWW-Authenticate challenge.
const Realm = "inlet"

// CodeUnauthorized is the error code of a request without a valid key.
const CodeUnauthorized = "unauthorized"

// Open reports whether path is served without a key: the liveness and
// readiness probes and the API description, which reveal no tenant's data
// (and the description is what a client reads before it has a key).
func Open(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == events.OpenAPIPath
}

// Middleware guards next with keys.
//
// With keys enabled: the Open paths stay open; every other request
// needs `Authorization: Bearer <key>` with a configured key (on the
// import event stream alone, ?access_token=<key> does too: queryToken), or it is
// answered 401 {"error":{"code":"unauthorized",...}} with a WWW-Authenticate
// challenge. The key's identity (id and organization) goes into the request
// context, where httpapi.Org and httpapi.Principal find it. A request that
// names another organization than the key's in the X-Organization-Id header
// or the organization_id query parameter is answered 403
// forbidden_organization before it reaches next (the same answer whatever it
// asked for, so it reveals nothing about the other organization); naming the
// key's own organization is allowed.
//
// With keys disabled (nil or no keys: the embedded default) it is next
// itself: nothing is checked and the organization is the one the request
// names.
func Middleware(keys *Keyring, next http.Handler) http.Handler {
	if !keys.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Open(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		secret, given := bearer(r)
		if !given {
			secret, given = queryToken(r)
		}
		if !given {
			unauthorized(w, "", "send an API key: Authorization: Bearer <key>")
			return
		}
		k, ok := keys.Authenticate(secret)
		if !ok {
			unauthorized(w, "invalid_token", "the API key is not valid")
			return
		}
		r = r.WithContext(httpapi.WithIdentity(r.Context(), httpapi.Identity{KeyID: k.ID, Org: k.Org}))
		if fe := httpapi.ForeignOrg(r); fe != nil {
			httpapi.WriteForeignOrg(w, fe)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// QueryTokenParam carries the key on the routes a browser's EventSource
// calls: it cannot send an Authorization header.
const QueryTokenParam = "access_token"

// queryTokenRoutes are the only routes that take the key in the query: a
// URL ends up in histories, logs and Referer headers, a header does not.
var queryTokenRoutes = func() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(events.ImportEventsRoute, http.NotFoundHandler())
	return mux
}()

// queryToken returns the ?access_token= of a request to a queryTokenRoutes
// route, and takes it out of the URL the handlers see.
func queryToken(r *http.Request) (string, bool) {
	q := r.URL.Query()
	if !q.Has(QueryTokenParam) {
		return "", false
	}
	if _, pattern := queryTokenRoutes.Handler(r); pattern == "" {
		return "", false
	}
	secret := strings.TrimSpace(q.Get(QueryTokenParam))
	q.Del(QueryTokenParam)
	r.URL.RawQuery = q.Encode()
	return secret, secret != ""
}

// bearer returns the credentials of an "Authorization: Bearer <key>" header
// (the scheme is case-insensitive); given is false when the header is absent
// or of another scheme.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, cred, found := strings.Cut(strings.TrimSpace(h), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}

func unauthorized(w http.ResponseWriter, errCode, message string) {
	challenge := `Bearer realm="` + Realm + `"`
	if errCode != "" {
		challenge += `, error="` + errCode + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	httpapi.WriteError(w, http.StatusUnauthorized, CodeUnauthorized, message, nil)
}
