package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

// SQLite's page caches are outside the Go heap and its limit: every
// connection the store may open, its cache full, stays under MemoryLimit.
func TestPageCachesStayUnderTheMemoryLimit(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "inlet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	max := s.db.Stats().MaxOpenConnections
	if max <= 0 {
		t.Fatal("the store's connections are unbounded")
	}
	var total int64
	for i := 0; i < max; i++ {
		conn, err := s.db.Conn(ctx) // each held: a new connection every time
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var size int64
		if err := conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&size); err != nil {
			t.Fatal(err)
		}
		if size >= 0 { // pages, not KiB: a page is at least 512 bytes
			t.Fatalf("cache_size %d pages: give it in KiB", size)
		}
		total += -size << 10
	}
	if total > MemoryLimit || total < MemoryLimit/2 {
		t.Fatalf("%d connections cache %d MiB in all, want at most %d and near it", max, total>>20, MemoryLimit>>20)
	}
}
