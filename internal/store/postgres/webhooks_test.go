package postgres_test

import (
	"testing"

	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/storetest"
	"github.com/inlet-dev/inlet/internal/testenv"
)

func TestWebhookContract(t *testing.T) {
	storetest.RunWebhookContract(t, func(t *testing.T) store.Store {
		return open(t, testenv.StartPostgres(t))
	})
}
