package auth_test

// The NATS side of tenant isolation: the configuration block of
// events/README.md ("Confining a tenant on NATS"), run on an embedded
// server, confines each tenant's client to its own organization's subjects.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/topology"
)

// readmeConfigs are the ```conf blocks of the README's confinement section:
// the server configuration, then acme's publish permission for a durable
// consumer.
func readmeConfigs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "## Confining a tenant on NATS")
	if i < 0 {
		t.Fatal(`events/README.md has no "## Confining a tenant on NATS" section`)
	}
	s = s[i+1:]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```conf\n(.*?)```").FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	if len(out) != 2 {
		t.Fatalf("the confinement section has %d ```conf blocks, want 2 (server configuration, durable consumer permission)", len(out))
	}
	return out
}

func startConfinedServer(t *testing.T, conf string) *server.Server {
	t.Helper()
	dir := t.TempDir()
	conf += fmt.Sprintf("\nhost: 127.0.0.1\nport: -1\njetstream {store_dir: %q}\n", filepath.Join(dir, "js"))
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("README configuration: %v", err)
	}
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// tenantConn is a client that collects its asynchronous errors (permission
// violations arrive that way).
type tenantConn struct {
	nc   *nats.Conn
	mu   sync.Mutex
	errs []string
}

func connectAs(t *testing.T, srv *server.Server, user, password string, opts ...nats.Option) *tenantConn {
	t.Helper()
	tc := &tenantConn{}
	opts = append(opts, nats.UserInfo(user, password), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		tc.mu.Lock()
		tc.errs = append(tc.errs, err.Error())
		tc.mu.Unlock()
	}))
	nc, err := nats.Connect(srv.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	tc.nc = nc
	return tc
}

// violation waits for an asynchronous error naming want.
func (tc *tenantConn) violation(t *testing.T, want string) {
	t.Helper()
	_ = tc.nc.Flush()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		tc.mu.Lock()
		for _, e := range tc.errs {
			if strings.Contains(e, want) {
				tc.mu.Unlock()
				return
			}
		}
		tc.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("no %q error; got %q", want, tc.errs)
}

func (tc *tenantConn) noErrors(t *testing.T) {
	t.Helper()
	if err := tc.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if len(tc.errs) > 0 {
		t.Errorf("unexpected errors: %q", tc.errs)
	}
}

func TestNATSPermissionsConfineTenant(t *testing.T) {
	srv := startConfinedServer(t, readmeConfigs(t)[0])

	ctx := context.Background()
	inlet := connectAs(t, srv, "inlet", "inlet-service-password")
	ijs, err := jetstream.New(inlet.nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := ijs.CreateStream(ctx, jetstream.StreamConfig{Name: topology.EventsStream, Subjects: []string{events.AllSubjects}})
	if err != nil {
		t.Fatal(err)
	}
	streamMsgs := func() uint64 {
		t.Helper()
		si, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return si.State.Msgs
	}

	acme := connectAs(t, srv, "acme", "acme-password", nats.CustomInboxPrefix("_INBOX_acme"))
	own, err := acme.nc.SubscribeSync("imports.acme.>")
	if err != nil {
		t.Fatal(err)
	}
	done, err := acme.nc.SubscribeSync(events.Subject("acme", "customers", events.EventCompleted))
	if err != nil {
		t.Fatal(err)
	}
	acme.noErrors(t)

	// acme requests an import on its own subject, with JetStream's ack.
	ajs, err := jetstream.New(acme.nc)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := ajs.Publish(ctx, events.Subject("acme", "customers", events.EventRequested), []byte(`{"organization_id":"acme","resource":"customers","inputs":[{"email":"a@acme.io"}]}`),
		jetstream.WithMsgID("req-acme-1"))
	if err != nil || ack.Stream != topology.EventsStream {
		t.Fatalf("acme's own request: %+v %v", ack, err)
	}
	// acme sees its own events, never other's.
	if err := inlet.nc.Publish(events.Subject("other", "customers", events.EventCompleted), []byte(`{"organization_id":"other"}`)); err != nil {
		t.Fatal(err)
	}
	if err := inlet.nc.Publish(events.Subject("acme", "customers", events.EventCompleted), []byte(`{"organization_id":"acme"}`)); err != nil {
		t.Fatal(err)
	}
	_ = inlet.nc.Flush()
	for _, want := range []string{"imports.acme.customers.requested", "imports.acme.customers.completed"} {
		m, err := own.NextMsg(2 * time.Second)
		if err != nil || m.Subject != want {
			t.Fatalf("acme's imports.acme.> subscription: %v %v, want %s", m, err, want)
		}
	}
	if m, err := done.NextMsg(2 * time.Second); err != nil || m.Subject != "imports.acme.customers.completed" {
		t.Fatalf("acme's completed subscription: %v %v", m, err)
	}
	if m, err := own.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("acme received %s", m.Subject)
	}
	acme.noErrors(t)
	before := streamMsgs()

	// Anything on another organization's subjects (every event and command),
	// a forged completion of its own, and the pipeline's internal work.
	forbidden := []string{"imports.acme.customers.completed", "inlet.work.transforming", "inlet.work.uploads"}
	for _, ev := range []string{events.EventRequested, events.EventQueued, events.EventStarted, events.EventPhaseCompleted,
		events.EventProgress, events.EventCompleted, events.EventFailed, events.EventInterrupted, events.EventTimedOut,
		events.EventExpired, "interrupt"} {
		forbidden = append(forbidden, events.Subject("other", "customers", ev))
	}
	for _, subject := range forbidden {
		if err := acme.nc.Publish(subject, []byte(`{"organization_id":"other","resource":"customers","inputs":[{"email":"x@acme.io"}]}`)); err != nil {
			t.Fatal(err)
		}
		acme.violation(t, fmt.Sprintf("Permissions Violation for Publish to %q", subject))
	}
	quick, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := ajs.Publish(quick, "imports.other.customers.requested", []byte(`{}`)); err == nil {
		t.Error("a JetStream publish on imports.other.* was acked")
	}
	if n := streamMsgs(); n != before {
		t.Errorf("the stream took %d message(s) acme was not allowed to publish", n-before)
	}

	// Subscriptions wider than the organization are refused, not filtered.
	for _, subject := range []string{"imports.other.>", "imports.*.*.completed", "imports.>", ">", "_INBOX.>", "_INBOX_other.>"} {
		if _, err := acme.nc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		acme.violation(t, fmt.Sprintf("Permissions Violation for Subscription to %q", subject))
	}

	// The other tenant is confined the same way.
	other := connectAs(t, srv, "other", "other-password", nats.CustomInboxPrefix("_INBOX_other"))
	if _, err := other.nc.SubscribeSync("imports.acme.>"); err != nil {
		t.Fatal(err)
	}
	other.violation(t, `Permissions Violation for Subscription to "imports.acme.>"`)
	if err := other.nc.Publish("imports.acme.customers.requested", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	other.violation(t, `Permissions Violation for Publish to "imports.acme.customers.requested"`)

	// A wrong password is no tenant at all.
	if nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo("acme", "other-password")); err == nil {
		nc.Close()
		t.Error("acme connected with another's password")
	}
}

