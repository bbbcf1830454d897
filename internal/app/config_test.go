package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

// The presign settings reach the configuration: without them a presigned
// URL names the internal S3 endpoint (minio:9000 in docker-compose), which
// a client outside the deployment cannot use (issue 9).
func TestConfigReadsS3PresignSettings(t *testing.T) {
	t.Setenv("INLET_S3_ENDPOINT", "minio:9000")
	t.Setenv("INLET_S3_PUBLIC_ENDPOINT", "localhost:9000")
	t.Setenv("INLET_S3_REGION", "eu-west-1")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.S3Endpoint != "minio:9000" || c.S3PublicEndpoint != "localhost:9000" || c.S3Region != "eu-west-1" {
		t.Fatalf("endpoint %q, public endpoint %q, region %q", c.S3Endpoint, c.S3PublicEndpoint, c.S3Region)
	}
	t.Setenv("INLET_S3_PUBLIC_ENDPOINT", "")
	t.Setenv("INLET_S3_REGION", "")
	if c, err = ConfigFromEnv(); err != nil || c.S3PublicEndpoint != "" || c.S3Region != "" {
		t.Fatalf("unset: %+v, %v", c, err)
	}
}

// A malformed setting stops the process at start with the name of the
// variable that gave it, whichever check refuses it (kong's parse, its enum
// check, the positive-number rule).
func TestBadSettingsAreRefusedNamingTheirVariable(t *testing.T) {
	for name, value := range map[string]string{
		"INLET_LOG_LEVEL":      "loud",
		"INLET_LOG_FORMAT":     "xml",
		"INLET_ACK_WAIT":       "30",
		"INLET_STALL_AFTER":    "-1s",
		"INLET_BATCH_SIZE":     "0",
		"INLET_CONCURRENCY":    "four",
		"INLET_S3_USE_SSL":     "maybe",
		"INLET_SYNC_MAX_BYTES": "-5",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			_, err := ConfigFromEnv()
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%s: %v, want an error naming %s", name, value, err, name)
			}
		})
	}
}

// An empty variable is an unset one (a manifest often sets a variable
// empty); a flag wins over its variable; the HTTP address defaults to the
// API's port, or the probes' for a process without an API.
func TestSettingsDefaultsAndFlags(t *testing.T) {
	t.Setenv("INLET_BATCH_SIZE", "")
	t.Setenv("INLET_MAX_ACK_PENDING", "")
	t.Setenv("INLET_CONCURRENCY", "3")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.BatchSize != 10000 || c.MaxAckPending != 3 || c.HTTPAddr != defaultAPIAddr || c.LogLevel != "info" || !filepath.IsAbs(c.DataDir) {
		t.Errorf("defaults: batch %d, max ack pending %d, http %q, log level %q, data dir %q",
			c.BatchSize, c.MaxAckPending, c.HTTPAddr, c.LogLevel, c.DataDir)
	}
	if os.Getenv("INLET_BATCH_SIZE") != "" {
		t.Error("the empty variable was not put back")
	}

	t.Setenv("INLET_BATCH_SIZE", "5")
	var flags Config
	parser, err := kong.New(&flags, Vars)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(parser, []string{"--batch-size", "7", "--ack-wait", "2s"}); err != nil {
		t.Fatal(err)
	}
	if err := flags.Finish(false); err != nil {
		t.Fatal(err)
	}
	if flags.BatchSize != 7 || flags.AckWait != 2*time.Second || flags.HTTPAddr != DefaultProbesAddr {
		t.Errorf("flags: batch %d, ack wait %s, http %q", flags.BatchSize, flags.AckWait, flags.HTTPAddr)
	}
}
