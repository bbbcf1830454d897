package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
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
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/sqlite"
	"github.com/inlet-dev/inlet/internal/topology"
)

// recorder is the broker as the harness sees it: it keeps what was
// published, deduplicating by message id the way JetStream does.
type recorder struct {
	mu      sync.Mutex
	ids     map[string]int
	first   map[string][]byte
	changed []string // ids republished with a different body
	msgs    []published
	// onPublish, if set, sees every message as it is published.
	onPublish func(subject, id string)
	// lose, if set, makes the publish of an id it names fail: the broker
	// went away, or the process died, before the message was sent.
	lose  func(id string) bool
	lost  int
	order []string // ids in the order they were first published
}

type published struct {
	subject, id string
	body        []byte
}

func (r *recorder) Publish(_ context.Context, subject, id string, body []byte) error {
	if r.onPublish != nil {
		r.onPublish(subject, id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lose != nil && r.lose(id) {
		r.lost++
		return fmt.Errorf("publish %s: lost", id)
	}
	if r.ids == nil {
		r.ids = map[string]int{}
	}
	if r.first == nil {
		r.first = map[string][]byte{}
	}
	r.ids[id]++
	if r.ids[id] == 1 {
		r.order = append(r.order, id)
		r.first[id] = body
		r.msgs = append(r.msgs, published{subject, id, body})
	} else if string(r.first[id]) != string(body) && !volatile(id) {
		r.changed = append(r.changed, id)
	}
	return nil
}

func (r *recorder) PublishEvent(ctx context.Context, subject string, ce events.CloudEvent) error {
	// The envelope's time is when it was sent; the data is what must not change.
	ce.Time = time.Time{}
	b, _ := json.Marshal(ce)
	return r.Publish(ctx, subject, ce.ID, b)
}

// take returns and forgets the messages published on subjects with prefix.
func (r *recorder) take(prefix string) []published {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out, keep []published
	for _, m := range r.msgs {
		if strings.HasPrefix(m.subject, prefix) {
			out = append(out, m)
		} else {
			keep = append(keep, m)
		}
	}
	r.msgs = keep
	return out
}

func workBatch(p published) int {
	var wm pipeline.WorkMessage
	_ = json.Unmarshal(p.body, &wm)
	return wm.Batch
}

type fixture struct {
	h   *pipeline.Harness
	pub *recorder
	st  store.Store
	env *pipeline.Env
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
	return &fixture{h: pipeline.New(env), pub: pub, st: st, env: env}
}

func (f *fixture) phase(name string) pipeline.Phase {
	p, ok := phases.All(f.st, f.env.Blobs)[name]
	if !ok {
		panic(name)
	}
	return p
}

// run drives an import through the harness by hand, delivering every work
// message `times` times (a redelivery storm), and returns its terminal object.
func (f *fixture) run(t *testing.T, opts events.Options, csv string, times int) events.Import {
	t.Helper()
	ctx := context.Background()
	key := imports.SourceKey(opts.ID, "f.csv")
	if err := f.env.Blobs.Put(ctx, key, strings.NewReader(csv), int64(len(csv))); err != nil {
		t.Fatal(err)
	}
	req, _ := json.Marshal(events.ImportRequested{Options: opts, Source: &events.Source{Key: key}})
	for i := 0; i < times; i++ {
		msg := message.NewMessage("req", req)
		msg.Metadata.Set(topology.MetaSubject, events.Subject(opts.OrganizationID, opts.Resource, events.EventRequested))
		if err := f.h.Deliver(f.h.RequestHandler(phases.Prevalidation{}, nil))(msg); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 100; round++ {
		work := f.pub.take(topology.WorkRoot + ".")
		if len(work) == 0 {
			break
		}
		// A barrier hands its batches on from several goroutines: deliver
		// them in batch order, as a FIFO consumer mostly would.
		slices.SortStableFunc(work, func(a, b published) int { return workBatch(a) - workBatch(b) })
		for _, w := range work {
			var wm pipeline.WorkMessage
			if err := json.Unmarshal(w.body, &wm); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < times; i++ {
				lost := f.pub.lost
				if err := f.h.Deliver(f.h.WorkHandler(f.phase(wm.Phase)))(message.NewMessage(w.id, w.body)); err != nil {
					if f.pub.lost > lost {
						break // the process died mid-message: its redelivery comes too late to matter
					}
					t.Fatalf("%s: %v", w.id, err)
				}
			}
		}
	}
	for _, m := range f.pub.take("imports.") {
		if strings.HasSuffix(m.subject, ".completed") || strings.HasSuffix(m.subject, ".failed") || strings.HasSuffix(m.subject, ".interrupted") {
			ce, _ := events.Decode(m.body)
			var imp events.Import
			if err := json.Unmarshal(ce.Data, &imp); err != nil {
				t.Fatal(err)
			}
			if imp.ID == opts.ID {
				return imp
			}
		}
	}
	t.Fatalf("import %s published no terminal event", opts.ID)
	return events.Import{}
}

const customersCSV = "email,external_id,name,age\n" +
	"a@x.io,E1,Ann,30\n" +
	"b@x.io,E2,Bob,40\n" +
	"b@x.io,E9,Bob again,41\n" +
	"bad,E3,Bad,1\n" +
	"c@x.io,E4,Cid,-1\n" +
	"d@x.io,E5,Dee,50\n"

// Delivering every message three times changes nothing: same stats, each
// record written once, every event published once.
func TestRedeliveredMessagesChangeNothing(t *testing.T) {
	want := events.Stats{Total: 6, Processed: 6, Created: 2, Skipped: 2, Failed: 2}
	for _, times := range []int{1, 3} {
		f := newFixture(t)
		opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "customers", SkipErrors: true}
		imp := f.run(t, opts, customersCSV, times)
		if imp.Status != events.StatusCompleted || imp.Stats != want {
			t.Fatalf("delivered %dx: %s %+v, want %+v", times, imp.Status, imp.Stats, want)
		}
		recs, err := f.st.List(context.Background(), store.Scope{Org: "acme", Mode: "live", Resource: "customers"}, "", 10)
		if err != nil || len(recs) != 2 {
			t.Fatalf("delivered %dx: %d records (%v), want 2", times, len(recs), err)
		}
		if times > 1 && len(f.pub.ids) == len(f.pub.first) && maxCount(f.pub.ids) < 2 {
			t.Errorf("delivered %dx: nothing was republished, so the test proved nothing", times)
		}
		if len(f.pub.changed) > 0 {
			t.Errorf("delivered %dx: republished with a different body: %v", times, f.pub.changed)
		}
	}
}

// A process that dies after committing a batch but before publishing its
// progress leaves that to its message's redelivery; the phase's completion,
// which can come first when nothing after the phase waits for that batch,
// publishes the batch's progress before it announces itself.
func TestProgressOfABatchCommittedByADeadProcess(t *testing.T) {
	f := newFixture(t)
	opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "customers", SkipErrors: true}
	progress, completed := opts.ID+":progress:processing:0", opts.ID+":phase_completed:processing"
	f.pub.lose = func(id string) bool { return id == progress && f.pub.lost == 0 }
	imp := f.run(t, opts, customersCSV, 1)
	if f.pub.lost != 1 {
		t.Fatalf("%d publishes lost, want the one of %s: the test proved nothing", f.pub.lost, progress)
	}
	if imp.Status != events.StatusCompleted {
		t.Fatalf("import %s", imp.Status)
	}
	at := func(id string) int {
		i := slices.Index(f.pub.order, id)
		if i < 0 {
			t.Fatalf("%s was never published", id)
		}
		return i
	}
	if at(progress) > at(completed) {
		t.Errorf("%s was published after %s", progress, completed)
	}
}

// A batch that keeps failing fails its import on the last allowed delivery
// instead of leaving it processing.
func TestLastDeliveryFailsTheImport(t *testing.T) {
	f := newFixture(t)
	deliveries := 0
	f.env.Delivery = func(*message.Message) uint64 { deliveries++; return uint64(deliveries) }
	opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "customers"}
	if err := imports.Normalize(&opts); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(pipeline.WorkMessage{Options: opts, Phase: events.PhaseTransforming, Batch: 0, Batches: 1})
	handler := f.h.Deliver(f.h.WorkHandler(f.phase(events.PhaseTransforming))) // its input batch does not exist: every try fails
	for i := 1; i <= 3; i++ {
		err := handler(message.NewMessage("w", body))
		if i < 3 && err == nil {
			t.Fatalf("delivery %d: want an error (for redelivery)", i)
		}
		if i == 3 && err != nil {
			t.Fatalf("last delivery: want the import failed and the message acked, got %v", err)
		}
	}
	var terminal []published
	for _, m := range f.pub.take("imports.") {
		if strings.HasSuffix(m.subject, ".failed") {
			terminal = append(terminal, m)
		}
	}
	if len(terminal) != 1 {
		t.Fatalf("want one failed event, got %d", len(terminal))
	}
	ce, _ := events.Decode(terminal[0].body)
	var imp events.Import
	_ = json.Unmarshal(ce.Data, &imp)
	if imp.Reason == nil || !strings.Contains(*imp.Reason, "gave up after 3 attempts") {
		t.Fatalf("reason %v", imp.Reason)
	}
	// Once terminal, the import's messages are ignored.
	if err := handler(message.NewMessage("w", body)); err != nil {
		t.Fatal(err)
	}
}

