// Package e2e runs Inlet the way production does: every phase, the projector
// and the gateway as separate OS processes against a real NATS JetStream
// server, MinIO and PostgreSQL, and checks imports end to end through the
// public HTTP API. Cluster is the harness; tests and benchmarks share it.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/openapi"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/topology"
	"github.com/inlet-dev/inlet/pkg/client"
)

// PhaseServices are the seven phase binaries, in pipeline order.
var PhaseServices = events.Phases

// HTTPServices are the binaries that serve HTTP.
var HTTPServices = []string{"projector", "gateway"}

// WorkerServices are the binaries besides the phases that serve only their
// probes and metrics.
var WorkerServices = []string{"webhooks"}

// Bucket is the blob bucket every process uses.
const Bucket = "inlet"

// RepoRoot is the directory holding go.work.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BinDir is where the service binaries are: $INLET_BIN_DIR when set (make
// test builds them there first), else a directory of this test process where
// they are built once from the working tree, so a stale <repo>/bin never
// stands in for the code under test.
func BinDir() string {
	if d := os.Getenv("INLET_BIN_DIR"); d != "" {
		return d
	}
	freshOnce.Do(func() {
		freshDir, freshErr = os.MkdirTemp("", "inlet-e2e-bin-")
	})
	return freshDir
}

var (
	buildMu   sync.Mutex
	built     = map[string]error{}
	allBins   = append(append(append(append([]string{}, PhaseServices...), HTTPServices...), WorkerServices...), "inlet")
	pollStep  = 50 * time.Millisecond
	freshOnce sync.Once
	freshDir  string
	freshErr  error
)

// Binary returns the path of service's binary. Under INLET_BIN_DIR a missing
// binary is built there; otherwise every service is built (once per test
// binary, in one go build) into BinDir.
func Binary(service string) (string, error) {
	dir := BinDir()
	if freshErr != nil {
		return "", freshErr
	}
	p := filepath.Join(dir, service)
	buildMu.Lock()
	defer buildMu.Unlock()
	if err, done := built[service]; done {
		return p, err
	}
	targets := []string{service}
	if os.Getenv("INLET_BIN_DIR") != "" {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			built[service] = nil
			return p, nil
		}
	} else {
		targets = allBins
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return p, err
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, t := range targets {
		args = append(args, "./"+t)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Join(RepoRoot(), "services")
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("go build %v: %v\n%s", targets, err, out)
	}
	for _, t := range targets {
		built[t] = err
	}
	return p, err
}

// Options tune a cluster.
type Options struct {
	BatchSize int    // INLET_BATCH_SIZE; default 100
	AckWait   string // INLET_ACK_WAIT; default 3s
	// LogLevel is INLET_LOG_LEVEL (default info).
	LogLevel string
	// Replicas per service (phases, projector, gateway); default 1 each.
	Replicas map[string]int
	// Quiet keeps log tails out of the output when the test fails.
	Quiet bool
	// Orgs get an API key each, besides DefaultOrgs: every HTTP call acts
	// for its organization's key (gateway and projector refuse to start
	// without keys when they join a NATS server).
	Orgs []string
	// Env adds environment variables per service; the service "*" means
	// every process.
	Env map[string]map[string]string
	// NATSNodes > 1 runs a NATS cluster of that many servers, every stream
	// replicated on three of them (INLET_NATS_REPLICAS=3).
	NATSNodes int
	// Postgres, when set, is the store's server (a test that stops and
	// starts it); else a database of the test binary's shared server.
	Postgres *testenv.PostgresServer
	// Resources adds resource definitions (file name → JSON) to a copy of
	// the repository's resources directory that every process loads.
	Resources map[string]string
}

// DefaultOrgs have an API key in every cluster.
var DefaultOrgs = []string{"default", "acme", "other", "clean",
	"kill-processing", "kill-transforming", "kill-prevalidation", "kill-projector"}

// KeyID and KeySecret are the API key of an organization in a cluster.
func KeyID(org string) string     { return "k-" + org }
func KeySecret(org string) string { return "e2e-" + org + "-secret-0123456789" }

// NotifyARN is the MinIO notification target that sends uploads to NATS.
const NotifyARN = "arn:minio:sqs::INLET:nats"

