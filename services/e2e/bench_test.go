package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/topology"
	"github.com/inlet-dev/inlet/pkg/client"
)

// benchBatch is INLET_BENCH_BATCH (INLET_BATCH_SIZE of every shape), default 10000 (the server's).
func benchBatch() int {
	if n, err := strconv.Atoi(os.Getenv("INLET_BENCH_BATCH")); err == nil && n > 0 {
		return n
	}
	return 10000
}

// benchRows is INLET_BENCH_ROWS, default 100k.
func benchRows() int {
	if n, err := strconv.Atoi(os.Getenv("INLET_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

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

// benchTarget is one way of running Inlet: where to send imports and what
// to measure.
type benchTarget struct {
	write, read string // base URLs: gateway (or all-in-one) and projector (or all-in-one)
	natsURL     string
	key         func(org string) string
	procs       func() []*Proc
	stop        func()
}

// BenchmarkImport is make bench: INLET_BENCH_ROWS valid customers (default
// 100k) imported into an empty organization and again into the one that
// now holds them, then the completion latency of 100-row imports on an idle
// server and while a big import runs; for (a) the embedded default
// (bin/inlet: embedded NATS, local blobs, SQLite), (b) the same all-in-one on
// PostgreSQL, (c) every service as its own process on NATS + MinIO +
// PostgreSQL. It prints rows/s, each phase's span, the peak RSS of every
// process and the redeliveries of every consumer.
func BenchmarkImport(b *testing.B) {
	rows := benchRows()
	body := validCSV(rows)
	b.Run("embedded", func(b *testing.B) {
		benchShape(b, "embedded", rows, body, allInOne(b, ""))
	})
	b.Run("all-in-one-postgres", func(b *testing.B) {
		benchShape(b, "all-in-one-postgres", rows, body, allInOne(b, testenv.StartPostgres(b)))
	})
	b.Run("separate-processes", func(b *testing.B) {
		c := NewCluster(b, Options{BatchSize: benchBatch(), AckWait: "30s", LogLevel: "info", Orgs: []string{"bench", "lat", "load"}})
		benchShape(b, "separate-processes", rows, body, benchTarget{
			write: c.GatewayURL(), read: c.ProjectorURL(), natsURL: c.NATSURL, key: c.Key,
			procs: c.Procs, stop: c.StopAll,
		})
	})
}

func allInOne(b *testing.B, storeURL string) benchTarget {
	base, proc, natsURL := startEmbeddedInlet(b, storeURL)
	return benchTarget{write: base, read: base, natsURL: natsURL, key: func(string) string { return "" },
		procs: func() []*Proc { return []*Proc{proc} }, stop: func() { stopProc(proc) }}
}

func benchShape(b *testing.B, shape string, rows int, body string, t benchTarget) {
	httpClient := &http.Client{Timeout: 5 * time.Minute}
	run := func(org, resource, content string) events.Import {
		c := client.New(nil, t.write)
		c.ReadURL, c.HTTP, c.Org, c.APIKey, c.PollInterval = t.read, httpClient, org, t.key(org), 2*pollStep
		created, err := c.Create(context.Background(), client.CreateRequest{Options: events.Options{OrganizationID: org, Resource: resource},
			File: &client.File{Name: resource + ".csv", Body: strings.NewReader(content)}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		imp, err := c.Wait(ctx, created.ID)
		if err != nil {
			b.Fatal(err)
		}
		if imp.Status != events.StatusCompleted {
			b.Fatalf("%s import %s: %s %v", resource, created.ID, imp.Status, deref(imp.Reason))
		}
		return imp
	}
	for _, org := range []string{"bench", "lat", "load"} {
		run(org, "companies", companiesCSV)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fresh := run("bench", "customers", body)
		again := run("bench", "customers", body)
		b.StopTimer()
		if fresh.Stats.Created != int64(rows) || again.Stats.Unchanged != int64(rows) {
			b.Fatalf("fresh %+v, again %+v", fresh.Stats, again.Stats)
		}
		fmt.Printf("\n%s, %d rows in batches of %d\n", shape, rows, benchBatch())
		for _, imp := range []struct {
			label string
			imp   events.Import
		}{{"fresh (all created)", fresh}, {"again (all unchanged)", again}} {
			secs := took(imp.imp).Seconds()
			fmt.Printf("  %s: %.2f s, %.0f rows/s\n", imp.label, secs, float64(rows)/secs)
			printPhases(imp.imp)
		}
		b.ReportMetric(float64(rows)/took(fresh).Seconds(), "rows/s-fresh")
		b.ReportMetric(float64(rows)/took(again).Seconds(), "rows/s-again")

		small := validCSV(100)
		idle := latencies(func() events.Import { return run("lat", "customers", small) }, 20, nil)
		done := make(chan events.Import, 1)
		go func() { done <- run("load", "customers", body) }()
		loaded := latencies(func() events.Import { return run("lat", "customers", small) }, 0, done)
		big := <-done
		fmt.Printf("  100-row import, POST to completed: idle p50 %s p90 %s (%d imports); during a %d-row import p50 %s p90 %s (%d imports; the big one took %.1f s)\n",
			pct(idle, 50), pct(idle, 90), len(idle), rows, pct(loaded, 50), pct(loaded, 90), len(loaded), took(big).Seconds())
		b.ReportMetric(float64(pct(idle, 50).Milliseconds()), "ms-p50-100rows-idle")
		b.ReportMetric(float64(pct(loaded, 50).Milliseconds()), "ms-p50-100rows-loaded")
		b.ReportMetric(float64(printRedeliveries(b, t.natsURL)), "redeliveries")
		b.StartTimer()
	}
	b.StopTimer()
	t.stop()
	printRSS(b, shape, t.procs())
}

// took is POST to terminal status, as the server recorded it.
func took(imp events.Import) time.Duration {
	if imp.CompletedAt == nil {
		return 0
	}
	return imp.CompletedAt.Sub(imp.CreatedAt)
}

// latencies runs imports one after another: n of them, or until until
// delivers (then it is put back for the caller).
func latencies(run func() events.Import, n int, until chan events.Import) []time.Duration {
	var out []time.Duration
	for i := 0; n == 0 || i < n; i++ {
		if until != nil {
			select {
			case imp := <-until:
				until <- imp
				return out
			default:
			}
		}
		out = append(out, took(run()))
	}
	return out
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100].Round(time.Millisecond)
}

// printRedeliveries lists every consumer of Inlet's streams with its
// redeliveries, and returns their sum.
func printRedeliveries(b *testing.B, natsURL string) int {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "  consumer\tdelivered\tredelivered\tack pending\twaiting\t\n")
	total := 0
	ctx := context.Background()
	for _, name := range []string{topology.WorkStream, topology.EventsStream} {
		stream, err := js.Stream(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		for info := range stream.ListConsumers(ctx).Info() {
			fmt.Fprintf(w, "  %s/%s\t%d\t%d\t%d\t%d\t\n", name, info.Name, info.Delivered.Consumer, info.NumRedelivered, info.NumAckPending, info.NumPending)
			total += info.NumRedelivered
		}
	}
	w.Flush()
	return total
}

// startEmbeddedInlet runs bin/inlet on a temp data dir (on storeURL, or
// SQLite when empty) and waits for /readyz; it returns the HTTP base and
// the embedded NATS server's URL.
func startEmbeddedInlet(b *testing.B, storeURL string) (string, *Proc, string) {
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
	natsAddr := fmt.Sprintf("127.0.0.1:%d", FreePort(b))
	env = append(env, "INLET_DATA_DIR="+p.DataDir, "INLET_HTTP_ADDR="+p.Addr, "INLET_NATS_LISTEN="+natsAddr,
		"INLET_RESOURCES_DIR="+filepath.Join(RepoRoot(), "resources"), "INLET_STORE_URL="+storeURL,
		"INLET_LOG_FORMAT=json", "INLET_LOG_LEVEL=warn", fmt.Sprintf("INLET_BATCH_SIZE=%d", benchBatch()))
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
				return base, p, "nats://" + natsAddr
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
	var sum, peak int64
	for _, p := range procs {
		fmt.Fprintf(tw, "\t%s/%d\t%.1f\t\n", p.Service, p.Replica, float64(p.PeakRSSKiB)/1024)
		sum += p.PeakRSSKiB
		peak = max(peak, p.PeakRSSKiB)
	}
	fmt.Fprintf(tw, "\ttotal\t%.1f\t\n", float64(sum)/1024)
	tw.Flush()
	fmt.Print(sb.String())
	b.ReportMetric(float64(peak)/1024, "MiB-peak-RSS-max-process")
}

// printPhases shows where an import's time went: each phase's span from its
// first batch started to its last batch committed.
func printPhases(imp events.Import) {
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "    phase\tbatches\tstart (s)\tend (s)\t\n")
	for _, p := range imp.Phases {
		if p.StartedAt == nil || p.CompletedAt == nil {
			continue
		}
		fmt.Fprintf(w, "    %s\t%d\t%.2f\t%.2f\t\n", p.Name, p.BatchesDone,
			p.StartedAt.Sub(imp.CreatedAt).Seconds(), p.CompletedAt.Sub(imp.CreatedAt).Seconds())
	}
	w.Flush()
}
