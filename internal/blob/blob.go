// Package blob is the object store where import files, batches, rejected rows
// and batch stats live. Adapters: a local directory (embedded default) and any
// S3 API through minio-go.
package blob

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// ErrNotFound is returned (wrapped) when a key does not exist.
var ErrNotFound = errors.New("blob: not found")

// ErrExists is returned (wrapped) by Create when the key already exists.
var ErrExists = errors.New("blob: already exists")

// Creator is implemented by stores that can write a key only if it does not
// exist yet, atomically (claims: two writers, one wins).
type Creator interface {
	// Create stores r under key unless key exists; then it returns ErrExists
	// and leaves the object as it was.
	Create(ctx context.Context, key string, r io.Reader, size int64) error
}

// Copier stores a copy of an object under another key without its bytes
// passing through the caller: a hard link, a server-side copy.
// Directory lists one level of the key space: what a projector rebuild
// walks to find every import without listing every object of each.
type Directory interface {
	// Children returns the distinct names directly below prefix (which
	// ends with "/"): the next key segment of every key under it, without
	// its trailing "/", sorted.
	Children(ctx context.Context, prefix string) ([]string, error)
}

// Children lists the names below prefix, with the store's Directory when it
// has one, else from a full listing.
func Children(ctx context.Context, s Store, prefix string) ([]string, error) {
	if d, ok := s.(Directory); ok {
		return d.Children(ctx, prefix)
	}
	list, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, info := range list {
		name := strings.TrimPrefix(info.Key, prefix)
		if i := strings.IndexByte(name, '/'); i >= 0 {
			name = name[:i]
		}
		out = append(out, name)
	}
	slices.Sort(out) // "1-x/…" lists before "1/…", yet "1" sorts first
	return slices.Compact(out), nil
}

type Copier interface {
	Copy(ctx context.Context, src, dst string) error
}

// Adopter stores a file the caller wrote as an object by moving it into the
// store (a rename): no byte is copied. Profiled, writing every batch twice
// (a temp file, then its copy into the local store) was a twentieth of an
// import's CPU. It fails with ErrNotAdopted when the file cannot be moved
// there (another file system); the file is then as it was.
type Adopter interface {
	Adopt(ctx context.Context, key string, f *os.File) error
}

// ErrNotAdopted is returned (wrapped) by Adopt when the file cannot be moved into the store.
var ErrNotAdopted = errors.New("blob: file not adopted")

// PutFile stores the file f (written, its offset anywhere) under key: moved
// in by the store's Adopter when it is one and can, else read from its
// start and Put. After it the caller may only close f.
func PutFile(ctx context.Context, s Store, key string, f *os.File) error {
	if a, ok := s.(Adopter); ok {
		err := a.Adopt(ctx, key, f)
		if !errors.Is(err, ErrNotAdopted) {
			return err
		}
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return s.Put(ctx, key, f, size)
}

// Copy stores a copy of src under dst (atomically, like Put): through the
// store's Copier when it is one, else read and written back.
func Copy(ctx context.Context, s Store, src, dst string) error {
	if c, ok := s.(Copier); ok {
		return c.Copy(ctx, src, dst)
	}
	info, err := s.Stat(ctx, src)
	if err != nil {
		return err
	}
	rc, err := s.Get(ctx, src)
	if err != nil {
		return err
	}
	defer rc.Close()
	return s.Put(ctx, dst, rc, info.Size)
}

// Info describes one stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store is the blob store every phase uses. Keys are slash-separated paths.
// Writes are atomic: a reader sees the whole object or ErrNotFound, never a part.
type Store interface {
	// Put stores r under key; size is the exact length, or -1 when unknown.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the object; the caller closes it.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	Stat(ctx context.Context, key string) (Info, error)
	// List returns every object whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Ping reports whether the store is reachable (readiness).
	Ping(ctx context.Context) error
}

// Claim stores v as JSON at key unless an object is there already: of
// writers racing for one key exactly one wins (won), and the others get the
// winner's object decoded into held. A store without Creator can only look
// before it writes, which settles no race.
func Claim(ctx context.Context, s Store, key string, v, held any) (won bool, err error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("claim %s: %w", key, err)
	}
	c, ok := s.(Creator)
	if !ok {
		if found, err := GetJSON(ctx, s, key, held); err != nil || found {
			return false, err
		}
		return true, s.Put(ctx, key, bytes.NewReader(b), int64(len(b)))
	}
	err = c.Create(ctx, key, bytes.NewReader(b), int64(len(b)))
	if err == nil || !errors.Is(err, ErrExists) {
		return err == nil, err
	}
	found, err := GetJSON(ctx, s, key, held)
	if err == nil && !found {
		err = fmt.Errorf("claim %s: the claim vanished after it was made (%w)", key, ErrNotFound)
	}
	return false, err
}

// GetJSON decodes the JSON object at key into v; found is false (and err
// nil) when there is no such object.
func GetJSON(ctx context.Context, s Store, key string, v any) (found bool, err error) {
	rc, err := s.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer rc.Close()
	if err := json.NewDecoder(rc).Decode(v); err != nil {
		return true, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}