// Cluster is one running Inlet deployment.
type Cluster struct {
	T       testing.TB
	Opts    Options
	Dir     string
	NATS    *server.Server
	NATSURL string
	MinIO   testenv.MinIO
	// MinIOServer stops and starts MinIO (same address and data).
	MinIOServer *testenv.MinIOServer
	StoreURL    string
	NC          *nats.Conn
	// JS is NC's JetStream.
	JS jetstream.JetStream
	// NATSNodes are the servers of a NATS cluster (Options.NATSNodes).
	NATSNodes []*server.Server
	natsOpts  []*server.Options

	// HTTP is the client of every call; each answer of an Inlet route is
	// held to the API description (the test fails at its end on any that
	// disagrees).
	HTTP *http.Client
	// ResourcesDir is the resource registry every process loads.
	ResourcesDir string

	mu    sync.Mutex
	procs map[string]*Proc
	orgs  map[string]string // import id → organization
	keys  map[string]string // organization → API key secret

	evMu     sync.Mutex
	progress []events.BatchProgress
	evCh     chan struct{} // closed and replaced on every progress event
}

// Proc is one service process.
type Proc struct {
	Service string
	Replica int
	Addr    string // HTTP address: the API of projector and gateway, the probes and metrics of a phase
	LogPath string
	DataDir string
	Starts  int // how many times it was started

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	// PeakRSSKiB is VmHWM of the last run, read just before it was stopped.
	PeakRSSKiB int64
}

func procKey(service string, replica int) string { return service + "/" + strconv.Itoa(replica) }

// API reports whether p serves the HTTP API (a phase serves only its probes and metrics).
func (p *Proc) API() bool { return p.Service == "projector" || p.Service == "gateway" }

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartNATS runs an embedded JetStream server for the test.
func StartNATS(t testing.TB, dir string) *server.Server { return startNATSOn(t, dir, -1) }

func startNATSOn(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true,
		MaxPayload: 8 << 20,
	})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		t.Fatal("nats server not ready after 20s")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// startNATSCluster runs n clustered JetStream servers on fixed ports (so a
// node restarts where it was) and waits for the cluster's meta leader.
func (c *Cluster) startNATSCluster(n int) {
	t := c.T
	t.Helper()
	clientPorts, routePorts := make([]int, n), make([]int, n)
	var routes, urls []string
	for i := range n {
		clientPorts[i], routePorts[i] = FreePort(t), FreePort(t)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	for i := range n {
		c.natsOpts = append(c.natsOpts, &server.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: clientPorts[i],
			JetStream: true, StoreDir: filepath.Join(c.Dir, fmt.Sprintf("nats-%d", i)), NoSigs: true, NoLog: true,
			MaxPayload: 8 << 20,
			Cluster:    server.ClusterOpts{Name: "inlet", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		})
	}
	c.NATSNodes = make([]*server.Server, n)
	for i := range n {
		c.startNATSNode(i)
	}
	c.NATS = c.NATSNodes[0]
	c.NATSURL = strings.Join(urls, ",")
	c.waitJetStreamLeader()
	t.Cleanup(func() {
		for _, s := range c.NATSNodes {
			s.Shutdown()
			s.WaitForShutdown()
		}
	})
}

func (c *Cluster) startNATSNode(i int) {
	o := *c.natsOpts[i]
	s, err := server.NewServer(&o)
	if err != nil {
		c.T.Fatalf("nats node %d: %v", i, err)
	}
	go s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		c.T.Fatalf("nats node %d not ready after 20s", i)
	}
	c.NATSNodes[i] = s
}

func (c *Cluster) waitJetStreamLeader() {
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, s := range c.NATSNodes {
			if s.Running() && s.JetStreamIsLeader() {
				return
			}
		}
	}
	c.T.Fatal("the NATS cluster elected no JetStream leader in 60s")
}

// StopNATSNode shuts node i of the NATS cluster down.
func (c *Cluster) StopNATSNode(i int) {
	c.NATSNodes[i].Shutdown()
	c.NATSNodes[i].WaitForShutdown()
}

// StartNATSNode starts node i again, on its ports and files.
func (c *Cluster) StartNATSNode(i int) { c.startNATSNode(i) }

// RestartNATS stops the NATS server at once and starts it again on the same
// port and files, after whatever change to its files between the two.
func (c *Cluster) RestartNATS(meanwhile func(storeDir string)) {
	c.T.Helper()
	port := c.NATS.Addr().(*net.TCPAddr).Port
	dir := filepath.Join(c.Dir, "nats")
	c.NATS.Shutdown()
	c.NATS.WaitForShutdown()
	if meanwhile != nil {
		meanwhile(dir)
	}
	c.NATS = startNATSOn(c.T, dir, port)
}

