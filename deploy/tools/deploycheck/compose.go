package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

// composeCmd loads a compose file as `docker compose config` does: the
// compose specification's schema, anchors and merges, interpolation, and
// every service's references (depends_on, volumes, networks).
func composeCmd(args []string) error {
	if len(args) != 1 {
		return errors.New("compose: want one file")
	}
	file, err := filepath.Abs(args[0])
	if err != nil {
		return err
	}
	opts, err := cli.NewProjectOptions([]string{file}, cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithOsEnv, cli.WithName("inlet-check"))
	if err != nil {
		return err
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	built := 0
	for name, s := range p.Services {
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
			return fmt.Errorf("%s: service %s has no health check", args[0], name)
		}
		if s.Build != nil {
			built++
		}
	}
	if built != 1 {
		return fmt.Errorf("%s: %d services build an image, want one (the others run it)", args[0], built)
	}
	fmt.Printf("deploycheck: %s loads (%d services)\n", args[0], len(p.Services))
	return nil
}
