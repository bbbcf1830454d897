package app

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
)

// BenchmarkEmbeddedPipeline runs a 20k-row customers import through every
// phase in one process (embedded NATS, local blobs, SQLite): the figure to
// profile the harness and phases with (-cpuprofile); make bench measures the
// binaries on 100k rows.
func BenchmarkEmbeddedPipeline(b *testing.B) {
	n := 20_000
	if v, err := strconv.Atoi(os.Getenv("INLET_BENCH_ROWS")); err == nil && v > 0 {
		n = v
	}
	var sb strings.Builder
	sb.WriteString("email,external_id,name,age,vip\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "p%d@bench.io,E%d,Customer %d,%d,%t\n", i, i, i, i%90, i%3 == 0)
	}
	body := sb.String()
	a := startEmbeddedB(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		imp := runImportB(b, a, events.Options{OrganizationID: fmt.Sprintf("bench%d", i), Resource: "customers"}, "b.csv", body)
		if imp.Stats.Created != int64(n) {
			b.Fatalf("created %d of %d: %+v", imp.Stats.Created, n, imp.Stats)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}
