package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// runDemo imports each file through the HTTP API with the Go client, the way
// a user's program would, and prints the finished import objects.
func runDemo(ctx context.Context, base string, files []string) error {
	c := client.New(nil, base)
	if err := waitReady(ctx, c); err != nil {
		return err
	}
	for _, f := range files {
		imp, err := importFile(ctx, c, f)
		if err != nil {
			return fmt.Errorf("demo import of %s: %w", f, err)
		}
		out, _ := json.MarshalIndent(imp, "", "  ")
		fmt.Printf("\n=== %s → import %s: %s ===\n%s\n", filepath.Base(f), imp.ID, imp.Status, out)
		s := imp.Stats
		fmt.Printf("total %d: created %d, updated %d, unchanged %d, skipped %d, failed %d\n",
			s.Total, s.Created, s.Updated, s.Unchanged, s.Skipped, s.Failed)
		if s.Failed+s.Skipped > 0 {
			fmt.Printf("--- %s ---\n", imp.Links.ErrorsCSV)
			if err := c.ErrorsCSV(ctx, imp.ID, os.Stdout); err != nil {
				fmt.Printf("(%v)\n", err)
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

func importFile(ctx context.Context, c *client.Client, path string) (events.Import, error) {
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