// NewCluster starts NATS, MinIO, PostgreSQL and every service process, and
// waits until all of them are ready.
func NewCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.BatchSize == 0 {
		opts.BatchSize = 100
	}
	if opts.AckWait == "" {
		opts.AckWait = "3s"
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	for _, s := range allBins[:len(allBins)-1] {
		if _, err := Binary(s); err != nil {
			t.Fatal(err)
		}
	}
	c := &Cluster{
		T: t, Opts: opts, Dir: t.TempDir(), procs: map[string]*Proc{}, orgs: map[string]string{}, keys: map[string]string{},
		HTTP: openapi.Client(t, &http.Client{Timeout: 30 * time.Second}), evCh: make(chan struct{}),
	}
	for _, o := range append(append([]string{}, DefaultOrgs...), opts.Orgs...) {
		c.keys[o] = KeySecret(o)
	}
	c.ResourcesDir = filepath.Join(c.Dir, "resources")
	if err := copyResources(filepath.Join(RepoRoot(), "resources"), c.ResourcesDir, opts.Resources); err != nil {
		t.Fatal(err)
	}
	if opts.NATSNodes > 1 {
		c.startNATSCluster(opts.NATSNodes)
		if opts.Env == nil {
			opts.Env = map[string]map[string]string{}
		}
		if opts.Env["*"] == nil {
			opts.Env["*"] = map[string]string{}
		}
		opts.Env["*"]["INLET_NATS_REPLICAS"] = "3"
		c.Opts = opts
	} else {
		c.NATS = StartNATS(t, filepath.Join(c.Dir, "nats"))
		c.NATSURL = c.NATS.ClientURL()
	}
	// MinIO tells NATS about uploads through signed URLs (topology.UploadsSubject on
	// the INLET_WORK stream, which the projector provisions before any
	// object is written).
	c.MinIOServer = testenv.StartMinIOServer(t, map[string]string{
		"MINIO_NOTIFY_NATS_ENABLE_INLET":    "on",
		"MINIO_NOTIFY_NATS_ADDRESS_INLET":   strings.TrimPrefix(strings.Split(c.NATSURL, ",")[0], "nats://"),
		"MINIO_NOTIFY_NATS_SUBJECT_INLET":   topology.UploadsSubject,
		"MINIO_NOTIFY_NATS_JETSTREAM_INLET": "on",
	})
	c.MinIO = c.MinIOServer.MinIO
	if opts.Postgres != nil {
		c.StoreURL = opts.Postgres.URL
	} else {
		c.StoreURL = testenv.StartPostgres(t)
	}

	nc, err := nats.Connect(c.NATSURL, nats.Name("e2e-observer"))
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	c.NC = nc
	if c.JS, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe(events.SubjectRoot+".*.*."+events.EventProgress, c.onProgress); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(c.StopAll)
	t.Cleanup(func() {
		if t.Failed() && !opts.Quiet {
			c.DumpLogs()
		}
	})
	// The projector first: it migrates the store and provisions the streams
	// alone, so the rest start against a ready schema.
	c.Start("projector", 0)
	c.WaitReady("projector", 0)
	var wg sync.WaitGroup
	for _, s := range append(append(append([]string{}, PhaseServices...), HTTPServices...), WorkerServices...) {
		n := opts.Replicas[s]
		if n == 0 {
			n = 1
		}
		for r := 0; r < n; r++ {
			if s == "projector" && r == 0 {
				continue
			}
			c.Start(s, r)
			wg.Add(1)
			go func() { defer wg.Done(); c.waitReady(s, r) }()
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return c
}

func (c *Cluster) onProgress(m *nats.Msg) {
	ce, err := events.Decode(m.Data)
	if err != nil {
		return
	}
	var bp events.BatchProgress
	if err := json.Unmarshal(ce.Data, &bp); err != nil {
		return
	}
	c.evMu.Lock()
	c.progress = append(c.progress, bp)
	close(c.evCh)
	c.evCh = make(chan struct{})
	c.evMu.Unlock()
}

// Progress returns the distinct batches of phase that progress events
// reported committed for import id.
func (c *Cluster) Progress(id, phase string) map[int]bool {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	out := map[int]bool{}
	for _, p := range c.progress {
		if p.ImportID == id && p.Phase == phase {
			out[p.Batch] = true
		}
	}
	return out
}

// WaitProgress waits until phase has committed at least n batches of import
// id (as its progress events say) and returns how many it had.
func (c *Cluster) WaitProgress(id, phase string, n int, timeout time.Duration) int {
	c.T.Helper()
	deadline := time.After(timeout)
	for {
		c.evMu.Lock()
		ch := c.evCh
		c.evMu.Unlock()
		if got := len(c.Progress(id, phase)); got >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline:
			c.T.Fatalf("import %s: phase %s committed %d batches, want ≥ %d within %s", id, phase, len(c.Progress(id, phase)), n, timeout)
		}
	}
}

func (c *Cluster) env(p *Proc) []string {
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INLET_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"INLET_API_KEYS="+c.apiKeysEnv(),
		"INLET_S3_NOTIFY_ARN="+NotifyARN,
		"INLET_NATS_URL="+c.NATSURL,
		"INLET_BLOB_URL=s3://"+Bucket,
		"INLET_S3_ENDPOINT="+c.MinIO.Endpoint,
		"INLET_S3_ACCESS_KEY="+c.MinIO.AccessKey,
		"INLET_S3_SECRET_KEY="+c.MinIO.SecretKey,
		"INLET_STORE_URL="+c.StoreURL,
		"INLET_RESOURCES_DIR="+c.ResourcesDir,
		"INLET_DATA_DIR="+p.DataDir,
		"INLET_LOG_FORMAT=json",
		"INLET_LOG_LEVEL="+c.Opts.LogLevel,
		"INLET_BATCH_SIZE="+strconv.Itoa(c.Opts.BatchSize),
		"INLET_ACK_WAIT="+c.Opts.AckWait,
		"INLET_HTTP_ADDR="+p.Addr,
	)
	for _, svc := range []string{"*", p.Service} {
		keys := make([]string, 0, len(c.Opts.Env[svc]))
		for k := range c.Opts.Env[svc] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env = append(env, k+"="+c.Opts.Env[svc][k]) // the last of a name wins
		}
	}
	return env
}

