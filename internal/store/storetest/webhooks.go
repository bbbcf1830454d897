package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/internal/store"
)

// RunWebhookContract runs the behaviour of store.WebhookStore against
// stores made by newStore (each new and empty).
func RunWebhookContract(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"WebhooksAreConfinedToTheirOrganization", testWebhookCRUD},
		{"DeliveriesAreAddedOnce", testAddDeliveries},
		{"ClaimsTakeDueDeliveriesOneAWebhook", testClaim},
		{"ConcurrentClaimsNeverShareADelivery", testConcurrentClaims},
		{"FinishAttemptRecordsOnlyTheCurrentAttempt", testFinishAttempt},
		{"FailuresDisableAndEnablingResets", testDisable},
		{"DeliveriesListNewestFirst", testListDeliveries},
		{"PruneDeletesOnlyEndedDeliveries", testPrune},
		{"ExpireFailsWhatADisabledWebhookLeftPending", testExpire},
		{"RedeliverMakesADeliveryDueAgain", testRedeliver},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func hook(t *testing.T, s store.Store, org, id string) store.Webhook {
	t.Helper()
	w := store.Webhook{ID: id, Org: org, URL: "https://example.com/" + id, Events: []string{"completed", "failed"},
		Secret: "whsec_" + id, Description: "d " + id}
	if err := s.CreateWebhook(ctx(t), w); err != nil {
		t.Fatalf("CreateWebhook %s: %v", id, err)
	}
	return w
}

func delivery(hookID, org, event string, due time.Time) store.Delivery {
	return store.Delivery{ID: hookID + "/" + event, WebhookID: hookID, Org: org, EventID: event, EventType: "completed",
		ImportID: "imp_1", Payload: []byte(`{"id":"` + event + `"}`), NextAttemptAt: due}
}

func addAll(t *testing.T, s store.Store, ds ...store.Delivery) int {
	t.Helper()
	n, err := s.AddDeliveries(ctx(t), ds)
	if err != nil {
		t.Fatalf("AddDeliveries: %v", err)
	}
	return n
}

func claim(t *testing.T, s store.Store, now time.Time, limit int, busy ...string) []store.Delivery {
	t.Helper()
	ds, err := s.ClaimDeliveries(ctx(t), now, now.Add(time.Minute), limit, busy)
	if err != nil {
		t.Fatalf("ClaimDeliveries: %v", err)
	}
	return ds
}

func ids(ds []store.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	slices.Sort(out)
	return out
}

func testWebhookCRUD(t *testing.T, s store.Store) {
	c := ctx(t)
	w := hook(t, s, "acme", "wh_1")
	hook(t, s, "acme", "wh_2")
	hook(t, s, "other", "wh_3")
	got, err := s.GetWebhook(c, "acme", "wh_1")
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != w.URL || got.Secret != w.Secret || !slices.Equal(got.Events, w.Events) || got.Description != w.Description ||
		got.Disabled || got.Failures != 0 || got.CreatedAt.IsZero() {
		t.Errorf("got %+v, want %+v", got, w)
	}
	if _, err := s.GetWebhook(c, "other", "wh_1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another organization's webhook: %v, want ErrNotFound", err)
	}
	page, err := s.ListWebhooks(c, "acme", "", 1)
	if err != nil || len(page) != 1 || page[0].ID != "wh_1" {
		t.Fatalf("first page %v, %v", page, err)
	}
	page, err = s.ListWebhooks(c, "acme", "wh_1", 10)
	if err != nil || len(page) != 1 || page[0].ID != "wh_2" {
		t.Fatalf("second page %v, %v", page, err)
	}
	upd := store.Webhook{ID: "wh_1", Org: "acme", URL: "https://example.com/new", Events: []string{"progress"}, Description: "new"}
	if _, err := s.UpdateWebhook(c, store.Webhook{ID: "wh_1", Org: "other", URL: "https://evil.example/"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update by another organization: %v, want ErrNotFound", err)
	}
	if after, err := s.UpdateWebhook(c, upd); err != nil || after.URL != upd.URL || !slices.Equal(after.Events, upd.Events) ||
		after.Description != "new" || after.Secret != w.Secret || !after.CreatedAt.Equal(got.CreatedAt) {
		t.Errorf("updated %+v (%v)", after, err)
	}
	if err := s.DeleteWebhook(c, "other", "wh_1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete by another organization: %v, want ErrNotFound", err)
	}
	if _, err := s.EnableWebhook(c, "other", "wh_1", false, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("disable by another organization: %v, want ErrNotFound", err)
	}
	addAll(t, s, delivery("wh_1", "acme", "e1", t0))
	if err := s.DeleteWebhook(c, "acme", "wh_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetWebhook(c, "acme", "wh_1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted webhook: %v, want ErrNotFound", err)
	}
	if err := s.DeleteWebhook(c, "acme", "wh_1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	if ds := claim(t, s, t0.Add(time.Hour), 10); len(ds) != 0 {
		t.Errorf("a deleted webhook's deliveries were claimed: %v", ids(ds))
	}
}

