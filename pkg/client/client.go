// Package client is a small Go client of Inlet: it requests imports and
// waits for their outcome over JetStream (the event contract of spec §7),
// and reads imports over HTTP (spec §6).
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/httpapi"
	"github.com/inlet-dev/inlet/pkg/imports"
	"github.com/inlet-dev/inlet/pkg/topology"
)

// Source is the CloudEvents source of the requests this client publishes.
const Source = "/inlet/client"

// Client talks to one Inlet deployment.
type Client struct {
	nc   *nats.Conn
	base string
	// HTTP is the HTTP client of Get and List.
	HTTP *http.Client
	// Org, when set, is sent as X-Organization-Id on HTTP reads.
	Org string
	// APIKey, when set, is sent as Authorization: Bearer (required by every
	// service that is not the embedded default).
	APIKey string
}

// New returns a client publishing on nc and reading from baseURL (e.g.
// http://127.0.0.1:8080). Either may be zero when its calls are not used.
func New(nc *nats.Conn, baseURL string) *Client {
	return &Client{nc: nc, base: strings.TrimRight(baseURL, "/"), HTTP: http.DefaultClient}
}

// RequestImport publishes an import-requested event and returns the import
// id. An empty req.ID gets a fresh one; the id is the Nats-Msg-Id, so
// publishing the same request twice (a retry) creates one import.
func (c *Client) RequestImport(ctx context.Context, req events.ImportRequested) (string, error) {
	if c.nc == nil {
		return "", errors.New("client: RequestImport needs a NATS connection")
	}
	if req.ID == "" {
		req.ID = imports.NewID(time.Now())
	}
	if req.OrganizationID == "" {
		req.OrganizationID = httpapi.DefaultOrg
	}
	if !events.ValidToken(req.OrganizationID) {
		return "", fmt.Errorf("client: organization_id %q is not a valid token ([A-Za-z0-9_-]{1,64})", req.OrganizationID)
	}
	if !events.ValidToken(req.Resource) {
		return "", fmt.Errorf("client: resource %q is not a valid resource name", req.Resource)
	}
	if (req.Source == nil) == (len(req.Inputs) == 0) {
		return "", errors.New("client: an import request needs exactly one of source and inputs")
	}
	ce, err := events.New("req:"+req.ID, Source, events.EventRequested, req.ID, req)
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(ce)
	if err != nil {
		return "", fmt.Errorf("client: encode request: %w", err)
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		return "", fmt.Errorf("client: jetstream: %w", err)
	}
	subject := events.Subject(req.OrganizationID, req.Resource, events.EventRequested)
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(nats.MsgIdHdr, req.ID)
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return "", fmt.Errorf("client: publish %s: %w", subject, err)
	}
	return req.ID, nil
}

// terminalEvents are the events that end an import.
var terminalEvents = []string{events.EventCompleted, events.EventFailed, events.EventInterrupted, events.EventTimedOut, events.EventExpired}

// WaitForCompletion blocks until the import reaches a terminal status and
// returns its final import object. It reads the resource's terminal events
// from the start of the stream through an ordered consumer, so an outcome
// published before the wait began is found too.
func (c *Client) WaitForCompletion(ctx context.Context, org, resource, importID string) (events.Import, error) {
	if c.nc == nil {
		return events.Import{}, errors.New("client: WaitForCompletion needs a NATS connection")
	}
	if !events.ValidToken(org) || !events.ValidToken(resource) {
		return events.Import{}, fmt.Errorf("client: organization %q or resource %q is not a valid subject token", org, resource)
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		return events.Import{}, fmt.Errorf("client: jetstream: %w", err)
	}
	subjects := make([]string, len(terminalEvents))
	for i, e := range terminalEvents {
		subjects[i] = events.Subject(org, resource, e)
	}
	cons, err := js.OrderedConsumer(ctx, topology.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return events.Import{}, fmt.Errorf("client: consumer on %s: %w", topology.EventsStream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return events.Import{}, fmt.Errorf("client: consume %s: %w", topology.EventsStream, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return events.Import{}, fmt.Errorf("client: waiting for import %s: %w", importID, ctx.Err())
			}
			return events.Import{}, fmt.Errorf("client: waiting for import %s: %w", importID, err)
		}
		ce, err := events.Decode(msg.Data())
		if err != nil {
			continue // not ours to judge: other consumers report bad events
		}
		var imp events.Import
		if json.Unmarshal(ce.Data, &imp) != nil || imp.ID != importID {
			continue
		}
		imp.Normalize()
		return imp, nil
	}
}

// Error is an error response of the HTTP API.
type Error struct {
	Status  int
	Code    string
	Message string
	Details map[string]any
}

func (e *Error) Error() string {
	return fmt.Sprintf("inlet: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// IsNotFound reports whether err is a 404 of the API.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

func (c *Client) getJSON(ctx context.Context, path string, q url.Values, out any) error {
	if c.base == "" {
		return errors.New("client: HTTP reads need a base URL")
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	if c.Org != "" {
		req.Header.Set(httpapi.OrgHeader, c.Org)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("client: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body httpapi.ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &body) != nil || body.Error.Code == "" {
			return &Error{Status: resp.StatusCode, Code: "http_error", Message: strings.TrimSpace(string(b))}
		}
		return &Error{Status: resp.StatusCode, Code: body.Error.Code, Message: body.Error.Message, Details: body.Error.Details}
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: GET %s: decode: %w", path, err)
	}
	return nil
}

// Get reads one import.
func (c *Client) Get(ctx context.Context, id string) (events.Import, error) {
	var imp events.Import
	err := c.getJSON(ctx, "/v1/imports/"+url.PathEscape(id), nil, &imp)
	return imp, err
}

// Filters select imports for List; zero fields match everything (the
// organization defaults to the client's Org, then "default").
type Filters struct {
	OrganizationID string
	Status         events.Status
	Resource       string
	Limit          int
	StartingAfter  string
}

// Page is one page of a list.
type Page = httpapi.Page[events.Import]

// List reads one page of imports, newest first.
func (c *Client) List(ctx context.Context, f Filters) (Page, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("organization_id", f.OrganizationID)
	set("status", string(f.Status))
	set("resource", f.Resource)
	set("starting_after", f.StartingAfter)
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var p Page
	err := c.getJSON(ctx, "/v1/imports", q, &p)
	return p, err
}
