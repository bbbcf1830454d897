// Package s3 is the blob.Store over any S3 API (MinIO in development and the
// default deployment) through minio-go. It uses only plain S3 calls so that
// any S3-compatible server works: community MinIO is in maintenance mode.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/notification"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/faults"
)

// Config locates the bucket.
type Config struct {
	// Endpoint is host:port, or a URL whose scheme (http/https) then
	// decides TLS instead of UseSSL.
	Endpoint  string
	AccessKey string
	SecretKey string
	Bucket    string
	UseSSL    bool
	// Region is optional for MinIO. Setting it saves a GetBucketLocation
	// round trip and lets PresignPut sign offline.
	Region string
	// PublicEndpoint, when set, is the host:port (or URL) that clients
	// outside the deployment use for presigned URLs; the signature covers
	// the host, so an internal name such as minio:9000 would not work for
	// them. Empty means Endpoint.
	PublicEndpoint string
	// TempDir is where uploads of unknown size are spooled; empty means
	// os.TempDir().
	TempDir string
}

// memSpool is how much of an unknown-size upload is held in memory before
// spilling to a temp file: most batch objects are smaller, and skipping the
// disk for them matters more than the 1 MiB per concurrent Put.
const memSpool = 1 << 20

// Store is a blob.Store backed by one S3 bucket.
type Store struct {
	client  *minio.Client
	core    minio.Core
	signer  *minio.Client
	bucket  string
	tempDir string
}

var _ blob.Store = (*Store)(nil)

// New connects and creates the bucket when it does not exist yet.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("blob/s3: no bucket configured")
	}
	if err := s3utils.CheckValidBucketName(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("blob/s3: bucket %q: %w", cfg.Bucket, err)
	}
	client, err := newClient(cfg.Endpoint, cfg.UseSSL, cfg)
	if err != nil {
		return nil, err
	}
	signer := client
	if cfg.PublicEndpoint != "" {
		pcfg := cfg
		if pcfg.Region == "" {
			// Without a region the signer would ask the public endpoint
			// for the bucket location, which the server may not reach.
			pcfg.Region = "us-east-1"
		}
		signer, err = newClient(cfg.PublicEndpoint, cfg.UseSSL, pcfg)
		if err != nil {
			return nil, err
		}
	}
	s := &Store{
		client:  client,
		core:    minio.Core{Client: client},
		signer:  signer,
		bucket:  cfg.Bucket,
		tempDir: cfg.TempDir,
	}
	if err := s.ensureBucket(ctx, cfg.Region); err != nil {
		return nil, err
	}
	return s, nil
}

func newClient(endpoint string, useSSL bool, cfg Config) (*minio.Client, error) {
	if endpoint == "" {
		return nil, errors.New("blob/s3: no endpoint configured")
	}
	host := endpoint
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil {
			return nil, fmt.Errorf("blob/s3: endpoint %q: %w", endpoint, err)
		}
		switch u.Scheme {
		case "http":
			useSSL = false
		case "https":
			useSSL = true
		default:
			return nil, fmt.Errorf("blob/s3: endpoint %q: scheme must be http or https", endpoint)
		}
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("blob/s3: endpoint %q: must not have a path", endpoint)
		}
		host = u.Host
	}
	c, err := minio.New(host, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: useSSL,
		Region: cfg.Region,
		// A CRC32C of every upload's body, checked by the server.
		TrailingHeaders: true,
	})
	if err != nil {
		return nil, fmt.Errorf("blob/s3: endpoint %q: %w", endpoint, err)
	}
	return c, nil
}