func TestNATSTenantDurableConsumer(t *testing.T) {
	confs := readmeConfigs(t)
	const plain = `publish: {allow: ["imports.acme.*.requested"]}`
	if !strings.Contains(confs[0], plain) {
		t.Fatalf("the README configuration no longer holds %s", plain)
	}
	srv := startConfinedServer(t, strings.Replace(confs[0], plain, strings.TrimSpace(confs[1]), 1))

	ctx := context.Background()
	inlet := connectAs(t, srv, "inlet", "inlet-service-password")
	ijs, err := jetstream.New(inlet.nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := ijs.CreateStream(ctx, jetstream.StreamConfig{Name: topology.EventsStream, Subjects: []string{events.AllSubjects}})
	if err != nil {
		t.Fatal(err)
	}
	for org, name := range map[string]string{"acme": "acme-events", "other": "other-events"} {
		if _, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: name, FilterSubject: "imports." + org + ".>",
			AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
			t.Fatal(err)
		}
	}
	for _, org := range []string{"other", "acme", "other"} {
		if _, err := ijs.Publish(ctx, events.Subject(org, "customers", events.EventCompleted), []byte(`{"organization_id":"`+org+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	consumerInfo := func(name string) (*jetstream.ConsumerInfo, error) {
		c, err := stream.Consumer(ctx, name)
		if err != nil {
			return nil, err
		}
		return c.Info(ctx)
	}

	acme := connectAs(t, srv, "acme", "acme-password", nats.CustomInboxPrefix("_INBOX_acme"))
	ajs, err := jetstream.New(acme.nc)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := ajs.Consumer(ctx, topology.EventsStream, "acme-events")
	if err != nil {
		t.Fatalf("acme binds its consumer: %v", err)
	}
	batch, err := mine.Fetch(5, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatalf("acme pulls: %v", err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 1 || msgs[0].Subject() != "imports.acme.customers.completed" {
		t.Fatalf("acme pulled %d message(s): %v (%v)", len(msgs), msgs, batch.Error())
	}
	if err := msgs[0].DoubleAck(ctx); err != nil {
		t.Fatalf("acme acks: %v", err)
	}
	ci, err := consumerInfo("acme-events")
	if err != nil || ci.NumAckPending != 0 || ci.AckFloor.Consumer != 1 {
		t.Fatalf("acme-events after the ack: %+v %v", ci, err)
	}
	acme.noErrors(t)

	// Another tenant's consumer, and making consumers of its own.
	quick, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if theirs, err := ajs.Consumer(quick, topology.EventsStream, "other-events"); err == nil {
		t.Error("acme looked up other's consumer")
		if batch, err := theirs.Fetch(1, jetstream.FetchMaxWait(300*time.Millisecond)); err == nil {
			for m := range batch.Messages() {
				t.Errorf("acme pulled %s from other's consumer", m.Subject())
			}
		}
	}
	acme.violation(t, `Permissions Violation for Publish to "$JS.API.CONSUMER.INFO.INLET_EVENTS.other-events"`)
	if err := acme.nc.Publish("$JS.API.CONSUMER.MSG.NEXT.INLET_EVENTS.other-events", []byte(`{"batch":1}`)); err != nil {
		t.Fatal(err)
	}
	acme.violation(t, `Permissions Violation for Publish to "$JS.API.CONSUMER.MSG.NEXT.INLET_EVENTS.other-events"`)
	if err := acme.nc.Publish("$JS.API.CONSUMER.CREATE.INLET_EVENTS.mine.imports.other.>", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	acme.violation(t, `Permissions Violation for Publish to "$JS.API.CONSUMER.CREATE.INLET_EVENTS.mine.imports.other.>"`)
	if ci, err := consumerInfo("other-events"); err != nil || ci.NumPending != 2 || ci.NumAckPending != 0 {
		t.Errorf("other-events was touched: %+v %v", ci, err)
	}
}
