// Package storetest is the behaviour every store.Store adapter must have,
// written once and run against each adapter, so the embedded and the
// production store cannot drift apart.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/store"
)

// RunContract runs the contract against stores made by newStore; each call
// must return a new, empty store (closing it is newStore's job, e.g. in
// t.Cleanup).
func RunContract(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"UpsertGetList", testUpsertGetList},
		{"LookupKeys", testLookupKeys},
		{"KeyReplacement", testKeyReplacement},
		{"KeyConflictIsAtomic", testKeyConflict},
		{"KeyConflictWithinBatch", testKeyConflictWithinBatch},
		{"KeyMovesWithinBatch", testKeyMovesWithinBatch},
		{"DeleteAndMissing", testDelete},
		{"SameIDTwiceInBatch", testSameIDTwice},
		{"ReplayReturnsStoredResult", testReplay},
		{"ConcurrentSameBatchAppliesOnce", testConcurrentSameBatch},
		{"ConcurrentDifferentBatches", testConcurrentDifferentBatches},
		{"ScopeIsolation", testScopeIsolation},
		{"InvalidOps", testInvalidOps},
		{"UpdateView", testUpdateView},
		{"ConcurrentUpdateView", testConcurrentUpdateView},
		{"ListViews", testListViews},
		{"ResetViews", testResetViews},
		{"ListIDsByParent", testListIDs},
		{"AppliedReadsTheStoredResult", testApplied},
		{"CreatesActLikeUpserts", testCreates},
		{"CreateConflictIsAtomic", testCreateConflict},
		{"ValuesKeepEveryCharacter", testValuesKeepEveryCharacter},
		{"LookupKeysTellsTheDataWrittenLast", testLookupFingerprints},
		{"ChangesKeepWhatEachImportDid", testChanges},
		{"ExpectLeavesOutChangedRecords", testExpect},
		{"RestoreGivesCreationTimeAndKeys", testRestore},
		{"PruneChangesForgetsOldImportsOnly", testPruneChanges},
		{"ConcurrentRecreateOnce", testConcurrentRecreate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if err := s.Ping(ctx(t)); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			tc.fn(t, s)
		})
	}
}

var (
	scopeA = store.Scope{Org: "acme", Mode: "live", Resource: "customers"}
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func rec(id, email string, extra ...string) store.Record {
	keys := map[string]string{"email": email}
	if len(extra) > 0 {
		keys["external_id"] = extra[0]
	}
	data, _ := json.Marshal(map[string]any{"email": email, "name": "n-" + id})
	return store.Record{ID: id, Data: data, Keys: keys, ImportID: "imp_1"}
}

func up(rs ...store.Record) []store.Op {
	ops := make([]store.Op, len(rs))
	for i, r := range rs {
		ops[i] = store.Op{Kind: store.OpUpsert, Record: r}
	}
	return ops
}

func create(rs ...store.Record) []store.Op {
	ops := make([]store.Op, len(rs))
	for i, r := range rs {
		ops[i] = store.Op{Kind: store.OpCreate, Record: r}
	}
	return ops
}

func del(ids ...string) []store.Op {
	ops := make([]store.Op, len(ids))
	for i, id := range ids {
		ops[i] = store.Op{Kind: store.OpDelete, Record: store.Record{ID: id}}
	}
	return ops
}

func mustApply(t *testing.T, s store.Store, sc store.Scope, batch string, ops []store.Op) store.BatchResult {
	t.Helper()
	res, err := s.Apply(ctx(t), sc, batch, ops)
	if err != nil {
		t.Fatalf("Apply %s: %v", batch, err)
	}
	return res
}

// jsonEqual compares JSON semantically: PostgreSQL's jsonb does not keep the
// original spacing or key order.
func jsonEqual(t *testing.T, got, want json.RawMessage) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("stored data %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want %q is not JSON: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

func lookup(t *testing.T, s store.Store, sc store.Scope, name, value string) (string, bool) {
	t.Helper()
	m, err := s.LookupKeys(ctx(t), sc, []store.KeyRef{{Name: name, Value: value}})
	if err != nil {
		t.Fatalf("LookupKeys %s=%s: %v", name, value, err)
	}
	h, ok := m[name+"\x00"+value]
	return h.ID, ok
}

func testUpsertGetList(t *testing.T, s store.Store) {
	var rs []store.Record
	for i := 0; i < 25; i++ {
		r := rec(fmt.Sprintf("rec_%02d", i), fmt.Sprintf("u%d@x.io", i))
		r.ParentID = "par_1"
		rs = append(rs, r)
	}
	before := time.Now().UTC().Add(-time.Second)
	res := mustApply(t, s, scopeA, "b1", up(rs...))
	if res.Upserted != 25 || res.Deleted != 0 || res.Missing != 0 || res.Replayed {
		t.Fatalf("result = %+v, want 25 upserted", res)
	}

	got, err := s.Get(ctx(t), scopeA, "rec_07")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.ID != "rec_07" || got.ParentID != "par_1" || got.ImportID != "imp_1" || !jsonEqual(t, got.Data, rs[7].Data) {
		t.Fatalf("Get = %+v, want %+v", got, rs[7])
	}
	if !reflect.DeepEqual(got.Keys, rs[7].Keys) {
		t.Fatalf("Get keys = %v, want %v", got.Keys, rs[7].Keys)
	}
	if got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
		t.Fatalf("timestamps not UTC: %v %v", got.CreatedAt, got.UpdatedAt)
	}
	if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Second)) || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Fatalf("created_at %v updated_at %v: want now and equal", got.CreatedAt, got.UpdatedAt)
	}

	if _, err := s.Get(ctx(t), scopeA, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get missing: err = %v, want ErrNotFound", err)
	}

	many, err := s.GetMany(ctx(t), scopeA, []string{"rec_01", "rec_24", "nope"})
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	if len(many) != 2 || many["rec_01"].ID != "rec_01" || many["rec_24"].Keys["email"] != "u24@x.io" {
		t.Fatalf("GetMany = %v", many)
	}
	if m, err := s.GetMany(ctx(t), scopeA, nil); err != nil || len(m) != 0 {
		t.Fatalf("GetMany(nil) = %v, %v", m, err)
	}
	data, err := s.GetData(ctx(t), scopeA, []string{"rec_01", "rec_24", "nope"})
	if err != nil {
		t.Fatalf("GetData: %v", err)
	}
	if len(data) != 2 || !jsonEqual(t, data["rec_01"], many["rec_01"].Data) || !jsonEqual(t, data["rec_24"], many["rec_24"].Data) {
		t.Fatalf("GetData = %s, GetMany = %v", data, many)
	}
	if d, err := s.GetData(ctx(t), scopeA, nil); err != nil || len(d) != 0 {
		t.Fatalf("GetData(nil) = %v, %v", d, err)
	}
	other := scopeA
	other.Mode = "test"
	if d, err := s.GetData(ctx(t), other, []string{"rec_01"}); err != nil || len(d) != 0 {
		t.Fatalf("GetData in another scope = %s, %v", d, err)
	}
	checkFingerprints(t, s, scopeA, map[string]json.RawMessage{"rec_01": rs[1].Data, "rec_24": rs[24].Data, "nope": nil})
	if fp, err := s.Fingerprints(ctx(t), other, []string{"rec_01"}); err != nil || len(fp) != 0 {
		t.Fatalf("Fingerprints in another scope = %x, %v", fp, err)
	}

	var all []string
	after := ""
	for page := 0; ; page++ {
		recs, err := s.List(ctx(t), scopeA, after, 10)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(recs) == 0 {
			break
		}
		if len(recs) > 10 {
			t.Fatalf("page %d has %d records, limit 10", page, len(recs))
		}
		for _, r := range recs {
			all = append(all, r.ID)
		}
		after = recs[len(recs)-1].ID
		if page > 5 {
			t.Fatal("List does not end")
		}
	}
	if len(all) != 25 || !sort.StringsAreSorted(all) || all[0] != "rec_00" || all[24] != "rec_24" {
		t.Fatalf("List pages = %v", all)
	}

	// An update keeps created_at and moves updated_at.
	time.Sleep(5 * time.Millisecond)
	changed := rec("rec_07", "u7@x.io")
	changed.Data = json.RawMessage(`{"email":"u7@x.io","name":"renamed"}`)
	mustApply(t, s, scopeA, "b2", up(changed))
	got2, err := s.Get(ctx(t), scopeA, "rec_07")
	if err != nil {
		t.Fatal(err)
	}
	if !got2.CreatedAt.Equal(got.CreatedAt) || !got2.UpdatedAt.After(got.UpdatedAt) {
		t.Fatalf("after update created %v→%v updated %v→%v", got.CreatedAt, got2.CreatedAt, got.UpdatedAt, got2.UpdatedAt)
	}
	if !jsonEqual(t, got2.Data, changed.Data) {
		t.Fatalf("data after update = %s", got2.Data)
	}
}

