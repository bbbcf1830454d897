package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgSystemUser runs the server when the tests run as root: PostgreSQL
// refuses to start as root.
const pgSystemUser = "inletpg"

// ErrPostgresNotFound is returned when initdb/pg_ctl are not installed.
var ErrPostgresNotFound = errors.New("testenv: PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin (set INLET_PG_BINDIR)")

var (
	pgOnce      sync.Once
	pgAdminURL  string
	pgStartErr  error
	pgDBCounter atomic.Int64
	// pgReaperPipe is never written or closed by us: the kernel closes it
	// when the test binary exits, however it exits, and the reaper process
	// reading the other end then stops the shared cluster. Tests end in
	// any order, so no single t.Cleanup may stop a cluster others share.
	pgReaperPipe *os.File
)

// StartPostgres returns the URL of a fresh, empty database. The first call in
// a test binary starts a throw-away cluster (fsync off, loopback only) that
// later calls share; each call gets its own database, dropped in t.Cleanup.
// The test is skipped when PostgreSQL is not installed, and fails instead
// when CI=true.
func StartPostgres(t testing.TB) string {
	t.Helper()
	bin, err := pgBinDir()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v", err)
		}
		t.Skip(err.Error())
	}
	pgOnce.Do(func() { pgAdminURL, pgStartErr = pgStartShared(bin) })
	if pgStartErr != nil {
		t.Fatalf("testenv: start postgres: %v", pgStartErr)
	}

	name := pgDBName(pgDBCounter.Add(1), t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pgAdminExec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE: a test that leaked a connection must not fail the next one.
		if err := pgAdminExec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("testenv: drop database %s: %v", name, err)
		}
	})
	return strings.Replace(pgAdminURL, "/postgres?", "/"+name+"?", 1)
}

// StartPostgresProcess runs a PostgreSQL server whose files live in dir
// (created if needed; an existing cluster there is reused) and returns the
// URL of its "postgres" database and a stop function (immediate shutdown;
// dir is left in place). For benchmarks and CLIs that manage their own
// lifetime. As root, dir and its parents must be traversable by others.
func StartPostgresProcess(dir string) (url string, stop func(), err error) {
	bin, err := pgBinDir()
	if err != nil {
		return "", nil, err
	}
	return pgStart(bin, dir, 0)
}

// PostgresServer is a PostgreSQL process of its own that a test stops (as a
// crash would) and starts again on the same port and files.
type PostgresServer struct {
	URL  string
	bin  string
	dir  string
	port int
	mu   sync.Mutex
	stop func()
}

// StartPostgresServer starts a server of the test's own (skipped without
// PostgreSQL, failed when CI=true), stopped in t.Cleanup.
func StartPostgresServer(t testing.TB) *PostgresServer {
	t.Helper()
	bin, err := pgBinDir()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v", err)
		}
		t.Skip(err.Error())
	}
	dir, err := os.MkdirTemp("/tmp", "inlet-pg-own-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	p := &PostgresServer{bin: bin, dir: dir}
	t.Cleanup(func() { p.Stop(); os.RemoveAll(dir) })
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// Start starts the server (again), on the port of its first start.
func (p *PostgresServer) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil {
		return nil
	}
	url, stop, err := pgStart(p.bin, p.dir, p.port)
	if err != nil {
		return err
	}
	p.URL, p.stop = url, stop
	if p.port == 0 {
		u, _ := neturl.Parse(url)
		p.port, _ = strconv.Atoi(u.Port())
	}
	return nil
}

// Stop stops the server at once (pg_ctl -m immediate: no checkpoint, crash
// recovery at the next start).
func (p *PostgresServer) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil {
		p.stop()
		p.stop = nil
	}
}

