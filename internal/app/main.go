package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/internal/auth"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/telemetry"
)

// Main runs one service until SIGINT/SIGTERM: a phase name, "projector" or
// "gateway". Its settings are flags and environment variables (--help lists
// them); a malformed one stops it at start, naming the variable.
func Main(service string) {
	roles, err := ServiceRoles(service)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", service, err)
		os.Exit(1)
	}
	var cfg Config
	parser := kong.Must(&cfg, kong.Name(service), kong.Description(Describe(service)), Vars)
	_, err = Parse(parser, os.Args[1:])
	parser.FatalIfErrorf(err)
	if err := cfg.Finish(ServesAPI(roles)); err != nil {
		parser.Fatalf("%v", err)
	}
	if err := Serve(service, cfg, ServiceMemory, roles...); err != nil {
		parser.Fatalf("%v", err)
	}
}

// Serve runs roles in a process named service until SIGINT/SIGTERM, within
// the memory share of a process of its kind (ServiceMemory, AllInOneMemory).
func Serve(service string, cfg Config, memory int64, roles ...Role) error {
	TuneGC(memory)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shutdown, err := telemetry.Setup(ctx, service)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer shutdown(context.WithoutCancel(ctx))
	a, err := New(ctx, cfg, service)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Run(ctx, roles...)
}

// Run runs roles until ctx ends (nil) or one of them stops on its own (its
// error: a process that lost its consumers or its API exits, so that its
// supervisor restarts it).
func (a *App) Run(ctx context.Context, roles ...Role) error {
	if err := a.Start(ctx, roles...); err != nil {
		return err
	}
	return a.Wait()
}

// Wait waits for what Start started: nil once ctx ended, else the first
// error of a role that stopped on its own.
func (a *App) Wait() error {
	if a.running == nil {
		return errors.New("app: Wait before Start")
	}
	err := a.running.Wait()
	a.Log.Info().Err(err).Msg("stopped")
	return err
}

// Start starts roles and returns once they consume and serve (Wait then
// follows them). A taken HTTP port fails the start.
func (a *App) Start(ctx context.Context, roles ...Role) error {
	if a.running != nil {
		return errors.New("app: started twice")
	}
	for _, r := range roles {
		if err := a.addRole(ctx, r); err != nil {
			return err
		}
	}
	a.httpClosing = make(chan struct{})
	handler, err := a.handler(roles)
	if err != nil {
		return err
	}
	// Take the port before consuming anything: a taken port fails the start
	// (the process exits non-zero, saying so) instead of leaving a service
	// running without its API, probes or metrics.
	ln, err := net.Listen("tcp", a.Cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP (INLET_HTTP_ADDR): %w", err)
	}
	a.addr = ln.Addr()
	g, gctx := errgroup.WithContext(ctx)
	a.running = g
	// What stops while ctx is still on stopped on its own.
	unexpected := func(what string, err error) error {
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("no error")
		}
		return fmt.Errorf("%s stopped unexpectedly: %w", what, err)
	}
	g.Go(func() error { return unexpected("message router", a.router.Run(gctx)) })
	select {
	case <-a.router.Running():
	case <-gctx.Done():
		ln.Close()
		if err := g.Wait(); err != nil {
			return err
		}
		return ctx.Err()
	}
	if slices.Contains(roles, Projector) {
		a.sweepDeadlines(gctx, g)
	}
	if a.dispatcher != nil {
		g.Go(func() error { a.dispatcher.Run(gctx); return nil })
	}
	{
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		srv.RegisterOnShutdown(func() { close(a.httpClosing) })
		g.Go(func() error {
			<-gctx.Done()
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(shut)
		})
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return unexpected("HTTP server on "+a.Cfg.HTTPAddr, err)
			}
			return nil
		})
		what := "HTTP API listening"
		if !ServesAPI(roles) {
			what = "probes and metrics listening"
		}
		a.Log.Info().Str("addr", ln.Addr().String()).Msg(what)
	}
	if a.Cfg.PprofAddr != "" {
		a.servePprof(gctx)
	}
	a.Log.Info().Str("nats", a.Broker.ClientURL()).Strs("roles", roleNames(roles)).Msg("started")
	return nil
}

func roleNames(roles []Role) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
	}
	return out
}

// handler is what the process serves over HTTP: the API of its roles
// behind the API keys (reads and writes on one server when both run here),
// or only the probes for a process with no API; /metrics on every one.
func (a *App) handler(roles []Role) (http.Handler, error) {
	var api http.Handler
	switch reads, writes := slices.Contains(roles, Projector), slices.Contains(roles, Gateway); {
	case reads && writes:
		api = a.AllHTTP()
	case reads:
		api = a.ReadHTTP()
	case writes:
		api = a.WriteHTTP()
	default:
		api = a.probes()
	}
	if ServesAPI(roles) {
		keys, err := a.apiKeys()
		if err != nil {
			return nil, err
		}
		api = auth.Middleware(keys, api)
	}
	mux := http.NewServeMux()
	a.mountMetrics(mux)
	if slices.Contains(roles, Projector) {
		a.mountDashboard(mux)
	}
	// The trace of a request goes on into what it publishes (an import
	// request, an interrupt); its span is named by its route, once the
	// routes have matched it. The probes are not traced.
	traced := otelhttp.NewHandler(api, "inlet-api",
		otelhttp.WithFilter(func(r *http.Request) bool { return !auth.Open(r.URL.Path) }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if route := httpapi.Route(r.Context()); route != "" {
				return route
			}
			return r.Method + " (no route)"
		}))
	mux.Handle("/", a.Metrics.InstrumentHTTP(traced))
	return mux, nil
}

// ServesAPI reports whether roles serve the HTTP API (else the process
// serves only its probes and metrics).
func ServesAPI(roles []Role) bool {
	return slices.Contains(roles, Projector) || slices.Contains(roles, Gateway)
}

// servePprof exposes the runtime profiles on their own address, never on the API's.
func (a *App) servePprof(ctx context.Context) {
	// Blocking events of 1 ms and more, and one contended mutex in 100: enough to see waits, cheap to keep on.
	runtime.SetBlockProfileRate(int(time.Millisecond))
	runtime.SetMutexProfileFraction(100)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: a.Cfg.PprofAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.Log.Error().Err(err).Str("addr", a.Cfg.PprofAddr).Msg("pprof server stopped")
		}
	}()
}

// Describe says what service is, for its help.
func Describe(service string) string {
	switch service {
	case "inlet":
		return "The all-in-one Inlet server: embedded NATS, every phase, the status projector and the HTTP API in one process."
	case "gateway":
		return "Inlet's write API: creates imports, takes uploads and interrupts."
	case "projector":
		return "Inlet's status projector and read API: builds the import views from the events."
	case "webhooks":
		return "Inlet's webhooks service: delivers the events of each organization's imports to the HTTP endpoints it subscribed, signed, with retries."
	}
	return "The " + service + " phase of the Inlet import pipeline (one durable JetStream consumer shared by every replica)."
}
