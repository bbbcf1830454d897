package projector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/inlet-dev/inlet/events"
)

// GET /v1/imports/{id}/events: the import object as server-sent events, one
// `event: import` each time it changes, the current state first, until it is
// terminal (the dashboard's live view).
//
// The source is the view store, polled on the server, not the event stream:
// the view is what the projector has already made of the events (progress
// counted once per batch, terminal objects final), so a stream of views
// needs no second projection, answers the same from every projector replica
// (the consumer is shared, so one replica does not see every event), and
// reads one row per watcher every StreamPoll.

// Streaming intervals; tests shorten them.
var (
	StreamPoll      = 300 * time.Millisecond
	StreamHeartbeat = 15 * time.Second
)

func (a *API) streamImport(w http.ResponseWriter, r *http.Request) {
	imp, ok := a.loadImport(w, r)
	if !ok {
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx (deploy/compose/api.conf) passes it on at once
	w.WriteHeader(http.StatusOK)

	var last []byte
	send := func(imp events.Import) error {
		b, err := json.Marshal(imp)
		if err != nil {
			return err
		}
		if bytes.Equal(b, last) {
			return nil
		}
		last = b
		if _, err := fmt.Fprintf(w, "event: import\ndata: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if send(imp) != nil {
		return
	}
	poll := time.NewTicker(StreamPoll)
	defer poll.Stop()
	heartbeat := time.NewTicker(StreamHeartbeat)
	defer heartbeat.Stop()
	for !imp.Status.Terminal() {
		select {
		case <-r.Context().Done():
			return
		case <-a.cfg.Closing:
			return // the server shuts down: EventSource reconnects elsewhere
		case <-heartbeat.C:
			// A comment keeps proxies from closing an idle stream.
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-poll.C:
			v, err := a.cfg.Views.GetView(r.Context(), imp.ID)
			if err != nil {
				a.cfg.Log.Warn().Err(err).Str("import", imp.ID).Msg("import events: read the view")
				continue // a passing store fault: the next poll tries again
			}
			next, err := ImportOf(v)
			if err != nil {
				a.cfg.Log.Error().Err(err).Str("import", imp.ID).Msg("import events")
				return
			}
			imp = next
			if send(imp) != nil {
				return
			}
		}
	}
}
