package testenv

import (
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStartMinIOProcess(t *testing.T) {
	if _, err := minioBinary(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	m, stop, err := StartMinIOProcess(dir)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + m.Endpoint + "/minio/health/cluster")
	if err != nil {
		stop()
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		stop()
		t.Fatalf("cluster health after start: %s", resp.Status)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*", "minio.log"))
	if len(logs) != 1 {
		stop()
		t.Fatalf("want the server's output in one minio.log under %s, found %v", dir, logs)
	}
	stop()
	stop() // idempotent: cleanup paths may call it twice
	if c, err := net.DialTimeout("tcp", m.Endpoint, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after stop", m.Endpoint)
	}
}

func TestMinIOBinaryFromEnv(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-minio")
	t.Setenv("INLET_MINIO_BIN", missing)
	_, _, err := StartMinIOProcess(t.TempDir())
	if err == nil || errors.Is(err, ErrMinIOBinaryNotFound) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("StartMinIOProcess with a wrong INLET_MINIO_BIN = %v, want an error naming the path that is not a skip", err)
	}
}

func TestMinIONotInstalled(t *testing.T) {
	// Outside the repository and with an empty PATH nothing can be found.
	t.Setenv("INLET_MINIO_BIN", "")
	t.Setenv("PATH", "")
	t.Chdir(t.TempDir())
	_, _, err := StartMinIOProcess(t.TempDir())
	if !errors.Is(err, ErrMinIOBinaryNotFound) {
		t.Fatalf("StartMinIOProcess without a binary = %v, want ErrMinIOBinaryNotFound", err)
	}
	if !strings.Contains(err.Error(), "make bin/minio") {
		t.Fatalf("error %q does not say how to build the binary", err)
	}
}

func TestMinIOStartFailureShowsOutput(t *testing.T) {
	// A binary that exits at once: the error must carry its output.
	bin := filepath.Join(t.TempDir(), "fake-minio")
	script := "#!/bin/sh\necho 'fake minio: cannot start' >&2\nexit 3\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("INLET_MINIO_BIN", bin)
	_, _, err := StartMinIOProcess(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "fake minio: cannot start") {
		t.Fatalf("StartMinIOProcess with a failing binary = %v, want its output in the error", err)
	}
}
