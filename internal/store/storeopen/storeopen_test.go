package storeopen_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/store/postgres"
	"github.com/inlet-dev/inlet/internal/store/sqlite"
	"github.com/inlet-dev/inlet/internal/store/storeopen"
	"github.com/inlet-dev/inlet/internal/testenv"
)

func TestEmptyURLIsSQLiteInDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	s, err := storeopen.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*sqlite.Store); !ok {
		t.Fatalf("got %T, want *sqlite.Store", s)
	}
	if _, err := os.Stat(filepath.Join(dir, storeopen.DBFile)); err != nil {
		t.Fatalf("database file not created: %v", err)
	}
}

func TestPostgresURL(t *testing.T) {
	url := testenv.StartPostgres(t)
	for _, u := range []string{url, strings.Replace(url, "postgres://", "postgresql://", 1)} {
		s, err := storeopen.Open(context.Background(), u, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.(*postgres.Store); !ok {
			t.Fatalf("got %T, want *postgres.Store", s)
		}
		if err := s.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}

func TestBadURLs(t *testing.T) {
	for _, u := range []string{"mysql://x", "sqlite:///tmp/x.db", "localhost:5432"} {
		if s, err := storeopen.Open(context.Background(), u, t.TempDir()); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", u)
		} else if !strings.Contains(err.Error(), "INLET_STORE_URL") {
			t.Errorf("Open(%q) error %q does not name the setting", u, err)
		}
	}
	if _, err := storeopen.Open(context.Background(), "", ""); err == nil {
		t.Error("embedded store without data dir succeeded")
	}
}

func TestFromEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(storeopen.EnvStoreURL, "")
	t.Setenv(storeopen.EnvDataDir, dir)
	s, err := storeopen.FromEnv(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, storeopen.DBFile)); err != nil {
		t.Fatal(err)
	}
}
