package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inlet-dev/inlet/events"
)

// Source is the CloudEvents source of the requests this client publishes
// (the import's created_by unless the request sets one).
const Source = "/inlet/client"

// RequestImport publishes an import-requested event and returns the import
// id. An empty req.ID gets a fresh one (events.NewID); the id is the
// Nats-Msg-Id, so publishing the same request twice (a retry) creates one
// import. With parent_import_id and neither source nor inputs it runs the
// parent's failed rows again as they were (action revert: undoes the parent).
func (c *Client) RequestImport(ctx context.Context, req events.ImportRequested) (string, error) {
	if c.nc == nil {
		return "", errors.New("client: RequestImport needs a NATS connection")
	}
	if req.ID == "" {
		req.ID = events.NewID(time.Now())
	}
	if req.OrganizationID == "" {
		req.OrganizationID = events.DefaultOrg
	}
	if !events.ValidToken(req.OrganizationID) {
		return "", fmt.Errorf("client: organization_id %q is not a valid token ([A-Za-z0-9_-]{1,64})", req.OrganizationID)
	}
	if !events.ValidToken(req.Resource) {
		return "", fmt.Errorf("client: resource %q is not a valid resource name", req.Resource)
	}
	// An import of its parent's rows (a retry without a file, a revert) has neither.
	fromParent := req.ParentImportID != "" && req.Source == nil && len(req.Inputs) == 0
	if !fromParent && (req.Source == nil) == (len(req.Inputs) == 0) {
		return "", errors.New("client: an import request needs exactly one of source and inputs (or parent_import_id and neither: a retry of the parent's failed rows, a revert)")
	}
	if req.Action == events.ActionRevert && (req.ParentImportID == "" || req.Source != nil || len(req.Inputs) > 0) {
		return "", errors.New("client: a revert names its parent_import_id and has neither source nor inputs")
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

// WaitForCompletion blocks until the import reaches a terminal status and
// returns its final import object, from the terminal event on the stream.
//
// It reads the terminal events of the import's organization and resource
// from a little before the import was created (the time in its imp_<ULID>
// id, less WaitMargin), never the stream's whole history; an id without that
// time is waited for from now on. With an HTTP URL, the client also reads
// the import once the consumer is in place, so an import that ended before
// the wait began (or before the stream's retention) is found at once.
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
	cons, err := js.OrderedConsumer(ctx, events.Stream, c.waitConsumer(org, resource, importID, time.Now()))
	if err != nil {
		return events.Import{}, fmt.Errorf("client: consumer on %s: %w", events.Stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return events.Import{}, fmt.Errorf("client: consume %s: %w", events.Stream, err)
	}
	defer it.Stop()
	if c.base != "" || c.ReadURL != "" {
		// Best effort: the stream alone answers when the read side cannot.
		if imp, err := c.getAs(ctx, org, importID); err == nil && imp.Status.Terminal() {
			return imp, nil
		}
	}
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

// waitConsumer is the ordered consumer of WaitForCompletion: the terminal
// subjects of org and resource, from WaitMargin before the id's time (or
// now, if that is earlier: a clock ahead must not skip what is published
// meanwhile), or only what is new when the id carries no time.
func (c *Client) waitConsumer(org, resource, importID string, now time.Time) jetstream.OrderedConsumerConfig {
	subjects := make([]string, len(events.TerminalEvents))
	for i, e := range events.TerminalEvents {
		subjects[i] = events.Subject(org, resource, e)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverNewPolicy}
	created, ok := events.IDTime(importID)
	if !ok {
		return cfg
	}
	margin := c.WaitMargin
	if margin <= 0 {
		margin = DefaultWaitMargin
	}
	if now.Before(created) {
		created = now
	}
	start := created.Add(-margin)
	cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	return cfg
}

// getAs reads an import of org.
func (c *Client) getAs(ctx context.Context, org, id string) (events.Import, error) {
	var imp events.Import
	err := c.getJSON(ctx, call{path: importPath(id), org: org}, &imp)
	return imp, err
}
