package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/inlet-dev/inlet/pkg/store"
	"github.com/inlet-dev/inlet/pkg/store/sqlite"
	"github.com/inlet-dev/inlet/pkg/store/storetest"
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
