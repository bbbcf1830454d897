package broker

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inlet-dev/inlet/internal/faults"
	"github.com/inlet-dev/inlet/internal/topology"
)

// SubscribeOptions tune one durable consumer.
type SubscribeOptions struct {
	// Subject the consumer takes from its stream (wildcards allowed); the
	// subscriber must Subscribe to exactly this subject.
	Subject string
	// Durable names the consumer every replica shares. Version it (…-v2)
	// when a setting JetStream cannot change does: the new version starts
	// where the old one stopped, and the old one is removed.
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
		o.MaxAckPending = o.Concurrency
	}
	if o.NakDelay == 0 {
		o.NakDelay = time.Second
	}
}

// Subscriber is a Watermill subscriber of the durable pull consumer
// o.Durable: every replica using the same durable shares its messages.
//
// A pull consumer hands a replica a message only when one of its
// Concurrency workers asks for one: nothing waits in a client buffer with
// its AckWait running (a push consumer's buffer redelivered work that was
// never handled).
func (b *Broker) Subscriber(o SubscribeOptions) (message.Subscriber, error) {
	o.defaults()
	if o.Durable == "" || o.Subject == "" {
		return nil, errors.New("broker: a durable name and a subject are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := b.ensureConsumer(ctx, o)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.consumers = append(b.consumers, consumerRef{stream: topology.StreamOf(o.Subject), durable: o.Durable})
	b.mu.Unlock()
	return &subscriber{b: b, o: o, cons: cons, closing: make(chan struct{})}, nil
}

// consumerRef names a durable consumer this process subscribed to.
type consumerRef struct{ stream, durable string }

// Consumers reads the state of the durable consumers this process works
// from (each replica of a role reads the same consumers).
func (b *Broker) Consumers(ctx context.Context) ([]*jetstream.ConsumerInfo, error) {
	b.mu.Lock()
	refs := slices.Clone(b.consumers)
	b.mu.Unlock()
	out := make([]*jetstream.ConsumerInfo, 0, len(refs))
	for _, r := range refs {
		c, err := b.JS.Consumer(ctx, r.stream, r.durable)
		if err != nil {
			return nil, fmt.Errorf("consumer %s of %s: %w", r.durable, r.stream, err)
		}
		out = append(out, c.CachedInfo())
	}
	return out, nil
}

// versionRE splits a durable name into its base and version (name-v3).
var versionRE = regexp.MustCompile(`^(.+)-v([0-9]+)$`)

// ensureConsumer creates or updates the durable pull consumer o.Durable. A
// new version of a durable starts after the last message its earlier
// version acknowledged, and the earlier version is deleted, so that it
// neither replays the stream nor looks like work left undone.
func (b *Broker) ensureConsumer(ctx context.Context, o SubscribeOptions) (jetstream.Consumer, error) {
	name := topology.StreamOf(o.Subject)
	stream, err := b.JS.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: stream %s: %w", o.Durable, name, err)
	}
	want := jetstream.ConsumerConfig{
		Durable:       o.Durable,
		FilterSubject: o.Subject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    o.MaxDeliver,
		MaxAckPending: o.MaxAckPending,
	}
	cons, err := stream.Consumer(ctx, o.Durable)
	switch {
	case err == nil:
		c := cons.CachedInfo().Config
		if c.FilterSubject != want.FilterSubject {
			return nil, fmt.Errorf("consumer %s on %s filters %q, want %q: give the durable a new version",
				o.Durable, name, c.FilterSubject, want.FilterSubject)
		}
		if c.AckWait != want.AckWait || c.MaxDeliver != want.MaxDeliver || c.MaxAckPending != want.MaxAckPending {
			c.AckWait, c.MaxDeliver, c.MaxAckPending = want.AckWait, want.MaxDeliver, want.MaxAckPending
			if cons, err = stream.UpdateConsumer(ctx, c); err != nil {
				return nil, fmt.Errorf("update consumer %s on %s: %w", o.Durable, name, err)
			}
		}
		return cons, nil
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("consumer %s on %s: %w", o.Durable, name, err)
	}
	earlier := earlierVersions(ctx, stream, o.Durable)
	for _, old := range earlier {
		if floor := old.AckFloor.Stream; floor > 0 && (want.DeliverPolicy == jetstream.DeliverAllPolicy || floor+1 < want.OptStartSeq) {
			want.DeliverPolicy, want.OptStartSeq = jetstream.DeliverByStartSequencePolicy, floor+1
		}
	}
	cons, err = stream.CreateConsumer(ctx, want)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		cons, err = stream.Consumer(ctx, o.Durable) // another replica made it meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", o.Durable, name, err)
	}
	for _, old := range earlier {
		if err := stream.DeleteConsumer(ctx, old.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			b.log.Warn().Err(err).Str("consumer", old.Name).Msg("earlier version of a consumer not deleted")
		} else {
			b.log.Info().Str("consumer", old.Name).Str("by", o.Durable).Uint64("from_seq", want.OptStartSeq).Msg("consumer replaced by its new version")
		}
	}
	return cons, nil
}

// earlierVersions are the consumers of stream that durable (name-vN)
// replaces: name-v1 … name-v(N-1).
func earlierVersions(ctx context.Context, stream jetstream.Stream, durable string) []*jetstream.ConsumerInfo {
	m := versionRE.FindStringSubmatch(durable)
	if m == nil {
		return nil
	}
	n, _ := strconv.Atoi(m[2])
	var out []*jetstream.ConsumerInfo
	for v := 1; v < n; v++ {
		if c, err := stream.Consumer(ctx, m[1]+"-v"+strconv.Itoa(v)); err == nil {
			out = append(out, c.CachedInfo())
		}
	}
	return out
}