// A file that cannot be read fails the import at once, with the reason.
func TestUnreadableFileFailsWithReason(t *testing.T) {
	f := newFixture(t)
	opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "customers"}
	imp := f.run(t, opts, "email,email\nx,y\n", 1)
	if imp.Status != events.StatusFailed || imp.Reason == nil || !strings.Contains(*imp.Reason, "email") {
		t.Fatalf("got %s %v", imp.Status, imp.Reason)
	}
}

// An import requested over NATS with a deadline that had passed when it was
// created fails at once, with a reason naming the option (over HTTP: 422).
func TestPassedDeadlineFailsTheRequest(t *testing.T) {
	f := newFixture(t)
	created := timeNow()
	past := created.Add(-time.Minute)
	opts := events.Options{ID: imports.NewID(created), OrganizationID: "acme", Resource: "customers", Deadline: &past}
	imp := f.run(t, opts, customersCSV, 1)
	if imp.Status != events.StatusFailed || imp.Reason == nil || !strings.Contains(*imp.Reason, "deadline") {
		t.Fatalf("got %s %v, want failed naming the deadline", imp.Status, imp.Reason)
	}
	if imp.Stats.Processed != 0 {
		t.Fatalf("a refused import processed %d rows", imp.Stats.Processed)
	}
}

