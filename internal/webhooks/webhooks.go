// Package webhooks delivers the events of an organization's imports to the
// HTTP endpoints it subscribed: the subscriptions' API (reads and writes,
// mounted by the projector and the gateway), the consumer that turns each
// event of INLET_EVENTS into one stored delivery per matching subscription,
// and the dispatcher that sends the deliveries, signed, with retries.
//
// Deliveries are rows of the store (store.WebhookStore), not messages: a
// retry may be a day away, and a row waits for it without holding a
// JetStream message, its AckWait or a worker; the same rows are the
// delivery log the API shows.
package webhooks

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/faults"
	"github.com/inlet-dev/inlet/internal/store"
)

// Policy is how deliveries are attempted.
type Policy struct {
	// Timeout bounds one attempt: connecting, sending, and the answer.
	Timeout time.Duration
	// Backoff spaces the attempts of a delivery: Backoff.Wait(n) after the
	// n-th failed one.
	Backoff faults.Backoff
	// RetryWindow is how long after its event a delivery is retried; an
	// attempt that fails with its next one due later ends it failed.
	RetryWindow time.Duration
	// DisableAfter disables a subscription once that many attempts in a
	// row failed (0: never).
	DisableAfter int
	// Concurrency is how many attempts one process makes at once.
	Concurrency int
	// PollEvery is how often the dispatcher looks for deliveries that came
	// due (a new event wakes it at once).
	PollEvery time.Duration
	// LogRetention is how long the log keeps a delivery after it ended.
	LogRetention time.Duration
	// BlockPrivate refuses to connect to loopback, private, link-local
	// (cloud metadata) and unspecified addresses, checked on the address
	// actually dialled: a subscriber cannot reach the deployment's inside,
	// even through a name that resolves there.
	BlockPrivate bool
}

// DefaultPolicy is what the zero fields of a dispatcher's Policy take (the
// defaults of the INLET_WEBHOOK_ settings).
var DefaultPolicy = Policy{Timeout: 10 * time.Second, Backoff: faults.Backoff{First: 30 * time.Second, Max: time.Hour},
	RetryWindow: 24 * time.Hour, DisableAfter: 50, Concurrency: 8, PollEvery: time.Second, LogRetention: 30 * 24 * time.Hour}

// withDefaults is p with DefaultPolicy's value for each field that is not
// positive (DisableAfter 0 stays: it means never).
func (p Policy) withDefaults() Policy {
	d := DefaultPolicy
	if p.Timeout <= 0 {
		p.Timeout = d.Timeout
	}
	if p.Backoff.First <= 0 || p.Backoff.Max <= 0 {
		p.Backoff = d.Backoff
	}
	if p.RetryWindow <= 0 {
		p.RetryWindow = d.RetryWindow
	}
	if p.Concurrency <= 0 {
		p.Concurrency = d.Concurrency
	}
	if p.PollEvery <= 0 {
		p.PollEvery = d.PollEvery
	}
	if p.LogRetention <= 0 {
		p.LogRetention = d.LogRetention
	}
	return p
}

// Lease is how long an attempt holds its delivery: past it, the attempt's
// process is taken to have died and the delivery is claimed again. It
// covers the attempt's timeout and the write of its result.
func (p Policy) Lease() time.Duration { return 2*p.Timeout + 5*time.Second }

// Next is when a delivery created at created is attempted after its
// attempts-th failed attempt at now; ok is false when that is past the
// retry window (the delivery has failed).
func (p Policy) Next(created, now time.Time, attempts int) (next time.Time, ok bool) {
	next = now.Add(p.Backoff.Wait(attempts))
	return next, !next.After(created.Add(p.RetryWindow))
}

// Wants reports whether subscription w takes event (an event name).
func Wants(w store.Webhook, event string) bool {
	return !w.Disabled && slices.Contains(w.Events, event)
}

// DeliveryID is the id of the delivery of event eventID to webhook
// webhookID: derived from both, so the event redelivered to the consumer
// makes no second delivery.
func DeliveryID(webhookID, eventID string) string {
	sum := sha256.Sum256([]byte(webhookID + "\x00" + eventID))
	return "dlv_" + hex.EncodeToString(sum[:16])
}

// newSecret is a generated signing secret: 32 random bytes.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// SecretPrefix starts every secret Inlet generates.
const SecretPrefix = "whsec_"

// IDPrefix starts every webhook id: wh_ and a ULID, so ids sort by creation.
const IDPrefix = "wh_"

func newID(now time.Time) string { return IDPrefix + events.NewID(now)[len(events.IDPrefix):] }

// toAPI is w as the API shows it (without its secret).
func toAPI(w store.Webhook) events.Webhook {
	out := events.Webhook{ID: w.ID, OrganizationID: w.Org, URL: w.URL, Events: w.Events, Description: w.Description,
		Status: events.WebhookEnabled, ConsecutiveFailures: w.Failures, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
	if out.Events == nil {
		out.Events = []string{}
	}
	if w.Disabled {
		out.Status = events.WebhookDisabled
		reason := w.DisabledReason
		out.DisabledReason = &reason
	}
	return out
}

// deliveryToAPI is d as the delivery log shows it.
func deliveryToAPI(d store.Delivery) events.WebhookDelivery {
	out := events.WebhookDelivery{ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, EventType: d.EventType,
		ImportID: d.ImportID, State: d.State, Attempts: d.Attempts, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		DeliveredAt: d.DeliveredAt}
	if d.LastStatus != 0 {
		status := d.LastStatus
		out.LastStatusCode = &status
	}
	if d.LastError != "" {
		msg := d.LastError
		out.LastError = &msg
	}
	if d.State == store.DeliveryPending {
		next := d.NextAttemptAt
		out.NextAttemptAt = &next
	}
	return out
}
