// Package storeopen picks the store adapter from a URL. It lives apart from
// package store so that store stays free of driver imports (adapters import
// store; store importing them would be a cycle).
package storeopen

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/postgres"
	"github.com/inlet-dev/inlet/internal/store/sqlite"
)

// Environment variables read by FromEnv.
const (
	EnvStoreURL = "INLET_STORE_URL"
	EnvDataDir  = "INLET_DATA_DIR"
)

// DBFile is the embedded database's file name inside the data directory.
const DBFile = "inlet.db"

// Open returns the store for url: empty → the embedded SQLite store at
// dataDir/inlet.db (dataDir is created), postgres:// or postgresql:// →
// PostgreSQL. Anything else is an error, so a typo cannot silently fall back
// to an embedded store.
func Open(ctx context.Context, url, dataDir string) (store.Store, error) {
	switch {
	case url == "":
		if dataDir == "" {
			return nil, fmt.Errorf("storeopen: %s is empty (embedded store) but no data directory was given (%s)", EnvStoreURL, EnvDataDir)
		}
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("storeopen: create data directory: %w", err)
		}
		s, err := sqlite.Open(filepath.Join(dataDir, DBFile))
		if err != nil {
			return nil, err
		}
		return s, nil
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		s, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, err
		}
		return s, nil
	default:
		scheme, _, found := strings.Cut(url, "://")
		if !found {
			scheme = url
		}
		return nil, fmt.Errorf("storeopen: unsupported %s scheme %q: want empty (embedded SQLite) or postgres://", EnvStoreURL, scheme)
	}
}

// FromEnv calls Open with INLET_STORE_URL and INLET_DATA_DIR; the data
// directory defaults to "data" (relative to the working directory).
func FromEnv(ctx context.Context) (store.Store, error) {
	dir := os.Getenv(EnvDataDir)
	if dir == "" {
		dir = "data"
	}
	return Open(ctx, os.Getenv(EnvStoreURL), dir)
}
