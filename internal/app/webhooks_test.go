package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
)

// The all-in-one server (embedded NATS, SQLite, every role) serves the
// webhook routes on its one address and delivers: a subscription made over
// HTTP receives the completed event of an import, signed.
func TestAllInOneDeliversWebhooks(t *testing.T) {
	got := make(chan *http.Request, 10)
	bodies := make(chan []byte, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
	}))
	defer recv.Close()
	cfg, err := ConfigFromEnv() // every default
	if err != nil {
		t.Fatal(err)
	}
	cfg.NATSListen, cfg.HTTPAddr, cfg.DataDir = "127.0.0.1:-1", "127.0.0.1:0", t.TempDir()
	cfg.ResourcesDir, cfg.LogLevel, cfg.LogFormat = filepath.Join(repoRoot(), "resources"), "warn", "console"
	cfg.BatchSize, cfg.Concurrency, cfg.MaxAckPending = 100, 2, 2
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg, "inlet")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx, Everything...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = a.Wait(); a.Close() })
	base := "http://" + a.Addr().String()

	body, _ := json.Marshal(events.WebhookCreate{URL: recv.URL + "/hook"})
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/webhooks", bytes.NewReader(body))
	req.Header.Set(events.OrgHeader, "acme")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var hook events.Webhook
	_ = json.NewDecoder(resp.Body).Decode(&hook)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || hook.Secret == "" {
		t.Fatalf("create: %d %+v", resp.StatusCode, hook)
	}

	imp := runImport(t, a, events.Options{OrganizationID: "acme", Resource: "companies"}, "companies.csv", "code,name\nACME,Acme\n")
	select {
	case r := <-got:
		b := <-bodies
		if err := events.VerifyWebhook(hook.Secret, r.Header, b, time.Minute, time.Now()); err != nil {
			t.Errorf("signature: %v", err)
		}
		if ce, err := events.Decode(b); err != nil || ce.Subject != imp.ID || ce.Type != events.Type(events.EventCompleted) {
			t.Errorf("delivered %+v (%v)", ce, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery")
	}
	req, _ = http.NewRequest(http.MethodGet, base+"/v1/webhooks/"+hook.ID+"/deliveries", nil)
	req.Header.Set(events.OrgHeader, "acme")
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page events.Page[events.WebhookDelivery]
		_ = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if len(page.Data) == 1 && page.Data[0].State == events.DeliveryDelivered && page.Data[0].ImportID == imp.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery log: %d %+v", resp.StatusCode, page)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
