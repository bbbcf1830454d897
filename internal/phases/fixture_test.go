package phases_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/imports"
	"github.com/inlet-dev/inlet/internal/phases"
	"github.com/inlet-dev/inlet/internal/pipeline"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/rows"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/sqlite"
)

// recorder is the broker as the harness sees it: it only keeps what was published.
type recorder struct {
	mu   sync.Mutex
	msgs []string // subjects
}

func (r *recorder) Publish(_ context.Context, subject, id string, body []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, subject)
	return nil
}

func (r *recorder) PublishEvent(ctx context.Context, subject string, ce events.CloudEvent) error {
	return r.Publish(ctx, subject, ce.ID, nil)
}

// fixture is one phase harness on the real local blob store, the real SQLite
// store and the repository's resource definitions.
type fixture struct {
	h  *pipeline.Harness
	st store.Store
	// records, when set, is what the phases see of st (a spy).
	records store.RecordStore
	blobs   blob.Store
	reg     *resources.Registry
	pub     *recorder
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	reg, err := resources.LoadDir(filepath.Join(filepath.Dir(file), "..", "..", "resources"))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pub := &recorder{}
	env := &pipeline.Env{Blobs: blobs, Records: st, Registry: reg, Pub: pub, Log: zerolog.Nop(),
		Source: "test", BatchSize: 2, TempDir: t.TempDir(), MaxDeliver: 3}
	return &fixture{h: pipeline.New(env), st: st, blobs: blobs, reg: reg, pub: pub}
}

var idClock = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// options returns normalized options of a new customers import of acme/live.
func options(t *testing.T, mod func(*events.Options)) events.Options {
	t.Helper()
	idClock = idClock.Add(time.Millisecond)
	o := events.Options{ID: imports.NewID(idClock), OrganizationID: "acme", Resource: "customers"}
	if mod != nil {
		mod(&o)
	}
	if err := imports.Normalize(&o); err != nil {
		t.Fatal(err)
	}
	return o
}

func (f *fixture) phase(name string) pipeline.Phase {
	var records store.RecordStore = f.st
	if f.records != nil {
		records = f.records
	}
	p, ok := phases.All(records, f.blobs)[name]
	if !ok {
		panic(name)
	}
	return p
}

// previous is the phase whose output phase reads.
func previous(phase string) string {
	for i, p := range events.Phases {
		if p == phase && i > 0 {
			return events.Phases[i-1]
		}
	}
	panic(phase)
}

