// Package cli is the inlet command: the all-in-one server (serve, the
// default) and the commands a user runs against any Inlet deployment over
// its HTTP API (import, retry, status, list, watch, errors, interrupt, resources,
// records). Flags and environment variables are read by kong; progress is
// drawn by mpb.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/mattn/go-isatty"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/app"
	"github.com/inlet-dev/inlet/pkg/client"
)

// CLI is every command of inlet.
type CLI struct {
	Serve     ServeCmd     `cmd:"" default:"withargs" help:"Run the all-in-one server: embedded NATS, every phase, the projector and the HTTP API (the default command)."`
	Import    ImportCmd    `cmd:"" help:"Import a file and follow it to its end: a progress bar per phase, then the stats. Exits 0 only when the import completed."`
	Status    StatusCmd    `cmd:"" help:"Show one import: status, phases, stats."`
	List      ListCmd      `cmd:"" help:"List imports, newest first."`
	Watch     WatchCmd     `cmd:"" help:"Follow an import to its end with a progress bar per phase. Exits 0 only when it completed."`
	Errors    ErrorsCmd    `cmd:"" help:"Download an import's rejected rows (errors.csv, or errors.json with --json)."`
	Retry     RetryCmd     `cmd:"" help:"Run a finished import's failed rows again as a child import (as they were, or from a corrected errors.csv) and follow it. Exits 0 only when it completed."`
	Interrupt InterruptCmd `cmd:"" help:"Ask a running import to stop at its next batch boundary."`
	Revert    RevertCmd    `cmd:"" help:"Undo a finished import: put every record it changed back as it was, then follow the revert to its end. Exits 0 only when it completed."`
	Resources ResourcesCmd `cmd:"" help:"List the resources the server imports."`
	Records   RecordsCmd   `cmd:"" help:"List a resource's stored records, or find them by key."`
	Webhooks  WebhooksCmd  `cmd:"" help:"Manage the organization's webhooks: create, list, update, delete, enable, disable, deliveries, redeliver."`
}

// Main runs inlet with the process's arguments and exits with its status.
func Main() {
	os.Exit(Run(os.Args[1:], os.Stdout, os.Stderr))
}

// Run runs inlet with args, writing to stdout and stderr, and returns the
// exit status: 0, 1 when the command failed (an import that did not
// complete is a failure), 80 for a usage error.
func Run(args []string, stdout, stderr io.Writer) int {
	var cli CLI
	exit := -1
	parser, err := kong.New(&cli, kong.Name("inlet"),
		kong.Description("Inlet imports files of records: CSV, JSON, JSONL, XLSX. With no command it runs the all-in-one server."),
		kong.UsageOnError(), kong.ConfigureHelp(kong.HelpOptions{Compact: true}), app.Vars, optionVars(),
		kong.Writers(stdout, stderr), kong.Exit(func(code int) { exit = code; panic(exitPanic{}) }))
	if err != nil {
		fmt.Fprintf(stderr, "inlet: %v\n", err)
		return 1
	}
	code := func() (code int) {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(exitPanic); !ok {
					panic(r)
				}
				code = exit
			}
		}()
		kctx, err := app.Parse(parser, args)
		parser.FatalIfErrorf(err)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		env := &Env{Ctx: ctx, Out: stdout, Err: stderr}
		if err := kctx.Run(env); err != nil {
			var failed importNotCompleted
			if !errors.As(err, &failed) {
				fmt.Fprintf(stderr, "inlet: %v\n", err)
			}
			return 1
		}
		return 0
	}()
	return code
}

// optionVars are the values of the import options, for the flags' enums
// and defaults (the default is the first of each list).
func optionVars() kong.Vars {
	vars := kong.Vars{}
	add := func(name, plural string, values []string) {
		vars[name], vars[plural] = values[0], strings.Join(values, ",")
	}
	add("mode", "modes", valuesOf(events.Modes))
	add("format", "formats", valuesOf(events.Formats))
	add("action", "actions", valuesOf(events.Actions))
	add("duplicate_handling", "duplicate_handlings", valuesOf(events.DuplicateHandlings))
	add("upload_mode", "upload_modes", valuesOf(events.UploadModes))
	add("status", "statuses", valuesOf(events.Statuses))
	vars["webhook_events"] = strings.Join(events.WebhookEvents, ", ")
	return vars
}

func valuesOf[T ~string](list []T) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = string(v)
	}
	return out
}

// exitPanic unwinds Run when kong exits (after --help, or a usage error),
// so that Run returns the status instead of ending the process.
type exitPanic struct{}

// Env is what every command runs with.
type Env struct {
	Ctx context.Context
	Out io.Writer
	Err io.Writer
}

// terminal reports whether w is a terminal (progress bars, colours) rather
// than a file or a pipe (plain lines).
func terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// Server is how a command reaches an Inlet deployment.
type Server struct {
	Server     string        `name:"server" short:"s" env:"INLET_SERVER" default:"http://127.0.0.1:8080" group:"Server" help:"Base URL of the Inlet API (the gateway, or the all-in-one server)."`
	ReadServer string        `name:"read-server" env:"INLET_READ_SERVER" group:"Server" help:"Base URL of the read API when the projector is served apart from the gateway (default: --server)."`
	APIKey     string        `name:"api-key" env:"INLET_API_KEY" group:"Server" help:"API key (sent as Authorization: Bearer); not needed on the embedded default."`
	Org        string        `name:"org" env:"INLET_ORG" group:"Server" help:"Organization to act for (X-Organization-Id); with an API key, the key's own."`
	Timeout    time.Duration `name:"http-timeout" default:"2m" group:"Server" help:"Timeout of one HTTP call (an upload's included)."`
}

// client is the Go client for the server's flags.
func (s Server) client() *client.Client {
	c := client.New(nil, s.Server)
	c.ReadURL, c.APIKey, c.Org = s.ReadServer, s.APIKey, s.Org
	c.HTTP = &http.Client{Timeout: s.Timeout}
	return c
}

// readBase is where reads go.
func (s Server) readBase() string {
	if s.ReadServer != "" {
		return s.ReadServer
	}
	return s.Server
}

// printJSON writes v indented, for --json outputs.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printLine writes v as one line of JSON.
func printLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
