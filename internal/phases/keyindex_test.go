package phases

import (
	"fmt"
	"math/rand"
	"os"
	"testing"
)

// The spilled index gives what a map of every value gives: the count and
// first row of values held several times, and (kept for membership) which
// values the file holds at all, across more partitions and sparse blocks
// than a small file fills.
func TestKeyIndexMatchesAMap(t *testing.T) {
	for _, limit := range []int{memPerPartition, 4 << 10} {
		t.Run(fmt.Sprintf("in memory up to %d bytes a partition", limit), func(t *testing.T) {
			defer func(old int) { memPerPartition = old }(memPerPartition)
			memPerPartition = limit
			testKeyIndexMatchesAMap(t, limit == 4<<10)
		})
	}
}

func testKeyIndexMatchesAMap(t *testing.T, onDisk bool) {
	rnd := rand.New(rand.NewSource(5))
	type seen struct {
		first int64
		count int32
	}
	want := map[string]seen{}
	dir := t.TempDir()
	sp, err := newKeySpill(dir)
	if err != nil {
		t.Fatal(err)
	}
	var row int64
	for b := 0; b < 40; b++ {
		var batch spillBatch
		for i := 0; i < 2500; i++ {
			row++
			v := fmt.Sprintf("v%d", rnd.Intn(80000)) // about a third held twice or more
			batch.add(hashKey("id", v), row)
			s, ok := want[v]
			if !ok {
				s.first = row
			}
			s.count++
			want[v] = s
		}
		// Batches arrive out of order: the first row is the smallest, not the first seen.
		if err := sp.write(&batch); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := os.ReadDir(sp.dir)
	if onDisk != (len(files) > 0) {
		t.Fatalf("%d partition files while scanning, want them on disk: %v", len(files), onDisk)
	}
	idx, err := sp.index(true)
	if err != nil {
		t.Fatal(err)
	}
	dups := 0
	for v, w := range want {
		got := idx.get("id", v, w.first)
		if got.count != w.count || got.first != w.first {
			t.Fatalf("%s: got %+v, want %+v", v, got, w)
		}
		if w.count > 1 {
			dups++
		}
		if ok, err := idx.contains("id", v); err != nil || !ok {
			t.Fatalf("%s: contains = %v, %v", v, ok, err)
		}
	}
	if len(idx.dups) != dups || dups == 0 {
		t.Fatalf("kept %d values, %d are held twice or more", len(idx.dups), dups)
	}
	for i := 0; i < 20000; i++ {
		v := fmt.Sprintf("absent%d", i)
		if ok, err := idx.contains("id", v); err != nil || ok {
			t.Fatalf("%s: contains = %v, %v", v, ok, err)
		}
		if got := idx.get("id", v, 7); got.count != 1 || got.first != 7 {
			t.Fatalf("%s: a value only the asking row holds: %+v", v, got)
		}
	}
	idx.close()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("left on disk: %v", left)
	}
}
