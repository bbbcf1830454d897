// Command inlet is the all-in-one Inlet server: embedded NATS (its client port
// open on INLET_NATS_LISTEN so other processes can join), every phase, the
// status projector and the whole HTTP API in one process.
//
//	inlet                      serve until interrupted
//	inlet -demo a.csv,b.csv    also import these files (resource = file name)
//	                           through the API and print each finished import
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/internal/app"
)

func main() {
	demo := flag.String("demo", "", "comma-separated files to import once the server is up")
	flag.Usage = func() { app.Usage(flag.CommandLine.Output(), "inlet", flag.CommandLine) }
	flag.Parse()
	if err := run(*demo); err != nil {
		fmt.Fprintf(os.Stderr, "inlet: %v\n", err)
		os.Exit(1)
	}
}

func run(demo string) error {
	cfg, err := app.ConfigFromEnv()
	if err != nil {
		return err
	}
	app.TuneGC(app.AllInOneMemory)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(ctx, cfg, "inlet")
	if err != nil {
		return err
	}
	defer a.Close()
	// A failed demo stops the server too: the process exits non-zero.
	g, ctx := errgroup.WithContext(ctx)
	if err := a.Start(ctx, app.Everything...); err != nil {
		return err
	}
	if !cfg.Embedded() {
		a.Log.Info().Msg("joined an external NATS server")
	}
	g.Go(a.Wait)
	if demo != "" {
		g.Go(func() error {
			if err := runDemo(ctx, "http://"+cfg.HTTPAddr, strings.Split(demo, ",")); err != nil {
				return err
			}
			fmt.Printf("\nInlet is serving on http://%s (NATS %s). Try:\n  curl -s http://%s/v1/imports | head -c 600\nCtrl-C stops it.\n",
				cfg.HTTPAddr, a.Broker.ClientURL(), cfg.HTTPAddr)
			return nil
		})
	}
	return g.Wait()
}
