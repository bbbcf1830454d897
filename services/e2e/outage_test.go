package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/topology"
)

// TestOutageMidImportIsWaitedOut stops PostgreSQL, then in a second run
// MinIO (as a crash would), while an import is processed, for longer than
// every delivery of a batch would last if an outage spent them (10
// deliveries a second apart), then starts it again: the import completes
// exactly, as a clean one does. The processing service, killed during the
// outage and started again while the server is still down, waits for it
// instead of exiting.
func TestOutageMidImportIsWaitedOut(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	for _, server := range []string{"PostgreSQL", "MinIO"} {
		t.Run(server, func(t *testing.T) {
			pg := testenv.StartPostgresServer(t)
			c := NewCluster(t, Options{BatchSize: 100, AckWait: "3s", Postgres: pg})
			stop, start := pg.Stop, pg.Start
			if server == "MinIO" {
				stop, start = c.MinIOServer.Stop, c.MinIOServer.Start
			}
			body, wantStats, wantRecs := mixedCSV(mixedRows)
			batches := mixedRows / c.Opts.BatchSize
			org := "clean"
			seedOrg(t, c, org)
			id := c.Upload(org, "customers", "mixed.csv", body, mixedOpts)
			c.WaitProgress(id, events.PhaseProcessing, 1, 2*time.Minute)
			stop()
			t.Logf("%s stopped after %d/%d processing batches", server, len(c.Progress(id, events.PhaseProcessing)), batches)
			time.Sleep(5 * time.Second)
			c.Kill("processing", 0)
			c.Start("processing", 0)
			time.Sleep(10 * time.Second)
			if p := c.Proc("processing", 0); !p.running() {
				t.Fatalf("processing exited while %s was down (%v):\n%s", server, p.waitErr, Tail(p.LogPath, 20))
			}
			if err := start(); err != nil {
				t.Fatal(err)
			}
			c.WaitReady("processing", 0)
			imp := c.WaitTerminalFor(id, 3*time.Minute)
			checkImport(t, org, imp, wantStats)
			checkBatches(t, c, imp, batches)
			checkCustomers(t, c, org, wantRecs)
		})
	}
}

// TestLostWorkIsRedriven loses an import's queued work the way a broker
// crash before its sync can (the messages are gone from the stream, and so
// from its duplicate window after the restart): the stall sweep hands the
// work on again from what the blob store holds, and the import completes
// exactly.
func TestLostWorkIsRedriven(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 100, AckWait: "3s", Env: map[string]map[string]string{
		"projector": {"INLET_STALL_AFTER": "3s", "INLET_SWEEP_INTERVAL": "500ms"},
	}})
	body, wantStats, wantRecs := mixedCSV(mixedRows)
	batches := mixedRows / c.Opts.BatchSize
	org := "clean"
	seedOrg(t, c, org)
	c.Stop(events.PhaseTransforming, 0)
	id := c.Upload(org, "customers", "mixed.csv", body, mixedOpts)
	c.WaitProgress(id, events.PhasePreparsing, batches, 2*time.Minute)
	ctx := context.Background()
	work, err := c.JS.Stream(ctx, topology.WorkStream)
	if err != nil {
		t.Fatal(err)
	}
	subject := topology.WorkSubject(events.PhaseTransforming)
	info, err := work.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[subject]; n < uint64(batches) { // the seed import's are kept too
		t.Fatalf("%d transforming messages in the stream, want at least the import's %d", n, batches)
	}
	// Preparsing handed every batch on: once its message is acked, nothing
	// but the lost messages would ever hand them on again.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		ci, err := consumerInfo(c, topology.WorkStream, events.PhasePreparsing+"-v2")
		if err != nil {
			t.Fatal(err)
		}
		if ci.NumAckPending == 0 && ci.NumPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("preparsing still holds its work: %+v", ci)
		}
	}
	if err := work.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		t.Fatal(err)
	}
	c.RestartNATS(nil)
	c.Restart(events.PhaseTransforming, 0)
	imp := c.WaitTerminalFor(id, 3*time.Minute)
	checkImport(t, org, imp, wantStats)
	checkBatches(t, c, imp, batches)
	checkCustomers(t, c, org, wantRecs)
}