// input writes batches as the output of the phase before phase.
func (f *fixture) input(t *testing.T, o events.Options, phase string, batches ...[]rows.Row) {
	t.Helper()
	for b, batch := range batches {
		var buf bytes.Buffer
		enc := rows.NewRowWriter(&buf) // the format phases write
		for i := range batch {
			if err := enc.Write(&batch[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := enc.Flush(); err != nil {
			t.Fatal(err)
		}
		key := imports.OutKey(o.ID, previous(phase), b)
		if err := f.blobs.Put(context.Background(), key, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
			t.Fatal(err)
		}
		// Committed, as the previous phase leaves a batch: its stats last.
		st, _ := json.Marshal(events.BatchProgress{ImportID: o.ID, Phase: previous(phase), Batch: b,
			BatchesTotal: len(batches), RowsIn: int64(len(batch)), RowsOut: int64(len(batch))})
		if err := f.blobs.Put(context.Background(), imports.StatsKey(o.ID, previous(phase), b), bytes.NewReader(st), int64(len(st))); err != nil {
			t.Fatal(err)
		}
	}
}

// deliver hands phase one work message (batch, or pipeline.AllBatches).
func (f *fixture) deliver(t *testing.T, o events.Options, phase string, batch, batches int) {
	t.Helper()
	body, err := json.Marshal(pipeline.WorkMessage{Options: o, Phase: phase, Batch: batch, Batches: batches})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.h.WorkHandler(f.phase(phase))(message.NewMessage(fmt.Sprintf("w-%s-%d", phase, batch), body)); err != nil {
		t.Fatalf("%s batch %d: %v", phase, batch, err)
	}
	if _, err := f.blobs.Stat(context.Background(), imports.TerminalKey(o.ID)); err == nil {
		var imp events.Import
		f.getJSON(t, imports.TerminalKey(o.ID), &imp)
		t.Fatalf("%s batch %d ended the import: %s %v", phase, batch, imp.Status, deref(imp.Reason))
	}
}

// run delivers every batch of a per-batch phase, or the one message of a barrier phase.
func (f *fixture) run(t *testing.T, o events.Options, phase string, batches int) {
	t.Helper()
	switch phase {
	case events.PhasePreparsing, events.PhaseParsing:
		f.deliver(t, o, phase, pipeline.AllBatches, batches)
	default:
		for b := 0; b < batches; b++ {
			f.deliver(t, o, phase, b, batches)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func (f *fixture) getJSON(t *testing.T, key string, v any) {
	t.Helper()
	rc, err := f.blobs.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	if err := json.NewDecoder(rc).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", key, err)
	}
}

func readNDJSON[T any](t *testing.T, f *fixture, key string) []T {
	t.Helper()
	rc, err := f.blobs.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return decodeAll[T](t, key, rc)
}

func decodeAll[T any](t *testing.T, key string, rc io.ReadCloser) []T {
	t.Helper()
	defer rc.Close()
	dec := rows.NewDecoder(rc)
	var out []T
	for {
		var v T
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("%s: %v", key, err)
		}
		out = append(out, v)
	}
}

func (f *fixture) out(t *testing.T, o events.Options, phase string, b int) []rows.Row {
	t.Helper()
	rc, err := pipeline.OpenRows(context.Background(), f.blobs, o.ID, phase, b)
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll[rows.Row](t, imports.OutKey(o.ID, phase, b), rc)
}

// rejects reads batch b's rejects; a batch without any has no object.
func (f *fixture) rejects(t *testing.T, o events.Options, phase string, b int) []rows.Reject {
	t.Helper()
	key := imports.RejectsKey(o.ID, phase, b)
	if _, err := f.blobs.Stat(context.Background(), key); errors.Is(err, blob.ErrNotFound) {
		return nil
	}
	return readNDJSON[rows.Reject](t, f, key)
}

func (f *fixture) stats(t *testing.T, o events.Options, phase string, b int) events.BatchProgress {
	t.Helper()
	var st events.BatchProgress
	f.getJSON(t, imports.StatsKey(o.ID, phase, b), &st)
	return st
}

// allRejects maps row number → reject over every batch.
func (f *fixture) allRejects(t *testing.T, o events.Options, phase string, batches int) map[int64]rows.Reject {
	t.Helper()
	m := map[int64]rows.Reject{}
	for b := 0; b < batches; b++ {
		for _, r := range f.rejects(t, o, phase, b) {
			if _, dup := m[r.Row]; dup {
				t.Errorf("row %d rejected twice", r.Row)
			}
			m[r.Row] = r
		}
	}
	return m
}

// allOut maps row number → row over every batch.
func (f *fixture) allOut(t *testing.T, o events.Options, phase string, batches int) map[int64]rows.Row {
	t.Helper()
	m := map[int64]rows.Row{}
	for b := 0; b < batches; b++ {
		for _, r := range f.out(t, o, phase, b) {
			if _, dup := m[r.Num]; dup {
				t.Errorf("row %d emitted twice", r.Num)
			}
			m[r.Num] = r
		}
	}
	return m
}

// seed stores records directly (scope's resource decides the key fields).
func (f *fixture) seed(t *testing.T, scope store.Scope, recs map[string]map[string]any) {
	t.Helper()
	res, ok := f.reg.Get(scope.Resource)
	if !ok {
		t.Fatalf("no resource %s", scope.Resource)
	}
	var ops []store.Op
	for id, data := range recs {
		keys, err := res.Keys(data)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(data)
		ops = append(ops, store.Op{Kind: store.OpUpsert, Record: store.Record{ID: id, Data: b, Keys: keys, ImportID: "seed"}})
	}
	idClock = idClock.Add(time.Millisecond)
	if _, err := f.st.Apply(context.Background(), scope, "seed-"+idClock.String(), ops); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) record(t *testing.T, scope store.Scope, id string) (store.Record, map[string]any) {
	t.Helper()
	rec, err := f.st.Get(context.Background(), scope, id)
	if err != nil {
		t.Fatalf("record %s: %v", id, err)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Data, &m); err != nil {
		t.Fatal(err)
	}
	return rec, m
}

func scopeOf(o events.Options) store.Scope {
	return store.Scope{Org: o.OrganizationID, Mode: string(o.Mode), Resource: o.Resource}
}

// row builds an input row; Raw is the data as given, so rejects can be checked to carry it.
func row(n int64, data map[string]any) rows.Row {
	raw, _ := json.Marshal(data)
	return rows.Row{Num: n, Data: data, Raw: raw}
}

func cust(email, ext, name string) map[string]any {
	d := map[string]any{}
	if email != "" {
		d["email"] = email
	}
	if ext != "" {
		d["external_id"] = ext
	}
	if name != "" {
		d["name"] = name
	}
	return d
}

func checkStats(t *testing.T, got events.BatchProgress, in, out, failed, skipped int64) {
	t.Helper()
	if got.RowsIn != in || got.RowsOut != out || got.RowsFailed != failed || got.Skipped != skipped {
		t.Errorf("%s batch %d stats in/out/failed/skipped = %d/%d/%d/%d, want %d/%d/%d/%d", got.Phase, got.Batch,
			got.RowsIn, got.RowsOut, got.RowsFailed, got.Skipped, in, out, failed, skipped)
	}
	if got.RowsIn != got.RowsOut+got.RowsFailed+got.Skipped {
		t.Errorf("%s batch %d: rows_in %d != out+failed+skipped", got.Phase, got.Batch, got.RowsIn)
	}
}
