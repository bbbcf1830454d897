package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/inlet-dev/inlet/events"
)

// Resources reads the resource registry (GET /v1/resources).
func (c *Client) Resources(ctx context.Context) ([]events.Resource, error) {
	var body struct {
		Data []events.Resource `json:"data"`
	}
	err := c.getJSON(ctx, call{path: "/v1/resources"}, &body)
	return body.Data, err
}

// RecordFilters select the stored records of a resource for Records.
type RecordFilters struct {
	// Mode is live (the default) or test.
	Mode events.Mode
	// Key finds the records holding this value of one of the resource's
	// keys, instead of paging through all.
	Key string
	// Limit is the page size (the server's default when 0).
	Limit int
	// StartingAfter is the NextCursor of the page before.
	StartingAfter string
}

// Records reads one page of a resource's stored records, ordered by id.
func (c *Client) Records(ctx context.Context, resource string, f RecordFilters) (events.Page[events.Record], error) {
	q := url.Values{}
	if f.Mode != "" {
		q.Set("mode", string(f.Mode))
	}
	if f.Key != "" {
		q.Set("key", f.Key)
	}
	if f.StartingAfter != "" {
		q.Set("starting_after", f.StartingAfter)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var p events.Page[events.Record]
	err := c.getJSON(ctx, call{path: recordsPath(resource), query: q}, &p)
	return p, err
}

// Record reads one stored record of a resource by its id.
func (c *Client) Record(ctx context.Context, resource, id string, mode events.Mode) (events.Record, error) {
	q := url.Values{}
	if mode != "" {
		q.Set("mode", string(mode))
	}
	var r events.Record
	err := c.getJSON(ctx, call{path: recordsPath(resource) + "/" + url.PathEscape(id), query: q}, &r)
	return r, err
}

func recordsPath(resource string) string {
	return "/v1/resources/" + url.PathEscape(resource) + "/records"
}
