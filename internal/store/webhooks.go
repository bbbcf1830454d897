package store

import (
	"context"
	"time"
)

// Webhook is one organization's subscription to the events of its imports
// (internal/webhooks decides what it matches and how it is called).
type Webhook struct {
	ID     string
	Org    string
	URL    string
	Events []string
	// Secret signs every delivery; the API shows it only when it is created.
	Secret      string
	Description string
	// Disabled is set by the store once Failures consecutive attempts
	// failed (see FinishAttempt), or by a user; its deliveries wait.
	Disabled       bool
	DisabledReason string
	// Failures counts the attempts that failed since the last one that
	// succeeded (or since it was enabled).
	Failures  int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is one event to send to one webhook: its id is derived from
// both, so a redelivered event makes no second delivery.
type Delivery struct {
	ID        string
	WebhookID string
	Org       string
	EventID   string
	EventType string // the event name, e.g. completed
	ImportID  string
	Payload   []byte // the body every attempt sends
	State     string
	// Attempts counts the attempts started (a claim starts one).
	Attempts   int
	LastStatus int    // HTTP status of the last attempt (0: none received)
	LastError  string // why the last attempt failed ("" when it did not)
	// NextAttemptAt is when the delivery is due again: the next retry of a
	// pending delivery, or the end of the lease of one being attempted.
	NextAttemptAt time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
	DeliveredAt   *time.Time
}

// Attempt is the result of one attempt of a delivery.
type Attempt struct {
	// State is the delivery's state after the attempt.
	State  string
	Status int
	Error  string
	// NextAttemptAt is when a still pending delivery is tried again.
	NextAttemptAt time.Time
	At            time.Time
}

// DeliveryFilter selects deliveries of one webhook for a list.
type DeliveryFilter struct {
	Org       string
	WebhookID string
	State     string // "" for every state
	// After is the cursor: the id of the last delivery of the previous page.
	After string
	Limit int
}

// WebhookStore keeps webhook subscriptions and their deliveries. Every
// read and write of a subscription names its organization: one
// organization never sees or changes another's.
type WebhookStore interface {
	CreateWebhook(ctx context.Context, w Webhook) error
	// GetWebhook returns org's webhook id, or an error wrapping ErrNotFound.
	GetWebhook(ctx context.Context, org, id string) (Webhook, error)
	// ListWebhooks pages through org's webhooks by id; after is the last id
	// of the previous page.
	ListWebhooks(ctx context.Context, org, after string, limit int) ([]Webhook, error)
	// UpdateWebhook replaces the URL, events and description of org's
	// webhook w.ID (ErrNotFound when it does not exist) and returns it.
	UpdateWebhook(ctx context.Context, w Webhook) (Webhook, error)
	// DeleteWebhook removes org's webhook id and its deliveries
	// (ErrNotFound when it does not exist).
	DeleteWebhook(ctx context.Context, org, id string) error
	// EnableWebhook enables org's webhook id again (or disables it, with
	// reason) and returns it; enabling starts its failure count again.
	EnableWebhook(ctx context.Context, org, id string, enabled bool, reason string) (Webhook, error)
	// AddDeliveries stores deliveries whose id is not stored yet, and
	// returns how many it stored.
	AddDeliveries(ctx context.Context, ds []Delivery) (int, error)
	// ClaimDeliveries starts an attempt of up to limit pending deliveries
	// due at now, of enabled webhooks, at most one per webhook and none of
	// the webhooks in busy: each one's Attempts grows by one and it is due
	// again at leaseUntil (so a process that dies during the attempt leaves
	// it to be claimed again then). Claims of several processes never
	// return the same delivery at once.
	ClaimDeliveries(ctx context.Context, now, leaseUntil time.Time, limit int, busy []string) ([]Delivery, error)
	// FinishAttempt records the result of attempt d.Attempts of delivery
	// d.ID, unless the delivery has moved on since (another attempt was
	// claimed, it was deleted): then it changes nothing and returns false.
	// A failed attempt adds one to the webhook's failures, and disables it
	// with disableReason once they reach disableAfter (0: never); one that
	// succeeded sets them to 0. It returns the webhook as it is after.
	FinishAttempt(ctx context.Context, d Delivery, a Attempt, disableAfter int, disableReason string) (Webhook, bool, error)
	// RedeliverDelivery makes org's delivery id of webhookID pending again,
	// due at now (a user asks for it again), and returns it; ErrNotFound
	// when there is none. A pending one is only made due now.
	RedeliverDelivery(ctx context.Context, org, webhookID, id string, now time.Time) (Delivery, error)
	// ListDeliveries returns the deliveries of a webhook, newest first.
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
	// ExpireDeliveries fails the pending deliveries of disabled webhooks
	// created before createdBefore (their retry window ended while nothing
	// attempted them), with reason as their last error, and returns how
	// many it failed.
	ExpireDeliveries(ctx context.Context, createdBefore time.Time, reason string) (int, error)
	// PruneDeliveries deletes up to limit deliveries that ended (delivered
	// or failed) before before, and returns how many it deleted.
	PruneDeliveries(ctx context.Context, before time.Time, limit int) (int, error)
}
