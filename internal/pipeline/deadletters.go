package pipeline

// Dead letters: the messages of an import that JetStream stopped delivering.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/topology"
)

// MaxDeliveries is JetStream's advisory about a message that used up its
// deliveries (io.nats.jetstream.advisory.v1.max_deliver).
type MaxDeliveries struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// StoredMessages reads a message of a stream back, as a subscriber would
// have received it, with the time it was published.
type StoredMessages func(ctx context.Context, stream string, seq uint64) (*message.Message, time.Time, error)

// DeadLetterHandler ends the import whose message JetStream will not deliver
// again. The delivery policy fails an import on the last delivery of its
// message only when a handler returns; when every delivery died with its
// process, nothing else would
// ever move the import. It ends failed, counting what was written, with a
// reason naming the work that could not be done.
func (h *Harness) DeadLetterHandler(stored StoredMessages) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		var adv MaxDeliveries
		if err := json.Unmarshal(msg.Payload, &adv); err != nil || adv.Stream == "" || adv.StreamSeq == 0 {
			h.Env.Log.Error().Err(err).Bytes("advisory", msg.Payload).Msg("dropping an unreadable max-deliveries advisory")
			return nil
		}
		log := h.Env.Log.With().Str("stream", adv.Stream).Str("consumer", adv.Consumer).Uint64("stream_seq", adv.StreamSeq).Logger()
		ctx := log.WithContext(msg.Context())
		return h.waitOut(ctx, func() error { return h.deadLetter(ctx, log, adv, stored) })
	}
}

func (h *Harness) deadLetter(ctx context.Context, log zerolog.Logger, adv MaxDeliveries, stored StoredMessages) error {
	dead, published, err := stored(ctx, adv.Stream, adv.StreamSeq)
	if err != nil {
		return err
	}
	subject := dead.Metadata.Get(topology.MetaSubject)
	var opts events.Options
	var what string
	switch _, _, event, perr := events.ParseSubject(subject); {
	case strings.HasPrefix(subject, topology.WorkRoot+"."):
		var wm WorkMessage
		if err := json.Unmarshal(dead.Payload, &wm); err != nil || wm.Options.ID == "" {
			log.Error().Err(err).Str("subject", subject).Msg("a dead work message names no import; nothing to end")
			return nil
		}
		opts, what = wm.Options, fmt.Sprintf("the %s phase's work on batch %d", wm.Phase, wm.Batch)
		if wm.Batch == AllBatches {
			what = fmt.Sprintf("the %s phase's work on the whole file", wm.Phase)
		}
	case perr == nil && event == events.EventRequested && !strings.HasPrefix(adv.Consumer, "projector") && !strings.HasPrefix(adv.Consumer, "webhooks"):
		req, err := h.decodeRequest(dead, func(*message.Message) (uint64, time.Time) { return adv.StreamSeq, published })
		if err != nil {
			log.Error().Err(err).Str("subject", subject).Msg("a dead import request names no import; nothing to end")
			return nil
		}
		_ = imports.Normalize(&req.Options)
		opts, what = req.Options, "the import's request"
	default:
		log.Error().Str("subject", subject).Msg("a message that is not an import's work used up its deliveries; it is not retried")
		return nil
	}
	reason := fmt.Sprintf("%s was delivered %d times and never completed: the process handling it stopped or ran out of time on every delivery", what, adv.Deliveries)
	log.Error().Str("import_id", opts.ID).Msg("import failed: " + reason)
	if err := h.settle(ctx, opts); err != nil {
		return err
	}
	return h.Finish(ctx, opts, events.StatusFailed, reason)
}