func testLookupKeys(t *testing.T, s store.Store) {
	mustApply(t, s, scopeA, "b1", up(rec("r1", "a@x.io", "ext-1"), rec("r2", "b@x.io", "ext-2"), rec("r3", "c@x.io")))
	m, err := s.LookupKeys(ctx(t), scopeA, []store.KeyRef{
		{Name: "email", Value: "a@x.io"},
		{Name: "external_id", Value: "ext-2"},
		{Name: "email", Value: "c@x.io"},
		{Name: "email", Value: "missing@x.io"},
		{Name: "external_id", Value: "a@x.io"}, // right value, wrong key name
	})
	if err != nil {
		t.Fatalf("LookupKeys: %v", err)
	}
	want := map[string]string{"email\x00a@x.io": "r1", "external_id\x00ext-2": "r2", "email\x00c@x.io": "r3"}
	got := map[string]string{}
	for k, h := range m {
		got[k] = h.ID
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("LookupKeys = %q, want %q", got, want)
	}
	if m, err := s.LookupKeys(ctx(t), scopeA, nil); err != nil || len(m) != 0 {
		t.Fatalf("LookupKeys(nil) = %v, %v", m, err)
	}
	// Many refs in one call (the transforming phase looks up whole batches).
	var refs []store.KeyRef
	for i := 0; i < 2000; i++ {
		refs = append(refs, store.KeyRef{Name: "email", Value: fmt.Sprintf("z%d@x.io", i)})
	}
	refs = append(refs, store.KeyRef{Name: "email", Value: "b@x.io"})
	m, err = s.LookupKeys(ctx(t), scopeA, refs)
	if err != nil || len(m) != 1 || m["email\x00b@x.io"].ID != "r2" {
		t.Fatalf("LookupKeys(2001 refs) = %v, %v", m, err)
	}
}

func testKeyReplacement(t *testing.T, s store.Store) {
	mustApply(t, s, scopeA, "b1", up(rec("r1", "old@x.io", "ext-1")))
	// The update drops external_id and changes the email.
	r := rec("r1", "new@x.io")
	mustApply(t, s, scopeA, "b2", up(r))
	if _, ok := lookup(t, s, scopeA, "email", "old@x.io"); ok {
		t.Fatal("old email still found after the record changed it")
	}
	if _, ok := lookup(t, s, scopeA, "external_id", "ext-1"); ok {
		t.Fatal("dropped external_id still found")
	}
	if id, ok := lookup(t, s, scopeA, "email", "new@x.io"); !ok || id != "r1" {
		t.Fatalf("new email → %q %v", id, ok)
	}
	got, err := s.Get(ctx(t), scopeA, "r1")
	if err != nil || !reflect.DeepEqual(got.Keys, map[string]string{"email": "new@x.io"}) {
		t.Fatalf("keys after update = %v (%v)", got.Keys, err)
	}
	// The freed value can be taken by another record.
	mustApply(t, s, scopeA, "b3", up(rec("r2", "old@x.io", "ext-1")))
	if id, _ := lookup(t, s, scopeA, "email", "old@x.io"); id != "r2" {
		t.Fatalf("freed email → %q, want r2", id)
	}
}

func testKeyConflict(t *testing.T, s store.Store) {
	mustApply(t, s, scopeA, "b1", up(rec("r1", "a@x.io")))
	before, _ := s.Get(ctx(t), scopeA, "r1")
	// r9 is fine, r2 wants r1's email; r1 is not part of the batch.
	ops := up(rec("r9", "fresh@x.io"), rec("r2", "a@x.io"))
	_, err := s.Apply(ctx(t), scopeA, "b2", ops)
	if !errors.Is(err, store.ErrKeyConflict) {
		t.Fatalf("Apply err = %v, want ErrKeyConflict", err)
	}
	for _, part := range []string{"email", "a@x.io", "r1", "r2", "b2"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("conflict error %q does not name %q", err, part)
		}
	}
	// Nothing of the batch was written.
	if _, err := s.Get(ctx(t), scopeA, "r9"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("r9 written by a failed batch (err %v)", err)
	}
	if _, ok := lookup(t, s, scopeA, "email", "fresh@x.io"); ok {
		t.Fatal("key of a failed batch is stored")
	}
	after, _ := s.Get(ctx(t), scopeA, "r1")
	if !reflect.DeepEqual(after.Keys, before.Keys) || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("r1 changed by a failed batch: %+v → %+v", before, after)
	}
	// The batch was not marked applied: the fixed batch goes through.
	res := mustApply(t, s, scopeA, "b2", up(rec("r9", "fresh@x.io"), rec("r2", "b@x.io")))
	if res.Replayed || res.Upserted != 2 {
		t.Fatalf("retry of failed batch = %+v", res)
	}
}

func testKeyConflictWithinBatch(t *testing.T, s store.Store) {
	_, err := s.Apply(ctx(t), scopeA, "b1", up(rec("r1", "same@x.io"), rec("r2", "other@x.io"), rec("r3", "same@x.io")))
	if !errors.Is(err, store.ErrKeyConflict) {
		t.Fatalf("err = %v, want ErrKeyConflict", err)
	}
	if !strings.Contains(err.Error(), "r1") || !strings.Contains(err.Error(), "r3") {
		t.Fatalf("error %q does not name both records", err)
	}
	if recs, _ := s.List(ctx(t), scopeA, "", 10); len(recs) != 0 {
		t.Fatalf("failed batch wrote %d records", len(recs))
	}
}

// A key may move from one record to another inside one batch: only the
// batch's end state must be unique.
func testKeyMovesWithinBatch(t *testing.T, s store.Store) {
	mustApply(t, s, scopeA, "b1", up(rec("r1", "a@x.io"), rec("r2", "b@x.io")))
	mustApply(t, s, scopeA, "b2", up(rec("r2", "a@x.io"), rec("r1", "c@x.io")))
	if id, _ := lookup(t, s, scopeA, "email", "a@x.io"); id != "r2" {
		t.Fatalf("a@x.io → %q, want r2", id)
	}
	if _, ok := lookup(t, s, scopeA, "email", "b@x.io"); ok {
		t.Fatal("b@x.io still held")
	}
	// Deleting a record frees its keys for the same batch.
	res := mustApply(t, s, scopeA, "b3", append(up(rec("r3", "c@x.io")), del("r1")...))
	if res.Upserted != 1 || res.Deleted != 1 {
		t.Fatalf("result = %+v", res)
	}
	if id, _ := lookup(t, s, scopeA, "email", "c@x.io"); id != "r3" {
		t.Fatalf("c@x.io → %q, want r3", id)
	}
}

