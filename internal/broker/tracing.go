package broker

import (
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/inlet-dev/inlet/internal/telemetry"
	"github.com/inlet-dev/inlet/internal/topology"
)

// headerCarrier carries a trace context in NATS headers under the names
// W3C gives them (traceparent): NATS headers are case-sensitive, and
// propagation.HeaderCarrier would write Traceparent.
type headerCarrier nats.Header

func (h headerCarrier) Get(key string) string { return nats.Header(h).Get(key) }
func (h headerCarrier) Set(key, value string) { h[key] = []string{value} }
func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// Traced is the router middleware that handles each message in a span of
// the trace its publisher sent (a new trace when it sent none): the
// handler's context carries the span, so what it publishes continues the
// trace, and an import is one trace from its request to its end.
func Traced(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := otel.GetTextMapPropagator().Extract(msg.Context(), propagation.MapCarrier(msg.Metadata))
		handler := message.HandlerNameFromCtx(msg.Context())
		attrs := []attribute.KeyValue{
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", msg.Metadata.Get(topology.MetaSubject)),
			attribute.String("messaging.consumer.group.name", handler),
			attribute.String("messaging.message.id", msg.Metadata.Get(topology.MetaMsgID)),
		}
		if jm := deliveryOf(msg); jm != nil {
			if md, err := jm.Metadata(); err == nil {
				attrs = append(attrs, attribute.Int64("messaging.nats.delivery_count", int64(md.NumDelivered)))
			}
		}
		ctx, span := otel.Tracer(telemetry.Tracer).Start(ctx, "process "+handler,
			trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
		defer span.End()
		msg.SetContext(ctx)
		out, err := next(msg)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		return out, err
	}
}
