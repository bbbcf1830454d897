package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/topology"
)

// TestJetStreamClusterNodeRestart runs every service on a three-node NATS
// cluster with every stream replicated three times, and stops the node that
// leads the work stream in the middle of an import, then starts it again:
// the streams elect another leader, the services reconnect, and the import
// completes exactly, nothing lost or doubled.
func TestJetStreamClusterNodeRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 100, NATSNodes: 3, Orgs: []string{"chaos-big"}})
	const rows = 20000
	body, _, _ := chaosFiles(rows)
	for _, stream := range []string{topology.EventsStream, topology.WorkStream, topology.DeadLettersStream} {
		info, err := streamInfo(c, stream)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("%s: %d replicas (cluster %+v), want 3", stream, info.Config.Replicas, info.Cluster)
		}
	}
	id := c.Upload("chaos-big", "companies", "big.csv", body, events.Options{})
	c.WaitProgress(id, events.PhaseTransforming, 20, 2*time.Minute)
	info, err := streamInfo(c, topology.WorkStream)
	if err != nil {
		t.Fatal(err)
	}
	leader, err := strconv.Atoi(strings.TrimPrefix(info.Cluster.Leader, "n"))
	if err != nil {
		t.Fatalf("leader %q: %v", info.Cluster.Leader, err)
	}
	c.StopNATSNode(leader)
	t.Logf("stopped %s, the leader of INLET_WORK, after %d transforming batches", info.Cluster.Leader, len(c.Progress(id, events.PhaseTransforming)))
	time.Sleep(5 * time.Second)
	c.StartNATSNode(leader)
	imp := c.WaitTerminalFor(id, 5*time.Minute)
	checkImport(t, "chaos-big", imp, events.Stats{Total: rows, Processed: rows, Created: rows})
	first := map[string]string{}
	for i := range rows {
		first[fmt.Sprintf("K%07d", i)] = fmt.Sprintf("Company %d", i)
	}
	checkChaosStore(t, c, map[string]map[string]string{"chaos-big": first})
}