// ensureBucket tolerates another replica creating the bucket at the same time:
// whatever MakeBucket says, the bucket existing afterwards is success.
func (s *Store) ensureBucket(ctx context.Context, region string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		if unavailable(err) {
			err = faults.Unavailable(err)
		}
		return fmt.Errorf("blob/s3: check bucket %q at %s: %w", s.bucket, s.client.EndpointURL().Host, err)
	}
	if ok {
		return nil
	}
	mkErr := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if mkErr == nil {
		return nil
	}
	if code := minio.ToErrorResponse(mkErr).Code; code == minio.BucketAlreadyOwnedByYou {
		return nil
	}
	if ok, err := s.client.BucketExists(ctx, s.bucket); err == nil && ok {
		return nil
	}
	return fmt.Errorf("blob/s3: create bucket %q: %w", s.bucket, mkErr)
}

// Bucket is the bucket this store writes to.
func (s *Store) Bucket() string { return s.bucket }

// Client exposes the minio-go client for S3 features outside blob.Store
// (e.g. bucket notifications).
func (s *Store) Client() *minio.Client { return s.client }

// Copy is a server-side copy: the object's bytes never leave the server.
func (s *Store) Copy(ctx context.Context, src, dst string) error {
	for _, k := range []string{src, dst} {
		if err := blob.ValidateKey(k); err != nil {
			return err
		}
	}
	_, err := s.client.CopyObject(ctx, minio.CopyDestOptions{Bucket: s.bucket, Object: dst},
		minio.CopySrcOptions{Bucket: s.bucket, Object: src})
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return fmt.Errorf("s3: copy %s/%s: %w", s.bucket, src, blob.ErrNotFound)
		}
		return s.errf("copy", src, err)
	}
	return nil
}

// Put uploads r. With a known size the body is streamed (an io.ReaderAt such
// as *os.File is uploaded in parallel parts straight from it; other readers
// larger than 16 MiB cost one 16 MiB part buffer, minio-go's minimum). With
// size -1, minio-go would buffer 16 MiB per part in memory, so the body is
// spooled to a temp file first and uploaded with its size.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.put(ctx, key, r, size, false)
}

// Create is Put with If-None-Match: *, so the server refuses (412) to
// overwrite an existing key: blob.ErrExists.
func (s *Store) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.put(ctx, key, r, size, true)
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64, exclusive bool) error {
	if err := blob.ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return s.errf("put", key, err)
	}
	if size < 0 {
		body, n, cleanup, err := s.spool(ctx, r)
		if err != nil {
			return s.errf("put", key, fmt.Errorf("spool upload: %w", err))
		}
		defer cleanup()
		r, size = body, n
	} else if ra, ok := r.(interface {
		io.ReaderAt
		io.Seeker
	}); ok {
		// minio-go reads a ReaderAt from offset 0; a caller's file or
		// bytes.Reader may already be partly consumed.
		if off, err := ra.Seek(0, io.SeekCurrent); err == nil {
			r = io.NewSectionReader(ra, off, size)
		}
	}
	// No SHA-256 of the body: over plain HTTP minio-go signs every chunk
	// with one, which the server checks again (measured: 100 PUTs of a 2.6 MB
	// batch cost MinIO 1.49 CPU-s signed, 1.06 unsigned, and the client 0.63
	// and 0.24). The body is still checked, by a CRC32C trailer
	// (TrailingHeaders on the client). Checksum must be set: minio-go's
	// automatic one is dropped from a single PUT (v7.4.1 adds the
	// x-amz-checksum-algorithm header, then skips the checksum when it sees it).
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream",
		DisableContentSha256: true, Checksum: minio.ChecksumCRC32C}
	if exclusive {
		opts.SetMatchETagExcept("*")
	}
	_, err := s.client.PutObject(ctx, s.bucket, key, r, size, opts)
	if exclusive && err != nil && minio.ToErrorResponse(err).Code == "PreconditionFailed" {
		return fmt.Errorf("s3: create %s/%s: %w", s.bucket, key, blob.ErrExists)
	}
	if err != nil {
		return s.errf("put", key, err)
	}
	return nil
}