// apiKeysEnv is INLET_API_KEYS: one key per organization of the cluster.
func (c *Cluster) apiKeysEnv() string {
	orgs := make([]string, 0, len(c.keys))
	for o := range c.keys {
		orgs = append(orgs, o)
	}
	sort.Strings(orgs)
	var parts []string
	for _, o := range orgs {
		parts = append(parts, KeyID(o)+":"+o+":"+c.keys[o])
	}
	return strings.Join(parts, ",")
}

// Key is the API key secret of org; the test fails when org has none.
func (c *Cluster) Key(org string) string {
	c.T.Helper()
	k, ok := c.keys[org]
	if !ok {
		c.T.Fatalf("organization %q has no API key in this cluster: add it to Options.Orgs", org)
	}
	return k
}

// copyResources copies every definition of src into dst, plus extra.
func copyResources(src, dst string, extra map[string]string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	for name, body := range extra {
		if err := os.WriteFile(filepath.Join(dst, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Proc returns the process of a service replica (nil if never started).
func (c *Cluster) Proc(service string, replica int) *Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[procKey(service, replica)]
}

// Procs lists every process, sorted by service and replica.
func (c *Cluster) Procs() []*Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Proc, 0, len(c.procs))
	for _, p := range c.procs {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Replica < out[j].Replica
	})
	return out
}

// Start starts (or restarts) a service replica; its log is appended to.
// It does not wait for readiness: see WaitReady.
func (c *Cluster) Start(service string, replica int) *Proc {
	c.T.Helper()
	c.mu.Lock()
	p := c.procs[procKey(service, replica)]
	if p == nil {
		p = &Proc{Service: service, Replica: replica,
			LogPath: filepath.Join(c.Dir, "logs", fmt.Sprintf("%s-%d.log", service, replica)),
			DataDir: filepath.Join(c.Dir, "data", fmt.Sprintf("%s-%d", service, replica))}
		c.procs[procKey(service, replica)] = p
	}
	c.mu.Unlock()
	if p.running() {
		c.T.Fatalf("%s/%d is already running", service, replica)
	}
	if p.Addr == "" {
		p.Addr = fmt.Sprintf("127.0.0.1:%d", FreePort(c.T))
	}
	bin, err := Binary(service)
	if err != nil {
		c.T.Fatal(err)
	}
	if err := startProc(p, bin, c.env(p)); err != nil {
		c.T.Fatal(err)
	}
	return p
}

