package s3_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/blob/blobtest"
	"github.com/inlet-dev/inlet/internal/blob/s3"
	"github.com/inlet-dev/inlet/internal/testenv"
)

var bucketSeq atomic.Int64

// newBucketName gives every store its own bucket, so that the contract's
// listing checks see only their own objects.
func newBucketName() string {
	return fmt.Sprintf("inlet-test-%d-%d", time.Now().UnixNano()%1e9, bucketSeq.Add(1))
}

func newStore(t *testing.T, m testenv.MinIO, bucket string) *s3.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := s3.New(ctx, s3.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: bucket})
	if err != nil {
		t.Fatalf("s3.New(bucket %q): %v", bucket, err)
	}
	return s
}

func TestS3(t *testing.T) {
	// One server for all subtests: starting MinIO costs seconds.
	m := testenv.StartMinIO(t)

	t.Run("Contract", func(t *testing.T) {
		blobtest.RunContract(t, func(t *testing.T) blob.Store {
			return newStore(t, m, newBucketName())
		})
	})

	t.Run("ConcurrentBucketCreation", func(t *testing.T) {
		// Replicas starting together all try to create the bucket.
		bucket := newBucketName()
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				_, err := s3.New(context.Background(), s3.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: bucket})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent New: %v", err)
			}
		}
	})

	t.Run("ExistingBucketKeepsObjects", func(t *testing.T) {
		bucket := newBucketName()
		s := newStore(t, m, bucket)
		if err := s.Put(context.Background(), "keep", strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		s2 := newStore(t, m, bucket)
		if _, err := s2.Stat(context.Background(), "keep"); err != nil {
			t.Fatalf("object gone after reopening the bucket: %v", err)
		}
	})

	t.Run("EndpointURL", func(t *testing.T) {
		s := newStore(t, m, newBucketName())
		_ = s
		s2, err := s3.New(context.Background(), s3.Config{Endpoint: "http://" + m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: s.Bucket()})
		if err != nil {
			t.Fatalf("New with an http:// endpoint: %v", err)
		}
		if err := s2.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("PresignPut", func(t *testing.T) {
		s := newStore(t, m, newBucketName())
		ctx := context.Background()
		u, err := s.PresignPut(ctx, "uploads/imp_1/file.csv", 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		body := "email,name\na@example.com,A\n"
		req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT to presigned URL: %s: %s", resp.Status, msg)
		}
		rc, err := s.Get(ctx, "uploads/imp_1/file.csv")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if string(got) != body {
			t.Fatalf("uploaded object = %q, want %q", got, body)
		}

		// The URL is for that key only: the signature covers the path.
		bad := strings.Replace(u, "file.csv", "other.csv", 1)
		req, _ = http.NewRequest(http.MethodPut, bad, strings.NewReader("x"))
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("PUT to a tampered presigned URL: %s, want 403", resp.Status)
		}

		if _, err := s.PresignPut(ctx, "../escape", time.Minute); err == nil {
			t.Fatal("PresignPut accepted an invalid key")
		}
		if _, err := s.PresignPut(ctx, "k", 8*24*time.Hour); err == nil {
			t.Fatal("PresignPut accepted an expiry over 7 days")
		}
	})

	t.Run("PresignGet", func(t *testing.T) {
		s := newStore(t, m, newBucketName())
		ctx := context.Background()
		if err := s.Put(ctx, "errors.csv", strings.NewReader("a,b"), 3); err != nil {
			t.Fatal(err)
		}
		u, err := s.PresignGet(ctx, "errors.csv", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(got) != "a,b" {
			t.Fatalf("GET presigned: %s %q", resp.Status, got)
		}
	})

	t.Run("PublicEndpoint", func(t *testing.T) {
		// Presigned URLs carry the public host while the store itself
		// talks to the internal one. localhost and 127.0.0.1 are the same
		// server here, so the URL must also work.
		_, port, _ := net.SplitHostPort(m.Endpoint)
		s, err := s3.New(context.Background(), s3.Config{
			Endpoint: m.Endpoint, PublicEndpoint: "localhost:" + port,
			AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: newBucketName(),
		})
		if err != nil {
			t.Fatal(err)
		}
		u, err := s.PresignPut(context.Background(), "p", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u, "http://localhost:"+port+"/") {
			t.Fatalf("presigned URL %q does not use the public endpoint", u)
		}
		req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT via public endpoint: %s", resp.Status)
		}
		if _, err := s.Stat(context.Background(), "p"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("PingMissingBucket", func(t *testing.T) {
		s := newStore(t, m, newBucketName())
		if err := s.Client().RemoveBucket(context.Background(), s.Bucket()); err != nil {
			t.Fatal(err)
		}
		err := s.Ping(context.Background())
		if err == nil || !strings.Contains(err.Error(), s.Bucket()) {
			t.Fatalf("Ping after the bucket was removed = %v, want an error naming the bucket", err)
		}
		// A missing bucket is a system fault, not a missing object.
		if _, err := s.Stat(context.Background(), "k"); err == nil || errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Stat in a removed bucket = %v, want a non-ErrNotFound error", err)
		}
	})

	t.Run("NotFoundKeepsS3Error", func(t *testing.T) {
		s := newStore(t, m, newBucketName())
		_, err := s.Get(context.Background(), "nope")
		if !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Get = %v", err)
		}
		var er minio.ErrorResponse
		if !errors.As(err, &er) || er.Code != minio.NoSuchKey {
			t.Fatalf("Get error %v does not wrap the S3 NoSuchKey response", err)
		}
		if !strings.Contains(err.Error(), s.Bucket()) {
			t.Fatalf("Get error %q does not name the bucket", err)
		}
	})

	t.Run("WrongCredentials", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := s3.New(ctx, s3.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: "wrong-secret-key", Bucket: newBucketName()})
		if err == nil {
			t.Fatal("New with a wrong secret key succeeded")
		}
	})
}

