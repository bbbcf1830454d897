package app

import (
	"context"
	"encoding/json"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/store"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// startEmbedded runs every phase in one process on the embedded default.
func startEmbedded(t *testing.T) *App { return startWith(t, 3) }

func startEmbeddedB(b *testing.B) *App { return startWith(b, 2000) }

func startWith(t testing.TB, batchSize int) *App { return startWrapped(t, batchSize, nil) }

// startWrapped is startWith with the record store wrapped before the phases
// are made.
func startWrapped(t testing.TB, batchSize int, wrap func(store.Store) store.Store) *App {
	return startWrapping(t, batchSize, wrap, nil)
}

// startWrapping is startWith with the record store and the blob store
// wrapped (either may be nil) before the phases are made.
func startWrapping(t testing.TB, batchSize int, wrap func(store.Store) store.Store, wrapBlobs func(blob.Store) blob.Store) *App {
	t.Helper()
	cfg := Config{
		NATSListen: "127.0.0.1:-1", DataDir: t.TempDir(), ResourcesDir: filepath.Join(repoRoot(), "resources"),
		LogLevel: "warn", LogFormat: "console", BatchSize: batchSize, AckWait: 30 * time.Second, MaxDeliver: 5, Concurrency: 2,
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		a.Store = wrap(a.Store)
		a.Harness.Env.Records = a.Store
	}
	if wrapBlobs != nil {
		a.Blobs = wrapBlobs(a.Blobs)
		a.Harness.Env.Blobs = a.Blobs
	}
	if err := a.Start(ctx, Pipeline...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = a.Wait(); a.Close() })
	return a
}

// runImport stores body as the import's file, requests it and waits for its terminal event.
func runImportB(b *testing.B, a *App, opts events.Options, name, body string) events.Import {
	return runImport(b, a, opts, name, body)
}

