package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/app"
	"github.com/inlet-dev/inlet/internal/telemetry"
	"github.com/inlet-dev/inlet/pkg/client"
)

// ServeCmd runs the all-in-one server.
type ServeCmd struct {
	app.Config `embed:""`
	Demo       []string `name:"demo" sep:"," type:"existingfile" group:"Serving" help:"Files to import once the server is up (resource = file name), printing each finished import."`
}

// Run serves until interrupted, or until a demo import fails.
func (s *ServeCmd) Run(env *Env) error {
	cfg := s.Config
	if err := cfg.Finish(true); err != nil {
		return err
	}
	app.TuneGC(app.AllInOneMemory)
	shutdown, err := telemetry.Setup(env.Ctx, "inlet")
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer shutdown(context.WithoutCancel(env.Ctx))
	a, err := app.New(env.Ctx, cfg, "inlet")
	if err != nil {
		return err
	}
	defer a.Close()
	// A failed demo stops the server too: the process exits non-zero.
	g, ctx := errgroup.WithContext(env.Ctx)
	if err := a.Start(ctx, app.Everything...); err != nil {
		return err
	}
	if !cfg.Embedded() {
		a.Log.Info().Msg("joined an external NATS server")
	}
	g.Go(a.Wait)
	if len(s.Demo) > 0 {
		base := "http://" + a.Addr().String()
		g.Go(func() error {
			if err := runDemo(ctx, env, base, s.Demo); err != nil {
				return err
			}
			fmt.Fprintf(env.Out, "\nInlet is serving on %s (NATS %s). Try:\n  inlet list\n  curl -s %s/v1/imports | head -c 600\nCtrl-C stops it.\n",
				base, a.Broker.ClientURL(), base)
			return nil
		})
	}
	return g.Wait()
}

// runDemo imports each file through the HTTP API with the Go client, the way
// a user's program would, and prints the finished import objects.
func runDemo(ctx context.Context, env *Env, base string, files []string) error {
	c := client.New(nil, base)
	if err := waitReady(ctx, c); err != nil {
		return err
	}
	for _, f := range files {
		imp, err := demoImport(ctx, c, f)
		if err != nil {
			return fmt.Errorf("demo import of %s: %w", f, err)
		}
		out, _ := json.MarshalIndent(imp, "", "  ")
		fmt.Fprintf(env.Out, "\n=== %s → import %s: %s ===\n%s\n", filepath.Base(f), imp.ID, imp.Status, out)
		printStats(env.Out, imp)
		if imp.Stats.Failed+imp.Stats.Skipped > 0 {
			fmt.Fprintf(env.Out, "--- %s ---\n", imp.Links.ErrorsCSV)
			if err := c.ErrorsCSV(ctx, imp.ID, env.Out); err != nil {
				fmt.Fprintf(env.Out, "(%v)\n", err)
			}
		}
	}
	return nil
}

func waitReady(ctx context.Context, c *client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		err := c.Ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("/readyz did not answer 200 within 30s: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func demoImport(ctx context.Context, c *client.Client, path string) (events.Import, error) {
	f, err := os.Open(path)
	if err != nil {
		return events.Import{}, err
	}
	defer f.Close()
	name := filepath.Base(path)
	created, err := c.Create(ctx, client.CreateRequest{
		Options: events.Options{
			Resource: strings.TrimSuffix(name, filepath.Ext(name)),
			Name:     "demo: " + name,
			// The sample holds a row of every fate, more failures than the
			// default 10% error threshold allows: import the valid rows and
			// report the rest.
			SkipErrors: true,
		},
		File: &client.File{Name: name, Body: f},
	})
	if err != nil {
		return events.Import{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return c.Wait(ctx, created.ID)
}
