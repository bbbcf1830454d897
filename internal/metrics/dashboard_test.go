package metrics_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/metrics"
)

// The Grafana dashboard in deploy/ queries only metrics a process exposes,
// by the names it exposes them under: a renamed metric fails here, not on
// an operator's empty panel.
func TestGrafanaDashboardQueriesExposedMetrics(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "deploy", "grafana", "inlet.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}

	// A process with every instrument in use.
	m := metrics.New()
	m.WatchImports(counts{})
	m.WatchConsumers(func(context.Context) ([]*jetstream.ConsumerInfo, error) {
		return []*jetstream.ConsumerInfo{{Stream: "S", Name: "c"}}, nil
	})
	start := time.Now()
	m.BatchCommitted("parsing", &events.BatchProgress{StartedAt: start, CompletedAt: start.Add(time.Second)})
	m.WebhookAttempt("delivered")
	m.InstrumentHTTP(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	exposed := map[string]bool{}
	for _, f := range families {
		exposed[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				exposed[f.GetName()+suffix] = true
			}
		}
	}
	name := regexp.MustCompile(`\b(?:inlet|process|go)_[a-z_]+\b`)
	queried := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			for _, metric := range name.FindAllString(target.Expr, -1) {
				queried++
				if !exposed[metric] {
					t.Errorf("panel %q queries %s, which no Inlet process exposes", p.Title, metric)
				}
			}
		}
	}
	if queried < 10 || !strings.Contains(string(raw), "inlet_phase_rows_in_total") {
		t.Errorf("the dashboard queries %d metrics: not the dashboard expected", queried)
	}
}
