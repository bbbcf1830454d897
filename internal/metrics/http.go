package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/inlet-dev/inlet/internal/httpapi"
)

// InstrumentHTTP counts and times the requests next answers, by the
// pattern of the route that took them (httpapi.Routes records it):
// "unrouted" for those no route took (an unknown path, or one refused
// before routing, such as a missing API key). Inside it, httpapi.Route
// tells the route of the request once next has served it.
func (m *Metrics) InstrumentHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r, route := httpapi.TrackRoute(r)
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		pattern := route()
		if _, path, ok := strings.Cut(pattern, " "); ok {
			pattern = path // the method is a label of its own
		}
		if pattern == "" {
			pattern = "unrouted"
		}
		method := knownMethod(r.Method)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		m.httpRequests.WithLabelValues(pattern, method, strconv.Itoa(rec.status)).Inc()
		m.httpSeconds.WithLabelValues(pattern, method).Observe(time.Since(start).Seconds())
	})
}

// knownMethod keeps a client's made-up method out of the label values.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// statusRecorder keeps the status a handler answers; Flush and Unwrap keep
// streaming answers (server-sent events) working through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
