// Package app wires one Inlet process: configuration from its flags and
// environment (spec §8), the adapters, and whichever services the process
// runs.
package app

import (
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/inlet-dev/inlet/internal/auth"
)

// Config is spec §8's environment, plus tuning knobs. Each setting is a
// flag of every Inlet command and the environment variable its env tag
// names (a flag given wins over its variable); kong reads both. A number
// or duration must be positive unless its field is tagged zero:"what 0 means".
type Config struct {
	// HTTPAddr serves the API of the gateway and the projector, or the
	// probes and metrics of a phase service.
	HTTPAddr string `name:"http-addr" env:"INLET_HTTP_ADDR" group:"Serving" help:"HTTP address: the API (gateway, projector, all-in-one; default 127.0.0.1:8080) or a phase service's /healthz, /readyz and /metrics (default ${probes_addr})."`
	// PprofAddr serves net/http/pprof when set, for profiling a running process.
	PprofAddr string `name:"pprof-addr" env:"INLET_PPROF_ADDR" group:"Serving" help:"Serve net/http/pprof on this address (off when empty)."`

	NATSURL string `name:"nats-url" env:"INLET_NATS_URL" group:"Servers" help:"NATS server URL; empty starts an embedded server with JetStream under the data directory."`
	// NATSReplicas is how many servers of a NATS cluster keep each stream
	// (3 in production, see docs/durability.md).
	NATSReplicas int    `name:"nats-replicas" env:"INLET_NATS_REPLICAS" default:"1" group:"Servers" help:"Servers of a NATS cluster that keep each stream (3 in production)."`
	NATSListen   string `name:"nats-listen" env:"INLET_NATS_LISTEN" default:"127.0.0.1:4222" group:"Servers" help:"The embedded NATS server's client address (other processes can join it)."`
	BlobURL      string `name:"blob-url" env:"INLET_BLOB_URL" group:"Servers" help:"Blob store: empty is a directory under the data directory; s3://bucket is S3 or MinIO."`
	S3Endpoint   string `name:"s3-endpoint" env:"INLET_S3_ENDPOINT" group:"Servers" help:"S3 endpoint (host:port)."`
	S3AccessKey  string `name:"s3-access-key" env:"INLET_S3_ACCESS_KEY" group:"Servers" help:"S3 access key."`
	S3SecretKey  string `name:"s3-secret-key" env:"INLET_S3_SECRET_KEY" group:"Servers" help:"S3 secret key."`
	S3UseSSL     bool   `name:"s3-use-ssl" env:"INLET_S3_USE_SSL" group:"Servers" help:"Talk to S3 over TLS."`
	// S3PublicEndpoint is the host:port (or URL) that presigned upload and
	// download URLs name, for clients outside the deployment. A signature
	// covers the host: a URL signed for minio:9000 cannot be used as
	// localhost:9000.
	S3PublicEndpoint string `name:"s3-public-endpoint" env:"INLET_S3_PUBLIC_ENDPOINT" group:"Servers" help:"Host:port (or URL) presigned URLs name, for clients outside the deployment (default: --s3-endpoint)."`
	S3Region         string `name:"s3-region" env:"INLET_S3_REGION" group:"Servers" help:"The bucket's region (optional for MinIO)."`
	// S3NotifyARN is the MinIO notification target that sends uploads to
	// NATS (e.g. arn:minio:sqs::INLET:nats).
	S3NotifyARN string `name:"s3-notify-arn" env:"INLET_S3_NOTIFY_ARN" group:"Servers" help:"MinIO notification target that publishes uploads to NATS (e.g. arn:minio:sqs::INLET:nats)."`
	StoreURL    string `name:"store-url" env:"INLET_STORE_URL" group:"Servers" help:"Record store: empty is SQLite under the data directory; postgres://… is PostgreSQL."`

	DataDir      string `name:"data-dir" env:"INLET_DATA_DIR" default:"data" type:"path" group:"Files" help:"Where the embedded servers and temporary batch files live."`
	ResourcesDir string `name:"resources-dir" env:"INLET_RESOURCES_DIR" default:"resources" group:"Files" help:"The resource registry: a directory of JSON resource definitions."`

	LogLevel string `name:"log-level" env:"INLET_LOG_LEVEL" default:"info" enum:"trace,debug,info,warn,error" group:"Logs" help:"Log level: ${enum}."`
	// LogFormat auto is console on the embedded default, else JSON.
	LogFormat string `name:"log-format" env:"INLET_LOG_FORMAT" default:"auto" enum:"auto,json,console" group:"Logs" help:"Log format: ${enum} (auto: console on the embedded default, else JSON; console is coloured only on a terminal)."`

	// BatchSize is the number of file rows per batch.
	BatchSize int `name:"batch-size" env:"INLET_BATCH_SIZE" default:"10000" group:"Pipeline" help:"File rows per batch."`
	// Concurrency is how many messages one process handles at once per phase.
	Concurrency int `name:"concurrency" env:"INLET_CONCURRENCY" default:"4" group:"Pipeline" help:"Messages one process handles at once, per phase."`
	// MaxAckPending is how many messages a phase's consumer hands out before
	// any is acked, across every replica (0: Concurrency, one replica). A
	// message handed out waits with its AckWait clock running, so more than
	// the replicas work on at once only queues messages toward redelivery.
	MaxAckPending int `name:"max-ack-pending" env:"INLET_MAX_ACK_PENDING" zero:"INLET_CONCURRENCY" group:"Pipeline" help:"Messages a phase's consumer hands out across all its replicas before any is acknowledged (default: INLET_CONCURRENCY; raise to replicas × concurrency)."`
	// AckWait is how long a message a crashed process held waits before
	// another replica gets it.
	AckWait    time.Duration `name:"ack-wait" env:"INLET_ACK_WAIT" default:"30s" group:"Pipeline" help:"How long the message of a crashed process waits before another replica gets it."`
	MaxDeliver int           `name:"max-deliver" env:"INLET_MAX_DELIVER" default:"10" group:"Pipeline" help:"Deliveries of one message before its import fails."`
	// RebuildViews makes the projector rebuild every view from the event
	// stream at start-up.
	RebuildViews bool `name:"projector-rebuild" env:"INLET_PROJECTOR_REBUILD" group:"Pipeline" help:"Rebuild every import view from the event stream at start-up."`

	// SyncMaxBytes caps the file of an upload_mode sync request.
	SyncMaxBytes int64 `name:"sync-max-bytes" env:"INLET_SYNC_MAX_BYTES" default:"10485760" group:"Imports" help:"Largest file of an upload_mode sync request, in bytes."`
	// UploadTTL is how long an import created without its file waits for it.
	UploadTTL time.Duration `name:"upload-ttl" env:"INLET_UPLOAD_TTL" default:"24h" group:"Imports" help:"How long an import created without its file waits for it."`
	// RevertWindow is how long the changes of an import are kept.
	RevertWindow time.Duration `name:"revert-window" env:"INLET_REVERT_WINDOW" default:"720h" group:"Imports" help:"How long after its creation an import can be reverted: the changes it made are kept that long, then forgotten by the sweep."`
	// ImportTimeout is the deadline of an import that sets none.
	ImportTimeout time.Duration `name:"import-timeout" env:"INLET_IMPORT_TIMEOUT" default:"24h" group:"Imports" help:"Deadline of an import that sets none."`
	// SweepEvery is how often deadlines and expiries are checked.
	SweepEvery time.Duration `name:"sweep-interval" env:"INLET_SWEEP_INTERVAL" default:"5s" group:"Imports" help:"How often deadlines, expiries and stalls are checked."`
	// DeadlineGrace is how long an import past its deadline gets to stop at a
	// batch boundary before it is ended outright.
	DeadlineGrace time.Duration `name:"deadline-grace" env:"INLET_DEADLINE_GRACE" default:"15s" group:"Imports" help:"How long an import past its deadline gets to stop at a batch boundary."`
	// StallAfter is how long an import may go without an event before the
	// sweep hands its work on again, and ends it if nothing can move it.
	StallAfter time.Duration `name:"stall-after" env:"INLET_STALL_AFTER" default:"5m" group:"Imports" help:"How long an import may go without an event before its work is handed on again (and ended if nothing moves it)."`

	// Webhook deliveries (the webhooks role, internal/webhooks).
	WebhookTimeout time.Duration `name:"webhook-timeout" env:"INLET_WEBHOOK_TIMEOUT" default:"10s" group:"Webhooks" help:"How long one delivery attempt may take: connecting, sending and the answer."`
	// WebhookBackoff and WebhookBackoffMax space a delivery's attempts:
	// the first wait, doubling up to the most.
	WebhookBackoff      time.Duration `name:"webhook-backoff" env:"INLET_WEBHOOK_BACKOFF" default:"30s" group:"Webhooks" help:"Wait after a delivery's first failed attempt; it doubles after each failure, up to --webhook-backoff-max."`
	WebhookBackoffMax   time.Duration `name:"webhook-backoff-max" env:"INLET_WEBHOOK_BACKOFF_MAX" default:"1h" group:"Webhooks" help:"Longest wait between two attempts of a delivery."`
	WebhookRetryWindow  time.Duration `name:"webhook-retry-window" env:"INLET_WEBHOOK_RETRY_WINDOW" default:"24h" group:"Webhooks" help:"How long after its event a delivery is retried before it is failed."`
	WebhookDisableAfter int           `name:"webhook-disable-after" env:"INLET_WEBHOOK_DISABLE_AFTER" default:"50" zero:"never disable" group:"Webhooks" help:"Failed attempts in a row after which a subscription is disabled (0: never)."`
	WebhookConcurrency  int           `name:"webhook-concurrency" env:"INLET_WEBHOOK_CONCURRENCY" default:"8" group:"Webhooks" help:"Delivery attempts one process makes at once (at most one per subscription)."`
	WebhookPoll         time.Duration `name:"webhook-poll" env:"INLET_WEBHOOK_POLL" default:"1s" group:"Webhooks" help:"How often the dispatcher looks for retries that came due (a new event wakes it at once)."`
	WebhookBlockPrivate bool          `name:"webhook-block-private" env:"INLET_WEBHOOK_BLOCK_PRIVATE" group:"Webhooks" help:"Refuse to deliver to loopback, private and link-local addresses (checked on the address dialled): set it where subscribers are not trusted with the inside of the deployment."`
	WebhookLogRetention time.Duration `name:"webhook-log-retention" env:"INLET_WEBHOOK_LOG_RETENTION" default:"720h" group:"Webhooks" help:"How long the delivery log keeps a delivery after it was delivered or failed."`

	// APIKeysFile and APIKeysList are read into APIKeys (hashes only).
	APIKeysFile string `name:"api-keys-file" env:"INLET_API_KEYS_FILE" group:"Security" help:"JSON file of API keys (id, organization, secret or its SHA-256)."`
	APIKeysList string `name:"api-keys" env:"INLET_API_KEYS" group:"Security" help:"API keys as id:organization:secret, comma-separated."`
	// APIKeys maps bearer keys to organizations.
	APIKeys *auth.Keyring `kong:"-"`
}

