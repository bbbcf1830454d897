package contract_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/httpapi"
	"github.com/inlet-dev/inlet/internal/openapi"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/sqlite"
	"github.com/inlet-dev/inlet/internal/webhooks"
	"github.com/inlet-dev/inlet/pkg/client"
)

// Every webhook call of the client is a route the server serves, with the
// shapes both sides (and the API description) agree on.
func TestClientWebhookCalls(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "inlet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	api := &webhooks.API{Store: st, Log: zerolog.Nop()}
	mux := http.NewServeMux()
	api.MountReads(mux)
	api.MountWrites(mux)
	srv := httptest.NewServer(httpapi.Routes(mux))
	defer srv.Close()
	cl := client.New(nil, srv.URL)
	cl.HTTP, cl.Org = openapi.Client(t, &http.Client{Timeout: 10 * time.Second}), "acme"
	ctx := context.Background()

	w, err := cl.CreateWebhook(ctx, events.WebhookCreate{URL: "https://example.com/in", Events: []string{"completed", "progress"}, Description: "crm"})
	if err != nil {
		t.Fatal(err)
	}
	if w.Secret == "" || w.OrganizationID != "acme" || w.Description != "crm" || len(w.Events) != 2 || w.Status != events.WebhookEnabled {
		t.Errorf("created %+v", w)
	}
	got, err := cl.Webhook(ctx, w.ID)
	if err != nil || got.ID != w.ID || got.Secret != "" || got.URL != w.URL {
		t.Errorf("get %+v (%v)", got, err)
	}
	newURL, newEvents := "https://example.com/moved", []string{"failed"}
	moved, err := cl.UpdateWebhook(ctx, w.ID, events.WebhookUpdate{URL: &newURL, Events: &newEvents})
	if err != nil || moved.URL != newURL || len(moved.Events) != 1 || moved.Description != "crm" {
		t.Errorf("update %+v (%v)", moved, err)
	}
	page, err := cl.Webhooks(ctx, client.PageOpts{Limit: 1})
	if err != nil || len(page.Data) != 1 || page.HasMore {
		t.Errorf("list %+v (%v)", page, err)
	}
	off, err := cl.EnableWebhook(ctx, w.ID, false)
	if err != nil || off.Status != events.WebhookDisabled || off.DisabledReason == nil || *off.DisabledReason != webhooks.DisabledByUser {
		t.Errorf("disable %+v (%v)", off, err)
	}
	on, err := cl.EnableWebhook(ctx, w.ID, true)
	if err != nil || on.Status != events.WebhookEnabled || on.DisabledReason != nil {
		t.Errorf("enable %+v (%v)", on, err)
	}
	if _, err := st.AddDeliveries(ctx, []store.Delivery{{ID: "dlv_1", WebhookID: w.ID, Org: "acme", EventID: "imp_1:terminal",
		EventType: "completed", ImportID: "imp_1", Payload: []byte("{}"), NextAttemptAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	ds, err := cl.WebhookDeliveries(ctx, w.ID, events.DeliveryPending, client.PageOpts{})
	if err != nil || len(ds.Data) != 1 || ds.Data[0].EventID != "imp_1:terminal" || ds.Data[0].NextAttemptAt == nil || ds.Data[0].LastStatusCode != nil {
		t.Errorf("deliveries %+v (%v)", ds, err)
	}
	if ds, err := cl.WebhookDeliveries(ctx, w.ID, events.DeliveryDelivered, client.PageOpts{}); err != nil || len(ds.Data) != 0 {
		t.Errorf("delivered ones %+v (%v)", ds, err)
	}
	if d, err := cl.Redeliver(ctx, w.ID, "dlv_1"); err != nil || d.ID != "dlv_1" || d.State != events.DeliveryPending {
		t.Errorf("redeliver %+v (%v)", d, err)
	}
	if _, err := cl.Redeliver(ctx, w.ID, "dlv_none"); !client.IsNotFound(err) {
		t.Errorf("redeliver of no delivery: %v", err)
	}

	_, err = cl.CreateWebhook(ctx, events.WebhookCreate{URL: "gopher://example.com/"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusUnprocessableEntity || ce.Code != "invalid_webhook" || ce.Details["field"] != "url" {
		t.Errorf("invalid create: %v", err)
	}
	other := client.New(nil, srv.URL)
	other.HTTP, other.Org = cl.HTTP, "other"
	if _, err := other.Webhook(ctx, w.ID); !client.IsNotFound(err) {
		t.Errorf("another organization read the webhook: %v", err)
	}
	if err := other.DeleteWebhook(ctx, w.ID); !client.IsNotFound(err) {
		t.Errorf("another organization deleted the webhook: %v", err)
	}
	if err := cl.DeleteWebhook(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Webhook(ctx, w.ID); !client.IsNotFound(err) {
		t.Errorf("deleted webhook: %v", err)
	}
}
