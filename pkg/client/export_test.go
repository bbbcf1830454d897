package client

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// WaitConsumer exposes the consumer WaitForCompletion makes, so its start
// can be checked without a server.
func (c *Client) WaitConsumer(org, resource, importID string, now time.Time) jetstream.OrderedConsumerConfig {
	return c.waitConsumer(org, resource, importID, now)
}
