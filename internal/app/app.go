package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/blob/blobopen"
	"github.com/inlet-dev/inlet/internal/blob/s3"
	"github.com/inlet-dev/inlet/internal/broker"
	"github.com/inlet-dev/inlet/internal/faults"
	"github.com/inlet-dev/inlet/internal/logging"
	"github.com/inlet-dev/inlet/internal/metrics"
	"github.com/inlet-dev/inlet/internal/phases"
	"github.com/inlet-dev/inlet/internal/pipeline"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/storeopen"
	"github.com/inlet-dev/inlet/internal/topology"
	"github.com/inlet-dev/inlet/internal/uploads"
	"github.com/inlet-dev/inlet/internal/webhooks"
)

// App is one Inlet process: its adapters and the services it runs.
type App struct {
	Cfg      Config
	Log      zerolog.Logger
	Broker   *broker.Broker
	Blobs    blob.Store
	Store    store.Store
	Registry *resources.Registry
	Harness  *pipeline.Harness
	Metrics  *metrics.Metrics
	router   *message.Router
	running  *errgroup.Group
	addr     net.Addr // where Start listens
	// httpClosing is closed when the HTTP server starts shutting down, so
	// the import event streams end instead of holding the shutdown.
	httpClosing chan struct{}
	// dispatcher sends webhook deliveries (the webhooks role).
	dispatcher *webhooks.Dispatcher
}

// Addr is the address the HTTP server listens on, once started.
func (a *App) Addr() net.Addr { return a.addr }

