// Package app wires one Inlet process: configuration from the environment
// (spec §8), the adapters, and whichever services the process runs.
package app

import (
	"fmt"

	"github.com/inlet-dev/inlet/internal/auth"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Config is spec §8's environment, plus tuning knobs.
type Config struct {
	HTTPAddr string // INLET_HTTP_ADDR
	NATSURL  string // INLET_NATS_URL: empty = embedded server
	// NATSReplicas is how many servers of a NATS cluster keep each stream
	// (INLET_NATS_REPLICAS; 3 in production, see docs/durability.md).
	NATSReplicas int
	NATSListen   string // INLET_NATS_LISTEN: the embedded server's client address
	DataDir      string // INLET_DATA_DIR
	ResourcesDir string // INLET_RESOURCES_DIR
	BlobURL      string // INLET_BLOB_URL: empty = local directory; s3://bucket
	S3Endpoint   string // INLET_S3_ENDPOINT
	S3AccessKey  string // INLET_S3_ACCESS_KEY
	S3SecretKey  string // INLET_S3_SECRET_KEY
	S3UseSSL     bool   // INLET_S3_USE_SSL
	StoreURL     string // INLET_STORE_URL: empty = embedded SQLite; postgres://…
	LogLevel     string // INLET_LOG_LEVEL
	LogFormat    string // INLET_LOG_FORMAT: json | console (default: console when embedded)
	BatchSize    int    // INLET_BATCH_SIZE: file rows per batch
	// AckWait is how long a message a crashed process held waits before
	// another replica gets it (INLET_ACK_WAIT).
	AckWait    time.Duration
	MaxDeliver int // INLET_MAX_DELIVER
	// Concurrency is how many messages one process handles at once per phase (INLET_CONCURRENCY).
	Concurrency int
	// MaxAckPending is how many messages a phase's consumer hands out before
	// any is acked, across every replica (INLET_MAX_ACK_PENDING; default
	// INLET_CONCURRENCY: one replica). A message handed out waits with its
	// AckWait clock running, so more than the replicas work on at once only
	// queues messages toward redelivery.
	MaxAckPending int
	// RebuildViews makes the projector rebuild every view from the event
	// stream at start-up (INLET_PROJECTOR_REBUILD).
	RebuildViews bool
	// APIKeys maps bearer keys to organizations (INLET_API_KEYS_FILE and/or
	// INLET_API_KEYS); hashes only.
	APIKeys *auth.Keyring
	// SyncMaxBytes caps the file of an upload_mode sync request (INLET_SYNC_MAX_BYTES).
	SyncMaxBytes int64
	// UploadTTL is how long an import created without its file waits for it (INLET_UPLOAD_TTL).
	UploadTTL time.Duration
	// S3NotifyARN is the MinIO notification target that sends uploads to
	// NATS (INLET_S3_NOTIFY_ARN, e.g. arn:minio:sqs::INLET:nats).
	S3NotifyARN string
	// ImportTimeout is the deadline of an import that sets none (INLET_IMPORT_TIMEOUT).
	ImportTimeout time.Duration
	// SweepEvery is how often deadlines and expiries are checked (INLET_SWEEP_INTERVAL).
	SweepEvery time.Duration
	// DeadlineGrace is how long an import past its deadline gets to stop at a
	// batch boundary before it is ended outright (INLET_DEADLINE_GRACE).
	DeadlineGrace time.Duration
	// StallAfter is how long an import may go without an event before the
	// sweep hands its work on again, and ends it if nothing can move it
	// (INLET_STALL_AFTER, default 5m).
	StallAfter time.Duration
	// PprofAddr serves net/http/pprof when set (INLET_PPROF_ADDR), for profiling a running process.
	PprofAddr string

	// S3PublicEndpoint is the host:port (or URL) that presigned upload and
	// download URLs name, for clients outside the deployment
	// (INLET_S3_PUBLIC_ENDPOINT; empty = INLET_S3_ENDPOINT). A signature
	// covers the host: a URL signed for minio:9000 cannot be used as
	// localhost:9000.
	S3PublicEndpoint string
	// S3Region is the bucket's region (INLET_S3_REGION; optional for MinIO).
	S3Region string
}

// ConfigFromEnv reads the configuration; unset variables take defaults.
func ConfigFromEnv() (Config, error) {
	c := Config{
		HTTPAddr:     env("INLET_HTTP_ADDR", "127.0.0.1:8080"),
		NATSURL:      os.Getenv("INLET_NATS_URL"),
		NATSListen:   env("INLET_NATS_LISTEN", "127.0.0.1:4222"),
		DataDir:      env("INLET_DATA_DIR", "data"),
		ResourcesDir: env("INLET_RESOURCES_DIR", "resources"),
		BlobURL:      os.Getenv("INLET_BLOB_URL"),
		S3Endpoint:   os.Getenv("INLET_S3_ENDPOINT"),
		S3AccessKey:  os.Getenv("INLET_S3_ACCESS_KEY"),
		S3SecretKey:  os.Getenv("INLET_S3_SECRET_KEY"),
		StoreURL:     os.Getenv("INLET_STORE_URL"),
		LogLevel:     env("INLET_LOG_LEVEL", "info"),
		LogFormat:    os.Getenv("INLET_LOG_FORMAT"),
		PprofAddr:    os.Getenv("INLET_PPROF_ADDR"),
	}
	var err error
	if c.S3UseSSL, err = boolEnv("INLET_S3_USE_SSL", false); err != nil {
		return c, err
	}
	if c.APIKeys, err = auth.Load(os.Getenv(auth.EnvFile), os.Getenv(auth.EnvKeys)); err != nil {
		return c, err
	}
	c.S3NotifyARN = os.Getenv("INLET_S3_NOTIFY_ARN")
	c.S3PublicEndpoint = os.Getenv("INLET_S3_PUBLIC_ENDPOINT")
	c.S3Region = os.Getenv("INLET_S3_REGION")
	if c.UploadTTL, err = durationEnv("INLET_UPLOAD_TTL", 24*time.Hour); err != nil {
		return c, err
	}
	if c.ImportTimeout, err = durationEnv("INLET_IMPORT_TIMEOUT", 24*time.Hour); err != nil {
		return c, err
	}
	if c.SweepEvery, err = durationEnv("INLET_SWEEP_INTERVAL", 5*time.Second); err != nil {
		return c, err
	}
	if c.StallAfter, err = durationEnv("INLET_STALL_AFTER", 5*time.Minute); err != nil {
		return c, err
	}
	if c.DeadlineGrace, err = durationEnv("INLET_DEADLINE_GRACE", 15*time.Second); err != nil {
		return c, err
	}
	var syncMax int
	if syncMax, err = intEnv("INLET_SYNC_MAX_BYTES", 10<<20); err != nil {
		return c, err
	}
	c.SyncMaxBytes = int64(syncMax)
	if c.RebuildViews, err = boolEnv("INLET_PROJECTOR_REBUILD", false); err != nil {
		return c, err
	}
	if c.BatchSize, err = intEnv("INLET_BATCH_SIZE", 10000); err != nil {
		return c, err
	}
	if c.NATSReplicas, err = intEnv("INLET_NATS_REPLICAS", 1); err != nil {
		return c, err
	}
	if c.MaxDeliver, err = intEnv("INLET_MAX_DELIVER", 10); err != nil {
		return c, err
	}
	if c.Concurrency, err = intEnv("INLET_CONCURRENCY", 4); err != nil {
		return c, err
	}
	if c.MaxAckPending, err = intEnv("INLET_MAX_ACK_PENDING", c.Concurrency); err != nil {
		return c, err
	}
	if c.AckWait, err = durationEnv("INLET_ACK_WAIT", 30*time.Second); err != nil {
		return c, err
	}
	if c.DataDir, err = filepath.Abs(c.DataDir); err != nil {
		return c, err
	}
	return c, nil
}

// Embedded reports whether this process runs on the embedded default
// (embedded NATS, local blobs, SQLite).
func (c Config) Embedded() bool { return c.NATSURL == "" }

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func intEnv(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive integer", name, v)
	}
	return n, nil
}

func boolEnv(name string, def bool) (bool, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", name, v)
	}
	return b, nil
}

func durationEnv(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a duration like 30s", name, v)
	}
	return d, nil
}
