package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/storetest"
)

func TestWebhookContract(t *testing.T) {
	storetest.RunWebhookContract(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "inlet.db"))
	})
}