// spool returns a sized, ReaderAt-capable copy of r: in memory when small,
// else in a temp file that cleanup removes.
func (s *Store) spool(ctx context.Context, r io.Reader) (io.Reader, int64, func(), error) {
	src := &ctxReader{ctx: ctx, r: r}
	head := make([]byte, memSpool)
	n, err := io.ReadFull(src, head)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return bytes.NewReader(head[:n]), int64(n), func() {}, nil
	case err != nil:
		return nil, 0, nil, err
	}
	f, err := os.CreateTemp(s.tempDir, "inlet-blob-spool-*")
	if err != nil {
		return nil, 0, nil, err
	}
	cleanup := func() {
		f.Close()
		os.Remove(f.Name())
	}
	total, err := io.Copy(f, io.MultiReader(bytes.NewReader(head), src))
	if err != nil {
		cleanup()
		return nil, 0, nil, err
	}
	return io.NewSectionReader(f, 0, total), total, cleanup, nil
}

// Get opens the object with one GET. minio-go's Client.GetObject is lazy and
// would report a missing key only on the first Read; the Core call fails here.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := blob.ValidateKey(key); err != nil {
		return nil, err
	}
	body, info, _, err := s.core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.errf("get", key, err)
	}
	return &wholeBody{ReadCloser: body, key: key, size: info.Size}, nil
}

// wholeBody reads an object's body and tells a body cut short (the server
// restarting or the connection dropping mid-read) as the transient fault it
// is: a reader would otherwise see an early end (io.ErrUnexpectedEOF) and
// take the object for corrupt, and a barrier phase reading a whole file
// failed its import that way in a chaos run, MinIO restarting during each of
// its deliveries. An object really truncated ends at its own (shorter) size
// and still reads as corrupt.
type wholeBody struct {
	io.ReadCloser
	key     string
	size, n int64
}

func (b *wholeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	switch {
	case err == nil, errors.Is(err, io.EOF) && (b.size < 0 || b.n >= b.size),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return n, err
	}
	return n, faults.Unavailable(fmt.Errorf("s3: get %s: the body ended after %d of %d bytes: %w", b.key, b.n, b.size, err))
}

// Stat describes the object.
func (s *Store) Stat(ctx context.Context, key string) (blob.Info, error) {
	if err := blob.ValidateKey(key); err != nil {
		return blob.Info{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return blob.Info{}, s.errf("stat", key, err)
	}
	return blob.Info{Key: key, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// List returns every object under prefix. Recursive so that the prefix is a
// plain string prefix, not a "directory" level.
func (s *Store) List(ctx context.Context, prefix string) ([]blob.Info, error) {
	if err := blob.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	out := []blob.Info{}
	for oi := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if oi.Err != nil {
			return nil, fmt.Errorf("blob/s3: list %q in bucket %q: %w", prefix, s.bucket, oi.Err)
		}
		out = append(out, blob.Info{Key: oi.Key, Size: oi.Size, ModTime: oi.LastModified})
	}
	// S3 lists in UTF-8 binary order already; sorting keeps the contract
	// for servers that do not (and for MinIO's unsorted extensions).
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the object; S3 already answers 204 for a missing key, the
// NoSuchKey check covers servers that do not.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blob.ValidateKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return s.errf("delete", key, err)
	}
	return nil
}

// Ping checks the server answers and the bucket still exists.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("blob/s3: ping bucket %q at %s: %w", s.bucket, s.client.EndpointURL().Host, err)
	}
	if !ok {
		return fmt.Errorf("blob/s3: ping: bucket %q does not exist at %s", s.bucket, s.client.EndpointURL().Host)
	}
	return nil
}

// PresignPut returns a URL that lets a client without credentials upload the
// object with an HTTP PUT until expiry (1s to 7 days).
func (s *Store) PresignPut(ctx context.Context, key string, expiry time.Duration) (string, error) {
	if err := blob.ValidateKey(key); err != nil {
		return "", err
	}
	u, err := s.signer.PresignedPutObject(ctx, s.bucket, key, expiry)
	if err != nil {
		return "", s.errf("presign put", key, err)
	}
	return u.String(), nil
}

