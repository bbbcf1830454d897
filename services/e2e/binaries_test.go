package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Every binary answers --help and exits, starting nothing (issue 7: --help
// started the service, and the all-in-one an embedded NATS on 4222 sharing
// the data directory of a running server); the help of every command that
// serves lists its settings with their variables. inlet's own help lists
// its commands, and every command answers --help.
func TestEveryBinaryAnswersHelp(t *testing.T) {
	cases := map[string][]string{}
	for _, service := range allBins {
		cases[service] = []string{"--help"}
	}
	for _, cmd := range []string{"serve", "import", "status", "list", "watch", "errors", "interrupt", "resources", "records"} {
		cases["inlet "+cmd] = []string{cmd, "--help"}
	}
	for name, args := range cases {
		service, command, _ := strings.Cut(name, " ")
		t.Run(name, func(t *testing.T) {
			bin, err := Binary(service)
			if err != nil {
				t.Fatal(err)
			}
			data := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Env = append(os.Environ(), "INLET_DATA_DIR="+data, fmt.Sprintf("INLET_NATS_LISTEN=127.0.0.1:%d", FreePort(t)))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("--help: %v (%s)\n%s", err, ctx.Err(), out.String())
			}
			want := []string{"Usage: " + strings.Join(append([]string{service}, args[:len(args)-1]...), " "), "INLET_"}
			switch {
			case service == "inlet" && command == "":
				want = []string{"Usage: inlet <command>", "import", "watch", "records"}
			case service == "inlet" && command != "serve":
				want = append(want[:1], "INLET_SERVER")
			}
			for _, w := range want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("%v printed no %q:\n%s", args, w, out.String())
				}
			}
			if entries, _ := os.ReadDir(data); len(entries) != 0 {
				t.Errorf("--help wrote %d entries into the data directory", len(entries))
			}
		})
	}
}

// A service whose HTTP port is taken exits non-zero, saying why, instead of
// running without its API (issue 7).
func TestTakenHTTPPortExitsNonZero(t *testing.T) {
	bin, err := Binary("inlet")
	if err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INLET_") {
			env = append(env, kv)
		}
	}
	resources, _ := filepath.Abs(filepath.Join("..", "..", "resources"))
	cmd.Env = append(env, "INLET_DATA_DIR="+t.TempDir(), "INLET_RESOURCES_DIR="+resources,
		"INLET_HTTP_ADDR="+taken.Addr().String(), fmt.Sprintf("INLET_NATS_LISTEN=127.0.0.1:%d", FreePort(t)))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("still running after %s with its port taken:\n%s", 60*time.Second, out.String())
	}
	if err == nil || !strings.Contains(out.String(), "address already in use") {
		t.Fatalf("exit %v, want non-zero naming the taken address:\n%s", err, out.String())
	}
}
