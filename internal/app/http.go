package app

import (
	"context"
	"fmt"
	"net/http"

	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/auth"
	"github.com/inlet-dev/inlet/internal/dashboard"
	"github.com/inlet-dev/inlet/internal/faults"
	"github.com/inlet-dev/inlet/internal/gateway"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/pipeline"
	"github.com/inlet-dev/inlet/internal/projector"
	"github.com/inlet-dev/inlet/internal/webhooks"
)

func (a *App) readyChecks() []httpapi.Check {
	return []httpapi.Check{
		{Name: "broker", Fn: func(context.Context) error { return a.Broker.Ready() }},
		{Name: "blob", Fn: a.Blobs.Ping},
		{Name: "store", Fn: a.Store.Ping},
	}
}

func (a *App) readAPI() *projector.API {
	return projector.NewAPI(a.readConfig())
}

func (a *App) readConfig() projector.Config {
	return projector.Config{Views: a.Store, Records: a.Store, Blobs: a.Blobs,
		Registry: a.Registry, Ready: a.readyChecks(), Log: a.Log, Closing: a.httpClosing}
}

func (a *App) gateway() *gateway.Gateway {
	return gateway.New(gateway.Config{Blobs: a.Blobs, Publisher: a.Broker, Registry: a.Registry,
		Log: a.Log, Ready: a.readyChecks(), SyncMaxBytes: a.Cfg.SyncMaxBytes, UploadTTL: a.Cfg.UploadTTL, RevertWindow: a.Cfg.RevertWindow, Views: projector.New(a.Store, a.Log)})
}

// ReadHTTP is the projector process's API: the import reads and the
// webhook reads.
func (a *App) ReadHTTP() http.Handler {
	mux := http.NewServeMux()
	a.readAPI().Mount(mux)
	a.webhooksAPI().MountReads(mux)
	httpapi.MountCommon(mux, a.readyChecks()...)
	return httpapi.Routes(mux)
}

// WriteHTTP is the gateway process's API: the import writes and the
// webhook writes (the separate shape's ingress sends every method but GET
// and HEAD here).
func (a *App) WriteHTTP() http.Handler {
	mux := http.NewServeMux()
	a.gateway().Mount(mux)
	a.webhooksAPI().MountWrites(mux)
	httpapi.MountCommon(mux, a.readyChecks()...)
	return httpapi.Routes(mux)
}

// webhooksAPI serves the webhook subscriptions and their delivery log.
func (a *App) webhooksAPI() *webhooks.API { return &webhooks.API{Store: a.Store, Log: a.Log} }

// probes is the HTTP API of a process that serves no API: its liveness and
// readiness, as every server answers them (handler adds /metrics).
func (a *App) probes() http.Handler {
	mux := http.NewServeMux()
	httpapi.MountCommon(mux, a.readyChecks()...)
	return httpapi.Routes(mux)
}

// mountMetrics registers /metrics: every process serves it beside its API
// or its probes, open like the probes (no tenant's data is in it).
func (a *App) mountMetrics(r httpapi.Router) {
	r.HandleFunc("GET /metrics", a.Metrics.Handler().ServeHTTP)
}

// mountDashboard registers the dashboard (internal/dashboard) on a server
// that serves reads: a web page, not an API route, so it is outside the API
// description and, like /metrics, outside the API keys (the page holds no
// tenant's data; it asks for a key before it reads any).
func (a *App) mountDashboard(r httpapi.Router) { dashboard.Mount(r) }

// AllHTTP mounts reads and writes on one server (the all-in-one command).
func (a *App) AllHTTP() http.Handler {
	mux := http.NewServeMux()
	a.mountAll(mux)
	return httpapi.Routes(mux)
}

// mountAll registers every route of the all-in-one server: a superset of
// the gateway's and the projector's, so the routes the API description must
// cover.
func (a *App) mountAll(r httpapi.Router) {
	a.readAPI().Mount(r)
	a.gateway().Mount(r)
	a.webhooksAPI().MountReads(r)
	a.webhooksAPI().MountWrites(r)
	httpapi.MountCommon(r, a.readyChecks()...)
}

// addProjector routes the public events into the views. A rebuild
// (INLET_PROJECTOR_REBUILD) comes first: it replays the stream into fresh
// views, then the durable consumer goes on from where it was (idempotent).
func (a *App) addProjector(ctx context.Context) error {
	p := projector.New(a.Store, a.Log)
	if a.Cfg.RebuildViews {
		if err := p.Rebuild(ctx, a.Broker.JS, a.Blobs); err != nil {
			return fmt.Errorf("rebuild views: %w", err)
		}
		a.Log.Info().Msg("views rebuilt from the event stream")
	}
	opts := a.subscribeOptions(projector.Durable)
	opts.Concurrency = 2
	return a.addConsumerWith("projector", events.AllSubjects, opts, p.Handler())
}

// sweepDeadlines ends the imports whose time is up, until ctx ends.
func (a *App) sweepDeadlines(ctx context.Context, g *errgroup.Group) {
	deadlines := &pipeline.Deadlines{Imports: projector.New(a.Store, a.Log), Finisher: a.Harness, Log: a.Log,
		ImportTimeout: a.Cfg.ImportTimeout, UploadTTL: a.Cfg.UploadTTL, Grace: a.Cfg.DeadlineGrace,
		StallAfter: a.Cfg.StallAfter, WorkIdle: a.Broker.WorkIdle, Changes: a.Store, RevertWindow: a.Cfg.RevertWindow}
	g.Go(func() error { deadlines.Run(ctx, a.Cfg.SweepEvery); return nil })
}

// apiKeys is the keyring the HTTP API checks. Keys are off only on the
// embedded default; a process that joins a NATS server serves many tenants
// and refuses to start without keys.
func (a *App) apiKeys() (*auth.Keyring, error) {
	kr := a.Cfg.APIKeys
	if kr.Enabled() {
		a.Log.Info().Int("keys", kr.Len()).Strs("organizations", kr.Orgs()).
			Msg("API keys are on: every request acts for its key's organization")
		return kr, nil
	}
	if !a.Cfg.Embedded() {
		return nil, fmt.Errorf("%w (this process joins NATS at %s)", auth.ErrNoKeys, a.Cfg.NATSURL)
	}
	a.Log.Warn().Msg("API keys are off: every request acts for the organization it names (embedded default)")
	return auth.Disabled(), nil
}

// addWebhooks routes the public events into webhook deliveries (durable
// webhooks-v2) and makes the dispatcher Start runs; the consumer wakes it
// when it adds deliveries.
func (a *App) addWebhooks() error {
	c := a.Cfg
	a.dispatcher = &webhooks.Dispatcher{Store: a.Store, Log: a.Log, Observer: a.Metrics, Policy: webhooks.Policy{
		Timeout: c.WebhookTimeout, Backoff: faults.Backoff{First: c.WebhookBackoff, Max: c.WebhookBackoffMax},
		RetryWindow: c.WebhookRetryWindow, DisableAfter: c.WebhookDisableAfter, Concurrency: c.WebhookConcurrency,
		PollEvery: c.WebhookPoll, LogRetention: c.WebhookLogRetention, BlockPrivate: c.WebhookBlockPrivate,
	}}
	consumer := &webhooks.Consumer{Store: a.Store, Log: a.Log, Delivered: a.dispatcher.Kick}
	return a.addConsumer("webhooks", events.AllSubjects, consumer.Handler())
}
