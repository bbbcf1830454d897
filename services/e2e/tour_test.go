package e2e

import (
	"bufio"
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

// The README's tour works exactly as written on a fresh machine: the
// all-in-one server started as make run starts it (same flags, a fresh data
// directory), then every command of the tour's block, in order, in bash
// with errexit and pipefail, from a directory laid out as the repository.
func TestReadmeTour(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	need := func(what string, ok bool) {
		t.Helper()
		if ok {
			return
		}
		if os.Getenv("CI") == "true" {
			t.Fatal(what)
		}
		t.Skip(what)
	}
	_, err := exec.LookPath("curl")
	need("curl is missing (make deps installs it)", err == nil)
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:4222"} {
		l, err := net.Listen("tcp", addr)
		need(addr+" is taken: the tour uses the default ports ("+fmt.Sprint(err)+")", err == nil)
		l.Close()
	}
	readme, err := os.ReadFile(filepath.Join(RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- tour -->\n```sh\n")
	block, _, ok2 := strings.Cut(block, "```\n<!-- /tour -->")
	if !ok || !ok2 || strings.Count(block, "\n") < 10 {
		t.Fatal("README.md has no tour block between <!-- tour --> and <!-- /tour -->")
	}
	bin, err := Binary("inlet")
	if err != nil {
		t.Fatal(err)
	}
	// The repository as the tour sees it, with a fresh data directory.
	dir := t.TempDir()
	for name, target := range map[string]string{"bin": filepath.Dir(bin), "deploy": filepath.Join(RepoRoot(), "deploy"),
		"resources": filepath.Join(RepoRoot(), "resources")} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "INLET_DATA_DIR=" + filepath.Join(dir, "data")}

	// make run: the server, the samples imported, then it serves.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	server := exec.CommandContext(ctx, filepath.Join(dir, "bin", "inlet"), "--demo", "deploy/samples/companies.csv,deploy/samples/customers.csv")
	server.Dir, server.Env = dir, env
	out, err := server.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var serverLog bytes.Buffer
	server.Stderr = &serverLog
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer server.Wait()
	defer cancel()
	serving := make(chan struct{})
	var demo bytes.Buffer
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			demo.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "Inlet is serving on http://127.0.0.1:8080") {
				close(serving)
			}
		}
	}()
	select {
	case <-serving:
	case <-time.After(2 * time.Minute):
		t.Fatalf("make run's server did not finish its demo within 2 minutes:\n%s\n%s", demo.String(), serverLog.String())
	}

	tour := exec.Command("bash", "-euo", "pipefail", "-c", block)
	tour.Dir, tour.Env = dir, env
	got, err := tour.CombinedOutput()
	t.Logf("the tour printed:\n%s", got)
	if err != nil {
		t.Fatalf("the tour failed (%v); server log:\n%s", err, serverLog.String())
	}
	for _, want := range []string{
		"customers.csv", "company_code→companies.code", // list, resources
		"exit 1: nothing written", "error threshold exceeded", // the threshold
		"created 4, updated 0, unchanged 0, deleted 0, skipped 2, failed 3",                       // --skip-errors
		"email,external_id,name,age,vip,company_code,signed_up,_row,_phase,_code,_field,_message", // errors.csv
		`"email":"ada@example.com"`, // records --key
		`"status":"queued"`,         // the creates over HTTP
		"inlet_imports{status=\"completed\"}",
		"created 0, updated 0, unchanged 0, deleted 4, skipped 0, failed 0", // the revert
	} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("the tour's output lacks %q", want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "openapi.json")); err != nil || !bytes.Contains(b, []byte(`"openapi": "3.1`)) && !bytes.Contains(b, []byte(`"openapi":"3.1`)) {
		t.Errorf("openapi.json: %v %.200s", err, b)
	}
}
