package events

import (
	"fmt"
	"regexp"
	"strings"
)

// Event names: the last token of a public subject.
const (
	EventRequested      = "requested"
	EventQueued         = "queued"
	EventStarted        = "started"
	EventPhaseCompleted = "phase_completed"
	EventProgress       = "progress"
	EventCompleted      = "completed"
	EventFailed         = "failed"
	EventInterrupted    = "interrupted"
	EventTimedOut       = "timed_out"
	EventExpired        = "expired"
)

// AllEvents lists every public event name.
var AllEvents = []string{EventRequested, EventQueued, EventStarted, EventPhaseCompleted, EventProgress,
	EventCompleted, EventFailed, EventInterrupted, EventTimedOut, EventExpired}

// SubjectRoot is the first token of every public subject.
const SubjectRoot = "imports"

// AllSubjects matches every public subject: the stream that holds them uses it.
const AllSubjects = SubjectRoot + ".>"

// Stream is the JetStream stream that holds every public subject: consumers
// (a client waiting for an import, a tenant's durable consumer) are made on it.
const Stream = "INLET_EVENTS"

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidToken reports whether s may be an organization id or resource name:
// both are subject tokens, so NATS wildcards and dots are never allowed.
func ValidToken(s string) bool { return tokenRE.MatchString(s) }

// Subject is imports.<org>.<resource>.<event>.
func Subject(org, resource, event string) string {
	return SubjectRoot + "." + org + "." + resource + "." + event
}

// ParseSubject splits a public subject into its parts. The organization and
// resource must be valid tokens (so wildcards and empty tokens are refused);
// the event must be a non-empty token but need not be one of AllEvents, so a
// consumer can see (and skip) events added later.
func ParseSubject(subject string) (org, resource, event string, err error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 || parts[0] != SubjectRoot {
		return "", "", "", fmt.Errorf("not an import subject: %q", subject)
	}
	if !ValidToken(parts[1]) || !ValidToken(parts[2]) || !ValidToken(parts[3]) {
		return "", "", "", fmt.Errorf("invalid token in import subject %q", subject)
	}
	return parts[1], parts[2], parts[3], nil
}

// KnownEvent reports whether event is one of AllEvents.
func KnownEvent(event string) bool {
	for _, e := range AllEvents {
		if e == event {
			return true
		}
	}
	return false
}

// TerminalEvents are the events that end an import: each import gets
// exactly one of them (TerminalEvent names the one of a status).
var TerminalEvents = []string{EventCompleted, EventFailed, EventInterrupted, EventTimedOut, EventExpired}

// TerminalEvent is the event published when an import reaches status s.
func TerminalEvent(s Status) string {
	switch s {
	case StatusCompleted:
		return EventCompleted
	case StatusFailed:
		return EventFailed
	case StatusInterrupted:
		return EventInterrupted
	case StatusTimedOut:
		return EventTimedOut
	case StatusExpired:
		return EventExpired
	}
	return ""
}