func startProc(p *Proc, bin string, env []string) error {
	for _, d := range []string{filepath.Dir(p.LogPath), p.DataDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.Starts++
	fmt.Fprintf(logf, "{\"e2e\":\"start #%d of %s/%d at %s\"}\n", p.Starts, p.Service, p.Replica, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	p.cmd, p.done, p.waitErr = cmd, make(chan struct{}), nil
	done := p.done
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(done)
	}()
	return nil
}

func (p *Proc) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Pid is the process id of the current run.
func (p *Proc) Pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// readPeakRSS records VmHWM of the running process.
func (p *Proc) readPeakRSS() {
	if !p.running() {
		return
	}
	if kib := PeakRSSKiB(p.Pid()); kib > 0 {
		p.PeakRSSKiB = kib
	}
}

// PeakRSSKiB reads VmHWM (peak resident set) of pid from /proc, in KiB.
func PeakRSSKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// Kill SIGKILLs a service replica and waits for it to be gone.
func (c *Cluster) Kill(service string, replica int) {
	c.T.Helper()
	p := c.Proc(service, replica)
	if p == nil || !p.running() {
		c.T.Fatalf("kill %s/%d: not running", service, replica)
	}
	p.readPeakRSS()
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	<-p.done
}

// Stop asks a replica to shut down (SIGTERM) and waits; SIGKILL after 15s.
func (c *Cluster) Stop(service string, replica int) {
	c.T.Helper()
	p := c.Proc(service, replica)
	if p == nil {
		return
	}
	stopProc(p)
}

func stopProc(p *Proc) {
	if !p.running() {
		return
	}
	p.readPeakRSS()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
}

// Crash SIGKILLs a replica if it runs and waits for it to be gone; unlike
// Kill it may be called from any goroutine.
func (c *Cluster) Crash(service string, replica int) {
	if p := c.Proc(service, replica); p != nil && p.running() {
		p.readPeakRSS()
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
}

// Revive starts a replica that is not running, as a supervisor would; it
// may be called from any goroutine and does not wait for readiness.
func (c *Cluster) Revive(service string, replica int) error {
	p := c.Proc(service, replica)
	if p == nil || p.running() {
		return nil
	}
	bin, err := Binary(service)
	if err != nil {
		return err
	}
	return startProc(p, bin, c.env(p))
}

// Restart starts a stopped replica again and waits until it is ready.
func (c *Cluster) Restart(service string, replica int) {
	c.T.Helper()
	c.Start(service, replica)
	c.WaitReady(service, replica)
}

// StopAll stops every process (peak RSS is recorded first).
func (c *Cluster) StopAll() {
	var wg sync.WaitGroup
	for _, p := range c.Procs() {
		wg.Add(1)
		go func() { defer wg.Done(); stopProc(p) }()
	}
	wg.Wait()
}

// WaitReady waits until a replica is ready: /readyz answers 200 for HTTP
// services, the "started" log line of its current run for phase services.
func (c *Cluster) WaitReady(service string, replica int) {
	c.T.Helper()
	c.waitReady(service, replica)
	if c.T.Failed() {
		c.T.FailNow()
	}
}

// waitReady reports with Errorf so it can run in a goroutine.
func (c *Cluster) waitReady(service string, replica int) {
	p := c.Proc(service, replica)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if !p.running() {
			c.T.Errorf("%s/%d exited before it was ready (%v); log tail:\n%s", service, replica, p.waitErr, Tail(p.LogPath, 40))
			return
		}
		// Every service answers /readyz once it consumes and serves, and
		// while its servers are reachable.
		if resp, err := c.HTTP.Get("http://" + p.Addr + "/readyz"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(pollStep * 2)
	}
	c.T.Errorf("%s/%d not ready after 60s; log tail:\n%s", service, replica, Tail(p.LogPath, 40))
}

// Tail returns the last n lines of a file.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// DumpLogs prints the tail of every process's log.
func (c *Cluster) DumpLogs() {
	for _, p := range c.Procs() {
		c.T.Logf("==== %s/%d (%s) ====\n%s", p.Service, p.Replica, p.LogPath, Tail(p.LogPath, 30))
	}
}

// LogLine is one JSON log line of a service.
type LogLine struct {
	Level    string `json:"level"`
	Message  string `json:"message"`
	ImportID string `json:"import_id"`
	Phase    string `json:"phase"`
	Batch    *int   `json:"batch"`
	Service  string `json:"service"`
	Raw      string `json:"-"`
}

// Logs parses every JSON line of a replica's log (all its runs).
func (c *Cluster) Logs(service string, replica int) []LogLine {
	p := c.Proc(service, replica)
	if p == nil {
		return nil
	}
	f, err := os.Open(p.LogPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []LogLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l LogLine
		// A key given twice (zerolog allows it) decodes as its last value.
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			l.Raw = sc.Text()
			out = append(out, l)
		}
	}
	return out
}

// ---- HTTP API helpers ----

func (c *Cluster) url(service, path string) string {
	p := c.Proc(service, 0)
	if p == nil || !p.API() {
		c.T.Fatalf("no %s to call", service)
	}
	return "http://" + p.Addr + path
}

// GatewayURL and ProjectorURL are the base URLs of replica 0.
func (c *Cluster) GatewayURL() string   { return c.url("gateway", "") }
func (c *Cluster) ProjectorURL() string { return c.url("projector", "") }

// Client is the Go client acting for org with org's API key, as a user's
// program would: writes to the gateway, reads and waits on the projector
// (replica 0 of each), NATS on the cluster's connection.
func (c *Cluster) Client(org string) *client.Client {
	c.T.Helper()
	cl := client.New(c.NC, c.GatewayURL())
	cl.ReadURL = c.ProjectorURL()
	cl.HTTP, cl.Org, cl.APIKey = c.HTTP, org, c.Key(org)
	cl.PollInterval = 2 * pollStep
	return cl
}

// Response is an HTTP answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it cannot.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response %d is not the JSON expected (%v): %s", r.Status, err, r.Body)
	}
}

