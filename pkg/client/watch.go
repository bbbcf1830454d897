package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/inlet-dev/inlet/events"
)

// maxEventLine bounds one line of the event stream: an import object.
const maxEventLine = 4 << 20

// Watch follows import id as it happens, over the server-sent events of
// GET /v1/imports/{id}/events: fn gets the import as it is, then each
// change, until it is terminal, and Watch returns the terminal import. A
// stream that breaks before the end (a read side restarting) is opened
// again after PollInterval, so fn may be given a state twice; an error fn
// returns ends the watch with it, and so does ctx.
func (c *Client) Watch(ctx context.Context, id string, fn func(events.Import) error) (events.Import, error) {
	interval := c.PollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	var last events.Import
	for {
		done, err := c.watchOnce(ctx, id, func(imp events.Import) error {
			last = imp
			return fn(imp)
		})
		var stop fnError
		switch {
		case done:
			return last, nil
		case errors.As(err, &stop):
			return last, stop.err
		case err != nil && !IsNotFound(err) && !IsUnavailable(err) && !errors.Is(err, io.ErrUnexpectedEOF):
			return last, err
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("client: watching import %s, still %s: %w", id, last.Status, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// fnError is an error of Watch's fn: it ends the watch.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// watchOnce reads one stream to its end; done reports a terminal import.
func (c *Client) watchOnce(ctx context.Context, id string, fn func(events.Import) error) (done bool, err error) {
	resp, err := c.do(ctx, call{method: http.MethodGet, path: importPath(id) + "/events", read: true,
		header: http.Header{"Accept": {"text/event-stream"}}, want: []int{http.StatusOK}})
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	var event, data string
	for lines.Scan() {
		line := lines.Text()
		switch {
		case line == "":
			if event == "import" && data != "" {
				var imp events.Import
				if err := json.Unmarshal([]byte(data), &imp); err != nil {
					return false, fmt.Errorf("client: import %s: an event that is no import object: %w", id, err)
				}
				if err := fn(imp); err != nil {
					return false, fnError{err}
				}
				if imp.Status.Terminal() {
					return true, nil
				}
			}
			event, data = "", ""
		case strings.HasPrefix(line, ":"): // a heartbeat
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
		}
	}
	if err := lines.Err(); err != nil && ctx.Err() == nil {
		return false, fmt.Errorf("client: watching import %s: %w", id, io.ErrUnexpectedEOF)
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	return false, io.ErrUnexpectedEOF // the stream ended before the import did
}
