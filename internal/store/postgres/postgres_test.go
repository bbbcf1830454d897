package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/postgres"
	"github.com/inlet-dev/inlet/internal/store/storetest"
	"github.com/inlet-dev/inlet/internal/testenv"
)

func open(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	storetest.RunContract(t, func(t *testing.T) store.Store {
		return open(t, testenv.StartPostgres(t))
	})
}

// Several processes start at once against one database: the advisory lock
// keeps concurrent schema creation from failing.
func TestConcurrentOpen(t *testing.T) {
	url := testenv.StartPostgres(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := postgres.Open(context.Background(), url)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
}

// Two pools stand for two processes of the processing phase receiving the
// same batch twice (redelivery): one applies it, the other replays it.
func TestSameBatchFromTwoProcesses(t *testing.T) {
	url := testenv.StartPostgres(t)
	a, b := open(t, url), open(t, url)
	sc := store.Scope{Org: "acme", Mode: "live", Resource: "customers"}
	for round := 0; round < 10; round++ {
		var ops []store.Op
		for i := 0; i < 200; i++ {
			id := fmt.Sprintf("r%d-%03d", round, i)
			ops = append(ops, store.Op{Kind: store.OpUpsert, Record: store.Record{ID: id, Data: []byte(`{"x":1}`),
				Keys: map[string]string{"email": id + "@x.io"}}})
		}
		batch := fmt.Sprintf("imp_1:processing:%d", round)
		var wg sync.WaitGroup
		var results [2]store.BatchResult
		var errs [2]error
		for i, s := range []*postgres.Store{a, b} {
			wg.Add(1)
			go func(i int, s *postgres.Store) {
				defer wg.Done()
				results[i], errs[i] = s.Apply(context.Background(), sc, batch, ops)
			}(i, s)
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v / %v", round, errs[0], errs[1])
		}
		if results[0].Replayed == results[1].Replayed {
			t.Fatalf("round %d: replayed %v and %v, want exactly one", round, results[0].Replayed, results[1].Replayed)
		}
		if results[0].Upserted != 200 || results[1].Upserted != 200 {
			t.Fatalf("round %d: results %+v %+v", round, results[0], results[1])
		}
	}
	var n int
	if err := a.Pool().QueryRow(context.Background(), `SELECT count(*) FROM records`).Scan(&n); err != nil || n != 2000 {
		t.Fatalf("records = %d (%v), want 2000", n, err)
	}
}

// Two processes giving the same new key to different records at once: one
// wins, the other gets ErrKeyConflict naming both records.
func TestConcurrentKeyConflict(t *testing.T) {
	url := testenv.StartPostgres(t)
	a, b := open(t, url), open(t, url)
	sc := store.Scope{Org: "acme", Mode: "live", Resource: "customers"}
	for round := 0; round < 10; round++ {
		key := fmt.Sprintf("k%d@x.io", round)
		var wg sync.WaitGroup
		var errs [2]error
		for i, s := range []*postgres.Store{a, b} {
			wg.Add(1)
			go func(i int, s *postgres.Store) {
				defer wg.Done()
				ops := []store.Op{{Kind: store.OpUpsert, Record: store.Record{ID: fmt.Sprintf("r%d-%d", round, i),
					Data: []byte(`{}`), Keys: map[string]string{"email": key}}}}
				_, errs[i] = s.Apply(context.Background(), sc, fmt.Sprintf("b%d-%d", round, i), ops)
			}(i, s)
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errorsIsConflict(err):
				t.Fatalf("round %d: unexpected error %v", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d batches succeeded (%v / %v), want 1", round, ok, errs[0], errs[1])
		}
	}
}

func BenchmarkApply1000(b *testing.B) {
	storetest.BenchmarkApply(b, open(b, testenv.StartPostgres(b)), 1000)
}

func errorsIsConflict(err error) bool { return errors.Is(err, store.ErrKeyConflict) }

// StartPostgresProcess is what benchmarks and CLIs use: a server in a
// directory of their choosing that survives a stop/start with its data.
func TestStartPostgresProcess(t *testing.T) {
	if _, err := exec.LookPath("runuser"); err != nil && os.Geteuid() == 0 {
		t.Skip("runuser not available")
	}
	dir, err := os.MkdirTemp("/tmp", "inlet-pg-proc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	url, stop, err := testenv.StartPostgresProcess(dir)
	if errors.Is(err, testenv.ErrPostgresNotFound) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	s := open(t, url)
	sc := store.Scope{Org: "o", Mode: "live", Resource: "r"}
	if _, err := s.Apply(context.Background(), sc, "b1", []store.Op{{Kind: store.OpUpsert, Record: store.Record{ID: "r1", Data: []byte(`{}`)}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	stop()

	url2, stop2, err := testenv.StartPostgresProcess(dir)
	if err != nil {
		t.Fatalf("restart on existing cluster: %v", err)
	}
	t.Cleanup(stop2)
	s2 := open(t, url2)
	if _, err := s2.Get(context.Background(), sc, "r1"); err != nil {
		t.Fatalf("record lost across restart: %v", err)
	}
}