func testAddDeliveries(t *testing.T, s store.Store) {
	hook(t, s, "acme", "wh_1")
	d := delivery("wh_1", "acme", "e1", t0)
	if n := addAll(t, s, d); n != 1 {
		t.Errorf("first add stored %d, want 1", n)
	}
	if n := addAll(t, s, d, delivery("wh_1", "acme", "e2", t0)); n != 1 {
		t.Errorf("add again with one new stored %d, want 1", n)
	}
	if n := addAll(t, s, delivery("wh_gone", "acme", "e1", t0)); n != 0 {
		t.Errorf("a delivery of a webhook that does not exist was stored (%d)", n)
	}
	list, err := s.ListDeliveries(ctx(t), store.DeliveryFilter{Org: "acme", WebhookID: "wh_1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("%d deliveries, want 2", len(list))
	}
	for _, got := range list {
		if got.State != store.DeliveryPending || got.Attempts != 0 || got.EventType != "completed" || got.ImportID != "imp_1" ||
			string(got.Payload) != `{"id":"`+got.EventID+`"}` || !got.NextAttemptAt.Equal(t0) {
			t.Errorf("stored %+v", got)
		}
	}
}

func testClaim(t *testing.T, s store.Store) {
	hook(t, s, "acme", "wh_1")
	hook(t, s, "acme", "wh_2")
	hook(t, s, "other", "wh_3")
	addAll(t, s,
		delivery("wh_1", "acme", "e1", t0), delivery("wh_1", "acme", "e2", t0.Add(time.Second)),
		delivery("wh_2", "acme", "e1", t0.Add(time.Hour)), delivery("wh_3", "other", "e9", t0))
	if ds := claim(t, s, t0.Add(-time.Second), 10); len(ds) != 0 {
		t.Fatalf("claimed before anything was due: %v", ids(ds))
	}
	got := claim(t, s, t0.Add(2*time.Second), 10, "wh_3")
	if !slices.Equal(ids(got), []string{"wh_1/e1"}) {
		t.Fatalf("claimed %v, want the earliest due of wh_1 only (one a webhook, wh_2 not due, wh_3 busy)", ids(got))
	}
	if got[0].Attempts != 1 || !got[0].NextAttemptAt.Equal(t0.Add(2*time.Second).Add(time.Minute)) {
		t.Errorf("claimed %+v: want attempt 1, due again at the end of the lease", got[0])
	}
	// wh_1's second delivery is due and its first is leased: it may go now.
	got = claim(t, s, t0.Add(3*time.Second), 10)
	if !slices.Equal(ids(got), []string{"wh_1/e2", "wh_3/e9"}) {
		t.Fatalf("second claim %v, want wh_1/e2 and wh_3/e9", ids(got))
	}
	if ds := claim(t, s, t0.Add(30*time.Second), 10); len(ds) != 0 {
		t.Fatalf("leased deliveries claimed again before their lease ended: %v", ids(ds))
	}
	// A lease that ends (its process died) hands the delivery out again.
	got = claim(t, s, t0.Add(2*time.Minute), 1)
	if len(got) != 1 || got[0].ID != "wh_1/e1" || got[0].Attempts != 2 {
		t.Fatalf("after the lease: %+v, want wh_1/e1 at attempt 2", got)
	}
	// A disabled webhook's deliveries wait.
	if _, err := s.EnableWebhook(ctx(t), "acme", "wh_2", false, "by a test"); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, s, t0.Add(2*time.Hour), 10); slices.Contains(ids(got), "wh_2/e1") {
		t.Errorf("a disabled webhook's delivery was claimed")
	}
	if _, err := s.EnableWebhook(ctx(t), "acme", "wh_2", true, ""); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, s, t0.Add(3*time.Hour), 10); !slices.Contains(ids(got), "wh_2/e1") {
		t.Errorf("an enabled webhook's delivery was not claimed: %v", ids(got))
	}
}

