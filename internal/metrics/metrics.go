// Package metrics is what an Inlet process tells Prometheus: rows and
// batches per phase, HTTP requests, imports by status and the state of the
// JetStream consumers it works from. Names follow Prometheus' conventions
// (inlet_ prefix, base units, _total counters); no label carries an import
// id or an organization, so the series stay few however many imports run.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/inlet-dev/inlet/events"
)

// Metrics is one process's registry and the instruments Inlet updates.
type Metrics struct {
	reg *prometheus.Registry

	rowsIn, rowsOut, rowsFailed, rowsSkipped *prometheus.CounterVec
	batchSeconds                             *prometheus.HistogramVec

	httpRequests *prometheus.CounterVec
	httpSeconds  *prometheus.HistogramVec

	webhookAttempts *prometheus.CounterVec
}

// New makes the registry of one process, with the Go runtime's and the
// process's own collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rows := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "inlet", Subsystem: "phase", Name: name, Help: help}, []string{"phase"})
	}
	m := &Metrics{
		reg:         reg,
		rowsIn:      rows("rows_in_total", "Rows the phase read from the batches it committed."),
		rowsOut:     rows("rows_out_total", "Rows the phase handed to the next one."),
		rowsFailed:  rows("rows_failed_total", "Rows the phase rejected (with their error)."),
		rowsSkipped: rows("rows_skipped_total", "Rows the phase left out without failing them (duplicates skipped, rows of an interrupted import)."),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "inlet", Subsystem: "phase", Name: "batch_duration_seconds",
			Help: "How long the phase took over one batch, from its first row to its commit.",
			// 10 ms (a 100-row batch) to 5 minutes (a big barrier batch).
			Buckets: prometheus.ExponentialBucketsRange(0.01, 300, 16),
		}, []string{"phase"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "inlet", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code."}, []string{"route", "method", "code"}),
		httpSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "inlet", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "How long HTTP requests took to answer, by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
	}
	m.webhookAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "inlet", Subsystem: "webhook", Name: "attempts_total",
		Help: "Webhook delivery attempts, by outcome: delivered (a 2xx answer), retrying (failed, attempted again later), failed (failed, retry window over)."},
		[]string{"outcome"})
	reg.MustRegister(m.rowsIn, m.rowsOut, m.rowsFailed, m.rowsSkipped, m.batchSeconds, m.httpRequests, m.httpSeconds, m.webhookAttempts)
	return m
}

// Handler serves the registry in Prometheus' exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is where further collectors register.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// BatchCommitted counts a batch phase committed: its rows and how long it took.
func (m *Metrics) BatchCommitted(phase string, st *events.BatchProgress) {
	m.rowsIn.WithLabelValues(phase).Add(float64(st.RowsIn))
	m.rowsOut.WithLabelValues(phase).Add(float64(st.RowsOut))
	m.rowsFailed.WithLabelValues(phase).Add(float64(st.RowsFailed))
	m.rowsSkipped.WithLabelValues(phase).Add(float64(st.Skipped))
	if !st.StartedAt.IsZero() && !st.CompletedAt.Before(st.StartedAt) {
		m.batchSeconds.WithLabelValues(phase).Observe(st.CompletedAt.Sub(st.StartedAt).Seconds())
	}
}

// ImportCounter counts imports by status.
type ImportCounter interface {
	CountViews(ctx context.Context) (map[string]int64, error)
}

// WatchImports adds the inlet_imports gauge, read from views at each scrape
// (the projector's processes: they keep the views).
func (m *Metrics) WatchImports(views ImportCounter) {
	m.reg.MustRegister(&importsCollector{views: views})
}

var importsDesc = prometheus.NewDesc("inlet_imports", "Imports by status, in every organization.", []string{"status"}, nil)

type importsCollector struct{ views ImportCounter }

func (c *importsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- importsDesc }

func (c *importsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	counts, err := c.views.CountViews(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(importsDesc, err)
		return
	}
	// Every status is present, 0 when no import has it: a query for one
	// status finds a series before the first import reaches it.
	for _, s := range events.Statuses {
		ch <- prometheus.MustNewConstMetric(importsDesc, prometheus.GaugeValue, float64(counts[string(s)]), string(s))
	}
}

// scrapeTimeout bounds what one scrape may wait for a server.
const scrapeTimeout = 5 * time.Second

// ConsumerStates reads the JetStream consumers a process works from.
type ConsumerStates func(ctx context.Context) ([]*jetstream.ConsumerInfo, error)

// WatchConsumers adds the gauges of the consumers read, at each scrape:
// what waits, what is handed out, what is being redelivered.
func (m *Metrics) WatchConsumers(read ConsumerStates) {
	m.reg.MustRegister(&consumersCollector{read: read})
}

var (
	consumerLabels  = []string{"stream", "consumer"}
	pendingDesc     = prometheus.NewDesc("inlet_consumer_pending_messages", "Messages of the consumer's subjects not yet handed out.", consumerLabels, nil)
	ackPendingDesc  = prometheus.NewDesc("inlet_consumer_ack_pending_messages", "Messages handed out and not yet acknowledged.", consumerLabels, nil)
	redeliveredDesc = prometheus.NewDesc("inlet_consumer_redelivered_messages", "Messages handed out more than once and not yet acknowledged.", consumerLabels, nil)
	deliveredDesc   = prometheus.NewDesc("inlet_consumer_delivered_messages_total", "Deliveries the consumer made, redeliveries included (the server's count: it survives the process's restarts).", consumerLabels, nil)
)

type consumersCollector struct{ read ConsumerStates }

func (c *consumersCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{pendingDesc, ackPendingDesc, redeliveredDesc, deliveredDesc} {
		ch <- d
	}
}

func (c *consumersCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	infos, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(pendingDesc, err)
		return
	}
	for _, i := range infos {
		labels := []string{i.Stream, i.Name}
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(i.NumPending), labels...)
		ch <- prometheus.MustNewConstMetric(ackPendingDesc, prometheus.GaugeValue, float64(i.NumAckPending), labels...)
		ch <- prometheus.MustNewConstMetric(redeliveredDesc, prometheus.GaugeValue, float64(i.NumRedelivered), labels...)
		ch <- prometheus.MustNewConstMetric(deliveredDesc, prometheus.CounterValue, float64(i.Delivered.Consumer), labels...)
	}
}
