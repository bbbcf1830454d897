package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/metrics"
)

// Requests are counted by the route that took them, whatever replaced the
// request on its way there; what no route took, and made-up methods, are
// folded into one label value each so the series stay few.
func TestHTTPRequestsAreCountedByRoute(t *testing.T) {
	m := metrics.New()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/imports/{id}", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	// Between the middleware and the routes, as the API key check is.
	replacing := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), struct{}{}, 1)))
		})
	}
	h := m.InstrumentHTTP(replacing(httpapi.Routes(mux)))
	for _, req := range []struct{ method, path string }{
		{"GET", "/v1/imports/imp_1"}, {"GET", "/v1/imports/imp_2"}, {"GET", "/nowhere"}, {"BREW", "/v1/imports/imp_1"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}
	want := `
# HELP inlet_http_requests_total HTTP requests answered, by route pattern, method and status code.
# TYPE inlet_http_requests_total counter
inlet_http_requests_total{code="200",method="GET",route="/v1/imports/{id}"} 2
inlet_http_requests_total{code="404",method="GET",route="unrouted"} 1
inlet_http_requests_total{code="405",method="other",route="unrouted"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "inlet_http_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.Registry(), "inlet_http_request_duration_seconds"); n != 3 {
		t.Errorf("%d duration series, want 3 (route × method)", n)
	}
}

func TestBatchesAreCountedByPhase(t *testing.T) {
	m := metrics.New()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.BatchCommitted("parsing", &events.BatchProgress{RowsIn: 100, RowsOut: 97, RowsFailed: 2, Skipped: 1,
		StartedAt: start, CompletedAt: start.Add(1500 * time.Millisecond)})
	m.BatchCommitted("parsing", &events.BatchProgress{RowsIn: 10, RowsOut: 10, StartedAt: start, CompletedAt: start.Add(time.Second)})
	m.BatchCommitted("validation", &events.BatchProgress{RowsIn: 7, RowsOut: 7})
	want := `
# HELP inlet_phase_rows_failed_total Rows the phase rejected (with their error).
# TYPE inlet_phase_rows_failed_total counter
inlet_phase_rows_failed_total{phase="parsing"} 2
inlet_phase_rows_failed_total{phase="validation"} 0
# HELP inlet_phase_rows_in_total Rows the phase read from the batches it committed.
# TYPE inlet_phase_rows_in_total counter
inlet_phase_rows_in_total{phase="parsing"} 110
inlet_phase_rows_in_total{phase="validation"} 7
# HELP inlet_phase_rows_out_total Rows the phase handed to the next one.
# TYPE inlet_phase_rows_out_total counter
inlet_phase_rows_out_total{phase="parsing"} 107
inlet_phase_rows_out_total{phase="validation"} 7
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"inlet_phase_rows_in_total", "inlet_phase_rows_out_total", "inlet_phase_rows_failed_total"); err != nil {
		t.Error(err)
	}
	// The histogram has the two timed batches (a batch without times is not observed).
	body := scrape(t, m)
	for _, line := range []string{
		`inlet_phase_batch_duration_seconds_count{phase="parsing"} 2`,
		`inlet_phase_batch_duration_seconds_sum{phase="parsing"} 2.5`,
		`inlet_phase_rows_skipped_total{phase="parsing"} 1`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("the scrape lacks %q", line)
		}
	}
	if strings.Contains(body, `inlet_phase_batch_duration_seconds_count{phase="validation"}`) {
		t.Error("a batch without times was observed")
	}
}

type counts map[string]int64

func (c counts) CountViews(context.Context) (map[string]int64, error) {
	if c == nil {
		return nil, errors.New("store down")
	}
	return c, nil
}

func TestImportsByStatusHasEveryStatus(t *testing.T) {
	m := metrics.New()
	m.WatchImports(counts{"completed": 3, "processing": 1})
	body := scrape(t, m)
	for _, s := range events.Statuses {
		want := map[events.Status]string{events.StatusCompleted: "3", events.StatusProcessing: "1"}[s]
		if want == "" {
			want = "0"
		}
		if line := `inlet_imports{status="` + string(s) + `"} ` + want + "\n"; !strings.Contains(body, line) {
			t.Errorf("the scrape lacks %q:\n%s", line, body)
		}
	}
	// A store that cannot answer fails the scrape of that metric, saying why.
	down := metrics.New()
	down.WatchImports(counts(nil))
	if _, err := down.Registry().Gather(); err == nil || !strings.Contains(err.Error(), "store down") {
		t.Errorf("gather with the store down: %v", err)
	}
}

func TestConsumersAreReadAtEachScrape(t *testing.T) {
	m := metrics.New()
	pending := uint64(5)
	m.WatchConsumers(func(context.Context) ([]*jetstream.ConsumerInfo, error) {
		pending++
		return []*jetstream.ConsumerInfo{{Stream: "INLET_WORK", Name: "parsing-v2", NumPending: pending, NumAckPending: 2,
			NumRedelivered: 1, Delivered: jetstream.SequenceInfo{Consumer: 40}}}, nil
	})
	first, second := scrape(t, m), scrape(t, m)
	for body, want := range map[string]string{first: "6", second: "7"} {
		if line := `inlet_consumer_pending_messages{consumer="parsing-v2",stream="INLET_WORK"} ` + want + "\n"; !strings.Contains(body, line) {
			t.Errorf("the scrape lacks %q", line)
		}
	}
	for _, line := range []string{
		`inlet_consumer_ack_pending_messages{consumer="parsing-v2",stream="INLET_WORK"} 2`,
		`inlet_consumer_redelivered_messages{consumer="parsing-v2",stream="INLET_WORK"} 1`,
		`inlet_consumer_delivered_messages_total{consumer="parsing-v2",stream="INLET_WORK"} 40`,
	} {
		if !strings.Contains(second, line+"\n") {
			t.Errorf("the scrape lacks %q", line)
		}
	}
}

// Every metric Inlet defines passes Prometheus' own naming lint.
func TestNamesFollowPrometheusConventions(t *testing.T) {
	m := metrics.New()
	m.WatchImports(counts{})
	m.WatchConsumers(func(context.Context) ([]*jetstream.ConsumerInfo, error) {
		return []*jetstream.ConsumerInfo{{Stream: "S", Name: "c"}}, nil
	})
	m.BatchCommitted("parsing", &events.BatchProgress{})
	m.InstrumentHTTP(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "inlet_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %s", resp.StatusCode, b)
	}
	return string(b)
}