// volatile ids may be republished with more detail: phase_completed carries
// when it was noticed; queued and started, once the file was read, its
// checksum. Everything else is read back from committed state.
func volatile(id string) bool {
	return strings.Contains(id, ":phase_completed:") || strings.HasSuffix(id, ":queued") || strings.HasSuffix(id, ":started")
}

func maxCount(m map[string]int) int {
	best := 0
	for _, n := range m {
		if n > best {
			best = n
		}
	}
	return best
}

// The same client message id published again after JetStream forgot it (past
// the duplicate window: another sequence, another time) still names one import.
func TestClientMessageIDNamesOneImportForGood(t *testing.T) {
	f := newFixture(t)
	body := []byte(`{"inputs":[{"code":"X1","name":"Ex"}]}`)
	seq := uint64(0)
	info := func(*message.Message) (uint64, time.Time) {
		seq++
		return seq, time.Now().Add(time.Duration(seq) * time.Hour)
	}
	for i := 0; i < 2; i++ {
		msg := message.NewMessage("m", body)
		msg.Metadata.Set(topology.MetaSubject, "imports.acme.companies.requested")
		msg.Metadata.Set(topology.MetaMsgID, "client-42")
		if err := f.h.Deliver(f.h.RequestHandler(phases.Prevalidation{}, info))(msg); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[string]bool{}
	for _, m := range f.pub.take("imports.") {
		if strings.HasSuffix(m.subject, ".queued") {
			ce, _ := events.Decode(m.body)
			ids[ce.Subject] = true
		}
	}
	if len(ids) != 1 {
		t.Fatalf("want one import for one client message id, got %v", ids)
	}
}

// A running import past its deadline is first asked to stop at a batch
// boundary; if nothing stops it (its phase services are down), the next
// sweep after the grace period ends it timed_out.
func TestTimeOutWaitsForABoundaryThenEnds(t *testing.T) {
	f := newFixture(t)
	opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "companies"}
	if err := imports.Normalize(&opts); err != nil {
		t.Fatal(err)
	}
	imp := imports.Initial(opts, timeNow())
	imp.Status = events.StatusProcessing
	b, _ := json.Marshal(imp)
	if err := f.env.Blobs.Put(context.Background(), imports.ImportKey(opts.ID), strings.NewReader(string(b)), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := f.h.TimeOut(ctx, opts, "deadline passed", time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := f.pub.take("imports."); len(got) != 0 {
		t.Fatalf("a running import was ended before its grace: %v", got[0].subject)
	}
	if err := f.h.TimeOut(ctx, opts, "deadline passed", 0); err != nil {
		t.Fatal(err)
	}
	var ended []string
	for _, m := range f.pub.take("imports.") {
		ended = append(ended, m.subject)
	}
	if len(ended) != 1 || !strings.HasSuffix(ended[0], ".timed_out") {
		t.Fatalf("after the grace: %v, want one timed_out event", ended)
	}
}

// A phase's batches reach the next phase as each commits, not when the whole
// phase is done: the barrier phases' (preparsing, parsing) batches go on one
// by one, and so do validation's into processing when skip_errors leaves no
// threshold to check. With the threshold, processing gets nothing before
// every row was validated.
func TestBatchesAreHandedOnAsTheyCommit(t *testing.T) {
	for _, skip := range []bool{true, false} {
		f := newFixture(t)
		f.env.Parallelism = 1 // the barriers' batches commit in order
		half := 0.5           // two of the six rows fail
		opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "customers", SkipErrors: skip, ErrorThreshold: &half}
		if err := imports.Normalize(&opts); err != nil {
			t.Fatal(err)
		}
		const last = 2 // 6 rows in batches of 2
		// early[next phase] is set when its batch 0 was sent before the
		// previous phase committed its last batch.
		early := map[string]bool{}
		f.pub.onPublish = func(subject, id string) {
			for _, p := range []struct{ prev, next string }{
				{events.PhasePreparsing, events.PhaseTransforming},
				{events.PhaseParsing, events.PhaseValidation},
				{events.PhaseValidation, events.PhaseProcessing},
			} {
				if id != fmt.Sprintf("%s:work:%s:0", opts.ID, p.next) {
					continue
				}
				_, err := f.env.Blobs.Stat(context.Background(), imports.StatsKey(opts.ID, p.prev, last))
				early[p.next] = errors.Is(err, blob.ErrNotFound)
			}
		}
		imp := f.run(t, opts, customersCSV, 1)
		if imp.Status != events.StatusCompleted || imp.Stats.Created != 2 {
			t.Fatalf("skip_errors %v: %s %+v", skip, imp.Status, imp.Stats)
		}
		want := map[string]bool{events.PhaseTransforming: true, events.PhaseValidation: true, events.PhaseProcessing: skip}
		for phase, w := range want {
			if early[phase] != w {
				t.Errorf("skip_errors %v: %s's first batch sent before the previous phase's last: %v, want %v", skip, phase, early[phase], w)
			}
		}
	}
}

// spyBlobs counts reads and can refuse writes.
type spyBlobs struct {
	blob.Store
	mu      sync.Mutex
	gets    map[string]int
	lists   map[string]int
	failPut func(key string) bool
}

func (s *spyBlobs) List(ctx context.Context, prefix string) ([]blob.Info, error) {
	s.mu.Lock()
	if s.lists == nil {
		s.lists = map[string]int{}
	}
	s.lists[prefix]++
	s.mu.Unlock()
	return s.Store.List(ctx, prefix)
}

func (s *spyBlobs) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	s.mu.Lock()
	if s.gets == nil {
		s.gets = map[string]int{}
	}
	s.gets[key]++
	s.mu.Unlock()
	return s.Store.Get(ctx, key)
}

