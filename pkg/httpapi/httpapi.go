// Package httpapi holds what the gateway (writes) and the projector (reads)
// share on the HTTP side, so both answer with the same error shape and
// resolve the organization the same way (spec §6).
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// ErrorBody is the JSON of every error response: {"error": {...}}.
type ErrorBody struct {
	Error Error `json:"error"`
}

// Error is a machine-readable code, a human message and details naming what
// was wrong (e.g. {"field": "mode"}).
type Error struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

// OrgHeader carries the organization until API keys exist.
const OrgHeader = "X-Organization-Id"

// DefaultOrg is the organization of a request that names none.
const DefaultOrg = "default"

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

// Org resolves the request's organization: the explicit value (a body field
// or query parameter) wins, then the X-Organization-Id header, then "default".
func Org(r *http.Request, explicit string) string {
	if explicit != "" {
		return explicit
	}
	if h := r.Header.Get(OrgHeader); h != "" {
		return h
	}
	return DefaultOrg
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
type Page[T any] struct {
	Data       []T     `json:"data"`
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`
}

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