func TestNewValidation(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		cfg  s3.Config
		want string
	}{
		{s3.Config{Endpoint: "127.0.0.1:1"}, "no bucket"},
		{s3.Config{Endpoint: "127.0.0.1:1", Bucket: "Bad_Bucket"}, `"Bad_Bucket"`},
		{s3.Config{Bucket: "ok-bucket"}, "no endpoint"},
		{s3.Config{Endpoint: "ftp://x:1", Bucket: "ok-bucket"}, "scheme"},
		{s3.Config{Endpoint: "http://x:1/path", Bucket: "ok-bucket"}, "path"},
	} {
		_, err := s3.New(ctx, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
}

func TestNewUnreachable(t *testing.T) {
	// A dead endpoint must fail within the caller's deadline (minio-go
	// retries with backoff otherwise) and name the bucket.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err = s3.New(ctx, s3.Config{Endpoint: addr, Bucket: "some-bucket"})
	if err == nil || !strings.Contains(err.Error(), "some-bucket") {
		t.Fatalf("New against a closed port = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("New took %s despite a 2s deadline", d)
	}
}

// TestUnknownSizeSpools proves a size -1 upload goes through a temp file in
// Config.TempDir instead of minio-go's in-memory 16 MiB part buffers: while
// the body is being read, a spool file must exist there.
func TestUnknownSizeSpools(t *testing.T) {
	m := testenv.StartMinIO(t)
	tmp := t.TempDir()
	s, err := s3.New(context.Background(), s3.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: newBucketName(), TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	r := &spoolProbe{n: 3 << 20, dir: tmp}
	if err := s.Put(context.Background(), "spooled", r, -1); err != nil {
		t.Fatal(err)
	}
	if !r.sawSpool {
		t.Fatal("no spool file in TempDir while a 3 MiB unknown-size body was read")
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) != 0 {
		t.Fatalf("spool files left behind: %v", left)
	}
	if info, err := s.Stat(context.Background(), "spooled"); err != nil || info.Size != 3<<20 {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
}

type spoolProbe struct {
	n, read  int
	dir      string
	sawSpool bool
}

func (p *spoolProbe) Read(b []byte) (int, error) {
	if p.read >= p.n {
		if files, _ := filepath.Glob(filepath.Join(p.dir, "inlet-blob-spool-*")); len(files) == 1 {
			p.sawSpool = true
		}
		return 0, io.EOF
	}
	b = b[:min(len(b), p.n-p.read)]
	for i := range b {
		b[i] = byte(p.read + i)
	}
	p.read += len(b)
	return len(b), nil
}

// bodyProxy stands between the store and MinIO: it records how uploads are
// signed and, when corrupt is set, flips one byte of the next upload's body.
type bodyProxy struct {
	mu      sync.Mutex
	sha256  []string // X-Amz-Content-Sha256 of every PUT
	trailer []string // X-Amz-Trailer of every PUT
	corrupt bool
}

type flipAt struct {
	r   io.ReadCloser
	off int
	n   int
}

func (f *flipAt) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if f.off >= f.n && f.off < f.n+n {
		b[f.off-f.n] ^= 0xff
	}
	f.n += n
	return n, err
}

func (f *flipAt) Close() error { return f.r.Close() }

func startBodyProxy(t *testing.T, target string) (*bodyProxy, string) {
	t.Helper()
	p := &bodyProxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			p.mu.Lock()
			p.sha256 = append(p.sha256, r.Header.Get("X-Amz-Content-Sha256"))
			p.trailer = append(p.trailer, r.Header.Get("X-Amz-Trailer"))
			if p.corrupt {
				p.corrupt = false
				r.Body = &flipAt{r: r.Body, off: 4096}
			}
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r) // the Host header is kept: the signature covers it
	}))
	t.Cleanup(srv.Close)
	return p, strings.TrimPrefix(srv.URL, "http://")
}

// Uploads are not signed chunk by chunk with SHA-256 (a seventh of MinIO's
// CPU, and as much again in every client) but still checked: a body changed
// on its way is refused by the server's CRC32C check.
func TestUploadBodiesAreCheckedNotSigned(t *testing.T) {
	m := testenv.StartMinIO(t)
	proxy, endpoint := startBodyProxy(t, m.Endpoint)
	ctx := context.Background()
	st, err := s3.New(ctx, s3.Config{Endpoint: endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey,
		Bucket: newBucketName(), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("0123456789abcdef", 8192) // 128 KiB
	if err := st.Put(ctx, "a", strings.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	proxy.mu.Lock()
	sha, trailer := proxy.sha256[len(proxy.sha256)-1], proxy.trailer[len(proxy.trailer)-1]
	proxy.corrupt = true
	proxy.mu.Unlock()
	if sha != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" || !strings.EqualFold(trailer, "x-amz-checksum-crc32c") {
		t.Fatalf("upload sent X-Amz-Content-Sha256 %q, X-Amz-Trailer %q: want an unsigned payload with a CRC32C trailer", sha, trailer)
	}
	if err := st.Put(ctx, "b", strings.NewReader(body), int64(len(body))); err == nil {
		t.Fatal("a body corrupted on its way was stored")
	}
	if _, err := st.Stat(ctx, "b"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("the corrupted upload left an object: %v", err)
	}
	rc, err := st.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); err != nil || string(got) != body {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
}
