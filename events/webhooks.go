package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhooks: an organization's subscriptions to the events of its imports,
// delivered by Inlet's webhooks service as HTTP POSTs. The body of a
// delivery is the event as published on NATS (the CloudEvent, structured
// mode: Content-Type application/cloudevents+json), byte for byte; the
// headers below name it and sign it.

// WebhookEvents are the events a subscription may ask for: every public
// event about an import (the import request and commands are not events
// about an import's life).
var WebhookEvents = []string{EventQueued, EventStarted, EventPhaseCompleted, EventProgress,
	EventCompleted, EventFailed, EventInterrupted, EventTimedOut, EventExpired}

// DefaultWebhookEvents are the events of a subscription that names none:
// the end of each import.
var DefaultWebhookEvents = TerminalEvents

// Headers of a webhook delivery.
const (
	// WebhookIDHeader is the event's id: the same on every attempt and on
	// any duplicate, so a receiver dedupes on it.
	WebhookIDHeader = "Inlet-Event-Id"
	// WebhookTypeHeader is the event's name (e.g. completed).
	WebhookTypeHeader = "Inlet-Event-Type"
	// WebhookDeliveryHeader is the delivery's id (one event to one
	// subscription), as GET /v1/webhooks/{id}/deliveries lists it.
	WebhookDeliveryHeader = "Inlet-Delivery-Id"
	// WebhookAttemptHeader counts the attempts of the delivery, from 1.
	WebhookAttemptHeader = "Inlet-Delivery-Attempt"
	// WebhookTimestampHeader is when the attempt was signed, in Unix seconds.
	WebhookTimestampHeader = "Inlet-Timestamp"
	// WebhookSignatureHeader is "v1=" and the hex HMAC-SHA256, keyed with
	// the subscription's secret, of the timestamp header's value, ".", and
	// the body (WebhookSignature).
	WebhookSignatureHeader = "Inlet-Signature"
)

// WebhookSignature is the value of the signature header of body sent at
// timestamp (Unix seconds) with secret.
func WebhookSignature(secret string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Errors of VerifyWebhook.
var (
	ErrWebhookSignature = errors.New("webhook: no valid v1 signature")
	ErrWebhookTimestamp = errors.New("webhook: timestamp missing or outside the tolerance")
)

// VerifyWebhook checks a delivery a receiver got: header (the request's
// headers) must carry a v1 signature of body by secret, and a timestamp
// within tolerance of now (refusing replays of an old delivery; 0 skips the
// check). The signature header may hold several comma-separated
// signatures; one valid is enough.
func VerifyWebhook(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	ts, err := strconv.ParseInt(header.Get(WebhookTimestampHeader), 10, 64)
	if err != nil {
		return ErrWebhookTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); tolerance > 0 && (d > tolerance || d < -tolerance) {
		return ErrWebhookTimestamp
	}
	want := WebhookSignature(secret, ts, body)
	for _, sig := range strings.Split(header.Get(WebhookSignatureHeader), ",") {
		if hmac.Equal([]byte(strings.TrimSpace(sig)), []byte(want)) {
			return nil
		}
	}
	return ErrWebhookSignature
}

// WebhookCreate is the body of POST /v1/webhooks.
type WebhookCreate struct {
	URL string `json:"url"`
	// Events are the event names to deliver (default DefaultWebhookEvents).
	Events []string `json:"events,omitempty"`
	// Secret signs the deliveries; Inlet generates one when it is empty.
	Secret      string `json:"secret,omitempty"`
	Description string `json:"description,omitempty"`
}

// WebhookUpdate is the body of PATCH /v1/webhooks/{id}: the fields given
// replace the subscription's (the secret cannot be changed).
type WebhookUpdate struct {
	URL         *string   `json:"url,omitempty"`
	Events      *[]string `json:"events,omitempty"`
	Description *string   `json:"description,omitempty"`
}

// Webhook statuses.
const (
	WebhookEnabled  = "enabled"
	WebhookDisabled = "disabled"
)

// Webhook is a subscription as the API shows it.
type Webhook struct {
	ID             string   `json:"id"`
	OrganizationID string   `json:"organization_id"`
	URL            string   `json:"url"`
	Events         []string `json:"events"`
	Description    string   `json:"description"`
	// Status is enabled, or disabled: by a user, or by Inlet after too many
	// attempts in a row failed (DisabledReason says which).
	Status         string  `json:"status"`
	DisabledReason *string `json:"disabled_reason"`
	// ConsecutiveFailures counts the attempts that failed since the last
	// one that succeeded.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// Secret is in the answer to the create only.
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// WebhookDelivery is one event sent (or to send) to one subscription, as
// the delivery log shows it.
type WebhookDelivery struct {
	ID        string `json:"id"`
	WebhookID string `json:"webhook_id"`
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	ImportID  string `json:"import_id"`
	// State is pending (to be attempted, again), delivered (a 2xx answer)
	// or failed (its retry window ended before any attempt succeeded).
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
	// LastStatusCode is the HTTP status of the last answer (null: none yet,
	// or the last attempt got no answer).
	LastStatusCode *int `json:"last_status_code"`
	// LastError says why the last attempt failed (null when it did not).
	LastError *string `json:"last_error"`
	// NextAttemptAt is when a pending delivery is attempted (again); null
	// once it is delivered or failed.
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	DeliveredAt   *time.Time `json:"delivered_at"`
}