// DefaultProbesAddr is where a service with no API (a phase) serves its
// probes and metrics unless INLET_HTTP_ADDR says otherwise.
const DefaultProbesAddr = "127.0.0.1:9090"

// defaultAPIAddr is where the API is served unless INLET_HTTP_ADDR says otherwise.
const defaultAPIAddr = "127.0.0.1:8080"

// Vars are the help's variables for a parser of Config.
var Vars = kong.Vars{"probes_addr": DefaultProbesAddr}

// ConfigFromEnv reads the configuration from the environment alone: unset
// (or empty) variables take their defaults, a malformed one is an error
// naming it.
func ConfigFromEnv() (Config, error) {
	var c Config
	parser, err := kong.New(&c, Vars)
	if err != nil {
		return c, err
	}
	if _, err := Parse(parser, nil); err != nil {
		return c, err
	}
	return c, c.Finish(true)
}

// Finish checks what kong cannot (positive numbers) and derives the rest:
// the API keys, the default HTTP address of a process with or without an
// API, MaxAckPending.
func (c *Config) Finish(servesAPI bool) error {
	if err := checkPositive(c); err != nil {
		return err
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultProbesAddr
		if servesAPI {
			c.HTTPAddr = defaultAPIAddr
		}
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = c.Concurrency
	}
	var err error
	c.APIKeys, err = auth.Load(c.APIKeysFile, c.APIKeysList)
	return err
}