func (s *spyBlobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if s.failPut != nil && s.failPut(key) {
		return fmt.Errorf("put %s: refused by the test", key)
	}
	return s.Store.Put(ctx, key, r, size)
}

func (s *spyBlobs) reads(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[key]
}

// The phase that commits a batch publishes its progress from what it wrote:
// reading the stats back was one more request a batch and phase against the
// blob store.
func TestProgressIsPublishedFromTheCommittedStats(t *testing.T) {
	f := newFixture(t)
	spy := &spyBlobs{Store: f.env.Blobs}
	f.env.Blobs = spy
	opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "customers", SkipErrors: true}
	var mu sync.Mutex
	var readFirst []string
	seen := map[string]bool{}
	f.pub.onPublish = func(subject, id string) {
		parts := strings.Split(id, ":")
		if len(parts) != 4 || parts[1] != "progress" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[id] {
			return // a republish
		}
		seen[id] = true
		if spy.reads(imports.StatsKey(opts.ID, parts[2], atoi(t, parts[3]))) > 0 {
			readFirst = append(readFirst, id)
		}
	}
	imp := f.run(t, opts, customersCSV, 1)
	if imp.Status != events.StatusCompleted {
		t.Fatalf("import %s", imp.Status)
	}
	if len(seen) < 14 {
		t.Fatalf("%d progress events, want one a batch and phase (2 batches or more, 7 phases)", len(seen))
	}
	if len(readFirst) > 0 {
		t.Errorf("stats read back before their progress was published: %v", readFirst)
	}
}

