package events

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// SpecVersion is the CloudEvents version every event carries.
const SpecVersion = "1.0"

// ContentType is the Content-Type header of an event on NATS: structured
// mode of the CloudEvents NATS binding, the whole event in the payload.
const ContentType = "application/cloudevents+json"

// TypePrefix starts every event type; the version suffix is .v1.
const TypePrefix = "dev.inlet.import."

// Type is the CloudEvents type of an event name, e.g. dev.inlet.import.completed.v1.
func Type(event string) string { return TypePrefix + event + ".v1" }

// EventFromType is the inverse of Type: the event name and version of a
// CloudEvents type such as dev.inlet.import.completed.v1.
func EventFromType(typ string) (event string, version int, ok bool) {
	m := typeRE.FindStringSubmatch(typ)
	if m == nil {
		return "", 0, false
	}
	v, err := strconv.Atoi(m[2])
	if err != nil {
		return "", 0, false
	}
	return m[1], v, true
}

var typeRE = regexp.MustCompile(`^dev\.inlet\.import\.([a-z_]+)\.v([0-9]+)$`)

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

// Decode parses a CloudEvent; a JSON object without specversion is taken as
// bare data (clients may publish a bare import-requested body). The bare body
// is not parsed as an envelope, so its own id, source (an object in
// import-requested) or time fields never clash with the envelope's.
func Decode(body []byte) (CloudEvent, error) {
	var probe struct {
		SpecVersion string `json:"specversion"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return CloudEvent{}, fmt.Errorf("decode event: %w", err)
	}
	if probe.SpecVersion == "" {
		return CloudEvent{Data: json.RawMessage(body)}, nil
	}
	var ce CloudEvent
	if err := json.Unmarshal(body, &ce); err != nil {
		return ce, fmt.Errorf("decode event: %w", err)
	}
	if ce.SpecVersion != SpecVersion {
		return ce, fmt.Errorf("unsupported specversion %q", ce.SpecVersion)
	}
	return ce, nil
}