// ErrorCode is the code of an {"error": {"code", …}} body.
func (r Response) ErrorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// Do sends one request; key "" sends no Authorization header.
func Do(client *http.Client, method, u, key string, hdr http.Header, body io.Reader) (Response, error) {
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return Response{}, err
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, err
}

// Call sends a request to a service (replica 0) with an explicit key ("" for
// none), failing the test on a transport error.
func (c *Cluster) Call(service, method, path, key string, hdr http.Header, body io.Reader) Response {
	c.T.Helper()
	r, err := Do(c.HTTP, method, c.url(service, path), key, hdr, body)
	if err != nil {
		c.T.Fatalf("%s %s on %s: %v", method, path, service, err)
	}
	return r
}

// Read GETs a projector path as org (its key), with query q.
func (c *Cluster) Read(org, path string, q url.Values) Response {
	c.T.Helper()
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return c.Call("projector", http.MethodGet, path, c.Key(org), nil, nil)
}

// Multipart builds a multipart/form-data create body: the option fields
// (sorted; organization_id and resource included when given) and a file part.
func Multipart(fields map[string]string, filename string, content []byte) (contentType string, body *bytes.Buffer, err error) {
	body = &bytes.Buffer{}
	mw := multipart.NewWriter(body)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := mw.WriteField(k, fields[k]); err != nil {
			return "", nil, err
		}
	}
	if filename != "" {
		fw, err := mw.CreateFormFile("file", filename)
		if err != nil {
			return "", nil, err
		}
		fw.Write(content)
	}
	if err := mw.Close(); err != nil {
		return "", nil, err
	}
	return mw.FormDataContentType(), body, nil
}

// Create creates an import as org through the client (the request's
// organization set to org) and remembers its organization for the reads that
// follow.
func (c *Cluster) Create(org string, req client.CreateRequest) (client.Created, error) {
	c.T.Helper()
	req.OrganizationID = org
	created, err := c.Client(org).Create(context.Background(), req)
	if err == nil && created.ID != "" {
		c.Remember(created.ID, org)
	}
	return created, err
}

// Remember notes the organization of an import created elsewhere (a
// browser, the command line) for the reads that follow.
func (c *Cluster) Remember(id, org string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.orgs[id] = org
}

// Created is Create that fails the test unless a new import was created
// (201: not an error, not an Idempotency-Key repeat).
func (c *Cluster) Created(org string, req client.CreateRequest) client.Created {
	c.T.Helper()
	created, err := c.Create(org, req)
	switch {
	case err != nil:
		c.T.Fatalf("create %s (%s): %v, want 201", req.Resource, fileName(req.File), err)
	case created.Repeated:
		c.T.Fatalf("create %s (%s): 200, a repeat of %s, want 201", req.Resource, fileName(req.File), created.ID)
	case created.ID == "":
		c.T.Fatalf("create %s (%s): no import id", req.Resource, fileName(req.File))
	}
	return created
}