// checkPositive refuses a number or duration of c that is not positive,
// naming its variable; a field tagged zero may be 0.
func checkPositive(c *Config) error {
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		f, field := v.Type().Field(i), v.Field(i)
		env := f.Tag.Get("env")
		if env == "" {
			continue
		}
		var n int64
		switch field.Kind() {
		case reflect.Int, reflect.Int64:
			n = field.Int()
		default:
			continue
		}
		if n > 0 || n == 0 && f.Tag.Get("zero") != "" {
			continue
		}
		if _, isDuration := field.Interface().(time.Duration); isDuration {
			return fmt.Errorf("%s=%s: want a positive duration like 30s", env, time.Duration(n))
		}
		return fmt.Errorf("%s=%d: want a positive integer", env, n)
	}
	return nil
}

// unsetEmpty unsets the INLET_ variables set to "" (a compose file or a
// manifest often sets a variable empty to mean unset) and returns what puts
// them back.
func unsetEmpty() (restore func()) {
	var empty []string
	for _, kv := range os.Environ() {
		if name, value, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "INLET_") && value == "" {
			empty = append(empty, name)
			os.Unsetenv(name)
		}
	}
	return func() {
		for _, name := range empty {
			os.Setenv(name, "")
		}
	}
}

// Embedded reports whether this process runs on the embedded default
// (embedded NATS, local blobs, SQLite).
func (c Config) Embedded() bool { return c.NATSURL == "" }

// Parse parses args with parser, taking the INLET_ variables set to "" as
// unset, and names the variable that gave a refused value.
func Parse(parser *kong.Kong, args []string) (*kong.Context, error) {
	restore := unsetEmpty()
	defer restore()
	kctx, err := parser.Parse(args)
	return kctx, nameVariables(parser, err)
}

// nameVariables adds to a parse error of parser the environment variable
// that gave the refused value, when the error names only its flag (kong's
// enum check does): a setting that came from the environment is reported by
// the name the user wrote.
func nameVariables(parser *kong.Kong, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var named []string
	_ = kong.Visit(parser.Model, func(n kong.Visitable, next kong.Next) error {
		if f, ok := n.(*kong.Flag); ok {
			for _, env := range f.Envs {
				if _, set := os.LookupEnv(env); set && strings.Contains(msg, "--"+f.Name+" ") && !strings.Contains(msg, env) {
					named = append(named, env+"="+strconv.Quote(os.Getenv(env)))
				}
			}
		}
		return next(nil)
	})
	if len(named) == 0 {
		return err
	}
	return fmt.Errorf("%w (from %s)", err, strings.Join(named, ", "))
}
