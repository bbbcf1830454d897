package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// versionsCmd holds the images to the versions the code is built and tested
// with: the Go image to go.work's go line, every NATS image to the
// nats-server that internal/go.mod embeds.
func versionsCmd(args []string) error {
	if len(args) != 1 {
		return errors.New("versions: want the repository root")
	}
	root := args[0]
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			panic(err)
		}
		return string(b)
	}
	goVersion := find(read("go.work"), `(?m)^go (\S+)$`)
	natsVersion := find(read("internal/go.mod"), `github\.com/nats-io/nats-server/v2 v(\S+)`)
	if goVersion == "" || natsVersion == "" {
		return errors.New("versions: no go line in go.work or no nats-server in internal/go.mod")
	}
	var errs []error
	check := func(file, re, want string) {
		if got := find(read(file), re); got != want {
			errs = append(errs, fmt.Errorf("%s: %q, want %q", file, got, want))
		}
	}
	check("deploy/Dockerfile", `(?m)^FROM golang:([0-9.]+)`, goVersion)
	check("docker-compose.yml", `image: nats:([0-9.]+)`, natsVersion)
	check("deploy/k8s/nats/values.yaml", `(?m)^\s+tag: ([0-9.]+)-alpine`, natsVersion)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	fmt.Printf("deploycheck: images at Go %s and nats-server %s\n", goVersion, natsVersion)
	return nil
}

func find(s, re string) string {
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}
