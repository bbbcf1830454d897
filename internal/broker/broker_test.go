package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/topology"
)

// The broker adapter has two implementations behind one type: the embedded
// server (INLET_NATS_URL empty) and a server it joins by URL. Every test of
// the contract runs against both.
var implementations = map[string]func(t *testing.T) *Broker{
	"embedded": func(t *testing.T) *Broker {
		b, err := Connect(context.Background(), Config{Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), Name: t.Name()}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	},
	"external": func(t *testing.T) *Broker {
		srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
		if err != nil {
			t.Fatal(err)
		}
		go srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats server not ready")
		}
		t.Cleanup(srv.Shutdown)
		b, err := Connect(context.Background(), Config{URL: srv.ClientURL(), Name: t.Name()}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	},
}

func TestBrokerContract(t *testing.T) {
	for name, newBroker := range implementations {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct {
				name string
				fn   func(*testing.T, *Broker)
			}{
				{"PublishWithMsgIDIsDeduplicated", testPublishWithMsgIDIsDeduplicated},
				{"ReplicasShareOneDurable", testReplicasShareOneDurable},
				{"MessageOfDeadReplicaIsRedelivered", testMessageOfDeadReplicaIsRedelivered},
				{"NackedMessageIsRedelivered", testNackedMessageIsRedelivered},
				{"StreamsSurviveReconnectAndReprovision", testReprovision},
				{"ClosingOneReplicaKeepsTheConsumer", testClosingOneReplicaKeepsTheConsumer},
				{"ConsumerHandsOutNoMoreThanItHandles", testConsumerHandsOutNoMoreThanItHandles},
				{"NewVersionStartsWhereTheOldStopped", testNewVersionStartsWhereTheOldStopped},
				{"PublicEventsCarryNoInternalHeaders", testPublicEventsCarryNoInternalHeaders},
				{"HeartbeatsKeepALongHandlersMessage", testHeartbeatsKeepALongHandlersMessage},
			} {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, newBroker(t)) })
			}
		})
	}
}

