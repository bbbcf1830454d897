// Command inlet is the all-in-one Inlet server (embedded NATS, every phase,
// the status projector and the HTTP API in one process) and the command
// line of any Inlet deployment: inlet --help lists its commands.
package main

import "github.com/inlet-dev/inlet/internal/cli"

func main() { cli.Main() }
