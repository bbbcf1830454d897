// Package broker connects Inlet to NATS JetStream through nats.go's
// jetstream package: it starts the embedded server when no URL is given,
// provisions the streams, publishes with exactly-once message ids, and
// builds the Watermill subscribers of durable pull consumers that every
// replica of a role shares.
package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/faults"
	"github.com/inlet-dev/inlet/internal/topology"
)

// Config selects and tunes the broker.
type Config struct {
	// URL of a NATS server; empty starts an embedded server.
	URL string
	// Listen is the embedded server's client address (default 127.0.0.1:4222;
	// port 0 or -1 picks a free port).
	Listen string
	// StoreDir holds the embedded server's JetStream files.
	StoreDir string
	// Replicas of each stream (3 in a production cluster).
	Replicas int
	// DuplicateWindow is how long a Nats-Msg-Id is remembered; it must cover
	// the longest redelivery delay.
	DuplicateWindow time.Duration
	// MaxAge bounds how long events are kept (the projector rebuilds from them).
	MaxAge time.Duration
	// Name identifies the connection in server monitoring.
	Name string
}

// Broker is a connection to JetStream with the streams provisioned.
type Broker struct {
	Conn   *nats.Conn
	JS     jetstream.JetStream
	server *server.Server
	log    zerolog.Logger

	mu        sync.Mutex
	consumers []consumerRef // the durables Subscriber made
}

// Connect starts or joins NATS and provisions the streams.
func Connect(ctx context.Context, cfg Config, log zerolog.Logger) (*Broker, error) {
	if cfg.DuplicateWindow == 0 {
		cfg.DuplicateWindow = 30 * time.Minute
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 7 * 24 * time.Hour
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	b := &Broker{log: log}
	url := cfg.URL
	if url == "" {
		srv, err := startEmbedded(cfg)
		if err != nil {
			return nil, err
		}
		b.server = srv
		url = srv.ClientURL()
		log.Info().Str("url", url).Str("store_dir", cfg.StoreDir).Msg("embedded NATS server started")
	}
	nc, err := nats.Connect(url,
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(true),
	)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	b.Conn = nc
	if b.JS, err = jetstream.New(nc); err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := b.provision(ctx, cfg); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func startEmbedded(cfg Config) (*server.Server, error) {
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:4222"
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("INLET_NATS_LISTEN %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("INLET_NATS_LISTEN %q: bad port", listen)
	}
	if port == 0 {
		port = -1
	}
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded NATS needs a store directory (INLET_DATA_DIR)")
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "inlet-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS on %s not ready after 15s (port in use? set INLET_NATS_LISTEN)", listen)
	}
	return srv, nil
}

