package blobopen_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/blob/blobopen"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/blob/s3"
	"github.com/inlet-dev/inlet/internal/testenv"
)

func TestOpenLocalDefault(t *testing.T) {
	dir := t.TempDir()
	st, err := blobopen.Open(context.Background(), blobopen.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ls, ok := st.(*local.Store)
	if !ok {
		t.Fatalf("Open with no URL = %T, want *local.Store", st)
	}
	if want := filepath.Join(dir, "blobs"); ls.Root() != want {
		t.Fatalf("local root = %s, want %s", ls.Root(), want)
	}
}

func TestOpenFileURL(t *testing.T) {
	dir := t.TempDir()
	st, err := blobopen.Open(context.Background(), blobopen.Config{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	if ls, ok := st.(*local.Store); !ok || ls.Root() != dir {
		t.Fatalf("Open(file://%s) = %T %v", dir, st, st)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  blobopen.Config
		want string
	}{
		{blobopen.Config{}, "INLET_DATA_DIR"},
		{blobopen.Config{URL: "gs://bucket", Endpoint: "x:1"}, "unsupported scheme"},
		{blobopen.Config{URL: "/just/a/path"}, "unsupported scheme"},
		{blobopen.Config{URL: "s3://", Endpoint: "x:1"}, "missing bucket"},
		{blobopen.Config{URL: "s3://bucket/prefix", Endpoint: "x:1"}, "only s3://bucket"},
		{blobopen.Config{URL: "s3://bucket"}, "INLET_S3_ENDPOINT"},
		{blobopen.Config{URL: "file://host/dir"}, "file:///"},
	} {
		_, err := blobopen.Open(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%+v) = %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"INLET_BLOB_URL":      "s3://b",
		"INLET_DATA_DIR":      "/data",
		"INLET_S3_ENDPOINT":   "minio:9000",
		"INLET_S3_ACCESS_KEY": "ak",
		"INLET_S3_SECRET_KEY": "sk",
		"INLET_S3_USE_SSL":    "true",
	}
	c, err := blobopen.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := blobopen.Config{URL: "s3://b", DataDir: "/data", Endpoint: "minio:9000", AccessKey: "ak", SecretKey: "sk", UseSSL: true}
	if c != want {
		t.Fatalf("ConfigFromEnv = %+v, want %+v", c, want)
	}
	env["INLET_S3_USE_SSL"] = "sometimes"
	if _, err := blobopen.ConfigFromEnv(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "INLET_S3_USE_SSL") {
		t.Fatalf("bad INLET_S3_USE_SSL: %v", err)
	}
}

func TestOpenS3(t *testing.T) {
	m := testenv.StartMinIO(t)
	st, err := blobopen.Open(context.Background(), blobopen.Config{
		URL: "s3://opened-bucket", Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, ok := st.(*s3.Store)
	if !ok || s.Bucket() != "opened-bucket" {
		t.Fatalf("Open(s3://opened-bucket) = %T", st)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}