// PresignGet returns a URL that lets a client without credentials download
// the object until expiry (1s to 7 days).
func (s *Store) PresignGet(ctx context.Context, key string, expiry time.Duration) (string, error) {
	if err := blob.ValidateKey(key); err != nil {
		return "", err
	}
	u, err := s.signer.PresignedGetObject(ctx, s.bucket, key, expiry, nil)
	if err != nil {
		return "", s.errf("presign get", key, err)
	}
	return u.String(), nil
}

// UploadFormats are the extensions of the upload keys
// (imports/<id>/source/upload.<ext>) EnableUploadNotifications covers.
var UploadFormats = []string{"csv", "json", "jsonl", "xlsx"}

// EnableUploadNotifications asks the server to publish an event to the
// notification target arn (e.g. "arn:minio:sqs::INLET:nats" for MinIO's
// MINIO_NOTIFY_NATS_*_INLET target) whenever an import's file is uploaded:
// s3:ObjectCreated:* under the prefix "imports/", one rule per upload
// extension (suffix "/source/upload.<ext>"), so the pipeline's own batch
// objects under imports/ send no notifications. Other notification rules of
// the bucket are kept; earlier rules for arn are replaced, so calling it at
// every start-up is safe.
func (s *Store) EnableUploadNotifications(ctx context.Context, arn string) error {
	a, err := notification.NewArnFromString(arn)
	if err != nil {
		return fmt.Errorf("blob/s3: notification target %q: %w", arn, err)
	}
	cfg, err := s.client.GetBucketNotification(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("blob/s3: get notifications of bucket %q: %w", s.bucket, err)
	}
	cfg.RemoveQueueByArn(a)
	for _, ext := range UploadFormats {
		qc := notification.NewConfig(a)
		qc.AddEvents(notification.ObjectCreatedAll)
		qc.AddFilterPrefix("imports/")
		qc.AddFilterSuffix("/source/upload." + ext)
		cfg.AddQueue(qc)
	}
	if err := s.client.SetBucketNotification(ctx, s.bucket, cfg); err != nil {
		return fmt.Errorf("blob/s3: set notifications of bucket %q to %s: %w", s.bucket, arn, err)
	}
	return nil
}

// errf names the operation, key and bucket, and maps a missing key to
// blob.ErrNotFound while keeping the S3 error in the chain.
func (s *Store) errf(op, key string, err error) error {
	resp := minio.ToErrorResponse(err)
	if resp.Code == minio.NoSuchKey {
		return fmt.Errorf("blob/s3: %s %q in bucket %q: %w (%w)", op, key, s.bucket, blob.ErrNotFound, err)
	}
	if unavailable(err) {
		err = faults.Unavailable(err)
	}
	return fmt.Errorf("blob/s3: %s %q in bucket %q: %w", op, key, s.bucket, err)
}

// unavailable: the server is starting, restarting or overloaded (minio-go
// has already retried).
func unavailable(err error) bool {
	resp := minio.ToErrorResponse(err)
	return resp.StatusCode >= 500 || resp.Code == "XMinioServerNotInitialized" || resp.Code == "SlowDown"
}

// ctxReader stops spooling when the context ends; copying to a temp file
// would otherwise ignore cancellation.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Children lists one level below prefix: S3's common prefixes (and objects
// directly under it), one request per thousand names.
func (s *Store) Children(ctx context.Context, prefix string) ([]string, error) {
	if err := blob.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	var out []string
	for oi := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: false}) {
		if oi.Err != nil {
			err := oi.Err
			if unavailable(err) {
				err = faults.Unavailable(err)
			}
			return nil, fmt.Errorf("blob/s3: list below %q in bucket %q: %w", prefix, s.bucket, err)
		}
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(oi.Key, prefix), "/"))
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}
