// Package uploads starts an import whose file arrives after the import was
// created (spec §2 requested → queued): the gateway stores the request
// without a source at imports/<id>/request.json and hands out an upload link;
// when the file lands at imports/<id>/source/upload.<ext>, the import-requested
// event is published again, now with the source, and intake starts the
// pipeline. On S3 the blob store itself says so: MinIO publishes a bucket
// notification to NATS JetStream (subject topology.UploadsSubject) and Handler turns it into
// that event, push-driven, no polling. On the local store the gateway's
// PUT /v1/imports/{id}/upload publishes it (see package gateway); both use
// the same CloudEvent id (EventID), so JetStream keeps one of them.
package uploads

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/imports"
)

// Source is the CloudEvents source of the events Handler publishes.
const Source = "/inlet/uploads"

// EventID is the CloudEvent id (and Nats-Msg-Id) of the import-requested
// event that carries an uploaded file: deterministic, so the notification
// and a redelivery publish one message.
func EventID(id string) string { return "req:" + id + ":upload" }

// Event is the import-requested event of req with its file at src.
func Event(source string, req events.ImportRequested, src events.Source, now time.Time) (subject string, ce events.CloudEvent, err error) {
	req.Source = &src
	req.Inputs = nil
	ce, err = events.New(EventID(req.ID), source, events.EventRequested, req.ID, req)
	if err != nil {
		return "", ce, err
	}
	ce.Time = now.UTC()
	return events.Subject(req.OrganizationID, req.Resource, events.EventRequested), ce, nil
}

// ReadRequest loads the stored request of an import that waits for its file
// (blob.ErrNotFound when there is none).
func ReadRequest(ctx context.Context, blobs blob.Store, id string) (events.ImportRequested, error) {
	var req events.ImportRequested
	rc, err := blobs.Get(ctx, imports.RequestKey(id))
	if err != nil {
		return req, err
	}
	defer rc.Close()
	if err := json.NewDecoder(rc).Decode(&req); err != nil {
		return req, fmt.Errorf("uploads: %s: %w", imports.RequestKey(id), err)
	}
	if req.ID == "" {
		req.ID = id
	}
	return req, nil
}

// Publisher publishes a CloudEvent on a public subject (*broker.Broker is one).
type Publisher interface {
	PublishEvent(ctx context.Context, subject string, ce events.CloudEvent) error
}

// Notification is the body MinIO publishes for a bucket event (its
// event.Log: the event name, "bucket/key", and the S3 event records).
type Notification struct {
	EventName string   `json:"EventName"`
	Key       string   `json:"Key"`
	Records   []Record `json:"Records"`
}

// Record is one S3 event record (the fields Handler reads).
type Record struct {
	EventName string `json:"eventName"`
	S3        struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			// Key is URL-encoded (query encoding: a space is "+").
			Key         string `json:"key"`
			Size        int64  `json:"size"`
			ContentType string `json:"contentType"`
		} `json:"object"`
	} `json:"s3"`
}

// Handler is the watermill handler of the bucket notifications on topology.UploadsSubject.
// For each created object imports/<id>/source/upload.* it reads the import's
// stored request and publishes the import-requested event with that source.
// Other objects are ignored; so is an import already started (its
// import.json exists), so a notification delivered again, even past the
// stream's duplicate window, starts nothing twice. An unreadable
// notification is logged and dropped; blob store and publish failures are
// returned (redelivery).
func Handler(blobs blob.Store, pub Publisher, log zerolog.Logger) func(*message.Message) error {
	return func(msg *message.Message) error {
		var n Notification
		if err := json.Unmarshal(msg.Payload, &n); err != nil {
			log.Error().Err(err).Str("message", msg.UUID).Msg("uploads: dropping an unreadable bucket notification")
			return nil
		}
		for _, rec := range n.Records {
			if err := handle(msg.Context(), blobs, pub, log, rec); err != nil {
				return err
			}
		}
		return nil
	}
}

func handle(ctx context.Context, blobs blob.Store, pub Publisher, log zerolog.Logger, rec Record) error {
	if rec.EventName != "" && !strings.HasPrefix(rec.EventName, "s3:ObjectCreated:") && !strings.HasPrefix(rec.EventName, "ObjectCreated:") {
		return nil
	}
	key, err := url.QueryUnescape(rec.S3.Object.Key)
	if err != nil {
		log.Warn().Err(err).Str("key", rec.S3.Object.Key).Msg("uploads: notification key is not URL-encoded")
		return nil
	}
	id, ok := imports.UploadImportID(key)
	if !ok {
		return nil // a batch, stats or another object under imports/
	}
	log = log.With().Str("import_id", id).Str("key", key).Logger()
	req, err := ReadRequest(ctx, blobs, id)
	if errors.Is(err, blob.ErrNotFound) {
		// Not created through an upload link (or already expired and
		// removed): nothing waits for this file.
		log.Warn().Msg("uploads: a file arrived for an import that is not waiting for one")
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := blobs.Stat(ctx, imports.ImportKey(id)); err == nil {
		log.Debug().Msg("uploads: import already started")
		return nil
	} else if !errors.Is(err, blob.ErrNotFound) {
		return err
	}
	src := events.Source{Bucket: rec.S3.Bucket.Name, Key: key, Name: key[strings.LastIndexByte(key, '/')+1:], ContentType: rec.S3.Object.ContentType}
	subject, ce, err := Event(Source, req, src, time.Now())
	if err != nil {
		return err
	}
	if err := pub.PublishEvent(ctx, subject, ce); err != nil {
		return fmt.Errorf("uploads: publish the request of %s: %w", id, err)
	}
	log.Info().Int64("size", rec.S3.Object.Size).Msg("uploads: file arrived, import requested")
	return nil
}
