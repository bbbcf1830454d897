package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/auth"
)

// Main runs one service until SIGINT/SIGTERM: a phase name, "projector",
// "gateway", or "inlet" (everything in one process). It takes no flags but
// -h/--help, which describes it and exits: it is configured by its
// environment (README, "Configuration").
func Main(service string) {
	fs := flag.NewFlagSet(service, flag.ExitOnError)
	fs.Usage = func() { Usage(fs.Output(), service, fs) }
	_ = fs.Parse(os.Args[1:]) // exits 0 on -h/--help, 2 on anything else it does not know
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "%s: unexpected argument %q\n", service, fs.Arg(0))
		fs.Usage()
		os.Exit(2)
	}
	if err := run(service); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", service, err)
		os.Exit(1)
	}
}

func run(service string) error {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return err
	}
	TuneGC(ServiceMemory)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := New(ctx, cfg, service)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Start(ctx, service); err != nil {
		return err
	}
	<-ctx.Done()
	a.Log.Info().Msg("shutting down")
	return nil
}

// Start runs service's handlers and HTTP server in the background.
func (a *App) Start(ctx context.Context, service string) error {
	var handler http.Handler
	switch service {
	case "inlet":
		for _, p := range events.Phases {
			if err := a.AddPhase(p); err != nil {
				return err
			}
		}
		if err := a.runProjector(ctx); err != nil {
			return err
		}
		handler = a.AllHTTP()
	case "projector":
		if err := a.runProjector(ctx); err != nil {
			return err
		}
		handler = a.ReadHTTP()
	case "gateway":
		handler = a.WriteHTTP()
	default:
		if err := a.AddPhase(service); err != nil {
			return err
		}
	}
	if handler != nil {
		keys, err := a.apiKeys()
		if err != nil {
			return err
		}
		handler = auth.Middleware(keys, handler)
	}
	var ln net.Listener
	if handler != nil {
		// Take the port before consuming anything: a taken port fails the
		// start (the process exits non-zero, saying so) instead of leaving a
		// service running without its API.
		var err error
		if ln, err = net.Listen("tcp", a.Cfg.HTTPAddr); err != nil {
			return fmt.Errorf("HTTP API: %w", err)
		}
	}
	go func() {
		err := a.RunRouter(ctx)
		if ctx.Err() == nil {
			// Every subscription ended without being asked to: exit so the
			// supervisor restarts the process instead of leaving it idle.
			a.Log.Error().Err(err).Msg("message router stopped unexpectedly")
			os.Exit(1)
		}
	}()
	select {
	case <-a.RouterRunning():
	case <-ctx.Done():
		if ln != nil {
			ln.Close()
		}
		return ctx.Err()
	}
	if handler != nil {
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			<-ctx.Done()
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shut)
		}()
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.Log.Error().Err(err).Str("addr", a.Cfg.HTTPAddr).Msg("HTTP server stopped")
				os.Exit(1) // a service without its API: let the supervisor restart it
			}
		}()
		a.Log.Info().Str("addr", ln.Addr().String()).Msg("HTTP API listening")
	}
	if a.Cfg.PprofAddr != "" {
		a.servePprof(ctx)
	}
	a.Log.Info().Str("nats", a.Broker.ClientURL()).Msg("started")
	return nil
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

// Usage describes service on w: what it is, that the environment configures
// it, and its flags.
func Usage(w io.Writer, service string, fs *flag.FlagSet) {
	what := "the " + service + " phase of the Inlet import pipeline (one durable JetStream consumer shared by every replica)"
	switch service {
	case "inlet":
		what = "the all-in-one Inlet server: embedded NATS, every phase, the status projector and the HTTP API in one process"
	case "gateway":
		what = "Inlet's write API: creates imports, takes uploads and interrupts"
	case "projector":
		what = "Inlet's status projector and read API: builds the import views from the events"
	}
	fmt.Fprintf(w, "%s: %s.\n\nUsage: %s [flags]\n\nConfigured by its environment (INLET_NATS_URL, INLET_STORE_URL, INLET_BLOB_URL,\nINLET_HTTP_ADDR, INLET_BATCH_SIZE, INLET_CONCURRENCY, ...): see the README, \"Configuration\".\n\nFlags:\n", service, what, service)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintln(w, "  -h, -help\n    \tshow this help")
}