func atoi(t *testing.T, s string) int {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// Whether a phase is done is asked after every batch; its stats are listed
// only once its last batch has committed (listing them all after each batch
// grew with the square of the batches).
func TestPhaseStatsAreListedOnceItsLastBatchCommitted(t *testing.T) {
	f := newFixture(t)
	spy := &spyBlobs{Store: f.env.Blobs}
	f.env.Blobs = spy
	opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "customers", SkipErrors: true}
	imp := f.run(t, opts, customersCSV, 1)
	if imp.Status != events.StatusCompleted {
		t.Fatalf("import %s", imp.Status)
	}
	for _, phase := range []string{events.PhaseTransforming, events.PhaseValidation, events.PhaseProcessing, events.PhaseCleanup} {
		if n := spy.lists[imports.StatsPrefix(opts.ID, phase)]; n != 1 {
			t.Errorf("%s stats listed %d times for 3 batches handled in order, want once", phase, n)
		}
	}
}

// A batch a phase passes on unchanged (no duplicates, every reference found)
// is stored once, where it was written; the next phase reads it there. Rows
// an attempt left behind before it died are not read in its place.
func TestPassedOnBatchesAreStoredOnce(t *testing.T) {
	f := newFixture(t)
	opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "customers", SkipErrors: true}
	ctx := context.Background()
	// What an attempt of validation that died before its stats stored: no rows.
	if err := f.env.Blobs.Put(ctx, imports.OutKey(opts.ID, events.PhaseValidation, 0), strings.NewReader(""), 0); err != nil {
		t.Fatal(err)
	}
	csv := "email,external_id,name,age\na@x.io,E1,Ann,30\nb@x.io,E2,Bob,40\nc@x.io,E3,Cid,50\nd@x.io,E4,Dee,60\n"
	imp := f.run(t, opts, csv, 1)
	if want := (events.Stats{Total: 4, Processed: 4, Created: 4}); imp.Status != events.StatusCompleted || imp.Stats != want {
		t.Fatalf("%s %+v, want %+v", imp.Status, imp.Stats, want)
	}
	for _, phase := range []string{events.PhasePreparsing, events.PhaseValidation} {
		list, err := f.env.Blobs.List(ctx, imports.PhasePrefix(opts.ID, phase)+"out/")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) > 0 {
			t.Errorf("%s stored rows it passed on unchanged: %v", phase, list)
		}
		rc, err := pipeline.OpenRows(ctx, f.env.Blobs, opts.ID, phase, 1)
		if err != nil {
			t.Fatalf("%s batch 1: %v", phase, err)
		}
		rc.Close()
	}
}

