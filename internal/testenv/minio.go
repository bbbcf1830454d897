package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// MinIO is a running MinIO server: plain HTTP on 127.0.0.1.
type MinIO struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
}

// ErrMinIOBinaryNotFound means no MinIO server binary was found; StartMinIO
// turns it into a skip (or a failure under CI=true).
var ErrMinIOBinaryNotFound = errors.New("testenv: minio binary not found (set INLET_MINIO_BIN, or run `make bin/minio` to build <repo>/bin/minio)")

// minioReadyTimeout is generous because the first start on 2 busy cores
// (format of the data dir, IAM bootstrap) can take several seconds.
const minioReadyTimeout = 60 * time.Second

// StartMinIO runs a throw-away MinIO server for the test and stops it in
// t.Cleanup. Without a binary the test is skipped, except under CI=true where
// a missing server must not turn the S3 tests silently green.
func StartMinIO(t testing.TB) MinIO {
	t.Helper()
	return StartMinIOWith(t, nil)
}

// StartMinIOWith is StartMinIO with extra environment for the server, e.g.
// a bucket notification target:
//
//	MINIO_NOTIFY_NATS_ENABLE_INLET=on
//	MINIO_NOTIFY_NATS_ADDRESS_INLET=127.0.0.1:4222
//	MINIO_NOTIFY_NATS_SUBJECT_INLET=inlet.work.uploads
//	MINIO_NOTIFY_NATS_JETSTREAM_INLET=on
//
// (target ARN arn:minio:sqs::INLET:nats). MinIO connects to such a target
// at start-up and refuses to start when it cannot; with JetStream on it
// publishes with a JetStream ack, so the stream holding the subject must
// exist before an object is written.
func StartMinIOWith(t testing.TB, env map[string]string) MinIO {
	t.Helper()
	m, stop, err := StartMinIOProcessWith(t.TempDir(), env)
	if errors.Is(err, ErrMinIOBinaryNotFound) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI=true requires it", err)
		}
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return m
}

// StartMinIOProcess starts MinIO with its data and log under dir and returns
// a stop function that kills it and waits for it to exit. The server's output
// goes to dir/minio.log, and is quoted in the error if it does not start.
func StartMinIOProcess(dir string) (MinIO, func(), error) {
	return StartMinIOProcessWith(dir, nil)
}

// StartMinIOProcessWith is StartMinIOProcess with extra environment (see
// StartMinIOWith).
func StartMinIOProcessWith(dir string, env map[string]string) (MinIO, func(), error) {
	bin, err := minioBinary()
	if err != nil {
		return MinIO{}, nil, err
	}
	var lastErr error
	// Free ports are found by binding and releasing, so another process can
	// take one before MinIO binds it; a few attempts make that race harmless.
	for attempt := range 3 {
		m, stop, err := minioStartOnce(bin, filepath.Join(dir, fmt.Sprintf("minio-%d", attempt)), env)
		if err == nil {
			return m, stop, nil
		}
		lastErr = err
		if !errors.Is(err, errMinIOExited) {
			break
		}
	}
	return MinIO{}, nil, lastErr
}

var errMinIOExited = errors.New("minio exited before it was ready")

func minioStartOnce(bin, dir string, env map[string]string) (MinIO, func(), error) {
	m, _, stop, err := minioStart(bin, dir, env, MinIO{}, 0)
	return m, stop, err
}