// nats.go deletes a consumer its subscription created when that subscription
// closes; ours are created apart and bound, so a replica shutting down leaves
// the others (and the consumer's position) in place.
func testClosingOneReplicaKeepsTheConsumer(t *testing.T, b *Broker) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := SubscribeOptions{Subject: workSubject("y"), Durable: "keep-v1", AckWait: time.Second, Concurrency: 1}
	first, err := b.Subscriber(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Subscribe(ctx, opts.Subject); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	consume(t, b, "keep-v1", ctx, func(m *message.Message) { m.Ack(); got <- string(m.Payload) })
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.JS.Consumer(ctx, topology.WorkStream, "keep-v1"); err != nil {
		t.Fatalf("consumer gone after one replica closed: %v", err)
	}
	if err := b.Publish(context.Background(), workSubject("y"), "after-close", []byte("still here")); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != "still here" {
			t.Fatalf("got %q", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the remaining replica got nothing after the other closed")
	}
}

// Provisioning is idempotent: a second process connecting finds the streams
// and keeps their messages.
func testReprovision(t *testing.T, b *Broker) {
	if err := b.Publish(context.Background(), workSubject("z"), "keep", []byte("x")); err != nil {
		t.Fatal(err)
	}
	again, err := Connect(context.Background(), Config{URL: b.ClientURL()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	si := streamInfo(t, again, topology.WorkStream)
	if si.State.Msgs != 1 || si.Config.Duplicates != 30*time.Minute {
		t.Fatalf("after reprovision: %d msgs, duplicate window %s", si.State.Msgs, si.Config.Duplicates)
	}
}

func testPublishWithMsgIDIsDeduplicated(t *testing.T, b *Broker) {
	for i := 0; i < 3; i++ {
		if err := b.Publish(context.Background(), workSubject("x"), "imp_1:work:x:0", []byte("same")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Publish(context.Background(), workSubject("x"), "imp_1:work:x:1", []byte("other")); err != nil {
		t.Fatal(err)
	}
	si := streamInfo(t, b, topology.WorkStream)
	if si.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want 2 (three publishes of one id count once)", si.State.Msgs)
	}
}

func consume(t *testing.T, b *Broker, durable string, ctx context.Context, fn func(*message.Message)) {
	t.Helper()
	sub, err := b.Subscriber(SubscribeOptions{Subject: workSubject("y"), Durable: durable, AckWait: time.Second, MaxDeliver: 5, NakDelay: 50 * time.Millisecond, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := sub.Subscribe(ctx, workSubject("y"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for m := range msgs {
			fn(m)
		}
	}()
}

// Replicas that share a durable split the messages: each is handled once.
func testReplicasShareOneDurable(t *testing.T, b *Broker) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	seen := map[string]int{}
	byReplica := map[int]int{}
	for r := 0; r < 3; r++ {
		other, err := Connect(ctx, Config{URL: b.ClientURL()}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(other.Close)
		consume(t, other, "share-v1", ctx, func(m *message.Message) {
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			seen[string(m.Payload)]++
			byReplica[r]++
			mu.Unlock()
			m.Ack()
		})
	}
	const n = 60
	for i := 0; i < n; i++ {
		if err := b.Publish(context.Background(), workSubject("y"), fmt.Sprintf("m%d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == n })
	time.Sleep(1500 * time.Millisecond) // past AckWait: nothing may come back
	mu.Lock()
	defer mu.Unlock()
	for k, c := range seen {
		if c != 1 {
			t.Errorf("message %s handled %d times", k, c)
		}
	}
	busy := 0
	for _, c := range byReplica {
		if c > 0 {
			busy++
		}
	}
	if busy < 2 {
		t.Errorf("work was not shared: per replica %v", byReplica)
	}
}

// A message whose process dies before acking comes back to another replica
// after AckWait; ManualAck makes sure the client never acked it behind our back.
func testMessageOfDeadReplicaIsRedelivered(t *testing.T, b *Broker) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	doomed, err := Connect(ctx, Config{URL: b.ClientURL()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan uint64, 4)
	consume(t, doomed, "crash-v1", ctx, func(m *message.Message) {
		got <- Delivery(m)
		go doomed.Close() // the process dies holding the message
	})
	if err := b.Publish(context.Background(), workSubject("y"), "crash", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if d := <-got; d != 1 {
		t.Fatalf("first delivery numbered %d", d)
	}
	survivor, err := Connect(ctx, Config{URL: b.ClientURL()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(survivor.Close)
	consume(t, survivor, "crash-v1", ctx, func(m *message.Message) {
		got <- Delivery(m)
		m.Ack()
	})
	select {
	case d := <-got:
		if d != 2 {
			t.Fatalf("redelivery numbered %d, want 2", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dead replica's message was not redelivered")
	}
}

func testNackedMessageIsRedelivered(t *testing.T, b *Broker) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	count := 0
	consume(t, b, "nack-v1", ctx, func(m *message.Message) {
		mu.Lock()
		count++
		c := count
		mu.Unlock()
		if c < 3 {
			m.Nack()
			return
		}
		m.Ack()
	})
	if err := b.Publish(context.Background(), workSubject("y"), "nack", []byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return count >= 3 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("condition not met within 15s")
}

// A consumer hands a process no more messages than it handles at once, so a
// queue of slow work is worked through without one redelivery. (With 64 in
// flight, all 8 were handed out at once and those waiting behind the first
// ones passed their AckWait unhandled and were delivered again.)
func testConsumerHandsOutNoMoreThanItHandles(t *testing.T, b *Broker) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n, concurrency = 8, 2
	const work = 300 * time.Millisecond // 4 rounds of 2: 1.2 s in all, AckWait 1 s
	opts := SubscribeOptions{Subject: workSubject("slow"), Durable: "slow-v1", AckWait: time.Second, MaxDeliver: 5, Concurrency: concurrency}
	sub, err := b.Subscriber(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := b.Publish(context.Background(), opts.Subject, fmt.Sprintf("slow-%d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := sub.Subscribe(ctx, opts.Subject)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	handled := map[string]int{}
	var maxPending int
	done := make(chan struct{})
	for w := 0; w < concurrency; w++ {
		go func() {
			for m := range msgs {
				if info, err := consumerInfo(b, opts.Durable); err == nil {
					mu.Lock()
					maxPending = max(maxPending, info.NumAckPending)
					mu.Unlock()
				}
				time.Sleep(work)
				m.Ack()
				mu.Lock()
				handled[string(m.Payload)]++
				if len(handled) == n {
					select {
					case <-done:
					default:
						close(done)
					}
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("handled %d of %d", len(handled), n)
	}
	time.Sleep(1500 * time.Millisecond) // a redelivery would arrive by now
	info, err := consumerInfo(b, opts.Durable)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for p, c := range handled {
		if c != 1 {
			t.Errorf("message %s handled %d times", p, c)
		}
	}
	if info.NumRedelivered != 0 || maxPending > concurrency {
		t.Errorf("%d redelivered, up to %d handed out at once; want 0 and at most %d", info.NumRedelivered, maxPending, concurrency)
	}
}

func workSubject(phase string) string { return topology.WorkSubject(phase) }

func streamInfo(t *testing.T, b *Broker, name string) *jetstream.StreamInfo {
	t.Helper()
	ctx := context.Background()
	s, err := b.JS.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func consumerInfo(b *Broker, durable string) (*jetstream.ConsumerInfo, error) {
	ctx := context.Background()
	c, err := b.JS.Consumer(ctx, topology.WorkStream, durable)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

// A durable's new version (a setting JetStream cannot change, like push to
// pull) starts after the last message the old one acknowledged, not from
// the start of the stream, and the old one is gone: it would otherwise
// replay days of work, and its pending count would look like work undone.
func testNewVersionStartsWhereTheOldStopped(t *testing.T, b *Broker) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subject := workSubject("versioned")
	stream, err := b.JS.Stream(ctx, topology.WorkStream)
	if err != nil {
		t.Fatal(err)
	}
	old, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "ver-v1", FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := b.Publish(context.Background(), subject, fmt.Sprintf("ver-%d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	batch, err := old.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := b.Subscriber(SubscribeOptions{Subject: subject, Durable: "ver-v3", AckWait: time.Second, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := sub.Subscribe(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		select {
		case m := <-msgs:
			got = append(got, string(m.Payload))
			m.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("the new version got %v, want the two messages the old one had not acknowledged", got)
		}
	}
	if fmt.Sprint(got) != "[2 3]" {
		t.Fatalf("the new version got %v, want [2 3]", got)
	}
	select {
	case m := <-msgs:
		t.Fatalf("the new version replayed %q", m.Payload)
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := stream.Consumer(ctx, "ver-v1"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("the old version is still there (%v)", err)
	}
}

// Subscribers of the public events see the event, its message id and its
// content type: nothing of Inlet's insides (Watermill's headers were there).
func testPublicEventsCarryNoInternalHeaders(t *testing.T, b *Broker) {
	ctx := context.Background()
	ce, err := events.New("evt-1", "inlet/test", events.EventQueued, "imp_1", map[string]string{"id": "imp_1"})
	if err != nil {
		t.Fatal(err)
	}
	subject := events.Subject("acme", "customers", events.EventQueued)
	if err := b.PublishEvent(context.Background(), subject, ce); err != nil {
		t.Fatal(err)
	}
	stream, err := b.JS.Stream(ctx, topology.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Nats-Msg-Id": "evt-1", "Content-Type": events.ContentType}
	if len(raw.Header) != len(want) {
		t.Errorf("headers %v, want only %v", raw.Header, want)
	}
	for k, v := range want {
		if got := raw.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	back, err := events.Decode(raw.Data)
	if err != nil || back.ID != "evt-1" || back.Type != events.Type(events.EventQueued) {
		t.Errorf("payload %s: %v", raw.Data, err)
	}
}

// A handler that runs for several AckWaits keeps its message (the
// Heartbeats middleware's in-progress acks): it is handled once, and its
// delivery count stays 1.
func testHeartbeatsKeepALongHandlersMessage(t *testing.T, b *Broker) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var deliveries []uint64
	handler := Heartbeats(200 * time.Millisecond)(func(m *message.Message) ([]*message.Message, error) {
		mu.Lock()
		deliveries = append(deliveries, Delivery(m))
		mu.Unlock()
		time.Sleep(2500 * time.Millisecond) // 2.5 AckWaits
		return nil, nil
	})
	consume(t, b, "long-v1", ctx, func(m *message.Message) {
		if _, err := handler(m); err == nil {
			m.Ack()
		}
	})
	if err := b.Publish(context.Background(), workSubject("y"), "long", []byte("x")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(deliveries) != "[1]" {
		t.Fatalf("deliveries %v, want the message handled once, on its first delivery", deliveries)
	}
}