func testConcurrentClaims(t *testing.T, s store.Store) {
	var ds []store.Delivery
	for h := range 8 {
		id := fmt.Sprintf("wh_%d", h)
		hook(t, s, "acme", id)
		for e := range 5 {
			ds = append(ds, delivery(id, "acme", fmt.Sprintf("e%d", e), t0))
		}
	}
	addAll(t, s, ds...)
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.ClaimDeliveries(ctx(t), t0, t0.Add(time.Hour), 3, nil)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, d := range got {
				seen[d.ID]++
			}
		}()
	}
	wg.Wait()
	for id, n := range seen {
		if n > 1 {
			t.Errorf("%s claimed %d times at once", id, n)
		}
	}
	if len(seen) != 18 {
		t.Errorf("6 claims of 3 took %d deliveries, want 18 (40 were due)", len(seen))
	}
}

func testFinishAttempt(t *testing.T, s store.Store) {
	hook(t, s, "acme", "wh_1")
	addAll(t, s, delivery("wh_1", "acme", "e1", t0))
	first := claim(t, s, t0, 1)[0]
	// The lease ends, another process claims attempt 2; attempt 1 reports late.
	second := claim(t, s, t0.Add(2*time.Minute), 1)[0]
	if _, ok, err := s.FinishAttempt(ctx(t), first, store.Attempt{State: store.DeliveryDelivered, Status: 200, At: t0}, 0, ""); err != nil || ok {
		t.Fatalf("a stale attempt was recorded (ok %v, err %v)", ok, err)
	}
	w, ok, err := s.FinishAttempt(ctx(t), second, store.Attempt{State: store.DeliveryPending, Status: 500, Error: "HTTP 500",
		NextAttemptAt: t0.Add(time.Hour), At: t0.Add(2 * time.Minute)}, 0, "")
	if err != nil || !ok || w.Failures != 1 {
		t.Fatalf("failed attempt: ok %v, err %v, failures %d (want 1)", ok, err, w.Failures)
	}
	if ds := claim(t, s, t0.Add(59*time.Minute), 1); len(ds) != 0 {
		t.Fatalf("claimed before its retry was due")
	}
	third := claim(t, s, t0.Add(time.Hour), 1)[0]
	if third.Attempts != 3 || third.LastStatus != 500 || third.LastError != "HTTP 500" {
		t.Errorf("third claim %+v", third)
	}
	at := t0.Add(time.Hour + time.Second)
	w, ok, err = s.FinishAttempt(ctx(t), third, store.Attempt{State: store.DeliveryDelivered, Status: 204, At: at}, 0, "")
	if err != nil || !ok || w.Failures != 0 {
		t.Fatalf("delivered: ok %v, err %v, failures %d (want 0)", ok, err, w.Failures)
	}
	list, err := s.ListDeliveries(ctx(t), store.DeliveryFilter{Org: "acme", WebhookID: "wh_1"})
	if err != nil || len(list) != 1 {
		t.Fatalf("%v, %v", list, err)
	}
	d := list[0]
	if d.State != store.DeliveryDelivered || d.Attempts != 3 || d.LastStatus != 204 || d.LastError != "" ||
		d.DeliveredAt == nil || !d.DeliveredAt.Equal(at) {
		t.Errorf("delivered delivery %+v", d)
	}
	if ds := claim(t, s, t0.Add(48*time.Hour), 10); len(ds) != 0 {
		t.Errorf("a delivered delivery was claimed again")
	}
}