func testDelete(t *testing.T, s store.Store) {
	mustApply(t, s, scopeA, "b1", up(rec("r1", "a@x.io", "e1"), rec("r2", "b@x.io")))
	res := mustApply(t, s, scopeA, "b2", del("r1", "ghost", "r2", "ghost2"))
	if res.Deleted != 2 || res.Missing != 2 || res.Upserted != 0 {
		t.Fatalf("result = %+v, want 2 deleted 2 missing", res)
	}
	if !reflect.DeepEqual(res.MissingIDs, []string{"ghost", "ghost2"}) {
		t.Fatalf("MissingIDs = %v", res.MissingIDs)
	}
	if _, err := s.Get(ctx(t), scopeA, "r1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted record still there: %v", err)
	}
	if _, ok := lookup(t, s, scopeA, "external_id", "e1"); ok {
		t.Fatal("key of deleted record still found")
	}
	// Deleting an already deleted record is a Missing.
	res = mustApply(t, s, scopeA, "b3", del("r1"))
	if res.Deleted != 0 || res.Missing != 1 || !reflect.DeepEqual(res.MissingIDs, []string{"r1"}) {
		t.Fatalf("second delete = %+v", res)
	}
}

// Ops of a batch take effect in order.
func testSameIDTwice(t *testing.T, s store.Store) {
	first := rec("r1", "a@x.io")
	second := rec("r1", "b@x.io")
	second.Data = json.RawMessage(`{"v":2}`)
	res := mustApply(t, s, scopeA, "b1", up(first, second))
	if res.Upserted != 2 {
		t.Fatalf("result = %+v", res)
	}
	got, err := s.Get(ctx(t), scopeA, "r1")
	if err != nil || !jsonEqual(t, got.Data, second.Data) || got.Keys["email"] != "b@x.io" {
		t.Fatalf("last upsert does not win: %+v %v", got, err)
	}
	if _, ok := lookup(t, s, scopeA, "email", "a@x.io"); ok {
		t.Fatal("key of the overwritten upsert is stored")
	}
	// upsert then delete → gone, the delete counts; delete then upsert of a new id → exists, delete missing.
	ops := []store.Op{{Kind: store.OpUpsert, Record: rec("r2", "c@x.io")}, {Kind: store.OpDelete, Record: store.Record{ID: "r2"}},
		{Kind: store.OpDelete, Record: store.Record{ID: "r3"}}, {Kind: store.OpUpsert, Record: rec("r3", "d@x.io")}}
	res = mustApply(t, s, scopeA, "b2", ops)
	if res.Upserted != 2 || res.Deleted != 1 || res.Missing != 1 || !reflect.DeepEqual(res.MissingIDs, []string{"r3"}) {
		t.Fatalf("result = %+v", res)
	}
	if _, err := s.Get(ctx(t), scopeA, "r2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("r2 should be deleted: %v", err)
	}
	if _, err := s.Get(ctx(t), scopeA, "r3"); err != nil {
		t.Fatalf("r3 should exist: %v", err)
	}
}

func testReplay(t *testing.T, s store.Store) {
	mustApply(t, s, scopeA, "b0", up(rec("r1", "a@x.io")))
	first := mustApply(t, s, scopeA, "b1", append(up(rec("r2", "b@x.io")), del("r1", "ghost")...))
	if first.Replayed {
		t.Fatal("first Apply reports Replayed")
	}
	// The redelivered batch carries different ops on purpose: none may run.
	second := mustApply(t, s, scopeA, "b1", append(up(rec("r3", "c@x.io")), del("r2")...))
	if !second.Replayed {
		t.Fatalf("second Apply not Replayed: %+v", second)
	}
	second.Replayed = false
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("replayed result %+v != first %+v", second, first)
	}
	if _, err := s.Get(ctx(t), scopeA, "r3"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("replayed batch wrote r3")
	}
	if _, err := s.Get(ctx(t), scopeA, "r2"); err != nil {
		t.Fatalf("replayed batch deleted r2: %v", err)
	}
	// Batch ids are global: the same id in another scope is a replay too.
	other := store.Scope{Org: "other", Mode: "live", Resource: "customers"}
	if res := mustApply(t, s, other, "b1", up(rec("x", "x@x.io"))); !res.Replayed {
		t.Fatalf("batch id reused in another scope applied again: %+v", res)
	}
}

func testConcurrentSameBatch(t *testing.T, s store.Store) {
	const n = 8
	var recs []store.Record
	for i := 0; i < 50; i++ {
		recs = append(recs, rec(fmt.Sprintf("r%03d", i), fmt.Sprintf("%d@x.io", i)))
	}
	ops := up(recs...)
	results := make([]store.BatchResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			results[i], errs[i] = s.Apply(context.Background(), scopeA, "same-batch", ops)
		}(i)
	}
	close(start)
	wg.Wait()
	applied := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if !results[i].Replayed {
			applied++
		}
		if results[i].Upserted != 50 {
			t.Fatalf("goroutine %d result %+v", i, results[i])
		}
	}
	if applied != 1 {
		t.Fatalf("batch applied %d times, want 1", applied)
	}
	if got, _ := s.List(ctx(t), scopeA, "", 1000); len(got) != 50 {
		t.Fatalf("%d records stored, want 50", len(got))
	}
}

