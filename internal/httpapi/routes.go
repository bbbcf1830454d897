package httpapi

import (
	"context"
	"net/http"
	"strings"
)

// Routes serves mux, and answers a request none of its routes takes in the
// JSON error shape (the mux's own answers are plain text): 404 not_found
// for a path no route has, 405 method_not_allowed, with Allow, for a path
// asked with a method its routes do not take.
func Routes(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if p, ok := r.Context().Value(routeKey{}).(*string); ok {
			*p = pattern
		}
		if pattern != "" {
			mux.ServeHTTP(w, r) // the mux sets the path values
			return
		}
		// What the mux would answer: its status and headers, not its text.
		var c captured
		h.ServeHTTP(&c, r)
		switch c.status {
		case http.StatusMethodNotAllowed:
			allow := c.header.Get("Allow")
			w.Header().Set("Allow", allow)
			WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed",
				r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+allow,
				map[string]any{"method": r.Method, "allow": strings.Split(allow, ", ")})
		case http.StatusNotFound, 0:
			NotFound(w, "no route "+r.Method+" "+r.URL.Path)
		default: // a redirect to the canonical path: as the mux answers it
			for k, v := range c.header {
				w.Header()[k] = v
			}
			w.WriteHeader(c.status)
		}
	})
}

type routeKey struct{}

// TrackRoute returns r with a place where Routes writes the pattern of the
// route that takes it (e.g. "GET /v1/imports/{id}"), and the function that
// reads it: "" until Routes has, or when no route takes it. A middleware
// around Routes learns the route this way even when a handler between them
// replaces the request (r.WithContext keeps the place).
func TrackRoute(r *http.Request) (*http.Request, func() string) {
	var pattern string
	return r.WithContext(context.WithValue(r.Context(), routeKey{}, &pattern)), func() string { return pattern }
}

// Route is the pattern Routes recorded for the request of ctx (see
// TrackRoute): "" when no route took it, or before.
func Route(ctx context.Context) string {
	if p, ok := ctx.Value(routeKey{}).(*string); ok {
		return *p
	}
	return ""
}

// captured keeps the status and headers a handler writes, and drops its body.
type captured struct {
	header http.Header
	status int
}

func (c *captured) Header() http.Header {
	if c.header == nil {
		c.header = http.Header{}
	}
	return c.header
}

func (c *captured) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *captured) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return len(b), nil
}
