package app

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/topology"
)

// KEDA scales each phase on the durable consumers its role creates: a
// renamed durable (a new version suffix) or stream must move the
// ScaledObjects in deploy/k8s/keda with it, or KEDA watches a consumer that
// no longer exists.
func TestKEDAScalesEachPhaseOnItsDurables(t *testing.T) {
	want := map[string][][2]string{
		events.PhasePrevalidation: {
			{topology.EventsStream, events.PhasePrevalidation + durableVersion},
			{topology.WorkStream, "uploads" + durableVersion},
		},
	}
	for _, r := range PhaseRoles {
		want[string(r)] = [][2]string{
			{topology.WorkStream, string(r) + durableVersion},
			{topology.WorkStream, string(r) + "-express" + durableVersion},
		}
	}
	files, err := filepath.Glob(filepath.Join("..", "..", "deploy", "k8s", "keda", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no ScaledObjects: %v", err)
	}
	trigger := regexp.MustCompile(`(?m)^\s+stream: (\S+)\n\s+consumer: (\S+)$`)
	target := regexp.MustCompile(`scaleTargetRef: \{ name: (\S+) \}`)
	seen := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := target.FindSubmatch(data)
		if m == nil {
			t.Fatalf("%s: no scaleTargetRef", f)
		}
		phase := string(m[1])
		seen[phase] = true
		var got [][2]string
		for _, t := range trigger.FindAllSubmatch(data, -1) {
			got = append(got, [2]string{string(t[1]), string(t[2])})
		}
		if !slices.Equal(got, want[phase]) {
			t.Errorf("%s scales %s on %v, want %v", f, phase, got, want[phase])
		}
	}
	for phase := range want {
		if !seen[phase] {
			t.Errorf("no ScaledObject for %s", phase)
		}
	}
}