// New connects every adapter. service names the process in logs and events.
func New(ctx context.Context, cfg Config, service string) (*App, error) {
	format := cfg.LogFormat
	if format == "" || format == "auto" {
		format = "json"
		if cfg.Embedded() {
			format = "console"
		}
	}
	log := logging.New(logging.Options{Level: cfg.LogLevel, Console: format == "console", Service: service})
	a := &App{Cfg: cfg, Log: log, Metrics: metrics.New()}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	reg, err := resources.LoadDir(cfg.ResourcesDir)
	if err != nil {
		return nil, fmt.Errorf("resources: %w", err)
	}
	a.Registry = reg
	// A service may start before its servers do (a restart of everything, a
	// pod scheduled first): it waits for them, not ready meanwhile, instead
	// of exiting into a restart loop.
	err = waitFor(ctx, log, "blob store", func() (err error) {
		a.Blobs, err = blobopen.Open(ctx, blobopen.Config{URL: cfg.BlobURL, DataDir: cfg.DataDir,
			Endpoint: cfg.S3Endpoint, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, UseSSL: cfg.S3UseSSL,
			PublicEndpoint: cfg.S3PublicEndpoint, Region: cfg.S3Region})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	err = waitFor(ctx, log, "store", func() (err error) {
		a.Store, err = storeopen.Open(ctx, cfg.StoreURL, cfg.DataDir)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	a.Broker, err = broker.Connect(ctx, broker.Config{URL: cfg.NATSURL, Listen: cfg.NATSListen, Replicas: cfg.NATSReplicas,
		StoreDir: filepath.Join(cfg.DataDir, "jetstream"), Name: "inlet-" + service}, log)
	if err != nil {
		return nil, err
	}
	tmp := filepath.Join(cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	a.Harness = pipeline.New(&pipeline.Env{
		Blobs: a.Blobs, Records: a.Store, Registry: reg, Pub: a.Broker, Log: log,
		Source: "inlet/" + service, BatchSize: cfg.BatchSize, TempDir: tmp,
		Delivery: broker.Delivery, MaxDeliver: uint64(cfg.MaxDeliver), Parallelism: cfg.Concurrency,
		Settle: phases.Processing{Records: a.Store}, Observer: a.Metrics, RevertWindow: cfg.RevertWindow,
	})
	a.Metrics.WatchConsumers(a.Broker.Consumers)
	router, err := message.NewRouter(message.RouterConfig{}, logging.Watermill(log))
	if err != nil {
		return nil, err
	}
	// Every handler's message is kept alive while it runs, however long:
	// JetStream hands it to another replica only if this one dies.
	router.AddMiddleware(middleware.Recoverer, broker.Heartbeats(cfg.AckWait/3), broker.Traced)
	a.router = router
	ok = true
	return a, nil
}

// waitFor runs open until it succeeds, fails for good, or ctx ends, logging
// each wait for a server that is not reachable yet.
func waitFor(ctx context.Context, log zerolog.Logger, what string, open func() error) error {
	return faults.Backoff{First: 500 * time.Millisecond, Max: 5 * time.Second}.WaitOut(ctx, open,
		func(err error, attempt int, wait time.Duration) {
			log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", wait).Msg("waiting for the " + what + " to be reachable")
		})
}

// Phases are the phase services by name.
func (a *App) Phases() map[string]pipeline.Phase { return phases.All(a.Store, a.Blobs) }

func (a *App) subscribeOptions(durable string) broker.SubscribeOptions {
	return broker.SubscribeOptions{Durable: durable, AckWait: a.Cfg.AckWait, MaxDeliver: a.Cfg.MaxDeliver,
		Concurrency: a.Cfg.Concurrency, MaxAckPending: a.Cfg.MaxAckPending}
}

// addRole subscribes role's consumers on the router; every replica of a
// role joins the same durable consumers, so replicas share the work.
func (a *App) addRole(ctx context.Context, role Role) error {
	switch {
	case role == Intake:
		// Commands about imports: interrupts, and the uploads that start
		// imports created without their file.
		if err := a.addConsumer("interrupt", events.Subject("*", "*", events.EventInterrupt), a.Harness.InterruptHandler()); err != nil {
			return err
		}
		if err := a.addUploads(); err != nil {
			return err
		}
		// The imports whose messages JetStream stopped delivering end here.
		if err := a.addConsumer("dead-letters", topology.DeadLettersSubject,
			a.Harness.DeadLetterHandler(a.Broker.StoredMessage)); err != nil {
			return err
		}
		// The consumer keeps the name of the phase it runs first: a durable
		// consumer is named for good.
		return a.addConsumer(events.PhasePrevalidation, events.Subject("*", "*", events.EventRequested),
			a.Harness.RequestHandler(phases.Prevalidation{}, broker.Position), a.Harness.DeliveryPolicy)
	case slices.Contains(PhaseRoles, role):
		name := string(role)
		p, ok := a.Phases()[name]
		if !ok {
			return fmt.Errorf("no phase %q", name)
		}
		handler := a.Harness.WorkHandler(p)
		if err := a.addConsumer(name+"-express", topology.ExpressSubject(name), handler, a.Harness.DeliveryPolicy); err != nil {
			return err
		}
		return a.addConsumer(name, topology.WorkSubject(name), handler, a.Harness.DeliveryPolicy)
	case role == Projector:
		a.Metrics.WatchImports(a.Store)
		return a.addProjector(ctx)
	case role == Gateway:
		return nil // an HTTP API only: Start serves it
	case role == Webhooks:
		return a.addWebhooks()
	}
	return fmt.Errorf("no role %q", role)
}

// addConsumer routes topic to handler through the durable
// <name>-<durableVersion>; import messages (requests, phase work) run under
// the delivery policy.
func (a *App) addConsumer(name, topic string, handler message.NoPublishHandlerFunc, policy ...message.HandlerMiddleware) error {
	return a.addConsumerWith(name, topic, a.subscribeOptions(name+durableVersion), handler, policy...)
}

// durableVersion is the version of every durable consumer (see
// broker.SubscribeOptions.Durable): v2 are pull consumers, v1 were push.
const durableVersion = "-v2"

func (a *App) addConsumerWith(name, topic string, opts broker.SubscribeOptions, handler message.NoPublishHandlerFunc, policy ...message.HandlerMiddleware) error {
	opts.Subject = topic
	sub, err := a.Broker.Subscriber(opts)
	if err != nil {
		return err
	}
	a.router.AddConsumerHandler(name, topic, sub, handler).AddMiddleware(policy...)
	return nil
}

// addUploads starts imports whose file arrives through a signed URL: MinIO
// publishes the upload to NATS (when INLET_S3_NOTIFY_ARN names the target).
func (a *App) addUploads() error {
	if a.Cfg.S3NotifyARN != "" {
		st, ok := a.Blobs.(*s3.Store)
		if !ok {
			return errors.New("INLET_S3_NOTIFY_ARN needs INLET_BLOB_URL=s3://…")
		}
		if err := st.EnableUploadNotifications(context.Background(), a.Cfg.S3NotifyARN); err != nil {
			return err
		}
	}
	return a.addConsumer("uploads", topology.UploadsSubject, uploads.Handler(a.Blobs, a.Broker, a.Log))
}

// Close releases everything.
func (a *App) Close() {
	if a.router != nil {
		_ = a.router.Close()
	}
	if a.Broker != nil {
		a.Broker.Close()
	}
	if a.Store != nil {
		_ = a.Store.Close()
	}
}
