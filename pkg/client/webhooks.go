package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/inlet-dev/inlet/events"
)

// Webhooks: subscriptions of the client's organization to the events of its
// imports (events.WebhookCreate; a receiver checks each delivery with
// events.VerifyWebhook).

func webhookPath(id string) string { return "/v1/webhooks/" + url.PathEscape(id) }

// CreateWebhook subscribes an endpoint; the answer holds the signing secret,
// which no later call shows.
func (c *Client) CreateWebhook(ctx context.Context, req events.WebhookCreate) (events.Webhook, error) {
	var w events.Webhook
	body, err := json.Marshal(req)
	if err != nil {
		return w, fmt.Errorf("client: create webhook: %w", err)
	}
	resp, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/webhooks", body: bytes.NewReader(body),
		contentType: "application/json", want: []int{http.StatusCreated}})
	if err != nil {
		return w, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		return w, fmt.Errorf("client: create webhook: decode: %w", err)
	}
	return w, nil
}

// Webhook reads one subscription (without its secret).
func (c *Client) Webhook(ctx context.Context, id string) (events.Webhook, error) {
	var w events.Webhook
	err := c.getJSON(ctx, call{path: webhookPath(id)}, &w)
	return w, err
}

// PageOpts are a list's page size (the server's default when 0) and cursor
// (the NextCursor of the page before).
type PageOpts struct {
	Limit         int
	StartingAfter string
}

func (p PageOpts) query() url.Values {
	q := url.Values{}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.StartingAfter != "" {
		q.Set("starting_after", p.StartingAfter)
	}
	return q
}

// Webhooks reads one page of the organization's subscriptions, oldest first.
func (c *Client) Webhooks(ctx context.Context, p PageOpts) (events.Page[events.Webhook], error) {
	var page events.Page[events.Webhook]
	err := c.getJSON(ctx, call{path: "/v1/webhooks", query: p.query()}, &page)
	return page, err
}

// DeleteWebhook removes a subscription and its delivery log.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	resp, err := c.do(ctx, call{method: http.MethodDelete, path: webhookPath(id), want: []int{http.StatusNoContent}})
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// EnableWebhook enables a subscription (its pending deliveries resume), or
// disables it when enabled is false.
func (c *Client) EnableWebhook(ctx context.Context, id string, enabled bool) (events.Webhook, error) {
	var w events.Webhook
	action := "/enable"
	if !enabled {
		action = "/disable"
	}
	resp, err := c.do(ctx, call{method: http.MethodPost, path: webhookPath(id) + action, want: []int{http.StatusOK}})
	if err != nil {
		return w, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		return w, fmt.Errorf("client: %s webhook %s: decode: %w", action[1:], id, err)
	}
	return w, nil
}

// WebhookDeliveries reads one page of a subscription's delivery log, newest
// first; state ("" for all) keeps only pending, delivered or failed ones.
func (c *Client) WebhookDeliveries(ctx context.Context, id, state string, p PageOpts) (events.Page[events.WebhookDelivery], error) {
	var page events.Page[events.WebhookDelivery]
	q := p.query()
	if state != "" {
		q.Set("state", state)
	}
	err := c.getJSON(ctx, call{path: webhookPath(id) + "/deliveries", query: q}, &page)
	return page, err
}

// Redeliver sends a delivery of a subscription again: it is pending, due
// now, with the same event id and body (the answer is the delivery).
func (c *Client) Redeliver(ctx context.Context, webhookID, deliveryID string) (events.WebhookDelivery, error) {
	var d events.WebhookDelivery
	resp, err := c.do(ctx, call{method: http.MethodPost, path: webhookPath(webhookID) + "/deliveries/" + url.PathEscape(deliveryID) + "/redeliver",
		want: []int{http.StatusAccepted}})
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return d, fmt.Errorf("client: redeliver %s: decode: %w", deliveryID, err)
	}
	return d, nil
}

// UpdateWebhook changes a subscription's URL, events or description (the
// fields of req that are set).
func (c *Client) UpdateWebhook(ctx context.Context, id string, req events.WebhookUpdate) (events.Webhook, error) {
	var w events.Webhook
	body, err := json.Marshal(req)
	if err != nil {
		return w, fmt.Errorf("client: update webhook: %w", err)
	}
	resp, err := c.do(ctx, call{method: http.MethodPatch, path: webhookPath(id), body: bytes.NewReader(body),
		contentType: "application/json", want: []int{http.StatusOK}})
	if err != nil {
		return w, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		return w, fmt.Errorf("client: update webhook %s: decode: %w", id, err)
	}
	return w, nil
}