func fileName(f *client.File) string {
	if f == nil {
		return "no file"
	}
	return f.Name
}

// Upload creates an import of resource as org with a multipart request (the
// options as form fields, then the file) and returns its id.
func (c *Cluster) Upload(org, resource, filename, content string, opts events.Options) string {
	c.T.Helper()
	opts.Resource = resource
	return c.Created(org, client.CreateRequest{Options: opts, File: &client.File{Name: filename, Body: strings.NewReader(content)}}).ID
}

func (c *Cluster) orgOf(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o, ok := c.orgs[id]; ok {
		return o
	}
	return "default"
}

// get fetches a projector path as the organization named in q (default
// "default"), with that organization's key.
func (c *Cluster) get(path string, q url.Values) (int, []byte, error) {
	org := q.Get("organization_id")
	if org == "" {
		org = "default"
	}
	u := c.ProjectorURL() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	r, err := Do(c.HTTP, http.MethodGet, u, c.Key(org), nil, nil)
	return r.Status, r.Body, err
}

// Import reads the import object; ok is false while the projector does not
// have it or cannot answer (it may be restarting).
func (c *Cluster) Import(id string) (events.Import, bool) {
	c.T.Helper()
	imp, err := c.Client(c.orgOf(id)).Get(context.Background(), id)
	switch {
	case err == nil:
		return imp, true
	case client.IsNotFound(err) || client.IsUnavailable(err):
		return imp, false
	}
	c.T.Fatal(err)
	return imp, false
}

// WaitTerminal polls the projector until the import reaches a terminal
// status (2 minutes at most) and returns it.
func (c *Cluster) WaitTerminal(id string) events.Import {
	c.T.Helper()
	return c.WaitTerminalFor(id, 2*time.Minute)
}

// WaitTerminalFor is WaitTerminal with a chosen timeout.
func (c *Cluster) WaitTerminalFor(id string, timeout time.Duration) events.Import {
	c.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	imp, err := c.Client(c.orgOf(id)).Wait(ctx, id)
	if err != nil {
		if imp.ID != "" {
			b, _ := json.MarshalIndent(imp, "", "  ")
			c.T.Fatalf("%v; last seen:\n%s", err, b)
		}
		c.T.Fatal(err)
	}
	return imp
}

// WaitStatus polls until the import has status want (failing on another
// terminal status or after timeout).
func (c *Cluster) WaitStatus(id string, want events.Status, timeout time.Duration) events.Import {
	c.T.Helper()
	deadline := time.Now().Add(timeout)
	var last events.Import
	for time.Now().Before(deadline) {
		imp, ok := c.Import(id)
		if ok {
			last = imp
			if imp.Status == want {
				return imp
			}
			if imp.Status.Terminal() {
				c.T.Fatalf("import %s ended %s (reason %v), want %s", id, imp.Status, deref(imp.Reason), want)
			}
		}
		time.Sleep(pollStep * 2)
	}
	c.T.Fatalf("import %s is %q after %s, want %s", id, last.Status, timeout, want)
	return last
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// ErrorsCSV returns the bytes of GET /v1/imports/{id}/errors.csv.
func (c *Cluster) ErrorsCSV(id string) string {
	c.T.Helper()
	var b strings.Builder
	if err := c.Client(c.orgOf(id)).ErrorsCSV(context.Background(), id, &b); err != nil {
		c.T.Fatalf("errors.csv of %s: %v", id, err)
	}
	return b.String()
}

// RowError is one entry of errors.json.
type RowError = events.RowError

// ErrorsJSON returns the entries of GET /v1/imports/{id}/errors.json.
func (c *Cluster) ErrorsJSON(id string) []RowError {
	c.T.Helper()
	out, err := c.Client(c.orgOf(id)).ErrorsJSON(context.Background(), id)
	if err != nil {
		c.T.Fatalf("errors.json of %s: %v", id, err)
	}
	return out
}

// Record is a stored record as the records API shows it.
type Record struct {
	ID        string          `json:"id"`
	ParentID  *string         `json:"parent_id"`
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// Fields decodes the record's data.
func (r Record) Fields() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Data, &m)
	return m
}

