package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/blob/blobtest"
	"github.com/inlet-dev/inlet/internal/blob/local"
)

func TestContract(t *testing.T) {
	blobtest.RunContract(t, func(t *testing.T) blob.Store {
		s, err := local.New(filepath.Join(t.TempDir(), "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestTempFilesAreInvisible(t *testing.T) {
	// A crash between create and rename leaves a temp file; it must not
	// show up as an object.
	dir := t.TempDir()
	s, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Put(ctx, "a/b", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a", ".inlet-tmp-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Key != "a/b" {
		t.Fatalf("List = %+v, want only a/b", list)
	}
	if err := s.Put(ctx, "a/.inlet-tmp-123", strings.NewReader("x"), 1); err == nil {
		t.Fatal("Put of a key using the reserved temp prefix succeeded")
	}
}

func TestLongerReaderThanSize(t *testing.T) {
	s, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Put(ctx, "k", strings.NewReader("0123456789"), 5); err == nil {
		t.Fatal("Put with a reader longer than size succeeded")
	}
	if _, err := s.Stat(ctx, "k"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat after failed Put = %v, want ErrNotFound", err)
	}
}

func TestDeletePrunesEmptyDirs(t *testing.T) {
	dir := t.TempDir()
	s, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, k := range []string{"imports/i1/batches/0001", "imports/i2/x"} {
		if err := s.Put(ctx, k, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "imports/i1/batches/0001"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "imports", "i1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("imports/i1 still exists after its last object was deleted (err %v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "imports", "i2", "x")); err != nil {
		t.Fatalf("sibling object gone: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("root removed: %v", err)
	}
}

func TestKeyUnderAnObject(t *testing.T) {
	// S3 allows "a" and "a/b" together; a directory cannot. The error must
	// say which key failed rather than something opaque.
	s, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Put(ctx, "a", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	err = s.Put(ctx, "a/b", strings.NewReader("x"), 1)
	if err == nil || !strings.Contains(err.Error(), `"a/b"`) {
		t.Fatalf("Put(a/b) under object a = %v, want an error naming the key", err)
	}
}

func TestPingUnwritable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write to a read-only directory")
	}
	dir := t.TempDir()
	s, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("Ping on a read-only root succeeded")
	}
}

func TestPingRemovedRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	s, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Ping with the root removed = %v, want an error naming %s", err, dir)
	}
}
