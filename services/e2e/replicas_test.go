package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/topology"
)

// TestThreeReplicas runs three processing and three transforming replicas on
// their shared durables: the work is spread, and no batch is applied twice.
func TestThreeReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	start := time.Now()
	c := NewCluster(t, Options{BatchSize: 100, Replicas: map[string]int{"processing": 3, "transforming": 3}})
	t.Logf("cluster up in %s", elapsed(start))
	body, wantStats, wantRecs := mixedCSV(mixedRows)
	batches := mixedRows / c.Opts.BatchSize
	seedOrg(t, c, "acme")
	s := time.Now()
	imp := c.WaitTerminal(c.Upload("acme", "customers", "mixed.csv", body, mixedOpts))
	t.Logf("import: %s", elapsed(s))
	checkImport(t, "three replicas", imp, wantStats)
	checkBatches(t, c, imp, batches)
	checkCustomers(t, c, "acme", wantRecs)

	for _, phase := range []string{events.PhaseProcessing, events.PhaseTransforming} {
		// Each replica logs "batch committed" (import_id, phase, batch) once
		// per batch it produced.
		by := map[int][]int{} // batch → replicas that committed it
		perReplica := make([]int, 3)
		for r := 0; r < 3; r++ {
			for _, l := range c.Logs(phase, r) {
				if l.Message == "batch committed" && l.ImportID == imp.ID && l.Phase == phase && l.Batch != nil {
					by[*l.Batch] = append(by[*l.Batch], r)
					perReplica[r]++
				}
			}
		}
		t.Logf("%s: batches committed per replica %v", phase, perReplica)
		if len(by) != batches {
			t.Errorf("%s: %d distinct batches logged as committed, want %d", phase, len(by), batches)
		}
		var twice []string
		for b, rs := range by {
			if len(rs) != 1 {
				twice = append(twice, fmt.Sprintf("batch %d by replicas %v", b, rs))
			}
		}
		sort.Strings(twice)
		if len(twice) > 0 {
			t.Errorf("%s: batches committed more than once: %s", phase, strings.Join(twice, "; "))
		}
		working := 0
		for _, n := range perReplica {
			if n > 0 {
				working++
			}
		}
		if working < 2 {
			t.Errorf("%s: only %d of 3 replicas did work (%v): the durable is not shared", phase, working, perReplica)
		}
	}
	// Two durables per phase (its work, and the express lane of imports of
	// one batch), whatever the number of replicas.
	work, err := c.JS.Stream(context.Background(), topology.WorkStream)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for ci := range work.ListConsumers(context.Background()).Info() {
		names = append(names, ci.Name)
	}
	sort.Strings(names)
	// The intake's upload notifications (MinIO → inlet.work.uploads) have
	// their durable there too.
	want := []string{"uploads-v2"}
	for _, p := range events.Phases[1:] {
		want = append(want, p+"-v2", p+"-express-v2")
	}
	sort.Strings(want)
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("consumers on INLET_WORK: %v, want %v", names, want)
	}
}

// TestProjectorHonoursAckWait: every durable consumer, the projector's too,
// must redeliver a crashed process's messages after INLET_ACK_WAIT.
func TestProjectorHonoursAckWait(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{AckWait: "3s", Quiet: true})
	for _, d := range []struct{ stream, durable string }{
		{topology.EventsStream, "prevalidation-v2"}, {topology.EventsStream, "projector-v2"},
		{topology.WorkStream, "processing-v2"}, {topology.WorkStream, "cleanup-v2"},
	} {
		ci, err := consumerInfo(c, d.stream, d.durable)
		if err != nil {
			t.Errorf("consumer %s on %s: %v", d.durable, d.stream, err)
			continue
		}
		if ci.Config.AckWait != 3*time.Second {
			t.Errorf("consumer %s: AckWait %s, want INLET_ACK_WAIT=3s", d.durable, ci.Config.AckWait)
		}
		if ci.Config.MaxDeliver != 10 {
			t.Errorf("consumer %s: MaxDeliver %d, want INLET_MAX_DELIVER's default 10", d.durable, ci.Config.MaxDeliver)
		}
	}
}
