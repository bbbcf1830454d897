// Package httpapi holds what the gateway (writes) and the projector (reads)
// share on the HTTP side, so both answer with the same error shape and
// resolve the organization the same way (spec §6).
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/inlet-dev/inlet/events"
)

// ErrorBody is the JSON of every error response: {"error": {...}}. Its
// shape is the public contract, in package events.
type ErrorBody = events.ErrorBody

// Error is a machine-readable code, a human message and details naming what
// was wrong (e.g. {"field": "mode"}).
type Error = events.APIError

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the status is out: a failed write can only be logged by the server
}

// WriteError writes the error body. details may be nil; it is sent as {} so
// clients can always index it.
func WriteError(w http.ResponseWriter, status int, code, message string, details map[string]any) {
	if details == nil {
		details = map[string]any{}
	}
	WriteJSON(w, status, ErrorBody{Error: Error{Code: code, Message: message, Details: details}})
}

// NotFound writes the 404 body of a missing resource.
func NotFound(w http.ResponseWriter, message string) {
	WriteError(w, http.StatusNotFound, "not_found", message, nil)
}

// OrgHeader, OrgParam and DefaultOrg name the organization of a request
// (see Org); clients use the same names from package events.
const (
	OrgHeader  = events.OrgHeader
	OrgParam   = events.OrgParam
	DefaultOrg = events.DefaultOrg
)

// DefaultPrincipal is who a request without an API key acts as: the
// created_by/updated_by of what it does.
const DefaultPrincipal = "api"

// CodeForbiddenOrg is the error code of a request that names an organization
// its API key does not belong to.
const CodeForbiddenOrg = "forbidden_organization"

// Identity is who an authenticated request acts as: the API key's id and the
// one organization the key belongs to.
type Identity struct {
	KeyID string
	Org   string
}

type identityKey struct{}

// WithIdentity returns ctx carrying id (the auth middleware sets it).
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the identity of an authenticated request; ok is false
// when the request carries none (API keys off).
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok && id.Org != ""
}

// Principal is who the request acts as: the API key's id, or
// DefaultPrincipal ("api") when API keys are off. Handlers record it as
// created_by / updated_by.
func Principal(r *http.Request) string {
	if id, ok := IdentityFrom(r.Context()); ok && id.KeyID != "" {
		return id.KeyID
	}
	return DefaultPrincipal
}

// Org resolves the request's organization.
//
// With an API key (an Identity in the context) it is always the key's
// organization: an explicit value is never honoured, so nothing a client
// writes can reach another tenant. A request that names a different
// organization is refused before it gets here when the name is in the
// X-Organization-Id header or the organization_id query parameter (the auth
// middleware answers 403 forbidden_organization, see ForeignOrg); for a name
// in a request body use ResolveOrg, which reports the mismatch.
//
// Without a key (the embedded default): the explicit value (a body field or
// query parameter) wins, then the X-Organization-Id header, then "default".
func Org(r *http.Request, explicit string) string {
	if id, ok := IdentityFrom(r.Context()); ok {
		return id.Org
	}
	if explicit != "" {
		return explicit
	}
	if h := r.Header.Get(OrgHeader); h != "" {
		return h
	}
	return DefaultOrg
}

// ForeignOrgError is a request naming an organization other than its API
// key's.
type ForeignOrgError struct {
	Named string // the organization the request named
	Own   string // the key's organization
}

func (e *ForeignOrgError) Error() string {
	return fmt.Sprintf("organization_id: this API key acts for organization %q only, not %q", e.Own, e.Named)
}

// Details is the details object of the 403 body.
func (e *ForeignOrgError) Details() map[string]any {
	return map[string]any{"field": OrgParam, "organization_id": e.Named}
}

