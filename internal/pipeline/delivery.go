package pipeline

// Delivery policy: retries, heartbeats, and the last delivery failing the
// import, as router middleware.

import (
	"context"
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
// messages (requests, phase work); the router's heartbeats keep a long
// handler's message from going to a second replica meanwhile. It waits out
// transient faults (a store, blob store or broker down
// or restarting) by running the handler again with backoff while it keeps the
// delivery, so an outage of minutes costs no delivery, and turns a failure
// retries cannot cure into a failed import instead of a message redelivered
// forever: a FatalError at once, any other failure on the last allowed
// delivery (INLET_MAX_DELIVER). Other failures are returned: the message is
// nacked and comes again.
func (h *Harness) DeliveryPolicy(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		var out []*message.Message
		err := h.waitOut(msg.Context(), func() (err error) {
			out, err = next(msg)
			return err
		})
		var f *importFailure
		if err == nil || !errors.As(err, &f) {
			return out, err
		}
		delivery := uint64(1)
		if h.Env.Delivery != nil {
			delivery = h.Env.Delivery(msg)
		}
		ctx := f.log.WithContext(msg.Context())
		finish := func(reason string) error {
			return h.waitOut(ctx, func() error { return h.Finish(ctx, f.opts, events.StatusFailed, reason) })
		}
		var fatal *FatalError
		switch {
		case errors.As(f.err, &fatal):
			f.log.Warn().Str("reason", fatal.Reason).Msg("import failed")
			return nil, finish(fatal.Reason)
		case delivery >= h.Env.MaxDeliver:
			reason := fmt.Sprintf("%v (gave up after %d attempts)", f.err, delivery)
			f.log.Error().Err(f.err).Uint64("delivery", delivery).Msg("import failed: retries exhausted")
			return nil, finish(reason)
		default:
			f.log.Warn().Err(f.err).Uint64("delivery", delivery).Msg("phase failed; message will be redelivered")
			return nil, f.err
		}
	}
}

// waitOut runs fn until it returns anything but a transient fault, waiting
// longer after each (Env.Backoff), or until ctx ends. A FatalError is never
// transient, whatever it wraps.
func (h *Harness) waitOut(ctx context.Context, fn func() error) error {
	var last error
	_ = h.Env.Backoff.WaitOut(ctx, func() error {
		last = fn()
		var fatal *FatalError
		if errors.As(last, &fatal) {
			return nil // final, whatever fault it wraps
		}
		return last
	}, func(err error, attempt int, wait time.Duration) {
		log := zerolog.Ctx(ctx)
		if log.GetLevel() == zerolog.Disabled {
			log = &h.Env.Log
		}
		log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", wait).
			Msg("transient fault: waiting it out, the delivery is kept")
	})
	return last
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
