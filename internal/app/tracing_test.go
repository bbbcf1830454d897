package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/inlet-dev/inlet/events"
)

// One import is one trace: the trace of the HTTP request that creates it
// goes on through the request event, every phase's work messages and the
// events the projector reads, so the spans of every phase share the
// caller's trace id.
func TestOneImportIsOneTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })

	cfg := Config{
		NATSListen: "127.0.0.1:-1", DataDir: t.TempDir(), ResourcesDir: filepath.Join(repoRoot(), "resources"),
		LogLevel: "warn", LogFormat: "console", BatchSize: 2, AckWait: 30 * time.Second, MaxDeliver: 5, Concurrency: 2,
		HTTPAddr: "127.0.0.1:0", ImportTimeout: time.Hour, UploadTTL: time.Hour, SweepEvery: time.Second,
		DeadlineGrace: time.Second, StallAfter: time.Minute,
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx, Everything...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = a.Wait(); a.Close() })
	base := "http://" + a.Addr().String()

	// The caller's own span: what it sends carries its trace.
	callerCtx, caller := tp.Tracer("test").Start(context.Background(), "a user imports companies")
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("organization_id", "acme")
	mw.WriteField("resource", "companies")
	fw, _ := mw.CreateFormFile("file", "companies.csv")
	fw.Write([]byte("code,name\nT1,One\nT2,Two\nT3,Three\nT4,Four\nT5,Five\n"))
	mw.Close()
	req, _ := http.NewRequestWithContext(callerCtx, http.MethodPost, base+"/v1/imports", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	otel.GetTextMapPropagator().Inject(callerCtx, propagation.HeaderCarrier(req.Header))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created events.Import
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	caller.End()
	traceID := caller.SpanContext().TraceID()

	// Wait until a span of every phase has ended, and the projector's of the
	// terminal event.
	var spans tracetest.SpanStubs
	phasesSeen := func() []string {
		var seen []string
		for _, s := range spans {
			for _, kv := range s.Attributes {
				if kv.Key == "inlet.phase" && !slices.Contains(seen, kv.Value.AsString()) {
					seen = append(seen, kv.Value.AsString())
				}
			}
		}
		return seen
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		spans = exp.GetSpans()
		if len(phasesSeen()) == len(events.Phases) && slices.ContainsFunc(spans, projectorSpanOf(traceID)) {
			break
		}
		if time.Now().After(deadline) {
			for _, s := range spans {
				t.Logf("%s trace %s parent %s", s.Name, s.SpanContext.TraceID(), s.Parent.SpanID())
			}
			t.Fatalf("after a minute, spans of phases %v (want all of %v), projector span: %v",
				phasesSeen(), events.Phases, slices.ContainsFunc(spans, projectorSpanOf(traceID)))
		}
		time.Sleep(50 * time.Millisecond)
	}
	var server *tracetest.SpanStub
	for i, s := range spans {
		if s.Name == "POST /v1/imports" {
			server = &spans[i]
		}
		for _, kv := range s.Attributes {
			if kv.Key == "inlet.import_id" && kv.Value.AsString() == created.ID && s.SpanContext.TraceID() != traceID {
				t.Errorf("span %q of the import is in trace %s, the caller's is %s", s.Name, s.SpanContext.TraceID(), traceID)
			}
		}
	}
	if server == nil || server.Parent.SpanID() != caller.SpanContext().SpanID() || server.SpanKind != trace.SpanKindServer {
		t.Fatalf("no server span of the create under the caller's span: %+v", server)
	}
	// The intake's span of the request is a child of the create's.
	intake := slices.IndexFunc(spans, func(s tracetest.SpanStub) bool {
		return s.Name == "process prevalidation" && s.Parent.SpanID() == server.SpanContext.SpanID()
	})
	if intake < 0 {
		t.Error("the intake's span of the request is not a child of the create's server span")
	}

	// The live view's key may ride in its URL (a browser's EventSource
	// sends no headers): no span records it.
	const secret = "sk-never-in-a-span"
	resp, err = http.Get(base + "/v1/imports/" + created.ID + "/events?organization_id=acme&access_token=" + secret)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) // the import has ended: one event, then the end
	resp.Body.Close()
	deadline = time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(exp.GetSpans(), func(s tracetest.SpanStub) bool { return s.Name == "GET /v1/imports/{id}/events" }) {
		if time.Now().After(deadline) {
			t.Fatal("no span of the events route")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, s := range exp.GetSpans() {
		for _, kv := range s.Attributes {
			if strings.Contains(kv.Value.Emit(), secret) || strings.Contains(s.Name, secret) {
				t.Errorf("span %q records the access token: %s=%s", s.Name, kv.Key, kv.Value.Emit())
			}
		}
	}
}

// projectorSpanOf finds a span of the projector in trace id.
func projectorSpanOf(id trace.TraceID) func(tracetest.SpanStub) bool {
	return func(s tracetest.SpanStub) bool { return s.Name == "process projector" && s.SpanContext.TraceID() == id }
}