// ResolveOrg is Org that also reports a request naming another organization
// than its API key's (in explicit, e.g. a body field, or in the
// X-Organization-Id header); answer it with WriteForeignOrg, or as 403
// CodeForbiddenOrg with its Error() and Details(). Naming the key's own
// organization is allowed. Without a key it never fails.
func ResolveOrg(r *http.Request, explicit string) (string, *ForeignOrgError) {
	id, ok := IdentityFrom(r.Context())
	if !ok {
		return Org(r, explicit), nil
	}
	for _, named := range []string{explicit, r.Header.Get(OrgHeader)} {
		if named != "" && named != id.Org {
			return "", &ForeignOrgError{Named: named, Own: id.Org}
		}
	}
	return id.Org, nil
}

// ForeignOrg checks the organization a request names outside its body (the
// X-Organization-Id header, the organization_id query parameter) against its
// API key; nil when they agree, when none is named, or without a key. The
// auth middleware calls it for every request.
func ForeignOrg(r *http.Request) *ForeignOrgError {
	id, ok := IdentityFrom(r.Context())
	if !ok {
		return nil
	}
	named := []string{r.Header.Get(OrgHeader)}
	named = append(named, r.URL.Query()[OrgParam]...)
	for _, n := range named {
		if n != "" && n != id.Org {
			return &ForeignOrgError{Named: n, Own: id.Org}
		}
	}
	return nil
}

// WriteForeignOrg answers 403 forbidden_organization. The answer is the same
// whatever the request asked for and whether or not the other organization
// exists, so it reveals nothing about another tenant.
func WriteForeignOrg(w http.ResponseWriter, e *ForeignOrgError) {
	WriteError(w, http.StatusForbidden, CodeForbiddenOrg, e.Error(), e.Details())
}

// Router is what routes are mounted on: an *http.ServeMux, or a test's
// recorder of the patterns.
type Router interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// MountCommon registers what every Inlet HTTP server answers besides its
// routes: the probes (/healthz, /readyz running ready) and the API
// description.
func MountCommon(r Router, ready ...Check) {
	r.HandleFunc("GET /healthz", Healthz)
	r.HandleFunc("GET /readyz", Readyz(ready...))
	r.HandleFunc("GET "+events.OpenAPIPath, OpenAPI)
}

// openAPI is assembled once: it is the same for the life of the process.
var openAPI = sync.OnceValues(events.OpenAPI)

// OpenAPI serves the OpenAPI document of the API (events.OpenAPI).
func OpenAPI(w http.ResponseWriter, _ *http.Request) {
	doc, err := openAPI()
	if err != nil {
		WriteError(w, http.StatusInternalServerError, "internal", err.Error(), nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}

// Check is one readiness dependency.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Healthz answers liveness: the process serves HTTP.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readyz runs every check and answers 503 naming each one that failed.
func Readyz(checks ...Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		failed := map[string]any{}
		for _, c := range checks {
			if c.Fn == nil {
				continue
			}
			if err := c.Fn(r.Context()); err != nil {
				failed[c.Name] = err.Error()
			}
		}
		if len(failed) > 0 {
			WriteError(w, http.StatusServiceUnavailable, "not_ready", "a dependency is not reachable", failed)
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// Page limits of list endpoints.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Limit parses ?limit=: absent is DefaultLimit; anything but 1..MaxLimit is
// an error naming the parameter.
func Limit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, errors.New("limit must be a whole number from 1 to " + strconv.Itoa(MaxLimit))
	}
	return n, nil
}

// Page is the body of every list response: cursor pagination where
// next_cursor is the starting_after of the next page (null on the last).
type Page[T any] = events.Page[T]

// NewPage cuts items (fetched with limit+1 to learn whether more exist) to
// limit and sets the cursor from the last kept item.
func NewPage[T any](items []T, limit int, id func(T) string) Page[T] {
	p := Page[T]{Data: items}
	if p.Data == nil {
		p.Data = []T{}
	}
	if len(items) > limit {
		p.Data = items[:limit]
		p.HasMore = true
		c := id(p.Data[limit-1])
		p.NextCursor = &c
	}
	return p
}
