// Package blobopen picks the blob.Store adapter from configuration. It is a
// separate package because the adapters import package blob.
package blobopen

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/inlet-dev/inlet/internal/blob"
	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/blob/s3"
)

// Config mirrors the INLET_* environment variables (see ConfigFromEnv).
type Config struct {
	// URL selects the adapter: "" → local store at DataDir/blobs;
	// "s3://bucket" → that bucket at Endpoint; "file:///abs/dir" → a local
	// store at that directory.
	URL       string
	DataDir   string
	Endpoint  string
	AccessKey string
	SecretKey string
	UseSSL    bool
	// Region and PublicEndpoint are passed to s3.Config; both optional.
	Region         string
	PublicEndpoint string
}

// ConfigFromEnv reads INLET_BLOB_URL, INLET_DATA_DIR, INLET_S3_ENDPOINT,
// INLET_S3_ACCESS_KEY, INLET_S3_SECRET_KEY, INLET_S3_USE_SSL (a strconv
// boolean), INLET_S3_REGION and INLET_S3_PUBLIC_ENDPOINT. getenv is usually
// os.Getenv; it is a parameter so callers can test without touching the
// process environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		URL:            getenv("INLET_BLOB_URL"),
		DataDir:        getenv("INLET_DATA_DIR"),
		Endpoint:       getenv("INLET_S3_ENDPOINT"),
		AccessKey:      getenv("INLET_S3_ACCESS_KEY"),
		SecretKey:      getenv("INLET_S3_SECRET_KEY"),
		Region:         getenv("INLET_S3_REGION"),
		PublicEndpoint: getenv("INLET_S3_PUBLIC_ENDPOINT"),
	}
	if v := getenv("INLET_S3_USE_SSL"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("blob: INLET_S3_USE_SSL=%q is not a boolean", v)
		}
		c.UseSSL = b
	}
	return c, nil
}

// Open returns the store the configuration names. For S3 it connects and
// creates the bucket if missing, so a wrong endpoint or credentials fail here,
// at start-up, rather than in the first import.
func Open(ctx context.Context, cfg Config) (blob.Store, error) {
	if cfg.URL == "" {
		if cfg.DataDir == "" {
			return nil, errors.New("blob: neither INLET_BLOB_URL nor INLET_DATA_DIR is set: set INLET_DATA_DIR for a local store or INLET_BLOB_URL=s3://bucket")
		}
		return local.New(filepath.Join(cfg.DataDir, "blobs"))
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("blob: INLET_BLOB_URL=%q: %w", cfg.URL, err)
	}
	switch u.Scheme {
	case "s3":
		if u.Host == "" {
			return nil, fmt.Errorf("blob: INLET_BLOB_URL=%q: missing bucket (want s3://bucket)", cfg.URL)
		}
		if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("blob: INLET_BLOB_URL=%q: only s3://bucket is supported (no key prefix, query or user info)", cfg.URL)
		}
		if cfg.Endpoint == "" {
			return nil, fmt.Errorf("blob: INLET_BLOB_URL=%q needs INLET_S3_ENDPOINT (host:port of the S3 server)", cfg.URL)
		}
		return s3.New(ctx, s3.Config{
			Endpoint:       cfg.Endpoint,
			AccessKey:      cfg.AccessKey,
			SecretKey:      cfg.SecretKey,
			Bucket:         u.Host,
			UseSSL:         cfg.UseSSL,
			Region:         cfg.Region,
			PublicEndpoint: cfg.PublicEndpoint,
		})
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("blob: INLET_BLOB_URL=%q: file URLs must be file:///absolute/dir", cfg.URL)
		}
		if u.Path == "" {
			return nil, fmt.Errorf("blob: INLET_BLOB_URL=%q: missing directory", cfg.URL)
		}
		return local.New(u.Path)
	default:
		return nil, fmt.Errorf("blob: INLET_BLOB_URL=%q: unsupported scheme (want empty for the local store in INLET_DATA_DIR/blobs, s3://bucket or file:///dir)", cfg.URL)
	}
}
