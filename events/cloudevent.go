package events

import (
	"encoding/json"
	"fmt"
	"time"
)

// SpecVersion is the CloudEvents version every event carries.
const SpecVersion = "1.0"

// TypePrefix starts every event type; the version suffix is .v1.
const TypePrefix = "dev.inlet.import."

// Type is the CloudEvents type of an event name, e.g. dev.inlet.import.completed.v1.
func Type(event string) string { return TypePrefix + event + ".v1" }

// CloudEvent is the structured-mode CloudEvents 1.0 envelope of every public event.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            time.Time       `json:"time"`
	Subject         string          `json:"subject"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// New builds an event about importID. id must be deterministic for events that
// may be published twice (it doubles as the Nats-Msg-Id).
func New(id, source, event, importID string, data any) (CloudEvent, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return CloudEvent{}, fmt.Errorf("marshal %s data: %w", event, err)
	}
	return CloudEvent{
		SpecVersion:     SpecVersion,
		ID:              id,
		Source:          source,
		Type:            Type(event),
		Time:            time.Now().UTC(),
		Subject:         importID,
		DataContentType: "application/json",
		Data:            raw,
	}, nil
}

// Decode parses a CloudEvent; a body without specversion is taken as bare data
// (clients may publish a bare import-requested body).
func Decode(body []byte) (CloudEvent, error) {
	var ce CloudEvent
	if err := json.Unmarshal(body, &ce); err != nil {
		return ce, fmt.Errorf("decode event: %w", err)
	}
	if ce.SpecVersion == "" {
		return CloudEvent{Data: json.RawMessage(body)}, nil
	}
	if ce.SpecVersion != SpecVersion {
		return ce, fmt.Errorf("unsupported specversion %q", ce.SpecVersion)
	}
	return ce, nil
}
