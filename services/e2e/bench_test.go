package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/inlet-dev/inlet/events"
)

const benchRows = 100_000

// validCSV is n valid customers with unique keys referencing C0..C4.
func validCSV(n int) string {
	var b strings.Builder
	b.Grow(n * 64)
	b.WriteString(customerHeader + "\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "b%d@bench.io,E%d,Customer %d,%d,%t,C%d,2024-%02d-%02d\n", i, i, i, i%90, i%3 == 0, i%5, 1+i%12, 1+i%28)
	}
	return b.String()
}

// BenchmarkImport100k imports 100k valid customers (a) into the all-in-one
// server (bin/inlet: embedded NATS, local blobs, SQLite) and (b) through the
// separate service processes on NATS + MinIO + PostgreSQL, and reports rows/s
// and the peak RSS of every process.
func BenchmarkImport100k(b *testing.B) {
	body := validCSV(benchRows)
	b.Run("embedded", func(b *testing.B) {
		base, proc := startEmbeddedInlet(b)
		client := &http.Client{Timeout: 5 * time.Minute}
		benchLoop(b, body, func(org, resource, name, content string) (events.Import, error) {
			id, err := UploadTo(client, base, "", org, resource, name, content, nil) // keys are off on the embedded default
			if err != nil {
				return events.Import{}, err
			}
			return PollTerminal(client, base, "", org, id, 10*time.Minute)
		})
		stopProc(proc)
		printRSS(b, "embedded", []*Proc{proc})
	})
	b.Run("distributed", func(b *testing.B) {
		var orgs []string
		for i := 0; i < 100; i++ {
			orgs = append(orgs, "bench"+strconv.Itoa(i))
		}
		c := NewCluster(b, Options{BatchSize: 2000, AckWait: "30s", Orgs: orgs})
		benchLoop(b, body, func(org, resource, name, content string) (events.Import, error) {
			id, err := UploadTo(c.HTTP, c.GatewayURL(), c.Key(org), org, resource, name, content, nil)
			if err != nil {
				return events.Import{}, err
			}
			c.mu.Lock()
			c.orgs[id] = org
			c.mu.Unlock()
			return PollTerminal(c.HTTP, c.ProjectorURL(), c.Key(org), org, id, 10*time.Minute)
		})
		c.StopAll()
		printRSS(b, "distributed", c.Procs())
	})
}

type importFn func(org, resource, name, content string) (events.Import, error)

func benchLoop(b *testing.B, body string, run importFn) {
	b.Helper()
	b.StopTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		org := "bench" + strconv.Itoa(i)
		comp, err := run(org, "companies", "companies.csv", companiesCSV)
		if err != nil || comp.Status != events.StatusCompleted {
			b.Fatalf("companies: %v %s", err, comp.Status)
		}
		start := time.Now()
		b.StartTimer()
		imp, err := run(org, "customers", "customers.csv", body)
		b.StopTimer()
		total += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		want := events.Stats{Total: benchRows, Processed: benchRows, Created: benchRows}
		if imp.Status != events.StatusCompleted || imp.Stats != want {
			b.Fatalf("100k import: %s %v\n got %+v\nwant %+v", imp.Status, imp.Reason, imp.Stats, want)
		}
		printPhases(b, imp)
	}
	secs := total.Seconds() / float64(b.N)
	b.ReportMetric(float64(benchRows)/secs, "rows/s")
	b.ReportMetric(secs, "s/import")
}

// startEmbeddedInlet runs bin/inlet on a temp data dir and waits for /readyz.
func startEmbeddedInlet(b *testing.B) (string, *Proc) {
	b.Helper()
	bin, err := Binary("inlet")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	p := &Proc{Service: "inlet", LogPath: filepath.Join(dir, "inlet.log"), DataDir: filepath.Join(dir, "data"),
		Addr: fmt.Sprintf("127.0.0.1:%d", FreePort(b))}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INLET_") {
			env = append(env, kv)
		}
	}
	env = append(env, "INLET_DATA_DIR="+p.DataDir, "INLET_HTTP_ADDR="+p.Addr,
		fmt.Sprintf("INLET_NATS_LISTEN=127.0.0.1:%d", FreePort(b)),
		"INLET_RESOURCES_DIR="+filepath.Join(RepoRoot(), "resources"),
		"INLET_LOG_FORMAT=json", "INLET_LOG_LEVEL=warn")
	if err := startProc(p, bin, env); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stopProc(p)
		if b.Failed() {
			b.Logf("inlet log tail:\n%s", Tail(p.LogPath, 40))
		}
	})
	base := "http://" + p.Addr
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if !p.running() {
			b.Fatalf("inlet exited (%v):\n%s", p.waitErr, Tail(p.LogPath, 40))
		}
		if resp, err := client.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, p
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("inlet not ready after 60s:\n%s", Tail(p.LogPath, 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// printRSS prints the peak RSS (VmHWM, read just before each process was
// stopped) of procs.
func printRSS(b *testing.B, mode string, procs []*Proc) {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tprocess\tpeak RSS (MiB)\t\n", mode)
	var sum int64
	for _, p := range procs {
		fmt.Fprintf(tw, "\t%s/%d\t%.1f\t\n", p.Service, p.Replica, float64(p.PeakRSSKiB)/1024)
		sum += p.PeakRSSKiB
	}
	fmt.Fprintf(tw, "\ttotal\t%.1f\t\n", float64(sum)/1024)
	tw.Flush()
	fmt.Print(sb.String())
	b.ReportMetric(float64(sum)/1024, "MiB-peak-RSS-total")
}

// printPhases shows where an import's time went: each phase's span from its
// first batch started to its last batch committed (phases overlap).
func printPhases(b *testing.B, imp events.Import) {
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "  phase\tbatches\tstart (s)\tend (s)\t\n")
	for _, p := range imp.Phases {
		if p.StartedAt == nil || p.CompletedAt == nil || imp.StartedAt == nil {
			continue
		}
		fmt.Fprintf(w, "  %s\t%d\t%.2f\t%.2f\t\n", p.Name, p.BatchesDone,
			p.StartedAt.Sub(*imp.StartedAt).Seconds(), p.CompletedAt.Sub(*imp.StartedAt).Seconds())
	}
	w.Flush()
}
