package projector_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/auth"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/metrics"
	"github.com/inlet-dev/inlet/internal/projector"
	"github.com/inlet-dev/inlet/internal/resources"
)

// sseReader reads server-sent events: a message is its lines up to a blank
// one; comments start with ":".
type sseReader struct{ lines *bufio.Scanner }

type sseMessage struct {
	event, data string
	comment     bool
}

func (s *sseReader) next(t *testing.T) (sseMessage, bool) {
	t.Helper()
	var m sseMessage
	seen := false
	for s.lines.Scan() {
		line := s.lines.Text()
		if line == "" {
			if seen {
				return m, true
			}
			continue
		}
		seen = true
		switch {
		case strings.HasPrefix(line, ":"):
			m.comment = true
		case strings.HasPrefix(line, "event: "):
			m.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			m.data += strings.TrimPrefix(line, "data: ")
		default:
			t.Errorf("unexpected line in the event stream: %q", line)
		}
	}
	return m, false
}

// nextImport skips heartbeats to the next import message.
func (s *sseReader) nextImport(t *testing.T) (events.Import, bool) {
	t.Helper()
	for {
		m, ok := s.next(t)
		if !ok {
			return events.Import{}, false
		}
		if m.comment {
			continue
		}
		if m.event != "import" {
			t.Fatalf("event %q, want import", m.event)
		}
		var imp events.Import
		if err := json.Unmarshal([]byte(m.data), &imp); err != nil {
			t.Fatalf("data is not an import object: %v: %s", err, m.data)
		}
		return imp, true
	}
}

func shortenStreaming(t *testing.T, poll, heartbeat time.Duration) {
	oldPoll, oldBeat := projector.StreamPoll, projector.StreamHeartbeat
	projector.StreamPoll, projector.StreamHeartbeat = poll, heartbeat
	t.Cleanup(func() { projector.StreamPoll, projector.StreamHeartbeat = oldPoll, oldBeat })
}

// The import's changes arrive one by one, each as it happens (through the
// layers every server puts in front: metrics, tracing, API keys), the
// current state first, and the stream ends after the terminal one.
func TestImportEventsStreamEachChangeUntilTheEnd(t *testing.T) {
	shortenStreaming(t, 10*time.Millisecond, time.Hour)
	e := newEnv(t)
	reg, err := resources.Load(map[string][]byte{"customers.json": []byte(customersDef)})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.Load("", "acme-ui:acme:acme-secret-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	api := projector.NewHTTP(projector.Config{Views: e.st, Records: e.st, Blobs: e.blobs, Registry: reg, Log: zerolog.Nop()})
	srv := httptest.NewServer(metrics.New().InstrumentHTTP(otelhttp.NewHandler(auth.Middleware(keys, api), "test")))
	t.Cleanup(srv.Close)

	imp := newImport(t, "acme", "customers", t0)
	apply(t, e.p, importEvent(t, imp, events.EventQueued))
	resp, err := http.Get(srv.URL + "/v1/imports/" + imp.ID + "/events?access_token=acme-secret-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	stream := &sseReader{bufio.NewScanner(resp.Body)}
	// Each state is read before the next is applied: the stream is not
	// buffered to its end anywhere on the way.
	got, ok := stream.nextImport(t)
	if !ok || got.ID != imp.ID || got.Status != events.StatusQueued {
		t.Fatalf("first message: %+v, want the import as it is (queued)", got)
	}
	started := imp
	started.Status = events.StatusProcessing
	s := t0.Add(time.Second)
	started.StartedAt, started.UpdatedAt = &s, s
	apply(t, e.p, importEvent(t, started, events.EventStarted))
	if got, ok = stream.nextImport(t); !ok || got.Status != events.StatusProcessing {
		t.Fatalf("after started: %+v, want processing", got)
	}
	done := started
	imports.Finish(&done, events.StatusCompleted, "", t0.Add(time.Minute))
	apply(t, e.p, importEvent(t, done, events.EventCompleted))
	if got, ok = stream.nextImport(t); !ok || got.Status != events.StatusCompleted {
		t.Fatalf("after completed: %+v, want completed", got)
	}
	if m, more := stream.next(t); more && !m.comment {
		t.Errorf("a message after the terminal state: %+v", m)
	}
	for {
		if _, more := stream.next(t); !more {
			break // the server ended the stream
		}
	}

	// Scoped like GET /v1/imports/{id}: another organization's key or a
	// missing one gets nothing.
	for target, want := range map[string]int{
		"/v1/imports/" + imp.ID + "/events":                                     http.StatusUnauthorized,
		"/v1/imports/imp_unknown/events?access_token=acme-secret-0123456789":    http.StatusNotFound,
		"/v1/imports/" + imp.ID + "/events?access_token=not-the-key-0123456789": http.StatusUnauthorized,
	} {
		resp, err := http.Get(srv.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", target, resp.StatusCode, want)
		}
	}
	other := newImport(t, "other", "customers", t0)
	apply(t, e.p, importEvent(t, other, events.EventQueued))
	if code, _ := e.get(t, "/v1/imports/"+other.ID+"/events?organization_id=acme"); code != http.StatusNotFound {
		t.Errorf("another organization's import: %d, want 404", code)
	}
}

// A quiet stream sends a comment now and then, so that proxies keep it.
func TestImportEventsHeartbeat(t *testing.T) {
	shortenStreaming(t, time.Hour, 20*time.Millisecond)
	e := newEnv(t)
	imp := newImport(t, "acme", "customers", t0)
	apply(t, e.p, importEvent(t, imp, events.EventQueued))
	resp, err := http.Get(e.srv.URL + "/v1/imports/" + imp.ID + "/events?organization_id=acme")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	stream := &sseReader{bufio.NewScanner(resp.Body)}
	if _, ok := stream.nextImport(t); !ok {
		t.Fatal("no first message")
	}
	for range 2 {
		if m, ok := stream.next(t); !ok || !m.comment {
			t.Fatalf("a quiet stream: %+v, want heartbeat comments", m)
		}
	}
}

// A watcher that goes away ends its stream; so does the server's shutdown.
func TestImportEventsEndWithTheClientOrTheServer(t *testing.T) {
	shortenStreaming(t, 10*time.Millisecond, time.Hour)
	e := newEnv(t)
	closing := make(chan struct{})
	handlerDone := make(chan struct{}, 2)
	api := projector.NewHTTP(projector.Config{Views: e.st, Records: e.st, Blobs: e.blobs, Log: zerolog.Nop(), Closing: closing})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(w, r)
		handlerDone <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	imp := newImport(t, "acme", "customers", t0)
	apply(t, e.p, importEvent(t, imp, events.EventQueued))
	open := func(ctx context.Context) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/imports/"+imp.ID+"/events?organization_id=acme", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := (&sseReader{bufio.NewScanner(resp.Body)}).nextImport(t); !ok {
			t.Fatal("no first message")
		}
		return resp
	}
	ended := func(what string) {
		t.Helper()
		select {
		case <-handlerDone:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the stream's handler still runs", what)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	resp := open(ctx)
	cancel()
	ended("the client went away")
	resp.Body.Close()

	resp = open(context.Background())
	defer resp.Body.Close()
	close(closing)
	ended("the server shuts down")
	if rest, _ := io.ReadAll(resp.Body); strings.Contains(string(rest), "event:") {
		t.Errorf("after shutdown began: %q", rest)
	}
}