// Different batches in parallel (the processing phase scaled out) must all
// land, without SQLITE_BUSY or deadlock errors reaching the caller.
func testConcurrentDifferentBatches(t *testing.T, s store.Store) {
	const workers, per = 6, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var recs []store.Record
			for i := 0; i < per; i++ {
				recs = append(recs, rec(fmt.Sprintf("w%d-r%03d", w, i), fmt.Sprintf("w%d-%d@x.io", w, i)))
			}
			// Every batch also rewrites the same shared records, in
			// reverse order for odd workers.
			// Every worker gives them its own key values: whichever batch
			// commits last, no key of an earlier batch may survive.
			shared := []store.Record{rec("shared-1", fmt.Sprintf("s1-w%d@x.io", w)), rec("shared-2", fmt.Sprintf("s2-w%d@x.io", w))}
			if w%2 == 1 {
				shared[0], shared[1] = shared[1], shared[0]
			}
			for b := 0; b < 3; b++ {
				ops := up(append(append([]store.Record{}, shared...), recs...)...)
				if _, err := s.Apply(context.Background(), scopeA, fmt.Sprintf("w%d-b%d", w, b), ops); err != nil {
					errs <- fmt.Errorf("worker %d batch %d: %w", w, b, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, _ := s.List(ctx(t), scopeA, "", 1000); len(got) != workers*per+2 {
		t.Fatalf("%d records stored, want %d", len(got), workers*per+2)
	}
	for _, id := range []string{"shared-1", "shared-2"} {
		r, err := s.Get(ctx(t), scopeA, id)
		if err != nil {
			t.Fatal(err)
		}
		var refs []store.KeyRef
		for w := 0; w < workers; w++ {
			refs = append(refs, store.KeyRef{Name: "email", Value: fmt.Sprintf("s%s-w%d@x.io", id[len(id)-1:], w)})
		}
		held, err := s.LookupKeys(ctx(t), scopeA, refs)
		if err != nil {
			t.Fatal(err)
		}
		if len(held) != 1 || held["email\x00"+r.Keys["email"]].ID != id || len(r.Keys) != 1 {
			t.Fatalf("%s has keys %v and holds %v: stale keys of a concurrent batch survived", id, r.Keys, held)
		}
	}
}

func testScopeIsolation(t *testing.T, s store.Store) {
	scopes := []store.Scope{
		{Org: "acme", Mode: "live", Resource: "customers"},
		{Org: "acme", Mode: "test", Resource: "customers"},
		{Org: "globex", Mode: "live", Resource: "customers"},
		{Org: "acme", Mode: "live", Resource: "companies"},
	}
	// The same id and the same key value in every scope: no conflict.
	for i, sc := range scopes {
		r := rec("r1", "same@x.io")
		r.Data = json.RawMessage(fmt.Sprintf(`{"scope":%d}`, i))
		mustApply(t, s, sc, fmt.Sprintf("b%d", i), up(r))
	}
	for i, sc := range scopes {
		got, err := s.Get(ctx(t), sc, "r1")
		if err != nil || !jsonEqual(t, got.Data, json.RawMessage(fmt.Sprintf(`{"scope":%d}`, i))) {
			t.Fatalf("scope %+v sees %s (%v)", sc, got.Data, err)
		}
		if recs, err := s.List(ctx(t), sc, "", 100); err != nil || len(recs) != 1 {
			t.Fatalf("scope %+v lists %d records (%v)", sc, len(recs), err)
		}
	}
	// Writes in one scope do not touch the others.
	mustApply(t, s, scopes[1], "x1", append(del("r1"), up(rec("r2", "only-test@x.io"))...))
	if _, ok := lookup(t, s, scopes[0], "email", "only-test@x.io"); ok {
		t.Fatal("live sees a test-mode key")
	}
	if _, err := s.Get(ctx(t), scopes[1], "r1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("delete in test mode did not happen")
	}
	for _, sc := range []store.Scope{scopes[0], scopes[2], scopes[3]} {
		if id, ok := lookup(t, s, sc, "email", "same@x.io"); !ok || id != "r1" {
			t.Fatalf("scope %+v lost its record after a delete in another scope", sc)
		}
		if m, _ := s.GetMany(ctx(t), sc, []string{"r2"}); len(m) != 0 {
			t.Fatalf("scope %+v sees record r2 of test mode", sc)
		}
	}
	if _, err := s.Get(ctx(t), store.Scope{Org: "nobody", Mode: "live", Resource: "customers"}, "r1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("unknown org sees a record")
	}
}

func testInvalidOps(t *testing.T, s store.Store) {
	for name, ops := range map[string][]store.Op{
		"empty id": {{Kind: store.OpUpsert, Record: store.Record{Data: json.RawMessage(`{}`)}}},
		"bad kind": {{Kind: "merge", Record: store.Record{ID: "r1"}}},
		"bad json": {{Kind: store.OpUpsert, Record: store.Record{ID: "r1", Data: json.RawMessage(`{"a":`)}}},
		"good+bad": append(up(rec("ok", "ok@x.io")), store.Op{Kind: "nope", Record: store.Record{ID: "r2"}}),
	} {
		if _, err := s.Apply(ctx(t), scopeA, "bad-"+name, ops); err == nil {
			t.Errorf("%s: Apply succeeded", name)
		}
	}
	// Data that is not JSON is named, whichever way the batch is written.
	bad := store.Record{ID: "r9", Data: json.RawMessage(`{"a":"b"`), Keys: map[string]string{"email": "r9@x.io"}}
	for name, ops := range map[string][]store.Op{
		"created":  create(rec("ok1", "ok1@x.io"), bad),
		"upserted": append(up(rec("ok2", "ok2@x.io")), store.Op{Kind: store.OpUpsert, Record: bad}),
	} {
		_, err := s.Apply(ctx(t), scopeA, "bad-json-"+name, ops)
		if err == nil || !strings.Contains(err.Error(), "record r9: data is not valid JSON") {
			t.Errorf("%s: invalid JSON data: %v, want it named", name, err)
		}
	}
	if recs, _ := s.List(ctx(t), scopeA, "", 10); len(recs) != 0 {
		t.Fatalf("invalid batches wrote %d records", len(recs))
	}
	if _, err := s.Apply(ctx(t), scopeA, "", up(rec("r1", "a@x.io"))); err == nil {
		t.Error("Apply with empty batch id succeeded")
	}
	// Empty key values are not stored, so two records without the
	// optional key do not collide.
	a, b := rec("r1", "a@x.io", ""), rec("r2", "b@x.io", "")
	mustApply(t, s, scopeA, "empty-keys", up(a, b))
	// An empty batch is still recorded as applied.
	if res := mustApply(t, s, scopeA, "empty", nil); res.Replayed || res.Upserted != 0 {
		t.Fatalf("empty batch = %+v", res)
	}
	if res := mustApply(t, s, scopeA, "empty", nil); !res.Replayed {
		t.Fatalf("empty batch replay = %+v", res)
	}
}

type counterDoc struct {
	N int `json:"n"`
}

func view(id, org, resource, status string, n int) *store.View {
	doc, _ := json.Marshal(counterDoc{N: n})
	return &store.View{ID: id, Org: org, Resource: resource, Status: status, Doc: doc}
}

func testUpdateView(t *testing.T, s store.Store) {
	if _, err := s.GetView(ctx(t), "imp_1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetView missing: %v", err)
	}
	// fn returning nil stores nothing.
	err := s.UpdateView(ctx(t), "imp_1", func(cur *store.View) (*store.View, error) {
		if cur != nil {
			t.Errorf("missing view passed as %+v", cur)
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetView(ctx(t), "imp_1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("nil return stored a view: %v", err)
	}
	// Create.
	if err := s.UpdateView(ctx(t), "imp_1", func(cur *store.View) (*store.View, error) {
		return view("imp_1", "acme", "customers", "requested", 1), nil
	}); err != nil {
		t.Fatal(err)
	}
	v, err := s.GetView(ctx(t), "imp_1")
	if err != nil || v.Status != "requested" || v.Org != "acme" || v.Resource != "customers" || v.CreatedAt.IsZero() || v.CreatedAt.Location() != time.UTC {
		t.Fatalf("created view = %+v (%v)", v, err)
	}
	// Update sees the current view; created_at is kept when fn leaves it zero.
	if err := s.UpdateView(ctx(t), "imp_1", func(cur *store.View) (*store.View, error) {
		if cur == nil || cur.Status != "requested" || !jsonEqual(t, cur.Doc, json.RawMessage(`{"n":1}`)) {
			return nil, fmt.Errorf("current = %+v", cur)
		}
		return view("imp_1", "acme", "customers", "processing", 2), nil
	}); err != nil {
		t.Fatal(err)
	}
	v2, _ := s.GetView(ctx(t), "imp_1")
	if v2.Status != "processing" || !jsonEqual(t, v2.Doc, json.RawMessage(`{"n":2}`)) || !v2.CreatedAt.Equal(v.CreatedAt) {
		t.Fatalf("updated view = %+v (was %+v)", v2, v)
	}
	// An explicit created_at is stored.
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.UpdateView(ctx(t), "imp_2", func(*store.View) (*store.View, error) {
		nv := view("imp_2", "acme", "customers", "queued", 0)
		nv.CreatedAt = at
		return nv, nil
	}); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.GetView(ctx(t), "imp_2"); !v.CreatedAt.Equal(at) {
		t.Fatalf("created_at = %v, want %v", v.CreatedAt, at)
	}
	// An error from fn is returned and nothing is stored.
	boom := errors.New("boom")
	if err := s.UpdateView(ctx(t), "imp_1", func(*store.View) (*store.View, error) {
		return view("imp_1", "acme", "customers", "failed", 3), boom
	}); !errors.Is(err, boom) {
		t.Fatalf("UpdateView err = %v, want boom", err)
	}
	if v, _ := s.GetView(ctx(t), "imp_1"); v.Status != "processing" {
		t.Fatalf("failed update stored status %q", v.Status)
	}
}

func testConcurrentUpdateView(t *testing.T, s store.Store) {
	const n, each = 10, 5
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				err := s.UpdateView(context.Background(), "imp_c", func(cur *store.View) (*store.View, error) {
					var d counterDoc
					if cur != nil {
						if err := json.Unmarshal(cur.Doc, &d); err != nil {
							return nil, err
						}
					}
					// Widen the read-modify-write window.
					time.Sleep(time.Millisecond)
					return view("imp_c", "acme", "customers", "processing", d.N+1), nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("UpdateView: %v", err)
	}
	v, err := s.GetView(ctx(t), "imp_c")
	if err != nil {
		t.Fatal(err)
	}
	var d counterDoc
	if err := json.Unmarshal(v.Doc, &d); err != nil || d.N != n*each {
		t.Fatalf("counter = %d (%v), want %d: updates were lost", d.N, err, n*each)
	}
}

func testListViews(t *testing.T, s store.Store) {
	// 60 views, ids sortable like ULIDs; alternate orgs/resources/statuses.
	orgs := []string{"acme", "globex"}
	resources := []string{"customers", "orders", "skus"}
	statuses := []string{"completed", "failed"}
	for i := 0; i < 60; i++ {
		id := fmt.Sprintf("imp_%04d", i)
		v := view(id, orgs[i%2], resources[i%3], statuses[i%4/2], i)
		if err := s.UpdateView(ctx(t), id, func(*store.View) (*store.View, error) { return v, nil }); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(vs []store.View) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = v.ID
		}
		return out
	}
	counts, err := s.CountViews(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"completed": 30, "failed": 30}; !maps.Equal(counts, want) {
		t.Fatalf("CountViews = %v, want %v", counts, want)
	}
	all, err := s.ListViews(ctx(t), store.ViewFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 50 || all[0].ID != "imp_0059" || all[49].ID != "imp_0010" {
		t.Fatalf("default list = %v, want 50 newest first", ids(all))
	}
	if got, _ := s.ListViews(ctx(t), store.ViewFilter{Limit: 100000}); len(got) != 60 {
		t.Fatalf("big limit returned %d", len(got))
	}
	// Cursor paging visits every view once, in order.
	var seen []string
	f := store.ViewFilter{Limit: 7}
	for page := 0; page < 20; page++ {
		vs, err := s.ListViews(ctx(t), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) == 0 {
			break
		}
		seen = append(seen, ids(vs)...)
		f.Before = vs[len(vs)-1].ID
	}
	if len(seen) != 60 || !sort.SliceIsSorted(seen, func(i, j int) bool { return seen[i] > seen[j] }) {
		t.Fatalf("paged = %v", seen)
	}
	// Filters combine.
	got, err := s.ListViews(ctx(t), store.ViewFilter{Org: "acme", Resource: "customers", Status: "completed", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range got {
		if v.Org != "acme" || v.Resource != "customers" || v.Status != "completed" {
			t.Fatalf("filter let through %+v", v)
		}
	}
	// i%2==0, i%3==0, i%4<2 → i%12==0 (i%4==0) : 0,12,24,36,48
	if want := []string{"imp_0048", "imp_0036", "imp_0024", "imp_0012", "imp_0000"}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("filtered = %v, want %v", ids(got), want)
	}
	got, _ = s.ListViews(ctx(t), store.ViewFilter{Status: "failed", Before: "imp_0010", Limit: 1000})
	if want := []string{"imp_0007", "imp_0006", "imp_0003", "imp_0002"}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("status+cursor = %v, want %v", ids(got), want)
	}
	if got, _ := s.ListViews(ctx(t), store.ViewFilter{Org: "nobody"}); len(got) != 0 {
		t.Fatalf("unknown org lists %d views", len(got))
	}
	if !bytes.Contains(all[0].Doc, []byte("59")) {
		t.Fatalf("doc of listed view = %s", all[0].Doc)
	}
}

func testResetViews(t *testing.T, s store.Store) {
	for _, id := range []string{"imp_a", "imp_b"} {
		if err := s.UpdateView(ctx(t), id, func(*store.View) (*store.View, error) {
			return view(id, "acme", "customers", "completed", 1), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(t, s, scopeA, "b1", up(rec("r1", "a@x.io")))
	if err := s.ResetViews(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if vs, _ := s.ListViews(ctx(t), store.ViewFilter{}); len(vs) != 0 {
		t.Fatalf("%d views after reset", len(vs))
	}
	// Records are not views.
	if _, err := s.Get(ctx(t), scopeA, "r1"); err != nil {
		t.Fatalf("ResetViews removed a record: %v", err)
	}
	if err := s.UpdateView(ctx(t), "imp_a", func(cur *store.View) (*store.View, error) {
		if cur != nil {
			t.Errorf("view survived reset: %+v", cur)
		}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkApply applies batches of batchSize new records (two keys each)
// and reports records/s.
func BenchmarkApply(b *testing.B, s store.Store, batchSize int) {
	b.Run("upsert", func(b *testing.B) { benchmarkApply(b, s, batchSize, store.OpUpsert) })
	b.Run("create", func(b *testing.B) { benchmarkApply(b, s, batchSize, store.OpCreate) })
}

func benchmarkApply(b *testing.B, s store.Store, batchSize int, kind string) {
	ctx := context.Background()
	sc := store.Scope{Org: "bench", Mode: "live", Resource: "customers"}
	batches := make([][]store.Op, b.N)
	for i := range batches {
		ops := make([]store.Op, batchSize)
		for j := range ops {
			id := fmt.Sprintf("r%08d-%05d", i, j)
			data, _ := json.Marshal(map[string]any{"email": id + "@x.io", "name": "Name " + id, "age": j % 90, "vip": j%7 == 0})
			ops[j] = store.Op{Kind: kind, Record: store.Record{ID: id + kind, Data: data, ImportID: "imp_bench",
				Keys: map[string]string{"email": id + kind + "@x.io", "external_id": "ext-" + id + kind}}}
		}
		batches[i] = ops
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := s.Apply(ctx, sc, fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i), batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batchSize)/time.Since(start).Seconds(), "records/s")
}

// ListIDs pages through ids in order, within the scope, and by parent when asked.
func testListIDs(t *testing.T, s store.Store) {
	var ops []store.Op
	for i := 0; i < 25; i++ {
		r := rec(fmt.Sprintf("r%02d", i), fmt.Sprintf("u%02d@x.io", i))
		if i%2 == 0 {
			r.ParentID = "p1"
		}
		ops = append(ops, store.Op{Kind: store.OpUpsert, Record: r})
	}
	mustApply(t, s, scopeA, "ids-1", ops)
	other := scopeA
	other.Mode = "test"
	mustApply(t, s, other, "ids-2", up(rec("r99", "z@x.io")))

	page := func(parent string) []string {
		var all []string
		after := ""
		for {
			ids, err := s.ListIDs(ctx(t), scopeA, parent, after, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) == 0 {
				return all
			}
			all = append(all, ids...)
			after = ids[len(ids)-1]
		}
	}
	all := page("")
	if len(all) != 25 || all[0] != "r00" || all[24] != "r24" {
		t.Fatalf("all ids: %v", all)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1] >= all[i] {
			t.Fatalf("ids out of order: %v", all)
		}
	}
	if kids := page("p1"); len(kids) != 13 || kids[1] != "r02" {
		t.Fatalf("ids of parent p1: %v", kids)
	}
	if none := page("nobody"); len(none) != 0 {
		t.Fatalf("ids of an unknown parent: %v", none)
	}
}

// Applied tells whether a batch was applied, with the result Apply returned.
func testApplied(t *testing.T, s store.Store) {
	if _, ok, err := s.Applied(ctx(t), "never"); err != nil || ok {
		t.Fatalf("Applied(unknown) = %v, %v", ok, err)
	}
	first := mustApply(t, s, scopeA, "ap-1", append(up(rec("a1", "a1@x.io")), del("ghost")...))
	got, ok, err := s.Applied(ctx(t), "ap-1")
	if err != nil || !ok {
		t.Fatalf("Applied(ap-1) = %v, %v", ok, err)
	}
	if got.Upserted != first.Upserted || got.Missing != first.Missing || len(got.MissingIDs) != 1 || got.MissingIDs[0] != "ghost" {
		t.Fatalf("Applied(ap-1) = %+v, Apply returned %+v", got, first)
	}
}

// A create is an upsert the caller expects to be new: whether it is (the fast
// path) or not (the record exists: it is updated and its keys replaced), the
// records, keys and result are an upsert's.
// checkFingerprints asks for the fingerprints of want's ids and checks each
// is the fingerprint of the bytes given (nil: the record does not exist).
func checkFingerprints(t *testing.T, s store.Store, sc store.Scope, want map[string]json.RawMessage) {
	t.Helper()
	var ids []string
	for id := range want {
		ids = append(ids, id)
	}
	got, err := s.Fingerprints(ctx(t), sc, ids)
	if err != nil {
		t.Fatalf("Fingerprints: %v", err)
	}
	for id, data := range want {
		fp, ok := got[id]
		switch {
		case data == nil && ok:
			t.Fatalf("Fingerprints gave %x for %s, which does not exist", fp, id)
		case data != nil && !bytes.Equal(fp, store.Fingerprint(data)):
			t.Fatalf("fingerprint of %s = %x, want %x (of %s)", id, fp, store.Fingerprint(data), data)
		}
	}
	if m, err := s.Fingerprints(ctx(t), sc, nil); err != nil || len(m) != 0 {
		t.Fatalf("Fingerprints(nil) = %v, %v", m, err)
	}
}

func testCreates(t *testing.T, s store.Store) {
	res := mustApply(t, s, scopeA, "cr-1", create(rec("c1", "c1@x.io", "E1"), rec("c2", "c2@x.io")))
	if res.Upserted != 2 || res.Deleted != 0 || res.Missing != 0 {
		t.Fatalf("new records: %+v", res)
	}
	for _, k := range [][3]string{{"email", "c1@x.io", "c1"}, {"external_id", "E1", "c1"}, {"email", "c2@x.io", "c2"}} {
		if id, ok := lookup(t, s, scopeA, k[0], k[1]); !ok || id != k[2] {
			t.Fatalf("key %s=%s → %q, %v; want %s", k[0], k[1], id, ok, k[2])
		}
	}
	// c1 exists now: a "create" of it (a rerun, a race) updates it, with its new keys.
	moved := rec("c1", "c1-new@x.io")
	res = mustApply(t, s, scopeA, "cr-2", create(moved, rec("c3", "c3@x.io")))
	if res.Upserted != 2 {
		t.Fatalf("create of an existing record: %+v", res)
	}
	got, err := s.Get(ctx(t), scopeA, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, got.Data, moved.Data) || !reflect.DeepEqual(got.Keys, moved.Keys) {
		t.Fatalf("c1 after create over it: %s %v, want %s %v", got.Data, got.Keys, moved.Data, moved.Keys)
	}
	if _, ok := lookup(t, s, scopeA, "external_id", "E1"); ok {
		t.Fatal("the old key of c1 survived a create over it")
	}
	// Whichever way a record was written (created, created over, upserted),
	// its fingerprint is of the bytes written last.
	checkFingerprints(t, s, scopeA, map[string]json.RawMessage{"c1": moved.Data, "c2": rec("c2", "c2@x.io").Data})
	if id, ok := lookup(t, s, scopeA, "email", "c3@x.io"); !ok || id != "c3" {
		t.Fatalf("c3 not created alongside: %q %v", id, ok)
	}
	// Replayed, a batch of creates returns its first result and writes nothing.
	again, err := s.Apply(ctx(t), scopeA, "cr-1", create(rec("zz", "zz@x.io")))
	if err != nil || !again.Replayed || again.Upserted != 2 {
		t.Fatalf("replay: %+v %v", again, err)
	}
	if _, err := s.Get(ctx(t), scopeA, "zz"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a replayed batch wrote a record: %v", err)
	}
	// Mixed with an upsert, a create is still an upsert.
	res = mustApply(t, s, scopeA, "cr-3", append(create(rec("c4", "c4@x.io")), up(rec("c2", "c2@x.io", "E2"))...))
	if res.Upserted != 2 {
		t.Fatalf("mixed batch: %+v", res)
	}
	if id, ok := lookup(t, s, scopeA, "external_id", "E2"); !ok || id != "c2" {
		t.Fatalf("upsert in a mixed batch: %q %v", id, ok)
	}
	changed := rec("c2", "c2@x.io", "E2")
	changed.Data = json.RawMessage(`{"email":"c2@x.io","name":"changed"}`)
	mustApply(t, s, scopeA, "cr-4", up(changed))
	checkFingerprints(t, s, scopeA, map[string]json.RawMessage{"c2": changed.Data, "c4": rec("c4", "c4@x.io").Data})
}

// A create whose key another record holds fails the whole batch with
// ErrKeyConflict, like an upsert would, and leaves nothing behind.
func testCreateConflict(t *testing.T, s store.Store) {
	mustApply(t, s, scopeA, "cc-1", up(rec("h1", "held@x.io")))
	_, err := s.Apply(ctx(t), scopeA, "cc-2", create(rec("n1", "n1@x.io"), rec("n2", "held@x.io")))
	if !errors.Is(err, store.ErrKeyConflict) {
		t.Fatalf("create of a held key: %v, want ErrKeyConflict", err)
	}
	if _, err := s.Get(ctx(t), scopeA, "n1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed batch of creates left n1 behind: %v", err)
	}
	if _, ok, err := s.Applied(ctx(t), "cc-2"); err != nil || ok {
		t.Fatalf("a failed batch was marked applied: %v %v", ok, err)
	}
	// Fixed, the same batch id applies.
	res := mustApply(t, s, scopeA, "cc-2", create(rec("n1", "n1@x.io"), rec("n2", "n2@x.io")))
	if res.Upserted != 2 {
		t.Fatalf("retried batch: %+v", res)
	}
}

// Text that a bulk load must escape (backslashes, tabs, line breaks, quotes)
// comes back as it was given, in data, keys and ids, created or upserted.
func testValuesKeepEveryCharacter(t *testing.T, s store.Store) {
	odd := []string{`back\slash`, "tab\there", "line\nbreak", "cr\rhere", `quo"te`, `\N`, "é—✓", `end\`}
	var creates, upserts []store.Record
	for i, v := range odd {
		data, err := json.Marshal(map[string]any{"email": v, "note": v + "|" + v})
		if err != nil {
			t.Fatal(err)
		}
		r := store.Record{ID: fmt.Sprintf("id-%d-%s", i, v), Data: data, ParentID: "p" + v, ImportID: "imp" + strings.Join(odd, ""), // a batch is one import's
			Keys: map[string]string{"email": "c" + v, "external_id": "x" + v}}
		creates = append(creates, r)
		r.ID, r.Keys = "u"+r.ID, map[string]string{"email": "u" + v}
		upserts = append(upserts, r)
	}
	before := time.Now().Add(-time.Second)
	mustApply(t, s, scopeA, "odd-create", create(creates...))
	mustApply(t, s, scopeA, "odd-upsert", up(upserts...))
	for _, want := range append(creates, upserts...) {
		got, err := s.Get(ctx(t), scopeA, want.ID)
		if err != nil {
			t.Fatalf("Get %q: %v", want.ID, err)
		}
		if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Second)) || !got.UpdatedAt.Equal(got.CreatedAt) {
			t.Errorf("%q: created_at %v updated_at %v, want now and equal", want.ID, got.CreatedAt, got.UpdatedAt)
		}
		if !jsonEqual(t, got.Data, want.Data) || !reflect.DeepEqual(got.Keys, want.Keys) ||
			got.ParentID != want.ParentID || got.ImportID != want.ImportID {
			t.Errorf("%q came back as %s %v parent %q import %q; want %s %v %q %q", want.ID,
				got.Data, got.Keys, got.ParentID, got.ImportID, want.Data, want.Keys, want.ParentID, want.ImportID)
		}
		for name, value := range want.Keys {
			if id, ok := lookup(t, s, scopeA, name, value); !ok || id != want.ID {
				t.Errorf("key %s=%q → %q, %v; want %q", name, value, id, ok, want.ID)
			}
		}
	}
	checkFingerprints(t, s, scopeA, map[string]json.RawMessage{creates[0].ID: creates[0].Data, upserts[1].ID: upserts[1].Data})
}

// A key's holder comes with the fingerprint of the data its record was
// written with last, however it was written (created, created over,
// upserted with the same keys or others, deleted and written again): a
// stale one would make a changed row look unchanged.
func testLookupFingerprints(t *testing.T, s store.Store) {
	holder := func(name, value string) store.Holder {
		t.Helper()
		m, err := s.LookupKeys(ctx(t), scopeA, []store.KeyRef{{Name: name, Value: value}})
		if err != nil {
			t.Fatalf("LookupKeys: %v", err)
		}
		return m[name+"\x00"+value]
	}
	check := func(step string, want store.Record) {
		t.Helper()
		for name, value := range want.Keys {
			h := holder(name, value)
			if h.ID != want.ID || !bytes.Equal(h.Fingerprint, store.Fingerprint(want.Data)) {
				t.Errorf("%s: key %s=%s held by %q with fingerprint %x; want %q with %x (of %s)",
					step, name, value, h.ID, h.Fingerprint, want.ID, store.Fingerprint(want.Data), want.Data)
			}
		}
	}
	withData := func(r store.Record, data string) store.Record {
		r.Data = json.RawMessage(data)
		return r
	}
	a := rec("f1", "f1@x.io", "F1")
	mustApply(t, s, scopeA, "fp-1", create(a, rec("f2", "f2@x.io")))
	check("created", a)
	a = withData(a, `{"email":"f1@x.io","name":"second"}`)
	mustApply(t, s, scopeA, "fp-2", up(a))
	check("upserted with the same keys", a)
	a = withData(rec("f1", "f1@x.io", "F1-new"), `{"email":"f1@x.io","name":"third"}`)
	mustApply(t, s, scopeA, "fp-3", create(a, rec("f3", "f3@x.io")))
	check("created over, one key changed", a)
	check("untouched alongside", rec("f2", "f2@x.io"))
	mustApply(t, s, scopeA, "fp-4", del("f1"))
	if h := holder("email", "f1@x.io"); h.ID != "" {
		t.Errorf("a deleted record still holds its key: %+v", h)
	}
	a = withData(rec("f1", "f1@x.io"), `{"email":"f1@x.io","name":"fourth"}`)
	mustApply(t, s, scopeA, "fp-5", up(a))
	check("written again after its delete", a)
}

func changes(t *testing.T, s store.Store, sc store.Scope, importID string) map[string]store.Change {
	t.Helper()
	var ids []string
	for after := ""; ; {
		page, err := s.ChangedIDs(ctx(t), sc, importID, after, 2)
		if err != nil {
			t.Fatalf("ChangedIDs %s: %v", importID, err)
		}
		if len(page) == 0 {
			break
		}
		ids = append(ids, page...)
		after = page[len(page)-1]
	}
	got, err := s.Changes(ctx(t), sc, importID, append(ids, "never-touched"))
	if err != nil {
		t.Fatalf("Changes %s: %v", importID, err)
	}
	if len(got) != len(ids) {
		t.Fatalf("Changes %s: %d changes for %d changed ids %v", importID, len(got), len(ids), ids)
	}
	return got
}

func byImport(importID string, ops []store.Op) []store.Op {
	for i := range ops {
		ops[i].Record.ImportID = importID
	}
	return ops
}

func testChanges(t *testing.T, s store.Store) {
	// imp_a creates a (fast path) and b; imp_b updates a, deletes b, creates c
	// and updates a again in a second batch; an op without an import keeps nothing.
	a1, b1 := rec("a", "a@x", "A"), rec("b", "b@x")
	mustApply(t, s, scopeA, "ch:1", byImport("imp_a", create(a1)))
	mustApply(t, s, scopeA, "ch:2", byImport("imp_a", up(b1)))
	before, err := s.Get(ctx(t), scopeA, "a")
	if err != nil {
		t.Fatal(err)
	}
	a2 := rec("a", "a2@x", "A")
	mustApply(t, s, scopeA, "ch:3", byImport("imp_b", append(up(a2, rec("c", "c@x")), del("b")...)))
	a3 := rec("a", "a3@x")
	mustApply(t, s, scopeA, "ch:4", byImport("imp_b", up(a3)))
	mustApply(t, s, scopeA, "ch:5", up(store.Record{ID: "d", Data: json.RawMessage(`{}`)}))

	ca := changes(t, s, scopeA, "imp_a")
	if len(ca) != 2 || ca["a"].Before != nil || ca["b"].Before != nil {
		t.Fatalf("imp_a changes = %+v, want a and b created (nothing before)", ca)
	}
	if !bytes.Equal(ca["a"].After, store.Fingerprint(a1.Data)) {
		t.Errorf("imp_a left a with fingerprint %x, want %x", ca["a"].After, store.Fingerprint(a1.Data))
	}
	cb := changes(t, s, scopeA, "imp_b")
	if len(cb) != 3 {
		t.Fatalf("imp_b changed %d records, want a, b, c: %+v", len(cb), cb)
	}
	// a: the record before imp_b's first write, the fingerprint of its last.
	got := cb["a"]
	if got.Before == nil || !jsonEqual(t, got.Before.Data, a1.Data) || !maps.Equal(got.Before.Keys, a1.Keys) ||
		got.Before.ImportID != "imp_a" || !got.Before.CreatedAt.Equal(before.CreatedAt) {
		t.Errorf("a before imp_b = %+v, want %s with keys %v by imp_a created %v", got.Before, a1.Data, a1.Keys, before.CreatedAt)
	}
	if !bytes.Equal(got.After, store.Fingerprint(a3.Data)) {
		t.Errorf("imp_b left a with %x, want the fingerprint of its second write %x", got.After, store.Fingerprint(a3.Data))
	}
	if cb["b"].Before == nil || !jsonEqual(t, cb["b"].Before.Data, b1.Data) || cb["b"].After != nil {
		t.Errorf("b under imp_b = %+v, want its data before and nothing after (deleted)", cb["b"])
	}
	if cb["c"].Before != nil || cb["c"].After == nil {
		t.Errorf("c under imp_b = %+v, want created", cb["c"])
	}
	if ids, err := s.ChangedIDs(ctx(t), scopeA, "", "", 10); err != nil || len(ids) != 0 {
		t.Errorf("changes kept without an import: %v, %v", ids, err)
	}
	other := store.Scope{Org: "other", Mode: "live", Resource: "customers"}
	if ids, err := s.ChangedIDs(ctx(t), other, "imp_b", "", 10); err != nil || len(ids) != 0 {
		t.Errorf("imp_b's changes seen in another scope: %v, %v", ids, err)
	}
	// Two imports in one batch are refused.
	mixed := append(byImport("imp_x", up(rec("e", "e@x"))), byImport("imp_y", up(rec("f", "f@x")))...)
	if _, err := s.Apply(ctx(t), scopeA, "ch:6", mixed); err == nil {
		t.Error("a batch of two imports was applied")
	}
}

func testExpect(t *testing.T, s store.Store) {
	a, b := rec("a", "a@x"), rec("b", "b@x")
	mustApply(t, s, scopeA, "ex:1", up(a, b))
	fa := store.Fingerprint(a.Data)
	ops := []store.Op{
		// a is as expected: replaced.
		{Kind: store.OpUpsert, Record: rec("a", "a2@x"), Expect: &store.Expect{Exists: true, Fingerprint: fa}},
		// b changed since (another fingerprint): left out.
		{Kind: store.OpDelete, Record: store.Record{ID: "b"}, Expect: &store.Expect{Exists: true, Fingerprint: fa}},
		// c is expected absent and is: created.
		{Kind: store.OpUpsert, Record: rec("c", "c@x"), Expect: &store.Expect{}},
		// d expected absent but there: left out, its key stays.
		{Kind: store.OpUpsert, Record: rec("d", "d2@x"), Expect: &store.Expect{}},
		// e gives a key f holds: left out, naming the key and its holder.
		{Kind: store.OpUpsert, Record: rec("e", "f@x"), Expect: &store.Expect{}},
		// g, forced (any state), gives the key d keeps: left out too.
		{Kind: store.OpUpsert, Record: rec("g", "d@x"), Expect: &store.Expect{Anything: true}},
	}
	for i := range ops {
		ops[i].Record.ImportID = "imp_revert"
	}
	mustApply(t, s, scopeA, "ex:1b", up(rec("d", "d@x"), rec("f", "f@x")))
	res := mustApply(t, s, scopeA, "ex:2", ops)
	if !reflect.DeepEqual(res.Conflicts, []string{"b", "d", "e", "g"}) || res.Upserted != 2 || res.Deleted != 0 {
		t.Fatalf("result = %+v, want a and c written, b, d, e and g conflicts", res)
	}
	if e, g := res.HeldKeys["e"], res.HeldKeys["g"]; !strings.Contains(e, "f@x") || !strings.Contains(e, "record f") ||
		!strings.Contains(g, "record d") || len(res.HeldKeys) != 2 {
		t.Errorf("held keys = %v, want e's email held by record f, g's by record d", res.HeldKeys)
	}
	if id, ok := lookup(t, s, scopeA, "email", "d@x"); !ok || id != "d" {
		t.Errorf("d's key = %q %v after its op was left out", id, ok)
	}
	for _, id := range []string{"e", "g"} {
		if _, err := s.Get(ctx(t), scopeA, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s was written though its key is held: %v", id, err)
		}
	}
	// Only what was written is kept as the import's changes.
	if ch := changes(t, s, scopeA, "imp_revert"); len(ch) != 2 || ch["a"].Before == nil || ch["c"].After == nil {
		t.Errorf("changes kept = %+v, want a and c only", ch)
	}
	if got, err := s.Get(ctx(t), scopeA, "b"); err != nil || !jsonEqual(t, got.Data, b.Data) {
		t.Errorf("b = %+v, %v: want it untouched", got, err)
	}
	if id, ok := lookup(t, s, scopeA, "email", "b@x"); !ok || id != "b" {
		t.Errorf("b's key = %q %v after its op was left out", id, ok)
	}
	if id, ok := lookup(t, s, scopeA, "email", "a2@x"); !ok || id != "a" {
		t.Errorf("a's new key = %q %v", id, ok)
	}
	if res, err := s.Apply(ctx(t), scopeA, "ex:2", ops); err != nil || !res.Replayed || !reflect.DeepEqual(res.Conflicts, []string{"b", "d", "e", "g"}) || len(res.HeldKeys) != 2 {
		t.Errorf("replay = %+v, %v: want the stored conflicts and held keys", res, err)
	}
	// A delete of a record that does not exist changed nothing: not kept.
	mustApply(t, s, scopeA, "ex:4", byImport("imp_del", del("nope", "c")))
	if ch := changes(t, s, scopeA, "imp_del"); len(ch) != 1 || ch["c"].Before == nil {
		t.Errorf("changes of a delete = %+v, want c only", ch)
	}
	// Every op left out: nothing written, the batch still applied once.
	all := []store.Op{{Kind: store.OpDelete, Record: store.Record{ID: "a"}, Expect: &store.Expect{}}}
	if res := mustApply(t, s, scopeA, "ex:3", all); !reflect.DeepEqual(res.Conflicts, []string{"a"}) || res.Deleted != 0 {
		t.Errorf("result = %+v, want a a conflict", res)
	}
	if _, err := s.Get(ctx(t), scopeA, "a"); err != nil {
		t.Errorf("a is gone: %v", err)
	}
}

func testRestore(t *testing.T, s store.Store) {
	a := rec("a", "a@x", "A")
	mustApply(t, s, scopeA, "re:1", up(a))
	first, err := s.Get(ctx(t), scopeA, "a")
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, scopeA, "re:2", byImport("imp_del", del("a")))
	ch := changes(t, s, scopeA, "imp_del")["a"]
	if ch.Before == nil {
		t.Fatal("the delete kept nothing of a")
	}
	// Recreated as it was: id, data, keys and creation time.
	back := *ch.Before
	back.ImportID = "imp_revert"
	mustApply(t, s, scopeA, "re:3", []store.Op{{Kind: store.OpUpsert, Record: back, Expect: &store.Expect{}}})
	got, err := s.Get(ctx(t), scopeA, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, got.Data, a.Data) || !maps.Equal(got.Keys, a.Keys) || !got.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("restored a = %+v, want %s keys %v created %v", got, a.Data, a.Keys, first.CreatedAt)
	}
	if id, ok := lookup(t, s, scopeA, "external_id", "A"); !ok || id != "a" {
		t.Errorf("restored key external_id=A held by %q %v", id, ok)
	}
	if rc := changes(t, s, scopeA, "imp_revert")["a"]; rc.Before != nil || rc.After == nil {
		t.Errorf("the revert's own change = %+v, want a recreated (revertible)", rc)
	}
	// A restore whose key another record took meanwhile is left out,
	// naming both records; without Expect the batch fails instead.
	mustApply(t, s, scopeA, "re:4", byImport("imp_del2", del("a")))
	mustApply(t, s, scopeA, "re:5", up(rec("z", "a@x")))
	res := mustApply(t, s, scopeA, "re:6", []store.Op{{Kind: store.OpUpsert, Record: back, Expect: &store.Expect{}}})
	if !reflect.DeepEqual(res.Conflicts, []string{"a"}) || !strings.Contains(res.HeldKeys["a"], "record z") {
		t.Fatalf("result = %+v, want a left out: its key held by z", res)
	}
	_, err = s.Apply(ctx(t), scopeA, "re:7", []store.Op{{Kind: store.OpUpsert, Record: back}})
	var kc *store.KeyConflictError
	if !errors.As(err, &kc) || kc.Wanted != "a" || kc.Held != "z" {
		t.Fatalf("err = %v, want a key conflict of a with z", err)
	}
	if _, ok, _ := s.Applied(ctx(t), "re:7"); ok {
		t.Error("a batch that failed on a key conflict is marked applied")
	}
}

// Two batches putting back the same absent record at once (two reverts of
// one import): one recreates it, the other finds it there.
func testConcurrentRecreate(t *testing.T, s store.Store) {
	for round := range 5 {
		id := fmt.Sprintf("x%d", round)
		var wg sync.WaitGroup
		results := make([]store.BatchResult, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rec(id, id+"@x")
				r.ImportID = fmt.Sprintf("imp_r%d", i)
				results[i], errs[i] = s.Apply(ctx(t), scopeA, fmt.Sprintf("cr:%d:%d", round, i),
					[]store.Op{{Kind: store.OpUpsert, Record: r, Expect: &store.Expect{}}})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d batch %d: %v", round, i, err)
			}
		}
		if got := results[0].Upserted + results[1].Upserted; got != 1 || len(results[0].Conflicts)+len(results[1].Conflicts) != 1 {
			t.Fatalf("round %d: %+v and %+v, want one recreate and one conflict", round, results[0], results[1])
		}
	}
}

func testPruneChanges(t *testing.T, s store.Store) {
	mustApply(t, s, scopeA, "pr:1", byImport("imp_old", up(rec("a", "a@x"), rec("b", "b@x"), rec("c", "c@x"))))
	time.Sleep(20 * time.Millisecond)
	cut := time.Now()
	time.Sleep(20 * time.Millisecond)
	mustApply(t, s, scopeA, "pr:2", byImport("imp_new", up(rec("a", "a2@x"))))
	var total int64
	for calls := 0; ; calls++ {
		if calls > 10 {
			t.Fatal("PruneChanges never says done")
		}
		n, done, err := s.PruneChanges(ctx(t), cut, 2)
		if err != nil {
			t.Fatalf("PruneChanges: %v", err)
		}
		if n > 2 {
			t.Fatalf("PruneChanges forgot %d changes in one call, limit 2", n)
		}
		total += n
		if done {
			break
		}
	}
	if total != 3 {
		t.Errorf("forgot %d changes, want imp_old's 3", total)
	}
	if ids, err := s.ChangedIDs(ctx(t), scopeA, "imp_old", "", 10); err != nil || len(ids) != 0 {
		t.Errorf("imp_old's changes after pruning: %v, %v", ids, err)
	}
	if ch := changes(t, s, scopeA, "imp_new"); len(ch) != 1 || ch["a"].Before == nil {
		t.Errorf("imp_new's changes after pruning older ones: %+v", ch)
	}
	if got, err := s.Get(ctx(t), scopeA, "b"); err != nil || got.ID != "b" {
		t.Errorf("a record is gone with the changes: %v", err)
	}
}