// Nothing reads the rows of the last phase: they are not stored.
// Rows nobody reads are not stored: the last phase's, and processing's
// unless cleanup needs them (an overwrite keeps the records the file touched).
func TestRowsNobodyReadsAreNotStored(t *testing.T) {
	for _, action := range []events.Action{"merge", "overwrite"} {
		t.Run(string(action), func(t *testing.T) {
			f := newFixture(t)
			opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "customers", SkipErrors: true, Action: action}
			if err := imports.Normalize(&opts); err != nil {
				t.Fatal(err)
			}
			if imp := f.run(t, opts, customersCSV, 1); imp.Status != events.StatusCompleted {
				t.Fatalf("import %s", imp.Status)
			}
			ctx := context.Background()
			for phase, stored := range map[string]bool{events.PhaseProcessing: action == "overwrite", events.PhaseCleanup: false} {
				list, err := f.env.Blobs.List(ctx, imports.PhasePrefix(opts.ID, phase)+"out/")
				if err != nil {
					t.Fatal(err)
				}
				if stored != (len(list) > 0) {
					t.Errorf("%s stored %d row objects, want them stored: %v", phase, len(list), stored)
				}
			}
		})
	}
}

// The file's reader cuts the next batch while the last one is uploaded; an
// upload that fails fails the delivery (its redelivery starts again), and
// leaves no temp file behind.
func TestFailedBatchUploadFailsTheDelivery(t *testing.T) {
	f := newFixture(t)
	spy := &spyBlobs{Store: f.env.Blobs}
	f.env.Blobs = spy
	opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "customers", SkipErrors: true}
	failing := imports.OutKey(opts.ID, events.PhasePrevalidation, 1)
	spy.failPut = func(key string) bool { return key == failing }
	ctx := context.Background()
	key := imports.SourceKey(opts.ID, "f.csv")
	if err := f.env.Blobs.Put(ctx, key, strings.NewReader(customersCSV), int64(len(customersCSV))); err != nil {
		t.Fatal(err)
	}
	req, _ := json.Marshal(events.ImportRequested{Options: opts, Source: &events.Source{Key: key}})
	msg := message.NewMessage("req", req)
	msg.Metadata.Set(topology.MetaSubject, events.Subject(opts.OrganizationID, opts.Resource, events.EventRequested))
	err := f.h.Deliver(f.h.RequestHandler(phases.Prevalidation{}, nil))(msg)
	if err == nil || !strings.Contains(err.Error(), failing) {
		t.Fatalf("delivery with a failing upload: %v, want the failed key named", err)
	}
	if left, _ := os.ReadDir(f.env.TempDir); len(left) > 0 {
		t.Errorf("temp files left behind: %v", left)
	}
	spy.failPut = nil
	want := events.Stats{Total: 6, Processed: 6, Created: 2, Skipped: 2, Failed: 2}
	if imp := f.run(t, opts, customersCSV, 1); imp.Status != events.StatusCompleted || imp.Stats != want {
		t.Fatalf("redelivered: %s %+v, want %+v", imp.Status, imp.Stats, want)
	}
}