// Records lists every stored live record of a resource in an organization
// (following the cursor through every page).
func (c *Cluster) Records(org, resource string) []Record {
	c.T.Helper()
	return c.RecordsIn(org, "live", resource)
}

// RecordsIn is Records of a mode (live or test).
func (c *Cluster) RecordsIn(org, mode, resource string) []Record {
	c.T.Helper()
	recs, err := ListRecords(c.HTTP, c.ProjectorURL(), c.Key(org), org, mode, resource)
	if err != nil {
		c.T.Fatal(err)
	}
	return recs
}

// ListRecords pages through GET /v1/resources/{resource}/records.
func ListRecords(client *http.Client, base, key, org, mode, resource string) ([]Record, error) {
	var out []Record
	cursor := ""
	for {
		q := url.Values{"organization_id": {org}, "limit": {"100"}}
		if mode != "" {
			q.Set("mode", mode)
		}
		if cursor != "" {
			q.Set("starting_after", cursor)
		}
		resp, err := Do(client, http.MethodGet, base+"/v1/resources/"+resource+"/records?"+q.Encode(), key, nil, nil)
		if err != nil {
			return nil, err
		}
		if resp.Status != http.StatusOK {
			return nil, fmt.Errorf("records of %s/%s: %d %s", org, resource, resp.Status, resp.Body)
		}
		var page struct {
			Data       []Record `json:"data"`
			HasMore    bool     `json:"has_more"`
			NextCursor *string  `json:"next_cursor"`
		}
		if err := json.Unmarshal(resp.Body, &page); err != nil {
			return nil, fmt.Errorf("records of %s/%s: %v", org, resource, err)
		}
		out = append(out, page.Data...)
		if !page.HasMore || page.NextCursor == nil || *page.NextCursor == "" {
			return out, nil
		}
		if *page.NextCursor == cursor {
			return nil, errors.New("records: cursor does not advance")
		}
		cursor = *page.NextCursor
	}
}

// RecordByKey finds one live record by its primary key (?key=); ok is false when none.
func (c *Cluster) RecordByKey(org, resource, key string) (Record, bool) {
	c.T.Helper()
	code, b, err := c.get("/v1/resources/"+resource+"/records", url.Values{"organization_id": {org}, "key": {key}})
	if err != nil || code != http.StatusOK {
		c.T.Fatalf("record %s=%s: %d %v %s", resource, key, code, err, b)
	}
	var page struct {
		Data []Record `json:"data"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		c.T.Fatal(err)
	}
	switch len(page.Data) {
	case 0:
		return Record{}, false
	case 1:
		return page.Data[0], true
	}
	c.T.Fatalf("record %s=%s: %d matches", resource, key, len(page.Data))
	return Record{}, false
}

// StopPhases stops (SIGTERM) every replica of every phase service.
func (c *Cluster) StopPhases() {
	c.T.Helper()
	var wg sync.WaitGroup
	for _, p := range c.Procs() {
		if p.API() {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); stopProc(p) }()
	}
	wg.Wait()
}

// StartPhases starts every phase replica that is not running and waits until
// all are ready.
func (c *Cluster) StartPhases() {
	c.T.Helper()
	var wg sync.WaitGroup
	for _, p := range c.Procs() {
		if p.API() || p.running() {
			continue
		}
		c.Start(p.Service, p.Replica)
		wg.Add(1)
		go func() { defer wg.Done(); c.waitReady(p.Service, p.Replica) }()
	}
	wg.Wait()
	if c.T.Failed() {
		c.T.FailNow()
	}
}

// DataSet is records' data keyed by a field, canonical JSON as values:
// comparable across organizations (ids and timestamps left out).
func DataSet(recs []Record, keyField string) (map[string]string, error) {
	out := map[string]string{}
	for _, r := range recs {
		m := r.Fields()
		k, _ := m[keyField].(string)
		if k == "" {
			return nil, fmt.Errorf("record %s has no %s: %s", r.ID, keyField, r.Data)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("two records with %s %q", keyField, k)
		}
		b, _ := json.Marshal(m) // map keys sorted: canonical
		out[k] = string(b)
	}
	return out, nil
}

// WaitFor polls cond until it holds or timeout passes.
func WaitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pollStep):
		}
	}
	return cond()
}

func streamInfo(c *Cluster, name string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.JS.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

func consumerInfo(c *Cluster, stream, durable string) (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := c.JS.Consumer(ctx, stream, durable)
	if err != nil {
		return nil, err
	}
	return cons.Info(ctx)
}