func testDisable(t *testing.T, s store.Store) {
	hook(t, s, "acme", "wh_1")
	addAll(t, s, delivery("wh_1", "acme", "e1", t0), delivery("wh_1", "acme", "e2", t0))
	now := t0
	var w store.Webhook
	for i := range 3 {
		ds := claim(t, s, now, 1)
		if len(ds) != 1 {
			t.Fatalf("attempt %d: nothing to claim", i+1)
		}
		var err error
		w, _, err = s.FinishAttempt(ctx(t), ds[0], store.Attempt{State: store.DeliveryPending, Status: 503,
			NextAttemptAt: now.Add(time.Second), At: now}, 3, "3 attempts in a row failed")
		if err != nil {
			t.Fatal(err)
		}
		if w.Disabled != (i == 2) {
			t.Fatalf("after %d failures disabled is %v", i+1, w.Disabled)
		}
		now = now.Add(time.Second)
	}
	if w.DisabledReason != "3 attempts in a row failed" || w.Failures != 3 {
		t.Errorf("disabled webhook %+v", w)
	}
	if ds := claim(t, s, now.Add(time.Hour), 10); len(ds) != 0 {
		t.Errorf("a disabled webhook's deliveries were claimed")
	}
	w, err := s.EnableWebhook(ctx(t), "acme", "wh_1", true, "")
	if err != nil || w.Disabled || w.Failures != 0 || w.DisabledReason != "" {
		t.Fatalf("enabled: %+v, %v", w, err)
	}
	if ds := claim(t, s, now.Add(time.Hour), 10); len(ds) != 1 {
		t.Errorf("an enabled webhook's pending deliveries were not claimed (%d)", len(ds))
	}
}