// Once a phase completed, the gate and the end read its sums, one object,
// instead of every batch's stats: finishing a big import costs one read per
// phase, and says the same.
func TestFinishReadsOneSumsObjectPerPhase(t *testing.T) {
	f := newFixture(t)
	spy := &spyBlobs{Store: f.env.Blobs}
	f.env.Blobs = spy
	opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "customers", SkipErrors: true}
	imp := f.run(t, opts, customersCSV, 1)
	if imp.Status != events.StatusCompleted {
		t.Fatalf("import %s", imp.Status)
	}
	_ = imports.Normalize(&opts)
	spy.mu.Lock()
	spy.gets, spy.lists = nil, nil
	spy.mu.Unlock()
	built, err := f.h.Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	spy.mu.Lock()
	stats, sums := 0, 0
	for key, n := range spy.gets {
		switch {
		case strings.Contains(key, "/stats/"):
			stats += n
		case strings.HasSuffix(key, "/sums.json"):
			sums += n
		}
	}
	lists := len(spy.lists)
	spy.mu.Unlock()
	if stats != 0 || lists != 0 || sums != len(events.Phases) {
		t.Fatalf("Build read %d stats objects, listed %d times and read %d sums; want 0, 0 and %d", stats, lists, sums, len(events.Phases))
	}
	if built.Stats != imp.Stats || !slices.EqualFunc(built.Phases, imp.Phases, func(a, b events.PhaseStatus) bool {
		return a.Name == b.Name && a.Status == b.Status && a.BatchesDone == b.BatchesDone && a.RowsIn == b.RowsIn && a.RowsOut == b.RowsOut
	}) {
		t.Fatalf("from sums: %+v %+v\nfinished: %+v %+v", built.Stats, built.Phases, imp.Stats, imp.Phases)
	}
}

// A redelivered message of a barrier phase (the whole file) whose earlier
// deliveries made progress hands the rest to a fresh message, so that a
// process killed again and again mid-file does not spend the message's
// deliveries while the work advances; deliveries without progress still
// count toward the import's failure.
func TestBarrierWorkThatAdvancesIsResumedByAFreshMessage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	delivery := uint64(1)
	f.env.Delivery = func(*message.Message) uint64 { return delivery }
	opts := events.Options{ID: imports.NewID(timeNow()), OrganizationID: "acme", Resource: "customers"}
	if err := imports.Normalize(&opts); err != nil {
		t.Fatal(err)
	}
	const batches = 10
	body, _ := json.Marshal(pipeline.WorkMessage{Options: opts, Phase: events.PhaseParsing, Batch: pipeline.AllBatches, Batches: batches})
	commit := func(upTo int) { // the batches a killed delivery committed
		for b := range upTo {
			if err := f.env.Blobs.Put(ctx, imports.StatsKey(opts.ID, events.PhaseParsing, b), strings.NewReader("{}"), 2); err != nil {
				t.Fatal(err)
			}
		}
	}
	handler := f.h.WorkHandler(f.phase(events.PhaseParsing)) // its inputs do not exist: a delivery that works fails
	resumes := func() []string {
		var ids []string
		for _, p := range f.pub.take(topology.WorkRoot + ".") {
			ids = append(ids, p.id)
		}
		return ids
	}
	deliver := func(d uint64) error {
		delivery = d
		return handler(message.NewMessage("w", body))
	}

	commit(3)
	if err := deliver(2); err == nil || len(resumes()) != 0 {
		t.Fatalf("the first redelivery knows of no earlier progress: it works (err %v)", err)
	}
	commit(5) // that delivery committed two more batches before it died
	if err := deliver(3); err != nil {
		t.Fatalf("a redelivery after progress: %v, want it done (handed on)", err)
	}
	want := opts.ID + ":work:parsing:all:resume:5"
	if got := resumes(); len(got) != 1 || got[0] != want {
		t.Fatalf("resumed by %v, want one message %s", got, want)
	}
	// The fresh message is worked on; with no progress since, a redelivery works on, and counts.
	if err := deliver(4); err == nil || len(resumes()) != 0 {
		t.Fatalf("a redelivery without progress resumed (err %v)", err)
	}
}
