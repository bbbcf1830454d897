// Package blobtest is the behaviour every blob.Store adapter must have, as a
// test suite adapters (and wrappers around them) run from their own tests.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/blob"
)

// RunContract runs the blob.Store contract. newStore must return an EMPTY
// store each call (a fresh directory, a fresh bucket): the listing tests
// compare whole results. Each subtest calls it once.
func RunContract(t *testing.T, newStore func(t *testing.T) blob.Store) {
	t.Run("PutGetRoundTrip", func(t *testing.T) {
		s := newStore(t)
		ctx := context.Background()
		data := []byte("row,1\nrow,2\n")
		mustPut(t, s, "imports/imp_1/source.csv", data)
		if got := mustGet(t, s, "imports/imp_1/source.csv"); !bytes.Equal(got, data) {
			t.Fatalf("Get = %q, want %q", got, data)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping on a working store: %v", err)
		}
	})

	t.Run("CreateIfAbsent", func(t *testing.T) {
		s := newStore(t)
		c, ok := s.(blob.Creator)
		if !ok {
			t.Skip("the store cannot create if absent")
		}
		ctx := context.Background()
		if err := c.Create(ctx, "claims/k1", bytes.NewReader([]byte("first")), 5); err != nil {
			t.Fatalf("first Create: %v", err)
		}
		err := c.Create(ctx, "claims/k1", bytes.NewReader([]byte("second")), 6)
		if !errors.Is(err, blob.ErrExists) {
			t.Fatalf("second Create: %v, want ErrExists", err)
		}
		if got := mustGet(t, s, "claims/k1"); string(got) != "first" {
			t.Fatalf("after a refused Create the object is %q", got)
		}
		// Racing claims: exactly one wins.
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				body := []byte(fmt.Sprintf("writer %d", i))
				err := c.Create(ctx, "claims/race", bytes.NewReader(body), int64(len(body)))
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, blob.ErrExists) {
					t.Errorf("racing Create: %v", err)
				}
			}(i)
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d racing creators won, want exactly 1", wins)
		}
	})

	t.Run("Claim", func(t *testing.T) {
		// blob.Claim on this store: of racing claimants exactly one wins,
		// and every loser reads the winner's value.
		s := newStore(t)
		ctx := context.Background()
		type record struct {
			Writer int `json:"writer"`
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []int
		held := map[int]int{}
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				var got record
				won, err := blob.Claim(ctx, s, "claims/json", record{Writer: i}, &got)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Errorf("claim %d: %v", i, err)
				case won:
					winners = append(winners, i)
				default:
					held[i] = got.Writer
				}
			}(i)
		}
		wg.Wait()
		if _, ok := s.(blob.Creator); !ok {
			return // a store that cannot create if absent settles no race
		}
		if len(winners) != 1 {
			t.Fatalf("winners %v, want exactly one", winners)
		}
		for loser, w := range held {
			if w != winners[0] {
				t.Errorf("claimant %d read writer %d, the winner was %d", loser, w, winners[0])
			}
		}
		var stored record
		if found, err := blob.GetJSON(ctx, s, "claims/json", &stored); err != nil || !found || stored.Writer != winners[0] {
			t.Errorf("stored %+v (%v, %v), want the winner %d", stored, found, err, winners[0])
		}
	})

	t.Run("EmptyObject", func(t *testing.T) {
		s := newStore(t)
		mustPut(t, s, "empty", nil)
		if got := mustGet(t, s, "empty"); len(got) != 0 {
			t.Fatalf("Get = %q, want empty", got)
		}
		if info := mustStat(t, s, "empty"); info.Size != 0 {
			t.Fatalf("Stat size = %d, want 0", info.Size)
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		s := newStore(t)
		mustPut(t, s, "k/v", []byte("first version, longer"))
		mustPut(t, s, "k/v", []byte("second"))
		if got := mustGet(t, s, "k/v"); string(got) != "second" {
			t.Fatalf("Get after overwrite = %q, want %q", got, "second")
		}
		if info := mustStat(t, s, "k/v"); info.Size != int64(len("second")) {
			t.Fatalf("Stat size after overwrite = %d, want %d", info.Size, len("second"))
		}
		if list := mustList(t, s, "k/"); len(list) != 1 {
			t.Fatalf("List after overwrite = %v, want one object", keys(list))
		}
	})

	t.Run("Stat", func(t *testing.T) {
		s := newStore(t)
		before := time.Now()
		mustPut(t, s, "a/b/c.json", []byte(`{"n":12345}`))
		info := mustStat(t, s, "a/b/c.json")
		if info.Key != "a/b/c.json" || info.Size != 11 {
			t.Fatalf("Stat = %+v, want key a/b/c.json size 11", info)
		}
		// Server clocks (and S3's 1s resolution) differ slightly from ours.
		if info.ModTime.Before(before.Add(-time.Minute)) || info.ModTime.After(time.Now().Add(time.Minute)) {
			t.Fatalf("Stat ModTime = %v, want about %v", info.ModTime, before)
		}
	})

	t.Run("MissingKey", func(t *testing.T) {
		s := newStore(t)
		ctx := context.Background()
		mustPut(t, s, "present/x", []byte("x"))
		for _, key := range []string{"absent", "present/absent", "present/x/under-an-object", "present"} {
			rc, err := s.Get(ctx, key)
			if err == nil {
				rc.Close()
				t.Fatalf("Get(%q) of a missing key succeeded", key)
			}
			if !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("Get(%q) = %v, want errors.Is ErrNotFound", key, err)
			}
			if !strings.Contains(err.Error(), key) {
				t.Fatalf("Get(%q) error %q does not name the key", key, err)
			}
			_, err = s.Stat(ctx, key)
			if !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("Stat(%q) = %v, want errors.Is ErrNotFound", key, err)
			}
			if !strings.Contains(err.Error(), key) {
				t.Fatalf("Stat(%q) error %q does not name the key", key, err)
			}
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		ctx := context.Background()
		if err := s.Delete(ctx, "never/existed"); err != nil {
			t.Fatalf("Delete of a missing key = %v, want nil", err)
		}
		mustPut(t, s, "d/1", []byte("1"))
		mustPut(t, s, "d/2", []byte("2"))
		if err := s.Delete(ctx, "d/1"); err != nil {
			t.Fatalf("Delete(d/1) = %v", err)
		}
		if _, err := s.Stat(ctx, "d/1"); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Stat after Delete = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, "d/1"); err != nil {
			t.Fatalf("second Delete = %v, want nil", err)
		}
		if got := keys(mustList(t, s, "d/")); !slices.Equal(got, []string{"d/2"}) {
			t.Fatalf("List after Delete = %v, want [d/2]", got)
		}
		// Deleting the last object under a prefix and writing there again
		// must work (the local store prunes empty directories).
		if err := s.Delete(ctx, "d/2"); err != nil {
			t.Fatalf("Delete(d/2) = %v", err)
		}
		if got := mustList(t, s, "d/"); len(got) != 0 {
			t.Fatalf("List after deleting all = %v, want none", keys(got))
		}
		mustPut(t, s, "d/3", []byte("3"))
		if got := mustGet(t, s, "d/3"); string(got) != "3" {
			t.Fatalf("Get(d/3) = %q", got)
		}
	})

	t.Run("Copy", func(t *testing.T) {
		s := newStore(t)
		ctx := context.Background()
		mustPut(t, s, "c/src", []byte("original"))
		mustPut(t, s, "c/dst", []byte("to be replaced"))
		for _, dst := range []string{"c/dst", "other/dir/dst"} {
			if err := blob.Copy(ctx, s, "c/src", dst); err != nil {
				t.Fatalf("Copy to %s = %v", dst, err)
			}
			if got := mustGet(t, s, dst); string(got) != "original" {
				t.Fatalf("Get(%s) after Copy = %q", dst, got)
			}
		}
		// The copies are objects of their own.
		mustPut(t, s, "c/src", []byte("changed"))
		if err := s.Delete(ctx, "other/dir/dst"); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, s, "c/dst"); string(got) != "original" {
			t.Fatalf("copy changed with its source: %q", got)
		}
		if got := mustGet(t, s, "c/src"); string(got) != "changed" {
			t.Fatalf("source after deleting a copy: %q", got)
		}
		if err := blob.Copy(ctx, s, "c/missing", "c/x"); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Copy of a missing key = %v, want ErrNotFound", err)
		}
		if got := keys(mustList(t, s, "c/")); !slices.Equal(got, []string{"c/dst", "c/src"}) {
			t.Fatalf("List after copies = %v", got)
		}
	})

	t.Run("PutFile", func(t *testing.T) {
		s := newStore(t)
		ctx := context.Background()
		mustPut(t, s, "f/dst", []byte("to be replaced"))
		for _, key := range []string{"f/dst", "f/new/deep"} {
			f, err := os.CreateTemp(t.TempDir(), "batch-*")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString("rows of " + key); err != nil {
				t.Fatal(err)
			}
			// The offset is at the end, as a writer leaves it.
			if err := blob.PutFile(ctx, s, key, f); err != nil {
				t.Fatalf("PutFile(%s) = %v", key, err)
			}
			f.Close()
			if got := mustGet(t, s, key); string(got) != "rows of "+key {
				t.Fatalf("Get(%s) after PutFile = %q", key, got)
			}
		}
		if got := keys(mustList(t, s, "f/")); !slices.Equal(got, []string{"f/dst", "f/new/deep"}) {
			t.Fatalf("List after PutFile = %v", got)
		}
	})

	t.Run("ListPrefix", func(t *testing.T) {
		s := newStore(t)
		all := []string{
			"imports/1/b/c", "imports/1/a", "imports/10/x", "imports/1-x",
			"imports/2/a", "other/z", "imports0",
		}
		for i, k := range all {
			mustPut(t, s, k, bytes.Repeat([]byte("x"), i+1))
		}
		cases := []struct {
			prefix string
			want   []string
		}{
			{"imports/1/", []string{"imports/1/a", "imports/1/b/c"}},
			// A prefix is a string prefix, not a directory: "imports/1"
			// matches imports/10/… and imports/1-x too. "imports/1-x" sorts
			// before "imports/1/a" ('-' < '/').
			{"imports/1", []string{"imports/1-x", "imports/1/a", "imports/1/b/c", "imports/10/x"}},
			{"imports/1/b", []string{"imports/1/b/c"}},
			{"imports/1/b/c", []string{"imports/1/b/c"}},
			{"imports", []string{"imports/1-x", "imports/1/a", "imports/1/b/c", "imports/10/x", "imports/2/a", "imports0"}},
			{"other/", []string{"other/z"}},
			{"nothing/", nil},
			{"imports/3", nil},
			{"imports/1/a/", nil},
		}
		for _, c := range cases {
			list := mustList(t, s, c.prefix)
			if got := keys(list); !slices.Equal(got, c.want) {
				t.Errorf("List(%q) = %v, want %v", c.prefix, got, c.want)
			}
		}
		// Sizes come with the listing (callers avoid a Stat per batch).
		for _, info := range mustList(t, s, "") {
			want := int64(slices.Index(all, info.Key) + 1)
			if info.Size != want {
				t.Errorf("List size of %q = %d, want %d", info.Key, info.Size, want)
			}
			if info.ModTime.IsZero() {
				t.Errorf("List ModTime of %q is zero", info.Key)
			}
		}
		sorted := slices.Clone(all)
		slices.Sort(sorted)
		if got := keys(mustList(t, s, "")); !slices.Equal(got, sorted) {
			t.Errorf("List(\"\") = %v, want %v", got, sorted)
		}
	})

	t.Run("Children", func(t *testing.T) {
		s := newStore(t)
		for _, k := range []string{"imports/1/b/c", "imports/1/a", "imports/10/x", "imports/1-x", "imports/2/a", "other/z"} {
			mustPut(t, s, k, []byte("x"))
		}
		for _, c := range []struct {
			prefix string
			want   []string
		}{
			{"imports/", []string{"1", "1-x", "10", "2"}},
			{"imports/1/", []string{"a", "b"}},
			{"imports/1/b/", []string{"c"}},
			{"nothing/", nil},
		} {
			for _, via := range []struct {
				name  string
				store blob.Store
			}{{"adapter", s}, {"full listing", struct{ blob.Store }{s}}} {
				got, err := blob.Children(context.Background(), via.store, c.prefix)
				if err != nil {
					t.Fatalf("Children(%q) via %s: %v", c.prefix, via.name, err)
				}
				if len(got) != len(c.want) || len(got) > 0 && !slices.Equal(got, c.want) {
					t.Errorf("Children(%q) via %s = %v, want %v", c.prefix, via.name, got, c.want)
				}
			}
		}
	})

	t.Run("ListEmptyStore", func(t *testing.T) {
		s := newStore(t)
		for _, p := range []string{"", "imports/", "x"} {
			list, err := s.List(context.Background(), p)
			if err != nil {
				t.Fatalf("List(%q) on an empty store = %v", p, err)
			}
			if len(list) != 0 {
				t.Fatalf("List(%q) on an empty store = %v", p, keys(list))
			}
		}
	})

	t.Run("UnusualKeys", func(t *testing.T) {
		s := newStore(t)
		ks := []string{"with space/ü ñ+%20&=?.csv", "a.b/-_~!$'()*,;@", "日本/データ"}
		for _, k := range ks {
			mustPut(t, s, k, []byte(k))
		}
		for _, k := range ks {
			if got := mustGet(t, s, k); string(got) != k {
				t.Errorf("Get(%q) = %q", k, got)
			}
		}
		want := slices.Clone(ks)
		slices.Sort(want)
		if got := keys(mustList(t, s, "")); !slices.Equal(got, want) {
			t.Errorf("List = %q, want %q", got, want)
		}
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		s := newStore(t)
		ctx := context.Background()
		for _, k := range []string{"", "/abs", "..", "a/../b", "a/./b", "a//b", "a/", `a\b`, "a\x00b", strings.Repeat("k", 1025)} {
			err := s.Put(ctx, k, strings.NewReader("x"), 1)
			if err == nil {
				t.Errorf("Put(%q) succeeded, want an invalid-key error", k)
				continue
			}
			if errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Put(%q) = %v: an invalid key is not ErrNotFound", k, err)
			}
			if len(k) < 100 && !strings.Contains(err.Error(), fmt.Sprintf("%q", k)) {
				t.Errorf("Put(%q) error %q does not quote the key", k, err)
			}
			if _, err := s.Get(ctx, k); err == nil || errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Get(%q) = %v, want an invalid-key error", k, err)
			}
			if _, err := s.Stat(ctx, k); err == nil || errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Stat(%q) = %v, want an invalid-key error", k, err)
			}
			if err := s.Delete(ctx, k); err == nil {
				t.Errorf("Delete(%q) succeeded, want an invalid-key error", k)
			}
		}
		for _, p := range []string{"/abs", "../", "a/../", `a\`} {
			if _, err := s.List(ctx, p); err == nil {
				t.Errorf("List(%q) succeeded, want an invalid-prefix error", p)
			}
		}
		if list := mustList(t, s, ""); len(list) != 0 {
			t.Errorf("invalid Puts left objects: %v", keys(list))
		}
	})

	t.Run("UnknownSize", func(t *testing.T) {
		s := newStore(t)
		// Small, and larger than any in-memory spool threshold.
		for _, n := range []int64{0, 1000, 3<<20 + 7} {
			key := fmt.Sprintf("unknown/%d", n)
			sum := putStream(t, s, key, n, -1)
			info := mustStat(t, s, key)
			if info.Size != n {
				t.Fatalf("Stat(%q) size = %d, want %d", key, info.Size, n)
			}
			if got := getSum(t, s, key); got != sum {
				t.Fatalf("Get(%q) sha256 differs from what was put", key)
			}
		}
	})

	t.Run("LargeStreamed", func(t *testing.T) {
		if testing.Short() {
			t.Skip("20 MiB objects; skipped in -short")
		}
		s := newStore(t)
		const n = 20<<20 + 123 // above minio-go's 16 MiB part size
		for _, size := range []int64{n, -1} {
			key := fmt.Sprintf("large/%d", size)
			sum := putStream(t, s, key, n, size)
			if info := mustStat(t, s, key); info.Size != n {
				t.Fatalf("Stat(%q) size = %d, want %d", key, info.Size, n)
			}
			if got := getSum(t, s, key); got != sum {
				t.Fatalf("Get(%q): sha256 differs from what was put (size arg %d)", key, size)
			}
		}
	})

	t.Run("ReaderAtOffset", func(t *testing.T) {
		// A partly consumed bytes.Reader (an io.ReaderAt) must upload from
		// its current position, not from the start; S3 clients read large
		// ReaderAt bodies by absolute offset, hence the size above 16 MiB.
		s := newStore(t)
		sizes := []int{4, 17<<20 + 5}
		if testing.Short() {
			sizes = sizes[:1]
		}
		for _, n := range sizes {
			body := make([]byte, n)
			(&prng{state: uint64(n)}).Read(body)
			r := bytes.NewReader(append([]byte("skip"), body...))
			r.Seek(4, io.SeekStart)
			key := fmt.Sprintf("offset/%d", n)
			if err := s.Put(context.Background(), key, r, int64(n)); err != nil {
				t.Fatalf("Put(%q) = %v", key, err)
			}
			if got := mustGet(t, s, key); !bytes.Equal(got, body) {
				t.Fatalf("Get(%q) returned %d bytes that differ from the %d bytes after the reader's offset", key, len(got), n)
			}
		}
	})

	t.Run("ShortReader", func(t *testing.T) {
		// A reader that ends before the declared size is an incomplete
		// upload: it must fail and leave nothing (writes are atomic).
		s := newStore(t)
		ctx := context.Background()
		err := s.Put(ctx, "short", onlyReader{strings.NewReader("12345")}, 10)
		if err == nil {
			t.Fatal("Put with a reader shorter than size succeeded")
		}
		if _, err := s.Stat(ctx, "short"); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Stat after a failed Put = %v, want ErrNotFound", err)
		}
		mustPut(t, s, "short", []byte("old"))
		if err := s.Put(ctx, "short", onlyReader{strings.NewReader("12345")}, 10); err == nil {
			t.Fatal("Put with a reader shorter than size succeeded")
		}
		if got := mustGet(t, s, "short"); string(got) != "old" {
			t.Fatalf("a failed overwrite changed the object to %q", got)
		}
	})

	t.Run("ConcurrentPuts", func(t *testing.T) {
		s := newStore(t)
		ctx := context.Background()
		const n = 24
		var wg sync.WaitGroup
		errs := make(chan error, n)
		want := make([]string, 0, n)
		for i := range n {
			// Several writers share directories, as batch writers of one
			// import do.
			key := fmt.Sprintf("conc/%d/batch-%03d", i%3, i)
			want = append(want, key)
			wg.Go(func() {
				errs <- s.Put(ctx, key, strings.NewReader(key), int64(len(key)))
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent Put: %v", err)
			}
		}
		slices.Sort(want)
		if got := keys(mustList(t, s, "conc/")); !slices.Equal(got, want) {
			t.Fatalf("List after concurrent Puts = %v, want %v", got, want)
		}
		for _, k := range want {
			if got := mustGet(t, s, k); string(got) != k {
				t.Fatalf("Get(%q) = %q", k, got)
			}
		}
	})

	t.Run("ConcurrentOverwrite", func(t *testing.T) {
		// Readers racing writers of one key see one whole version, never a
		// mix or a partial object.
		s := newStore(t)
		ctx := context.Background()
		versions := [][]byte{bytes.Repeat([]byte("A"), 256<<10), bytes.Repeat([]byte("B"), 300<<10)}
		mustPut(t, s, "hot", versions[0])
		var wg sync.WaitGroup
		stop := make(chan struct{})
		errs := make(chan error, 16)
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := versions[i%2]
				if err := s.Put(ctx, "hot", bytes.NewReader(v), int64(len(v))); err != nil {
					errs <- err
					return
				}
			}
		})
		for range 20 {
			got := mustGet(t, s, "hot")
			if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
				close(stop)
				wg.Wait()
				t.Fatalf("read a torn object of %d bytes", len(got))
			}
		}
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Put: %v", err)
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		s := newStore(t)
		mustPut(t, s, "c/existing", []byte("x"))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Put(ctx, "c/new", strings.NewReader("x"), 1); err == nil {
			t.Error("Put with a canceled context succeeded")
		}
		if rc, err := s.Get(ctx, "c/existing"); err == nil {
			rc.Close()
			t.Error("Get with a canceled context succeeded")
		}
		if _, err := s.List(ctx, "c/"); err == nil {
			t.Error("List with a canceled context succeeded")
		}
		if _, err := s.Stat(context.Background(), "c/new"); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("a canceled Put left an object: Stat = %v", err)
		}
	})

	t.Run("CancelMidUpload", func(t *testing.T) {
		// Canceling while the body streams aborts the upload, and nothing
		// becomes visible, for both known and unknown size.
		s := newStore(t)
		for _, size := range []int64{8 << 20, -1} {
			ctx, cancel := context.WithCancel(context.Background())
			key := fmt.Sprintf("cancel/%d", size)
			r := &cancelingReader{n: 8 << 20, cancelAt: 1 << 20, cancel: cancel}
			err := s.Put(ctx, key, r, size)
			cancel()
			if err == nil {
				t.Fatalf("Put(size %d) succeeded although its context was canceled mid-stream", size)
			}
			if _, err := s.Stat(context.Background(), key); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("a canceled Put(size %d) left an object: Stat = %v", size, err)
			}
		}
	})
}

func mustPut(t *testing.T, s blob.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b
}

func mustStat(t *testing.T, s blob.Store, key string) blob.Info {
	t.Helper()
	info, err := s.Stat(context.Background(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	return info
}

func mustList(t *testing.T, s blob.Store, prefix string) []blob.Info {
	t.Helper()
	list, err := s.List(context.Background(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return list
}

func keys(list []blob.Info) []string {
	var out []string
	for _, i := range list {
		out = append(out, i.Key)
	}
	return out
}

// putStream uploads n pseudo-random bytes generated on the fly (so a large
// object never sits in the test's memory) and returns their sha256.
func putStream(t *testing.T, s blob.Store, key string, n, sizeArg int64) [32]byte {
	t.Helper()
	h := sha256.New()
	r := io.TeeReader(io.LimitReader(&prng{state: uint64(n) + 1}, n), h)
	if err := s.Put(context.Background(), key, onlyReader{r}, sizeArg); err != nil {
		t.Fatalf("Put(%q, %d bytes, size %d): %v", key, n, sizeArg, err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

func getSum(t *testing.T, s blob.Store, key string) [32]byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// onlyReader hides io.ReaderAt/io.Seeker/WriterTo so adapters take their
// plain-stream path, as with an HTTP request body.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// prng is a fast deterministic byte stream (xorshift64*), so large objects
// are not trivially compressible and differ per size.
type prng struct{ state uint64 }

func (p *prng) Read(b []byte) (int, error) {
	for i := 0; i < len(b); i += 8 {
		p.state ^= p.state >> 12
		p.state ^= p.state << 25
		p.state ^= p.state >> 27
		v := p.state * 2685821657736338717
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return len(b), nil
}

// cancelingReader yields n bytes and cancels the upload's context after
// cancelAt of them, then keeps yielding: the store, not the reader, must
// notice the cancellation.
type cancelingReader struct {
	n, read, cancelAt int64
	cancel            context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	if c.read >= c.n {
		return 0, io.EOF
	}
	if c.read >= c.cancelAt {
		c.cancel()
		// Give an HTTP transport's context watcher a moment to abort the
		// request before the rest of the body is consumed.
		time.Sleep(time.Millisecond)
	}
	if int64(len(p)) > c.n-c.read {
		p = p[:c.n-c.read]
	}
	for i := range p {
		p[i] = 'c'
	}
	c.read += int64(len(p))
	return len(p), nil
}
