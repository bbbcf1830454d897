// Package broker connects Inlet to NATS JetStream through watermill-nats: it
// starts the embedded server when no URL is given, provisions the streams, and
// builds publishers and durable, manually acked, shared subscribers.
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
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/faults"
	"github.com/inlet-dev/inlet/pkg/logging"
)

// Stream names and the subjects they hold.
const (
	EventsStream = events.Stream // public: imports.>
	WorkStream   = "INLET_WORK"  // internal phase work: inlet.work.>
	WorkRoot     = "inlet.work"
	// DeadLetters keeps JetStream's advisories about the messages of the
	// other two streams that used up their deliveries: whoever ends imports
	// hears of them even if it was down when they were published.
	DeadLetters = "INLET_DEAD_LETTERS"
	// maxDeliveriesRoot is where JetStream publishes those advisories
	// (…<stream>.<consumer>).
	maxDeliveriesRoot = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
)

// DeadLettersSubject is every advisory the DeadLetters stream keeps.
const DeadLettersSubject = maxDeliveriesRoot + ".>"

// MaxDeliveriesSubject is the subject of the advisories of every consumer of
// stream whose messages used up their deliveries.
func MaxDeliveriesSubject(stream string) string { return maxDeliveriesRoot + "." + stream + ".*" }

// Metadata keys the broker sets on received messages.
const (
	// MetaMsgID is the publisher's Nats-Msg-Id (watermill's marshaler drops it).
	MetaMsgID = "Inlet-Msg-Id"
	// MetaSubject is the subject the message was published on.
	MetaSubject = "Inlet-Subject"
	// metaReply is the JetStream ack subject of this delivery: it identifies
	// the delivery and lets a long handler tell the server it is still working.
	metaReply = "Inlet-Ack-Reply"
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
	JS     nats.JetStreamContext
	server *server.Server
	url    string
	name   string
	mu     sync.Mutex
	subs   []*nats.Conn
	pub    *wmnats.Publisher
	log    zerolog.Logger
	wmlog  watermill.LoggerAdapter
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
	b := &Broker{log: log, wmlog: logging.Watermill(log)}
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
	b.url, b.name = url, cfg.Name
	js, err := nc.JetStream()
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	b.JS = js
	if err := b.provision(ctx, cfg); err != nil {
		b.Close()
		return nil, err
	}
	pub, err := wmnats.NewPublisherWithNatsConn(nc, wmnats.PublisherPublishConfig{
		Marshaler:         &wmnats.NATSMarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream: wmnats.JetStreamConfig{
			AutoProvision: false, // streams are ours; auto-provision would name a stream after the topic
			TrackMsgId:    true,
			AckAsync:      false,
		},
	}, b.wmlog)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("watermill publisher: %w", err)
	}
	b.pub = pub
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
	for _, sc := range []nats.StreamConfig{
		{Name: EventsStream, Subjects: []string{events.AllSubjects}},
		{Name: WorkStream, Subjects: []string{WorkRoot + ".>"}},
		{Name: DeadLetters, Subjects: []string{MaxDeliveriesSubject(EventsStream), MaxDeliveriesSubject(WorkStream)}},
	} {
		sc.Storage = nats.FileStorage
		sc.Retention = nats.LimitsPolicy
		sc.Replicas = cfg.Replicas
		sc.Duplicates = cfg.DuplicateWindow
		sc.MaxAge = cfg.MaxAge
		_, err := b.JS.StreamInfo(sc.Name, nats.Context(ctx))
		switch {
		case errors.Is(err, nats.ErrStreamNotFound):
			_, err = b.JS.AddStream(&sc, nats.Context(ctx))
			if err != nil && !errors.Is(err, nats.ErrStreamNameAlreadyInUse) {
				return fmt.Errorf("create stream %s: %w", sc.Name, err)
			}
		case err != nil:
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		default:
			if _, err := b.JS.UpdateStream(&sc, nats.Context(ctx)); err != nil {
				return fmt.Errorf("update stream %s: %w", sc.Name, err)
			}
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

// Publisher is the watermill publisher (exactly-once publish by Nats-Msg-Id).
func (b *Broker) Publisher() message.Publisher { return b.pub }

// Publish sends payload on subject; msgID, when set, is the Nats-Msg-Id that
// makes a second publish of the same message a no-op within the duplicate window.
func (b *Broker) Publish(subject, msgID string, payload []byte) error {
	// watermill-nats (TrackMsgId) sends the watermill UUID as Nats-Msg-Id,
	// overriding any metadata: the deterministic id must be the UUID.
	uuid := msgID
	if uuid == "" {
		uuid = watermill.NewUUID()
	}
	msg := message.NewMessage(uuid, payload)
	if err := b.pub.Publish(subject, msg); err != nil {
		if unreachable(err) {
			err = faults.Unavailable(err)
		}
		return fmt.Errorf("publish %s (msg id %q): %w", subject, msgID, err)
	}
	return nil
}

// unreachable reports the errors of a NATS server (or JetStream) that is
// down or restarting: the publish may succeed once it is back.
func unreachable(err error) bool {
	for _, e := range []error{nats.ErrTimeout, nats.ErrNoResponders, nats.ErrConnectionClosed,
		nats.ErrConnectionReconnecting, nats.ErrDisconnected, nats.ErrNoStreamResponse,
		nats.ErrJetStreamNotEnabled, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// PublishEvent publishes a CloudEvent on its public subject, with the event id
// as Nats-Msg-Id.
func (b *Broker) PublishEvent(subject string, ce events.CloudEvent) error {
	body, err := jsonMarshal(ce)
	if err != nil {
		return err
	}
	return b.Publish(subject, ce.ID, body)
}

// SubscribeOptions tune one durable consumer.
type SubscribeOptions struct {
	// Subject the consumer takes from its stream (wildcards allowed); the
	// subscriber must Subscribe to exactly this subject.
	Subject string
	// Durable names the consumer every replica shares. Version it (…-v1)
	// when its settings change: JetStream refuses to change a durable's AckWait.
	Durable string
	// AckWait is the server's redelivery timer: how long a crashed replica's
	// message waits before another replica gets it. Handlers that run longer
	// keep the message alive with Heartbeat.
	AckWait time.Duration
	// MaxDeliver bounds redeliveries of one message.
	MaxDeliver int
	// MaxAckPending bounds messages in flight across all replicas (default:
	// Concurrency, one replica's worth; raise it to replicas × Concurrency).
	MaxAckPending int
	// Concurrency is the number of messages this process handles at once.
	Concurrency int
	// NakDelay is the wait before a failed message is redelivered.
	NakDelay time.Duration
}

func (o *SubscribeOptions) defaults() {
	if o.AckWait == 0 {
		o.AckWait = 30 * time.Second
	}
	if o.MaxDeliver == 0 {
		o.MaxDeliver = 10
	}
	if o.Concurrency == 0 {
		o.Concurrency = 2
	}
	if o.MaxAckPending == 0 {
		// One replica's worth: a message handed out beyond what the process
		// works on waits in its buffer with the AckWait clock running, and is
		// redelivered without ever having been handled.
		o.MaxAckPending = o.Concurrency
	}
	if o.NakDelay == 0 {
		o.NakDelay = time.Second
	}
}

// Subscriber builds a subscriber whose Subscribe(o.Subject) joins the durable
// consumer o.Durable: every replica using the same durable shares the messages.
func (b *Broker) Subscriber(o SubscribeOptions) (message.Subscriber, error) {
	o.defaults()
	if o.Durable == "" || o.Subject == "" {
		return nil, errors.New("broker: a durable name and a subject are required")
	}
	stream, err := b.ensureConsumer(o)
	if err != nil {
		return nil, err
	}
	// Each subscriber owns a connection: closing a watermill subscriber closes
	// its connection, which must not take the publisher's down with it.
	nc, err := nats.Connect(b.url, nats.Name(b.name+"/"+o.Durable), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		return nil, fmt.Errorf("subscriber %s: connect: %w", o.Durable, err)
	}
	b.mu.Lock()
	b.subs = append(b.subs, nc)
	b.mu.Unlock()
	sub, err := wmnats.NewSubscriberWithNatsConn(nc, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:      unmarshaler{},
		SubscribersCount: o.Concurrency,
		// The client-side timer must not give up before the handler does:
		// when it fires, watermill drops the ack and the work is redone.
		AckWaitTimeout:   6 * time.Hour,
		CloseTimeout:     10 * time.Second,
		SubscribeTimeout: 30 * time.Second,
		QueueGroupPrefix: o.Durable,
		NakDelay:         wmnats.NewStaticDelay(o.NakDelay),
		JetStream: wmnats.JetStreamConfig{
			AutoProvision: false,
			SubscribeOptions: []nats.SubOpt{
				nats.ManualAck(), // without it nats.go acks whatever watermill did with the message
				// Bound, not created: nats.go deletes a consumer it created when
				// the subscription closes, even a durable one — one replica's
				// shutdown would cut off every other replica.
				nats.Bind(stream, o.Durable),
			},
			AckAsync: false, // synchronous acks survive a server restart (nats-server #6036)
			// Without a durable name watermill-nats adds BindStream(""), which
			// clashes with Bind; the name matches the bound consumer.
			DurablePrefix: o.Durable,
		},
	}, b.wmlog)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscriber %s: %w", o.Durable, err)
	}
	return sub, nil
}

// ensureConsumer creates or updates the durable push consumer every replica
// binds to, and returns its stream.
func (b *Broker) ensureConsumer(o SubscribeOptions) (string, error) {
	stream := WorkStream
	switch {
	case strings.HasPrefix(o.Subject, events.SubjectRoot+"."):
		stream = EventsStream
	case strings.HasPrefix(o.Subject, maxDeliveriesRoot+"."):
		stream = DeadLetters
	}
	want := &nats.ConsumerConfig{
		Durable:        o.Durable,
		DeliverSubject: "_INLET.deliver." + o.Durable,
		DeliverGroup:   o.Durable,
		FilterSubject:  o.Subject,
		DeliverPolicy:  nats.DeliverAllPolicy,
		AckPolicy:      nats.AckExplicitPolicy,
		AckWait:        o.AckWait,
		MaxDeliver:     o.MaxDeliver,
		MaxAckPending:  o.MaxAckPending,
	}
	info, err := b.JS.ConsumerInfo(stream, o.Durable)
	switch {
	case errors.Is(err, nats.ErrConsumerNotFound):
		if _, err := b.JS.AddConsumer(stream, want); err == nil {
			return stream, nil
		}
		// Another replica may have created it meanwhile: fall through to compare.
		if info, err = b.JS.ConsumerInfo(stream, o.Durable); err != nil {
			return "", fmt.Errorf("create consumer %s on %s: %w", o.Durable, stream, err)
		}
	case err != nil:
		return "", fmt.Errorf("consumer %s on %s: %w", o.Durable, stream, err)
	}
	c := info.Config
	if c.FilterSubject != want.FilterSubject || c.DeliverGroup != want.DeliverGroup {
		return "", fmt.Errorf("consumer %s on %s filters %q for group %q, want %q for %q: give the durable a new version",
			o.Durable, stream, c.FilterSubject, c.DeliverGroup, want.FilterSubject, want.DeliverGroup)
	}
	if c.AckWait != want.AckWait || c.MaxDeliver != want.MaxDeliver || c.MaxAckPending != want.MaxAckPending {
		c.AckWait, c.MaxDeliver, c.MaxAckPending = want.AckWait, want.MaxDeliver, want.MaxAckPending
		if _, err := b.JS.UpdateConsumer(stream, &c); err != nil {
			return "", fmt.Errorf("update consumer %s on %s: %w", o.Durable, stream, err)
		}
	}
	return stream, nil
}

// Heartbeat tells the server the handler of msg is still working, resetting
// its AckWait so a long handler is not redelivered to another replica.
func (b *Broker) Heartbeat(msg *message.Message) {
	if reply := msg.Metadata.Get(metaReply); reply != "" {
		_ = b.Conn.Publish(reply, []byte("+WPI"))
	}
}

// KeepAlive heartbeats msg every interval until the returned stop is called.
func (b *Broker) KeepAlive(msg *message.Message, every time.Duration) (stop func()) {
	if every <= 0 {
		every = 10 * time.Second // a third of the default AckWait
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				b.Heartbeat(msg)
			}
		}
	}()
	return sync.OnceFunc(func() { close(done) })
}