func runImport(t testing.TB, a *App, opts events.Options, name, body string) events.Import {
	t.Helper()
	ctx := context.Background()
	if opts.ID == "" {
		opts.ID = imports.NewID(time.Now())
	}
	key := imports.SourceKey(opts.ID, name)
	if err := a.Blobs.Put(ctx, key, strings.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	done := make(chan events.Import, 1)
	sub, err := a.Broker.Conn.Subscribe(events.Subject(opts.OrganizationID, opts.Resource, "*"), func(m *nats.Msg) {
		ce, err := events.Decode(m.Data)
		if err != nil || ce.Subject != opts.ID {
			return
		}
		_, _, ev, _ := events.ParseSubject(m.Subject)
		if events.Status(ev).Terminal() || ev == events.EventTimedOut {
			var imp events.Import
			if err := json.Unmarshal(ce.Data, &imp); err == nil {
				done <- imp
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ce, err := events.New("req:"+opts.ID, "test", events.EventRequested, opts.ID,
		events.ImportRequested{Options: opts, Source: &events.Source{Key: key, Name: name}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Broker.PublishEvent(context.Background(), events.Subject(opts.OrganizationID, opts.Resource, events.EventRequested), ce); err != nil {
		t.Fatal(err)
	}
	select {
	case imp := <-done:
		return imp
	case <-time.After(5 * time.Minute):
		t.Fatalf("import %s did not finish", opts.ID)
	}
	return events.Import{}
}

func TestEmbeddedPipelineEveryRowFate(t *testing.T) {
	a := startEmbedded(t)
	companies := runImport(t, a, events.Options{OrganizationID: "acme", Resource: "companies"}, "companies.csv",
		"code,name\nACME,Acme\nGLOBEX,Globex\n")
	if companies.Status != events.StatusCompleted || companies.Stats.Created != 2 {
		t.Fatalf("companies: %+v", companies.Stats)
	}
	first := runImport(t, a, events.Options{OrganizationID: "acme", Resource: "customers"}, "c1.csv",
		"email,external_id,name,age,company_code\n"+
			"a@x.io,E1,Ann,30,ACME\n"+
			"b@x.io,E2,Bob,40,GLOBEX\n"+
			"c@x.io,E3,Cid,50,\n")
	if first.Status != events.StatusCompleted || first.Stats.Created != 3 || first.Stats.Total != 3 {
		t.Fatalf("first import: %s %+v %v", first.Status, first.Stats, first.Reason)
	}
	second := runImport(t, a, events.Options{OrganizationID: "acme", Resource: "customers", SkipErrors: true}, "c2.csv",
		"email,external_id,name,age,company_code\n"+
			"a@x.io,,Ann,30,\n"+ // unchanged (empty cells keep the stored values)
			"B@X.io,,Bobby,41,\n"+ // updated (key matched case-insensitively)
			"d@x.io,E4,Dee,20,ACME\n"+ // created
			"e@x.io,,Eve,20,\n"+ // duplicate (ignore_all)
			"e@x.io,,Eve2,21,\n"+ // duplicate
			"not-an-email,,Bad,20,\n"+ // schema.format
			"f@x.io,E5,Fay,20,NOPE\n"+ // reference.not_found
			"c@x.io,E1,Cid,50,\n") // ambiguous: c@x.io is Cid, E1 is Ann
	want := events.Stats{Total: 8, Processed: 8, Created: 1, Updated: 1, Unchanged: 1, Skipped: 2, Failed: 3}
	if second.Status != events.StatusCompleted || second.Stats != want {
		t.Fatalf("second import: %s\n got %+v\nwant %+v", second.Status, second.Stats, want)
	}
	recs, err := a.Store.List(context.Background(), store.Scope{Org: "acme", Mode: "live", Resource: "customers"}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("want 4 stored customers, got %d", len(recs))
	}
	for _, p := range second.Phases {
		if p.Status != "completed" {
			t.Errorf("phase %s is %s", p.Name, p.Status)
		}
	}
}

// A client needs nothing but NATS: a bare body on the requested subject is an
// import (organization and resource from the subject), and the same
// Nats-Msg-Id published twice is one import.
func TestBareRequestOnNATSIsOneImport(t *testing.T) {
	a := startEmbedded(t)
	completed := make(chan events.Import, 4)
	sub, err := a.Broker.Conn.Subscribe("imports.acme.companies.completed", func(m *nats.Msg) {
		ce, err := events.Decode(m.Data)
		if err != nil {
			return
		}
		var imp events.Import
		if json.Unmarshal(ce.Data, &imp) == nil {
			completed <- imp
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for i := 0; i < 2; i++ {
		msg := nats.NewMsg("imports.acme.companies.requested")
		msg.Header.Set(nats.MsgIdHdr, "client-req-1")
		msg.Data = []byte(`{"skip_errors":true,"inputs":[{"code":"X1","name":"Ex One"},{"code":"X2","name":"Ex Two"},{"code":"","name":"No code"}]}`)
		if _, err := a.Broker.JS.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	var imp events.Import
	select {
	case imp = <-completed:
	case <-time.After(30 * time.Second):
		t.Fatal("no completion event")
	}
	want := events.Stats{Total: 3, Processed: 3, Created: 2, Failed: 1}
	if imp.Stats != want || imp.OrganizationID != "acme" || imp.Format != "jsonl" {
		t.Fatalf("got %s/%s %+v", imp.OrganizationID, imp.Format, imp.Stats)
	}
	select {
	case other := <-completed:
		t.Fatalf("a second import %s was created for the same Nats-Msg-Id", other.ID)
	case <-time.After(2 * time.Second):
	}
}

// A JSON number no double can hold (issue 7: 1e400 was stored as given) is a
// row error of its field, the other rows import, and a number a double holds
// is stored with the digits given.
func TestNumbersBeyondADoubleAreRowErrors(t *testing.T) {
	a := startEmbedded(t)
	imp := runImport(t, a, events.Options{OrganizationID: "acme", Resource: "customers", SkipErrors: true}, "c.jsonl",
		`{"email":"a@x.io","name":"Ann","age":1e400}`+"\n"+
			`{"email":"b@x.io","name":"Bob","age":123456789012345678}`+"\n"+
			`{"email":"c@x.io","name":"Cid","age":-1e-400}`+"\n")
	if imp.Status != events.StatusCompleted || imp.Stats.Created != 1 || imp.Stats.Failed != 2 {
		t.Fatalf("%s %+v %v", imp.Status, imp.Stats, imp.Reason)
	}
	recs, err := a.Store.List(context.Background(), store.Scope{Org: "acme", Mode: "live", Resource: "customers"}, "", 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("stored %d records, %v", len(recs), err)
	}
	if !strings.Contains(string(recs[0].Data), `"age":123456789012345678`) {
		t.Errorf("stored %s: the digits given are not kept", recs[0].Data)
	}
}
