package e2e

import (
	"bufio"
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/topology"
)

// Every service tells Prometheus what it did, a phase service on a small
// HTTP listener of its own (with its probes): after one import, each phase
// counted the import's rows, the projector counts the import as completed,
// the gateway counted the create by its route, and each phase shows its
// consumers.
func TestEveryServiceServesItsMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{})
	const rows, bad = 250, 3
	body := companyRows("M", rows-bad) + "M1,duplicate of a code\nMX,\nMY,\n" // a duplicate and two missing names
	imp := run(c, "acme", "companies", "metrics.csv", body, events.Options{SkipErrors: true})
	if imp.Status != events.StatusCompleted {
		t.Fatalf("import %s: %s", imp.Status, deref(imp.Reason))
	}
	scrape := func(p *Proc) map[string]float64 {
		t.Helper()
		// No key: the metrics hold no tenant's data (as the probes).
		r, err := Do(c.HTTP, http.MethodGet, "http://"+p.Addr+"/metrics", "", nil, nil)
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("%s /metrics: %v %d %s", p.Service, err, r.Status, r.Body)
		}
		return parseMetrics(t, r.Body)
	}
	var rowsIn, failed float64
	for _, phase := range events.Phases {
		p := c.Proc(phase, 0)
		for _, probe := range []string{"/healthz", "/readyz"} {
			if r, err := Do(c.HTTP, http.MethodGet, "http://"+p.Addr+probe, "", nil, nil); err != nil || r.Status != http.StatusOK {
				t.Errorf("%s %s: %v %d", phase, probe, err, r.Status)
			}
		}
		m := scrape(p)
		in := m[`inlet_phase_rows_in_total{phase="`+phase+`"}`]
		if phase == events.PhasePrevalidation {
			rowsIn = in
		}
		failed += m[`inlet_phase_rows_failed_total{phase="`+phase+`"}`]
		if phase != events.PhaseCleanup { // cleanup reads no rows
			if in == 0 {
				t.Errorf("%s counted no rows in", phase)
			}
			if m[`inlet_phase_batch_duration_seconds_count{phase="`+phase+`"}`] == 0 {
				t.Errorf("%s timed no batch", phase)
			}
		}
		// The intake's consumer of requests (on the events) keeps the first phase's name.
		stream := topology.WorkStream
		if phase == events.PhasePrevalidation {
			stream = events.Stream
		}
		if _, ok := m[`inlet_consumer_pending_messages{consumer="`+phase+`-v2",stream="`+stream+`"}`]; !ok {
			t.Errorf("%s shows no pending gauge of its consumer %s-v2", phase, phase)
		}
	}
	if rowsIn != rows {
		t.Errorf("prevalidation counted %v rows in, the file has %d", rowsIn, rows)
	}
	if imp.Stats.Failed == 0 || failed != float64(imp.Stats.Failed) {
		t.Errorf("the phases counted %v rows failed, the import %d", failed, imp.Stats.Failed)
	}
	if m := scrape(c.Proc("projector", 0)); m[`inlet_imports{status="completed"}`] < 1 {
		t.Errorf("the projector counts %v completed imports", m[`inlet_imports{status="completed"}`])
	}
	if m := scrape(c.Proc("gateway", 0)); m[`inlet_http_requests_total{code="201",method="POST",route="/v1/imports"}`] != 1 {
		t.Errorf("the gateway counted %v creates answered 201", m[`inlet_http_requests_total{code="201",method="POST",route="/v1/imports"}`])
	}
}

// parseMetrics reads the text exposition format: series (name and labels as
// written) → value; comments skipped.
func parseMetrics(t *testing.T, body []byte) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("unreadable metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}