// WorkIdle reports whether no phase has work waiting or in hand: every
// consumer of the work stream, and the intake's of import requests, has
// nothing pending and nothing unacknowledged.
// A moving import always has one of its messages there (the next message is
// published before the current one is acked).
func (b *Broker) WorkIdle(ctx context.Context) (bool, error) {
	for _, stream := range []string{WorkStream, EventsStream} {
		for name := range b.JS.ConsumerNames(stream, nats.Context(ctx)) {
			info, err := b.JS.ConsumerInfo(stream, name, nats.Context(ctx))
			if err != nil {
				return false, fmt.Errorf("consumer %s: %w", name, err)
			}
			if stream == EventsStream && !strings.HasSuffix(info.Config.FilterSubject, "."+events.EventRequested) {
				continue // of the events, only import requests are work (the intake's)
			}
			if info.NumPending > 0 || info.NumAckPending > 0 {
				return false, nil
			}
		}
	}
	return true, ctx.Err()
}

// StoredMessage reads message seq of stream as a subscriber would have
// received it (payload, subject and message id in its metadata) and the time
// it was published.
func (b *Broker) StoredMessage(ctx context.Context, stream string, seq uint64) (*message.Message, time.Time, error) {
	raw, err := b.JS.GetMsg(stream, seq, nats.Context(ctx))
	if err != nil {
		if unreachable(err) {
			err = faults.Unavailable(err)
		}
		return nil, time.Time{}, fmt.Errorf("read message %d of %s: %w", seq, stream, err)
	}
	msg, err := unmarshaler{}.Unmarshal(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
	if err != nil {
		return nil, time.Time{}, err
	}
	return msg, raw.Time, nil
}

// Delivery is how many times msg has been delivered (1 the first time).
func Delivery(msg *message.Message) uint64 {
	if md := metadata(msg); md != nil {
		return md.NumDelivered
	}
	return 1
}

// Position is msg's stream sequence and publish time: both are the same on
// every delivery of the message.
func Position(msg *message.Message) (uint64, time.Time) {
	if md := metadata(msg); md != nil {
		return md.Sequence.Stream, md.Timestamp
	}
	return 0, time.Now()
}

func metadata(msg *message.Message) *nats.MsgMetadata {
	reply := msg.Metadata.Get(metaReply)
	if reply == "" {
		return nil
	}
	md, err := (&nats.Msg{Reply: reply, Sub: &nats.Subscription{}}).Metadata()
	if err != nil {
		return nil
	}
	return md
}

// Ready reports whether the connection is up (readiness probes).
func (b *Broker) Ready() error {
	if b.Conn == nil || !b.Conn.IsConnected() {
		return errors.New("NATS not connected")
	}
	return nil
}

// Close closes every connection and stops the embedded server, if any.
// Messages in flight are not acked: JetStream redelivers them.
func (b *Broker) Close() {
	b.mu.Lock()
	for _, nc := range b.subs {
		nc.Close()
	}
	b.subs = nil
	b.mu.Unlock()
	if b.pub != nil {
		_ = b.pub.Close()
	} else if b.Conn != nil {
		b.Conn.Close()
	}
	if b.server != nil {
		b.server.Shutdown()
		b.server.WaitForShutdown()
	}
}

type unmarshaler struct{}

func (unmarshaler) Unmarshal(m *nats.Msg) (*message.Message, error) {
	msg, err := (&wmnats.NATSMarshaler{}).Unmarshal(m)
	if err != nil {
		return nil, err
	}
	if msg.UUID == "" {
		// Published by a plain NATS client: give the delivery a stable id.
		msg.UUID = m.Header.Get(nats.MsgIdHdr)
		if msg.UUID == "" {
			msg.UUID = watermill.NewUUID()
		}
	}
	msg.Metadata.Set(MetaMsgID, m.Header.Get(nats.MsgIdHdr))
	msg.Metadata.Set(MetaSubject, m.Subject)
	msg.Metadata.Set(metaReply, m.Reply)
	return msg, nil
}