// minioStart starts MinIO with its data and log under dir, as m (address
// and credentials) when m is given, else on free ports with a new secret.
func minioStart(bin, dir string, env map[string]string, m MinIO, consolePort int) (MinIO, int, func(), error) {
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return MinIO{}, 0, nil, fmt.Errorf("testenv: minio data dir: %w", err)
	}
	logPath := filepath.Join(dir, "minio.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return MinIO{}, 0, nil, fmt.Errorf("testenv: minio log: %w", err)
	}
	if m.Endpoint == "" {
		apiPort, err := minioFreePort()
		if err != nil {
			logFile.Close()
			return MinIO{}, 0, nil, err
		}
		if consolePort, err = minioFreePort(); err != nil {
			logFile.Close()
			return MinIO{}, 0, nil, err
		}
		m = MinIO{
			Endpoint:  fmt.Sprintf("127.0.0.1:%d", apiPort),
			AccessKey: "inlet-test",
			SecretKey: minioRandomSecret(),
		}
	}
	cmd := exec.Command(bin, "server", dataDir,
		"--address", m.Endpoint,
		"--console-address", fmt.Sprintf("127.0.0.1:%d", consolePort))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		// Tests keep their data in a temp dir that may sit on the root
		// drive, which MinIO otherwise refuses outside CI/CD mode.
		"MINIO_CI_CD=on",
	)
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return MinIO{}, 0, nil, fmt.Errorf("testenv: start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		// SIGKILL: the data is throw-away, and a graceful stop can take
		// seconds per server across many test packages.
		cmd.Process.Kill()
		<-exited
	}

	ctx, cancel := context.WithTimeout(context.Background(), minioReadyTimeout)
	defer cancel()
	// /minio/health/live (and /ready) answer 200 as soon as the HTTP server
	// listens, before the object layer and IAM are initialized; requests
	// then fail with "Server not initialized yet". /minio/health/cluster
	// answers 200 only once those are up, so wait for both in turn.
	client := &http.Client{Timeout: 2 * time.Second}
	for _, path := range []string{"/minio/health/live", "/minio/health/cluster"} {
		url := "http://" + m.Endpoint + path
		for !minioGet200(ctx, client, url) {
			select {
			case <-exited:
				return MinIO{}, 0, nil, fmt.Errorf("testenv: %w (%v); output:\n%s", errMinIOExited, waitErr, minioTail(logPath))
			case <-ctx.Done():
				stop()
				return MinIO{}, 0, nil, fmt.Errorf("testenv: minio at %s: %s not 200 after %s; output:\n%s", m.Endpoint, path, minioReadyTimeout, minioTail(logPath))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return m, consolePort, stop, nil
}

// MinIOServer is a MinIO process a test stops (SIGKILL, as a crash would)
// and starts again on the same address, credentials and data.
type MinIOServer struct {
	MinIO
	bin, dir    string
	env         map[string]string
	consolePort int
	mu          sync.Mutex
	stop        func()
}

// StartMinIOServer is StartMinIOWith, restartable.
func StartMinIOServer(t testing.TB, env map[string]string) *MinIOServer {
	t.Helper()
	bin, err := minioBinary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI=true requires it", err)
		}
		t.Skip(err.Error())
	}
	s := &MinIOServer{bin: bin, dir: t.TempDir(), env: env}
	t.Cleanup(s.Stop)
	var lastErr error
	for range 3 { // a free port can be taken before MinIO binds it
		s.MinIO = MinIO{}
		if lastErr = s.Start(); lastErr == nil || !errors.Is(lastErr, errMinIOExited) {
			break
		}
	}
	if lastErr != nil {
		t.Fatal(lastErr)
	}
	return s
}

// Start starts the server (again) and waits until it serves requests.
func (s *MinIOServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return nil
	}
	if s.consolePort == 0 && s.Endpoint != "" {
		return errors.New("testenv: minio: no console port")
	}
	m, console, stop, err := minioStart(s.bin, s.dir, s.env, s.MinIO, s.consolePort)
	if err != nil {
		return err
	}
	s.MinIO, s.consolePort, s.stop = m, console, stop
	return nil
}

// Stop kills the server and waits for it to exit.
func (s *MinIOServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
}

func minioGet200(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// minioBinary looks in $INLET_MINIO_BIN, <repo>/bin/minio, then PATH.
// Only the last two count as "not installed" (ErrMinIOBinaryNotFound).
func minioBinary() (string, error) {
	if p := os.Getenv("INLET_MINIO_BIN"); p != "" {
		// An explicit path that is wrong is a mistake to report, not an
		// absent optional tool to skip over.
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("testenv: INLET_MINIO_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	if root, ok := minioRepoRoot(); ok {
		p := filepath.Join(root, "bin", "minio")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", ErrMinIOBinaryNotFound
}

// minioRepoRoot walks up from the working directory (a test runs in its
// package directory) to the directory holding go.work.
func minioRepoRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func minioFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testenv: find a free port for minio: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func minioRandomSecret() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// minioTail returns the end of the log: enough to see why it failed without
// flooding the test output.
func minioTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no output: " + err.Error() + ")"
	}
	const limit = 8 << 10
	if len(b) > limit {
		b = b[len(b)-limit:]
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(no output)"
	}
	return s
}
