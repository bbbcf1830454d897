// Package topology names what Inlet keeps on NATS JetStream: its streams,
// the subjects they hold, and the metadata keys a received message carries.
// The public subjects (imports.<org>.<resource>.<event>) are the events
// module's; everything else is defined here and nowhere else.
package topology

import (
	"strings"

	"github.com/inlet-dev/inlet/events"
)

// Streams.
const (
	// EventsStream holds the public subjects: import requests, commands and
	// the events about imports (events.AllSubjects).
	EventsStream = events.Stream
	// WorkStream holds the pipeline's work messages (WorkRoot.>).
	WorkStream = "INLET_WORK"
	// DeadLettersStream keeps JetStream's advisories about the messages of
	// the other two streams that used up their deliveries: whoever ends
	// imports hears of them even if it was down when they were published.
	DeadLettersStream = "INLET_DEAD_LETTERS"
)

// WorkRoot is the first tokens of every internal work subject.
const WorkRoot = "inlet.work"

// WorkSubject is where phase's work messages are published.
func WorkSubject(phase string) string { return WorkRoot + "." + phase }

// ExpressSubject is where the work of imports of one batch goes: a consumer
// of its own, so a small import never queues behind the batches of a big
// one (a FIFO consumer would make it wait for all of them).
func ExpressSubject(phase string) string { return WorkSubject(phase) + ".express" }

// UploadsSubject is where MinIO publishes its bucket notifications
// (MINIO_NOTIFY_NATS_SUBJECT_<ID>).
const UploadsSubject = WorkRoot + ".uploads"

// maxDeliveriesRoot is where JetStream publishes its max-deliveries
// advisories (…<stream>.<consumer>).
const maxDeliveriesRoot = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"

// DeadLettersSubject is every advisory the dead-letters stream keeps.
const DeadLettersSubject = maxDeliveriesRoot + ".>"

// MaxDeliveriesSubject is the subject of the advisories of every consumer of
// stream whose messages used up their deliveries.
func MaxDeliveriesSubject(stream string) string { return maxDeliveriesRoot + "." + stream + ".*" }

// StreamOf is the stream that holds subject.
func StreamOf(subject string) string {
	switch {
	case strings.HasPrefix(subject, events.SubjectRoot+"."):
		return EventsStream
	case strings.HasPrefix(subject, maxDeliveriesRoot+"."):
		return DeadLettersStream
	}
	return WorkStream
}

// Metadata keys of a received message.
const (
	// MetaMsgID is the publisher's Nats-Msg-Id.
	MetaMsgID = "Inlet-Msg-Id"
	// MetaSubject is the subject the message was published on.
	MetaSubject = "Inlet-Subject"
)