func (b *Broker) provision(ctx context.Context, cfg Config) error {
	for _, sc := range []jetstream.StreamConfig{
		{Name: topology.EventsStream, Subjects: []string{events.AllSubjects}},
		{Name: topology.WorkStream, Subjects: []string{topology.WorkRoot + ".>"}},
		{Name: topology.DeadLettersStream, Subjects: []string{
			topology.MaxDeliveriesSubject(topology.EventsStream), topology.MaxDeliveriesSubject(topology.WorkStream)}},
	} {
		sc.Storage = jetstream.FileStorage
		sc.Retention = jetstream.LimitsPolicy
		sc.Replicas = cfg.Replicas
		sc.Duplicates = cfg.DuplicateWindow
		sc.MaxAge = cfg.MaxAge
		if _, err := b.JS.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// ClientURL is the URL other processes use to join this broker's server.
func (b *Broker) ClientURL() string {
	if b.server != nil {
		return b.server.ClientURL()
	}
	return b.Conn.ConnectedUrl()
}

// publishTimeout bounds one publish: the server's acknowledgement included.
const publishTimeout = 10 * time.Second

// Publish sends payload on subject; msgID, when set, is the Nats-Msg-Id that
// makes a second publish of the same message a no-op within the duplicate
// window.
//
// ctx's trace context goes with the message (W3C traceparent header), so
// that whoever handles it continues the trace.
func (b *Broker) Publish(ctx context.Context, subject, msgID string, payload []byte) error {
	return b.publish(ctx, &nats.Msg{Subject: subject, Data: payload, Header: nats.Header{}}, msgID)
}

// PublishEvent publishes a CloudEvent on its public subject in structured
// mode (the CloudEvents NATS binding), with the event id as Nats-Msg-Id:
// subscribers see the event and nothing of Inlet's insides.
func (b *Broker) PublishEvent(ctx context.Context, subject string, ce events.CloudEvent) error {
	body, err := jsonMarshal(ce)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set("Content-Type", events.ContentType)
	return b.publish(ctx, msg, ce.ID)
}

func (b *Broker) publish(ctx context.Context, msg *nats.Msg, msgID string) error {
	otel.GetTextMapPropagator().Inject(ctx, headerCarrier(msg.Header))
	// ctx gives the trace, not the deadline: a publish that has begun ends
	// on the server's answer, even when its handler is being stopped.
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	if _, err := b.JS.PublishMsg(ctx, msg, opts...); err != nil {
		if unreachable(err) {
			err = faults.Unavailable(err)
		}
		return fmt.Errorf("publish %s (msg id %q): %w", msg.Subject, msgID, err)
	}
	return nil
}

// unreachable reports the errors of a NATS server (or JetStream) that is
// down or restarting: the call may succeed once it is back.
func unreachable(err error) bool {
	for _, e := range []error{nats.ErrTimeout, nats.ErrNoResponders, nats.ErrConnectionClosed,
		nats.ErrConnectionReconnecting, nats.ErrDisconnected, jetstream.ErrNoStreamResponse,
		jetstream.ErrJetStreamNotEnabled, jetstream.ErrNoHeartbeat, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// WorkIdle reports whether no phase has work waiting or in hand: every
// consumer of the work stream, and the intake's of import requests, has
// nothing pending and nothing unacknowledged.
// A moving import always has one of its messages there (the next message is
// published before the current one is acked).
func (b *Broker) WorkIdle(ctx context.Context) (bool, error) {
	for _, name := range []string{topology.WorkStream, topology.EventsStream} {
		stream, err := b.JS.Stream(ctx, name)
		if err != nil {
			return false, fmt.Errorf("stream %s: %w", name, err)
		}
		infos := stream.ListConsumers(ctx)
		for info := range infos.Info() {
			if name == topology.EventsStream && !strings.HasSuffix(info.Config.FilterSubject, "."+events.EventRequested) {
				continue // of the events, only import requests are work (the intake's)
			}
			if info.NumPending > 0 || info.NumAckPending > 0 {
				return false, nil
			}
		}
		if err := infos.Err(); err != nil {
			return false, fmt.Errorf("consumers of %s: %w", name, err)
		}
	}
	return true, ctx.Err()
}

// StoredMessage reads message seq of stream as a subscriber would have
// received it (payload, subject and message id in its metadata) and the time
// it was published.
func (b *Broker) StoredMessage(ctx context.Context, stream string, seq uint64) (*message.Message, time.Time, error) {
	s, err := b.JS.Stream(ctx, stream)
	var raw *jetstream.RawStreamMsg
	if err == nil {
		raw, err = s.GetMsg(ctx, seq)
	}
	if err != nil {
		if unreachable(err) {
			err = faults.Unavailable(err)
		}
		return nil, time.Time{}, fmt.Errorf("read message %d of %s: %w", seq, stream, err)
	}
	return toMessage(raw.Subject, raw.Header, raw.Data), raw.Time, nil
}

// toMessage is a stored or delivered message as a Watermill message: its
// payload, its subject and message id in the metadata, and the message id
// as its UUID (a fresh one when the publisher gave none).
func toMessage(subject string, header nats.Header, data []byte) *message.Message {
	id := header.Get(jetstream.MsgIDHeader)
	uuid := id
	if uuid == "" {
		uuid = watermill.NewUUID()
	}
	msg := message.NewMessage(uuid, data)
	msg.Metadata.Set(topology.MetaMsgID, id)
	msg.Metadata.Set(topology.MetaSubject, subject)
	// The trace context the publisher sent (Traced continues it).
	for _, key := range otel.GetTextMapPropagator().Fields() {
		if v := header.Get(key); v != "" {
			msg.Metadata.Set(key, v)
		}
	}
	return msg
}

// Ready reports whether the connection is up (readiness probes).
func (b *Broker) Ready() error {
	if b.Conn == nil || !b.Conn.IsConnected() {
		return errors.New("NATS not connected")
	}
	return nil
}

// Close closes the connection and stops the embedded server, if any.
// Messages in flight are not acked: JetStream redelivers them.
func (b *Broker) Close() {
	if b.Conn != nil {
		b.Conn.Close()
	}
	if b.server != nil {
		b.server.Shutdown()
		b.server.WaitForShutdown()
	}
}