// fetchWait is how long a worker's pull waits for a message before asking
// again (and noticing its context ended).
const fetchWait = 5 * time.Second

// subscriber hands the messages of one consumer to Watermill, Concurrency
// at a time, each with its JetStream delivery in its context.
type subscriber struct {
	b       *Broker
	o       SubscribeOptions
	cons    jetstream.Consumer
	closing chan struct{}
	once    sync.Once
	workers sync.WaitGroup
}

func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if topic != s.o.Subject {
		return nil, fmt.Errorf("broker: consumer %s takes %q, not %q", s.o.Durable, s.o.Subject, topic)
	}
	out := make(chan *message.Message)
	for range s.o.Concurrency {
		s.workers.Add(1)
		go s.work(ctx, out)
	}
	go func() {
		s.workers.Wait()
		close(out)
	}()
	return out, nil
}

// work asks for one message at a time, hands it on, and settles it as the
// handler did: acked (and the ack confirmed, so that it survives a server
// restart), or nacked for a redelivery NakDelay later. A message still in a
// handler when the subscriber closes is left to AckWait.
func (s *subscriber) work(ctx context.Context, out chan<- *message.Message) {
	defer s.workers.Done()
	backoff := faults.Backoff{First: 250 * time.Millisecond, Max: 5 * time.Second}
	failures := 0
	for ctx.Err() == nil && !s.closed() {
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		batch, err := s.cons.Fetch(1, jetstream.FetchContext(fctx))
		if err == nil {
			for jm := range batch.Messages() {
				s.deliver(ctx, jm, out)
			}
			err = batch.Error()
		}
		cancel()
		if err == nil || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoMessages) {
			failures = 0
			continue
		}
		failures++
		wait := backoff.Wait(failures)
		s.b.log.Warn().Err(err).Str("consumer", s.o.Durable).Dur("retry_in", wait).Msg("fetch failed")
		select {
		case <-ctx.Done():
		case <-s.closing:
		case <-time.After(wait):
		}
	}
}

func (s *subscriber) deliver(ctx context.Context, jm jetstream.Msg, out chan<- *message.Message) {
	msg := toMessage(jm.Subject(), jm.Headers(), jm.Data())
	mctx, cancel := context.WithCancel(context.WithValue(ctx, deliveryKey{}, jm))
	defer cancel()
	msg.SetContext(mctx)
	select {
	case out <- msg:
	case <-ctx.Done():
		return
	case <-s.closing:
		return
	}
	select {
	case <-msg.Acked():
		actx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		defer cancel()
		if err := jm.DoubleAck(actx); err != nil {
			s.b.log.Warn().Err(err).Str("consumer", s.o.Durable).Msg("ack not confirmed; the message may come again")
		}
	case <-msg.Nacked():
		if err := jm.NakWithDelay(s.o.NakDelay); err != nil {
			s.b.log.Warn().Err(err).Str("consumer", s.o.Durable).Msg("nak failed; the message comes again after AckWait")
		}
	case <-s.closing:
	}
}

func (s *subscriber) closed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// Close stops asking for messages and waits (up to 10 s) for the workers.
func (s *subscriber) Close() error {
	s.once.Do(func() { close(s.closing) })
	done := make(chan struct{})
	go func() {
		s.workers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("broker: consumer %s: workers still busy after 10s", s.o.Durable)
	}
}

// deliveryKey holds a received message's JetStream delivery in its context.
type deliveryKey struct{}

func deliveryOf(msg *message.Message) jetstream.Msg {
	if msg == nil {
		return nil
	}
	jm, _ := msg.Context().Value(deliveryKey{}).(jetstream.Msg)
	return jm
}

// Delivery is how many times msg has been delivered (1 the first time).
func Delivery(msg *message.Message) uint64 {
	if jm := deliveryOf(msg); jm != nil {
		if md, err := jm.Metadata(); err == nil {
			return md.NumDelivered
		}
	}
	return 1
}

// Position is msg's stream sequence and publish time: both are the same on
// every delivery of the message.
func Position(msg *message.Message) (uint64, time.Time) {
	if jm := deliveryOf(msg); jm != nil {
		if md, err := jm.Metadata(); err == nil {
			return md.Sequence.Stream, md.Timestamp
		}
	}
	return 0, time.Now()
}

// Heartbeat tells the server the handler of msg is still working, resetting
// its AckWait so a long handler is not redelivered to another replica.
func Heartbeat(msg *message.Message) {
	if jm := deliveryOf(msg); jm != nil {
		_ = jm.InProgress()
	}
}

// KeepAlive heartbeats msg every interval until the returned stop is called.
func KeepAlive(msg *message.Message, every time.Duration) (stop func()) {
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
				Heartbeat(msg)
			}
		}
	}()
	return sync.OnceFunc(func() { close(done) })
}

// Heartbeats is router middleware that keeps every message alive while its
// handler runs (every: a third of AckWait), however long it takes.
func Heartbeats(every time.Duration) message.HandlerMiddleware {
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			defer KeepAlive(msg, every)()
			return next(msg)
		}
	}
}