func testListDeliveries(t *testing.T, s store.Store) {
	hook(t, s, "acme", "wh_1")
	hook(t, s, "other", "wh_2")
	for i := range 5 {
		addAll(t, s, delivery("wh_1", "acme", fmt.Sprintf("e%d", i), t0))
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}
	addAll(t, s, delivery("wh_2", "other", "e0", t0))
	d := claim(t, s, t0, 1, "wh_2")
	if _, _, err := s.FinishAttempt(ctx(t), d[0], store.Attempt{State: store.DeliveryFailed, Status: 410, At: t0}, 0, ""); err != nil {
		t.Fatal(err)
	}
	var got []string
	after := ""
	for {
		page, err := s.ListDeliveries(ctx(t), store.DeliveryFilter{Org: "acme", WebhookID: "wh_1", After: after, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			got = append(got, d.EventID)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].ID
	}
	if want := []string{"e4", "e3", "e2", "e1", "e0"}; !slices.Equal(got, want) {
		t.Errorf("pages %v, want %v", got, want)
	}
	failed, err := s.ListDeliveries(ctx(t), store.DeliveryFilter{Org: "acme", WebhookID: "wh_1", State: store.DeliveryFailed})
	if err != nil || len(failed) != 1 || failed[0].LastStatus != 410 {
		t.Errorf("failed ones: %+v, %v", failed, err)
	}
	if other, err := s.ListDeliveries(ctx(t), store.DeliveryFilter{Org: "other", WebhookID: "wh_1"}); err != nil || len(other) != 0 {
		t.Errorf("another organization listed %d deliveries of wh_1 (%v)", len(other), err)
	}
}

func testPrune(t *testing.T, s store.Store) {
	hook(t, s, "acme", "wh_1")
	addAll(t, s, delivery("wh_1", "acme", "e1", t0), delivery("wh_1", "acme", "e2", t0), delivery("wh_1", "acme", "e3", t0))
	for _, state := range []string{store.DeliveryDelivered, store.DeliveryFailed} {
		d := claim(t, s, t0, 1)[0]
		if _, _, err := s.FinishAttempt(ctx(t), d, store.Attempt{State: state, Status: 200, At: t0}, 0, ""); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.PruneDeliveries(ctx(t), t0.Add(-time.Second), 10); n != 0 {
		t.Errorf("pruned %d deliveries that ended after the cut", n)
	}
	// The pending one (its lease running) stays, however old.
	if n, err := s.PruneDeliveries(ctx(t), time.Now().Add(time.Hour), 1); err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want 1: the limit", n, err)
	}
	if n, err := s.PruneDeliveries(ctx(t), time.Now().Add(time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want the other ended one", n, err)
	}
	left, err := s.ListDeliveries(ctx(t), store.DeliveryFilter{Org: "acme", WebhookID: "wh_1"})
	if err != nil || len(left) != 1 || left[0].State != store.DeliveryPending {
		t.Errorf("left %+v (%v), want the pending delivery", left, err)
	}
}

func testExpire(t *testing.T, s store.Store) {
	hook(t, s, "acme", "wh_on")
	hook(t, s, "acme", "wh_off")
	addAll(t, s, delivery("wh_on", "acme", "e1", t0), delivery("wh_off", "acme", "e1", t0))
	if _, err := s.EnableWebhook(ctx(t), "acme", "wh_off", false, "test"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ExpireDeliveries(ctx(t), time.Now().Add(-time.Hour), "x"); err != nil || n != 0 {
		t.Fatalf("expired %d (%v) created after the cut", n, err)
	}
	if n, err := s.ExpireDeliveries(ctx(t), time.Now().Add(time.Hour), "the retry window ended while the webhook was disabled"); err != nil || n != 1 {
		t.Fatalf("expired %d (%v), want the disabled webhook's one", n, err)
	}
	off, err := s.ListDeliveries(ctx(t), store.DeliveryFilter{Org: "acme", WebhookID: "wh_off"})
	if err != nil || len(off) != 1 || off[0].State != store.DeliveryFailed || off[0].LastError != "the retry window ended while the webhook was disabled" {
		t.Errorf("disabled webhook's delivery %+v (%v)", off, err)
	}
	on, err := s.ListDeliveries(ctx(t), store.DeliveryFilter{Org: "acme", WebhookID: "wh_on"})
	if err != nil || len(on) != 1 || on[0].State != store.DeliveryPending {
		t.Errorf("enabled webhook's delivery %+v (%v): an enabled one fails at its own attempt", on, err)
	}
}

func testRedeliver(t *testing.T, s store.Store) {
	hook(t, s, "acme", "wh_1")
	addAll(t, s, delivery("wh_1", "acme", "e1", t0))
	d := claim(t, s, t0, 1)[0]
	if _, _, err := s.FinishAttempt(ctx(t), d, store.Attempt{State: store.DeliveryDelivered, Status: 200, At: t0}, 0, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RedeliverDelivery(ctx(t), "other", "wh_1", d.ID, t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another organization redelivered: %v", err)
	}
	if _, err := s.RedeliverDelivery(ctx(t), "acme", "wh_2", d.ID, t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("redelivered under another webhook: %v", err)
	}
	at := t0.Add(time.Hour)
	got, err := s.RedeliverDelivery(ctx(t), "acme", "wh_1", d.ID, at)
	if err != nil || got.State != store.DeliveryPending || !got.NextAttemptAt.Equal(at) || got.Attempts != 1 || got.DeliveredAt == nil {
		t.Fatalf("redelivered %+v (%v)", got, err)
	}
	again := claim(t, s, at, 1)
	if len(again) != 1 || again[0].ID != d.ID || again[0].Attempts != 2 {
		t.Errorf("claimed after a redeliver: %+v", again)
	}
}
