package e2e

import (
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/testenv"
)

// TestStoreOutageMidImportIsWaitedOut stops PostgreSQL (as a crash would)
// while processing writes an import, for longer than every delivery of a
// batch would last if an outage spent them (10 deliveries a second apart),
// then starts it again: the import completes exactly, as a clean one does.
// The processing service, killed during the outage and started again while
// PostgreSQL is still down, waits for it instead of exiting.
func TestStoreOutageMidImportIsWaitedOut(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	pg := testenv.StartPostgresServer(t)
	c := NewCluster(t, Options{BatchSize: 100, AckWait: "3s", Postgres: pg})
	body, wantStats, wantRecs := mixedCSV(mixedRows)
	batches := mixedRows / c.Opts.BatchSize
	org := "clean"
	seedOrg(t, c, org)
	id := c.Upload(org, "customers", "mixed.csv", body, mixedOpts)
	c.WaitProgress(id, events.PhaseProcessing, 1, 2*time.Minute)
	pg.Stop()
	done := len(c.Progress(id, events.PhaseProcessing))
	t.Logf("PostgreSQL stopped after %d/%d processing batches", done, batches)
	time.Sleep(5 * time.Second)
	c.Kill("processing", 0)
	c.Start("processing", 0)
	time.Sleep(10 * time.Second)
	if p := c.Proc("processing", 0); !p.running() {
		t.Fatalf("processing exited while PostgreSQL was down (%v):\n%s", p.waitErr, Tail(p.LogPath, 20))
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	c.WaitReady("processing", 0)
	imp := c.WaitTerminalFor(id, 3*time.Minute)
	checkImport(t, org, imp, wantStats)
	checkBatches(t, c, imp, batches)
	checkCustomers(t, c, org, wantRecs)
}
