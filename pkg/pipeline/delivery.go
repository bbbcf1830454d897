package pipeline

// Delivery policy: retries, heartbeats, and the last delivery failing the
// import, as router middleware.

import (
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
)

// importFailure is a handler's failure on a message of one import: the
// delivery policy decides from it whether the message is retried or the
// import ends.
type importFailure struct {
	opts events.Options
	log  zerolog.Logger
	err  error
}

func (f *importFailure) Error() string { return f.err.Error() }
func (f *importFailure) Unwrap() error { return f.err }

// DeliveryPolicy is the router middleware of every handler of import
// messages (requests, phase work). It keeps a long handler's message alive
// (in-progress heartbeats, so JetStream does not hand it to a second
// replica), and turns a failure retries cannot cure into a failed import
// instead of a message redelivered forever: a FatalError at once, any other
// failure on the last allowed delivery (INLET_MAX_DELIVER). Other failures
// are returned: the message is nacked and comes again.
func (h *Harness) DeliveryPolicy(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		stop := h.keepAlive(msg)
		out, err := next(msg)
		stop()
		var f *importFailure
		if err == nil || !errors.As(err, &f) {
			return out, err
		}
		delivery := uint64(1)
		if h.Env.Delivery != nil {
			delivery = h.Env.Delivery(msg)
		}
		ctx := f.log.WithContext(msg.Context())
		var fatal *FatalError
		switch {
		case errors.As(f.err, &fatal):
			f.log.Warn().Str("reason", fatal.Reason).Msg("import failed")
			return nil, h.Finish(ctx, f.opts, events.StatusFailed, fatal.Reason)
		case delivery >= h.Env.MaxDeliver:
			reason := fmt.Sprintf("%v (gave up after %d attempts)", f.err, delivery)
			f.log.Error().Err(f.err).Uint64("delivery", delivery).Msg("import failed: retries exhausted")
			return nil, h.Finish(ctx, f.opts, events.StatusFailed, reason)
		default:
			f.log.Warn().Err(f.err).Uint64("delivery", delivery).Msg("phase failed; message will be redelivered")
			return nil, f.err
		}
	}
}

// Deliver is handler under the delivery policy, for callers without a
// router (tests, tools).
func (h *Harness) Deliver(handler message.NoPublishHandlerFunc) message.NoPublishHandlerFunc {
	wrapped := h.DeliveryPolicy(func(msg *message.Message) ([]*message.Message, error) { return nil, handler(msg) })
	return func(msg *message.Message) error {
		_, err := wrapped(msg)
		return err
	}
}

func (h *Harness) keepAlive(msg *message.Message) func() {
	if h.Env.Heartbeat == nil || msg == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(h.Env.HeartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				h.Env.Heartbeat(msg)
			}
		}
	}()
	return func() { close(done) }
}
