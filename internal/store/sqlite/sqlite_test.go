package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/sqlite"
	"github.com/inlet-dev/inlet/internal/store/storetest"
)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	storetest.RunContract(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "inlet.db"))
	})
}

// Two Stores on one file behave like two processes: neither the schema
// creation nor concurrent Apply calls may fail with SQLITE_BUSY, and a batch
// applied through both is applied once.
func TestTwoHandlesOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inlet.db")
	a, b := open(t, path), open(t, path)
	if _, err := sqlite.Open(path); err != nil { // schema creation is idempotent
		t.Fatal(err)
	}
	sc := store.Scope{Org: "acme", Mode: "live", Resource: "customers"}
	var wg sync.WaitGroup
	results := make([]store.BatchResult, 20)
	errs := make([]error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			ops := []store.Op{{Kind: store.OpUpsert, Record: store.Record{ID: fmt.Sprintf("r%d", i%10), Data: []byte(`{}`),
				Keys: map[string]string{"email": fmt.Sprintf("%d@x.io", i%10)}}}}
			results[i], errs[i] = s.Apply(context.Background(), sc, fmt.Sprintf("batch-%d", i%10), ops)
		}(i)
	}
	wg.Wait()
	applied := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Apply %d: %v", i, err)
		}
		if !results[i].Replayed {
			applied++
		}
	}
	if applied != 10 {
		t.Fatalf("%d applications of 10 batches", applied)
	}
	recs, err := b.List(context.Background(), sc, "", 100)
	if err != nil || len(recs) != 10 {
		t.Fatalf("List = %d records, %v", len(recs), err)
	}
}

func BenchmarkApply1000(b *testing.B) {
	storetest.BenchmarkApply(b, open(b, filepath.Join(b.TempDir(), "inlet.db")), 1000)
}

// Committed pages reach the database file while the store is open: the
// checkpointer copies the log, since the writer no longer does.
func TestCheckpointerCopiesTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inlet.db")
	s := open(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	before := fi.Size()
	var ops []store.Op
	for i := range 2000 {
		id := fmt.Sprintf("r%05d", i)
		data := fmt.Sprintf(`{"email":"%s@x.io","note":"%0200d"}`, id, i)
		ops = append(ops, store.Op{Kind: store.OpCreate, Record: store.Record{ID: id, Data: []byte(data),
			Keys: map[string]string{"email": id + "@x.io"}}})
	}
	if _, err := s.Apply(context.Background(), store.Scope{Org: "o", Mode: "live", Resource: "r"}, "b1", ops); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > before+256<<10 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the database file is %d bytes (%d before a batch of about 500 KiB) after 10 s: nothing checkpointed it", fi.Size(), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The log stays bounded while the writer never rests: the checkpointer
// copies the last frames between two writes once the log is long, so the
// next write starts it again (without that it grew to the whole database).
func TestLogStaysBoundedUnderABusyWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("writes about 90 MiB")
	}
	path := filepath.Join(t.TempDir(), "inlet.db")
	s := open(t, path)
	sc := store.Scope{Org: "o", Mode: "live", Resource: "r"}
	var peak int64
	for b := range 90 {
		var ops []store.Op
		for i := range 1000 {
			id := fmt.Sprintf("r%03d-%04d", b, i)
			data := fmt.Sprintf(`{"email":"%s@x.io","note":"%0500d"}`, id, i)
			ops = append(ops, store.Op{Kind: store.OpCreate, Record: store.Record{ID: id, Data: []byte(data),
				Keys: map[string]string{"email": id + "@x.io"}}})
		}
		if _, err := s.Apply(context.Background(), sc, fmt.Sprintf("b%d", b), ops); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path + "-wal"); err == nil {
			peak = max(peak, fi.Size())
		}
	}
	db, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if peak > 48<<20 || peak == 0 {
		t.Fatalf("the log peaked at %d MiB while the database grew to %d MiB; want it under 48 MiB", peak>>20, db.Size()>>20)
	}
	t.Logf("log peak %d MiB, database %d MiB", peak>>20, db.Size()>>20)
}