func pgStartShared(bin string) (string, error) {
	// Not t.TempDir: under /tmp its parents can be 0700, which the
	// unprivileged server user cannot traverse.
	dir, err := os.MkdirTemp("/tmp", "inlet-pg-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	url, stop, err := pgStart(bin, dir, 0)
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	if err := pgStartReaper(bin, dir); err != nil {
		stop()
		os.RemoveAll(dir)
		return "", fmt.Errorf("start reaper: %w", err)
	}
	return url, nil
}

// pgStart initializes (if needed) and starts a cluster in dir/data with its
// socket and log in dir/run, on port (0: a free one).
func pgStart(bin, dir string, port int) (string, func(), error) {
	data, run := filepath.Join(dir, "data"), filepath.Join(dir, "run")
	for _, d := range []string{dir, run} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", nil, err
		}
	}
	asUser, err := pgPrepareUser(run)
	if err != nil {
		return "", nil, err
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if err := os.MkdirAll(data, 0o700); err != nil {
			return "", nil, err
		}
		if err := pgChown(asUser, data); err != nil {
			return "", nil, err
		}
		// --no-locale: bytewise collation and the same behaviour on every
		// machine; --no-sync: a throw-away cluster needs no durability.
		if out, err := pgRun(asUser, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
			"--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync"); err != nil {
			return "", nil, fmt.Errorf("initdb in %s: %v: %s (as root, every parent of %s must be traversable by %s)",
				data, err, out, dir, pgSystemUser)
		}
	}
	pgctl := filepath.Join(bin, "pg_ctl")
	logFile := filepath.Join(run, "postgres.log")
	var lastErr error
	// A few attempts: the free port we picked can be taken before the
	// server binds it.
	for attempt := 0; attempt < 3; attempt++ {
		port := port
		if port == 0 {
			var err error
			if port, err = pgFreePort(); err != nil {
				return "", nil, err
			}
		}
		// fsync=off but synchronous_commit on: a commit still reaches the OS
		// before it returns, so "stop -m immediate" (a crash) loses nothing
		// that a later StartPostgresProcess on the same dir expects to find.
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=300", port, run)
		out, err := pgRun(asUser, pgctl, "-D", data, "-l", logFile, "-w", "-t", "60", "-o", opts, "start")
		if err != nil {
			lastErr = fmt.Errorf("pg_ctl start: %v: %s\nlog: %s", err, out, pgTail(logFile))
			continue
		}
		url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
		var once sync.Once
		stop := func() {
			once.Do(func() { _, _ = pgRun(asUser, pgctl, "-D", data, "stop", "-m", "immediate", "-w") })
		}
		return url, stop, nil
	}
	return "", nil, lastErr
}

// pgStartReaper starts a detached shell that stops the cluster and removes
// dir once the test binary has exited (its stdin reaches EOF).
func pgStartReaper(bin, dir string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	stopCmd := []string{filepath.Join(bin, "pg_ctl"), "-D", filepath.Join(dir, "data"), "stop", "-m", "immediate", "-w"}
	if os.Geteuid() == 0 {
		stopCmd = append([]string{"runuser", "-u", pgSystemUser, "--"}, stopCmd...)
	}
	cmd := exec.Command("sh", append([]string{"-c", `read _ignored; "$@" >/dev/null 2>&1; rm -rf "$INLET_PG_DIR"`, "inlet-pg-reaper"}, stopCmd...)...)
	cmd.Env = append(os.Environ(), "INLET_PG_DIR="+dir)
	cmd.Stdin = r
	// Own session: a Ctrl-C to the test's process group must not kill the
	// reaper before it has stopped the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	go func() { _ = cmd.Wait() }()
	pgReaperPipe = w
	return nil
}

// pgPrepareUser returns the user to run the server as ("" = ourselves) and
// hands it the directories the server writes.
func pgPrepareUser(dirs ...string) (string, error) {
	if os.Geteuid() != 0 {
		return "", nil
	}
	if _, err := user.Lookup(pgSystemUser); err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", pgSystemUser).CombinedOutput()
		// Another test binary may have created it at the same moment.
		if _, lerr := user.Lookup(pgSystemUser); lerr != nil {
			return "", fmt.Errorf("create system user %s: %v: %s", pgSystemUser, err, out)
		}
	}
	for _, d := range dirs {
		if err := pgChown(pgSystemUser, d); err != nil {
			return "", err
		}
	}
	return pgSystemUser, nil
}

func pgChown(username, dir string) error {
	if username == "" {
		return nil
	}
	u, err := user.Lookup(username)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func pgRun(asUser, name string, args ...string) (string, error) {
	if asUser != "" {
		args = append([]string{"-u", asUser, "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.Command(name, args...)
	// pg_ctl's daemonized postmaster writes to -l, but should anything keep
	// our output pipe open, do not hang on it.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func pgAdminExec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, pgAdminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

var pgNameUnsafe = regexp.MustCompile(`[^a-z0-9_]+`)

// pgDBName makes a database name that says which test it belongs to, within
// PostgreSQL's 63-byte identifier limit.
func pgDBName(n int64, testName string) string {
	name := fmt.Sprintf("t%d_%s", n, pgNameUnsafe.ReplaceAllString(strings.ToLower(testName), "_"))
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// pgBinDir finds the directory holding initdb and pg_ctl.
func pgBinDir() (string, error) {
	if d := os.Getenv("INLET_PG_BINDIR"); d != "" {
		if pgHasBins(d) {
			return d, nil
		}
		return "", fmt.Errorf("%w: INLET_PG_BINDIR=%s has no initdb/pg_ctl", ErrPostgresNotFound, d)
	}
	if p, err := exec.LookPath("initdb"); err == nil && pgHasBins(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first.
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if pgHasBins(d) {
			return d, nil
		}
	}
	return "", ErrPostgresNotFound
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func pgHasBins(dir string) bool {
	for _, b := range []string{"initdb", "pg_ctl"} {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
			return false
		}
	}
	return true
}

func pgFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func pgTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
