package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/faults"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/sqlite"
	"github.com/inlet-dev/inlet/internal/topology"
)

func TestBackoffDoublesUpToItsMostWithinTheWindow(t *testing.T) {
	p := Policy{Backoff: faults.Backoff{First: 30 * time.Second, Max: time.Hour}, RetryWindow: 24 * time.Hour}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		attempts int
		wait     time.Duration
	}{{1, 30 * time.Second}, {2, time.Minute}, {3, 2 * time.Minute}, {7, 32 * time.Minute}, {8, time.Hour}, {30, time.Hour}} {
		next, ok := p.Next(created, created, tc.attempts)
		if !ok || next.Sub(created) != tc.wait {
			t.Errorf("after failure %d: wait %s (retry %v), want %s", tc.attempts, next.Sub(created), ok, tc.wait)
		}
	}
	// A retry that would come after the window ends the delivery.
	if _, ok := p.Next(created, created.Add(23*time.Hour+30*time.Minute), 20); ok {
		t.Errorf("a retry past the 24 h window was allowed")
	}
	if _, ok := p.Next(created, created.Add(22*time.Hour), 20); !ok {
		t.Errorf("a retry within the window was refused")
	}
}

func TestValidate(t *testing.T) {
	hook, field, msg := Validate(events.WebhookCreate{URL: "https://example.com/hook?x=1"})
	if field != "" || !strings.HasPrefix(hook.Secret, SecretPrefix) || len(hook.Secret) < 40 ||
		strings.Join(hook.Events, ",") != strings.Join(events.DefaultWebhookEvents, ",") {
		t.Errorf("defaults: %+v (%s %s)", hook, field, msg)
	}
	if other, _, _ := Validate(events.WebhookCreate{URL: "https://example.com/"}); other.Secret == hook.Secret {
		t.Errorf("two generated secrets are equal")
	}
	hook, field, _ = Validate(events.WebhookCreate{URL: "http://127.0.0.1:9/x", Events: []string{"progress", "completed", "progress"}, Secret: "0123456789abcdef"})
	if field != "" || strings.Join(hook.Events, ",") != "progress,completed" || hook.Secret != "0123456789abcdef" {
		t.Errorf("given: %+v (%s)", hook, field)
	}
	for _, tc := range []struct {
		c     events.WebhookCreate
		field string
	}{
		{events.WebhookCreate{}, "url"},
		{events.WebhookCreate{URL: "ftp://example.com/"}, "url"},
		{events.WebhookCreate{URL: "https:///path"}, "url"},
		{events.WebhookCreate{URL: "https://a:b@example.com/"}, "url"},
		{events.WebhookCreate{URL: "https://example.com/#frag"}, "url"},
		{events.WebhookCreate{URL: "https://example.com/" + strings.Repeat("x", MaxURL)}, "url"},
		{events.WebhookCreate{URL: "https://example.com/", Events: []string{}}, "events"},
		{events.WebhookCreate{URL: "https://example.com/", Events: []string{"completed", "requested"}}, "events[1]"},
		{events.WebhookCreate{URL: "https://example.com/", Secret: "short"}, "secret"},
		{events.WebhookCreate{URL: "https://example.com/", Secret: "has a space in it ok"}, "secret"},
		{events.WebhookCreate{URL: "https://example.com/", Description: strings.Repeat("d", MaxDescription+1)}, "description"},
	} {
		if _, field, msg := Validate(tc.c); field != tc.field || msg == "" {
			t.Errorf("%+v: field %q (%s), want %q", tc.c, field, msg, tc.field)
		}
	}
}

func openStore(t *testing.T) store.Store {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "inlet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func eventMessage(t *testing.T, org, event, id string, at time.Time) *message.Message {
	ce, err := events.New(id, "inlet/test", event, "imp_1", map[string]string{"id": "imp_1"})
	if err != nil {
		t.Fatal(err)
	}
	ce.Time = at
	body, _ := json.Marshal(ce)
	msg := message.NewMessage(id, body)
	msg.Metadata.Set(topology.MetaSubject, events.Subject(org, "companies", event))
	return msg
}

// An event becomes one delivery per subscription of its organization that
// wants it and existed when it was published; a redelivered event adds none.
func TestConsumerRecordsEachDeliveryOnce(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	t0 := time.Now().UTC()
	for _, w := range []store.Webhook{
		{ID: "wh_a", Org: "acme", URL: "https://a.example/", Events: []string{"completed"}, Secret: "x", CreatedAt: t0},
		{ID: "wh_b", Org: "acme", URL: "https://b.example/", Events: []string{"failed"}, Secret: "x", CreatedAt: t0},
		{ID: "wh_c", Org: "acme", URL: "https://c.example/", Events: []string{"completed"}, Secret: "x", CreatedAt: t0.Add(time.Hour)},
		{ID: "wh_d", Org: "other", URL: "https://d.example/", Events: []string{"completed"}, Secret: "x", CreatedAt: t0},
		{ID: "wh_e", Org: "acme", URL: "https://e.example/", Events: []string{"completed"}, Secret: "x", CreatedAt: t0, Disabled: true},
	} {
		if err := s.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	kicks := 0
	h := (&Consumer{Store: s, Log: zerolog.Nop(), Delivered: func() { kicks++ }}).Handler()
	at := t0.Add(time.Minute)
	for range 2 {
		if err := h(eventMessage(t, "acme", events.EventCompleted, "imp_1:terminal", at)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h(eventMessage(t, "acme", events.EventRequested, "req:imp_1", at)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]int{"wh_a": 1, "wh_b": 0, "wh_c": 0, "wh_d": 0, "wh_e": 0} {
		org := "acme"
		if id == "wh_d" {
			org = "other"
		}
		ds, err := s.ListDeliveries(ctx, store.DeliveryFilter{Org: org, WebhookID: id})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != want {
			t.Errorf("%s has %d deliveries, want %d", id, len(ds), want)
		}
		for _, d := range ds {
			if d.ID != DeliveryID(id, "imp_1:terminal") || d.EventType != events.EventCompleted || d.ImportID != "imp_1" {
				t.Errorf("delivery %+v", d)
			}
		}
	}
	if kicks != 1 {
		t.Errorf("the dispatcher was woken %d times, want once (the redelivery added nothing)", kicks)
	}
}

// dispatch runs a dispatcher until the delivery of hook reaches a state
// other than pending, or several attempts were made.
func dispatch(t *testing.T, s store.Store, hook store.Webhook, p Policy) store.Delivery {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hook.Org, hook.Events, hook.Secret, hook.CreatedAt = "acme", []string{"completed"}, "secret-0123456789", time.Now().UTC()
	if err := s.CreateWebhook(ctx, hook); err != nil {
		t.Fatal(err)
	}
	d := store.Delivery{ID: DeliveryID(hook.ID, "e1"), WebhookID: hook.ID, Org: "acme", EventID: "e1", EventType: "completed",
		ImportID: "imp_1", Payload: []byte(`{"id":"e1"}`), NextAttemptAt: time.Now()}
	if _, err := s.AddDeliveries(ctx, []store.Delivery{d}); err != nil {
		t.Fatal(err)
	}
	if p.Timeout == 0 {
		p.Timeout = 2 * time.Second
	}
	p.Concurrency, p.PollEvery, p.RetryWindow = 2, 20*time.Millisecond, 2*time.Hour
	p.Backoff = faults.Backoff{First: time.Hour, Max: time.Hour} // one attempt, unless it succeeds
	disp := &Dispatcher{Store: s, Policy: p, Log: zerolog.Nop()}
	done := make(chan struct{})
	go func() { defer close(done); disp.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ds, err := s.ListDeliveries(ctx, store.DeliveryFilter{Org: "acme", WebhookID: hook.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Attempts > 0 && (ds[0].State != store.DeliveryPending || ds[0].LastError != "") {
			return ds[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no attempt was recorded")
	return store.Delivery{}
}

func TestDispatcherSendsSignedEvents(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	d := dispatch(t, openStore(t), store.Webhook{ID: "wh_ok", URL: srv.URL}, Policy{})
	if d.State != store.DeliveryDelivered || d.LastStatus != 202 {
		t.Fatalf("delivery %+v", d)
	}
	if err := events.VerifyWebhook("secret-0123456789", got, []byte(`{"id":"e1"}`), time.Minute, time.Now()); err != nil {
		t.Errorf("signature: %v", err)
	}
	if got.Get(events.WebhookIDHeader) != "e1" || got.Get(events.WebhookDeliveryHeader) != d.ID || got.Get(events.WebhookAttemptHeader) != "1" {
		t.Errorf("headers %v", got)
	}
}

// A redirect, here to another host, is not followed: the attempt fails
// saying so, and the other host hears nothing.
func TestDispatcherFollowsNoRedirect(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	d := dispatch(t, openStore(t), store.Webhook{ID: "wh_redirect", URL: srv.URL}, Policy{})
	if d.State != store.DeliveryPending || d.LastStatus != 307 || !strings.Contains(d.LastError, "redirects are not followed") {
		t.Errorf("delivery %+v", d)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect was followed (%d requests)", n)
	}
}

// A huge answer is read no further than maxAnswer, and the log quotes a
// bounded start of it.
func TestDispatcherBoundsTheAnswer(t *testing.T) {
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		chunk := []byte(strings.Repeat("e", 32<<10))
		for range 1024 { // 32 MiB, unless the reader goes away
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	d := dispatch(t, openStore(t), store.Webhook{ID: "wh_big", URL: srv.URL}, Policy{})
	if d.LastStatus != 500 || !strings.HasPrefix(d.LastError, "HTTP 500: eee") || len(d.LastError) > quotedAnswer+64 {
		t.Errorf("last error (%d bytes): %.100s", len(d.LastError), d.LastError)
	}
	if w := written.Load(); w >= 32<<20 {
		t.Errorf("the whole answer was read (%d bytes)", w)
	}
}

func TestDispatcherTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	d := dispatch(t, openStore(t), store.Webhook{ID: "wh_slow", URL: srv.URL}, Policy{Timeout: 300 * time.Millisecond})
	if d.LastStatus != 0 || d.LastError != "no answer within 300ms" {
		t.Errorf("delivery %+v", d)
	}
}

// The delivery log keeps an ended delivery for LogRetention, a pending one
// for as long as it is pending.
func TestDispatcherPrunesTheLog(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	old := time.Now().Add(-48 * time.Hour)
	if err := s.CreateWebhook(ctx, store.Webhook{ID: "wh_1", Org: "acme", URL: "http://127.0.0.1:9/", Events: []string{"completed"},
		Secret: "x", Disabled: true}); err != nil {
		t.Fatal(err)
	}
	var ds []store.Delivery
	for _, e := range []string{"e1", "e2", "e3"} {
		ds = append(ds, store.Delivery{ID: e, WebhookID: "wh_1", Org: "acme", EventID: e, EventType: "completed", Payload: []byte("{}"), NextAttemptAt: old})
	}
	if _, err := s.AddDeliveries(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnableWebhook(ctx, "acme", "wh_1", true, ""); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{old, time.Now()} {
		claimed, err := s.ClaimDeliveries(ctx, time.Now(), time.Now().Add(time.Hour), 1, nil)
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim: %v %v", claimed, err)
		}
		if _, _, err := s.FinishAttempt(ctx, claimed[0], store.Attempt{State: store.DeliveryDelivered, Status: 200, At: at}, 0, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.EnableWebhook(ctx, "acme", "wh_1", false, "test"); err != nil { // keep the pending one pending
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	disp := &Dispatcher{Store: s, Log: zerolog.Nop(), Policy: Policy{LogRetention: 24 * time.Hour}}
	done := make(chan struct{})
	go func() { defer close(done); disp.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, err := s.ListDeliveries(ctx, store.DeliveryFilter{Org: "acme", WebhookID: "wh_1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 2 {
			for _, d := range left {
				if d.UpdatedAt.Before(old.Add(time.Hour)) && d.State != store.DeliveryPending {
					t.Errorf("an ended delivery older than the retention was kept: %+v", d)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries left, want 2", len(left))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestBlockPrivateRefusesTheInside(t *testing.T) {
	for addr, refused := range map[string]bool{
		"127.0.0.1:80": true, "[::1]:443": true, "10.1.2.3:80": true, "192.168.0.10:80": true, "172.16.5.4:80": true,
		"169.254.169.254:80": true, "[fe80::1]:80": true, "0.0.0.0:80": true, "100.64.0.1:80": true, "[::ffff:127.0.0.1]:80": true,
		"[fd00::1]:80": true, "93.184.216.34:443": false, "[2606:4700::1]:443": false, "8.8.8.8:53": false,
	} {
		err := refusePrivate("tcp", addr, nil)
		if got := errors.Is(err, ErrPrivateAddress); got != refused {
			t.Errorf("%s: refused %v (%v), want %v", addr, got, err, refused)
		}
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	d := dispatch(t, openStore(t), store.Webhook{ID: "wh_inside", URL: srv.URL}, Policy{BlockPrivate: true})
	if d.State != store.DeliveryPending || d.LastStatus != 0 || !strings.Contains(d.LastError, "not a public address") {
		t.Errorf("delivery %+v", d)
	}
	if hits.Load() != 0 {
		t.Errorf("the private address was reached")
	}
}

// A create body that is not what it should be is refused naming the field.
func TestCreateRefusesBadBodies(t *testing.T) {
	api := &API{Store: openStore(t), Log: zerolog.Nop()}
	mux := http.NewServeMux()
	api.MountWrites(mux)
	for body, want := range map[string]string{
		`{"url": 5}`: `url: must be a JSON string, not number`,
		`{"url": "https://x.example/", "events": "completed"}`: `events: must be a JSON array of strings, not string`,
		`{"url": "https://x.example/", "colour": "red"}`:       `colour: is not a field here`,
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/webhooks", strings.NewReader(body)))
		var e events.ErrorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != http.StatusUnprocessableEntity || e.Error.Code != "invalid_webhook" || !strings.HasPrefix(e.Error.Message, want) {
			t.Errorf("%s: %d %s, want 422 %q", body, rec.Code, rec.Body, want)
		}
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/webhooks", strings.NewReader(`{"url": "https://x.example/", "description": "`+strings.Repeat("d", maxBody)+`"}`)))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over %d bytes: %d", maxBody, rec.Code)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/webhooks", strings.NewReader(`[1,2`)))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("not JSON: %d", rec.Code)
	}
}

func TestUpdateChangesOnlyWhatItNames(t *testing.T) {
	s := openStore(t)
	api := &API{Store: s, Log: zerolog.Nop()}
	mux := http.NewServeMux()
	api.MountWrites(mux)
	api.MountReads(mux)
	do := func(method, path, body string) (int, []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set(events.OrgHeader, "acme")
		mux.ServeHTTP(rec, req)
		return rec.Code, rec.Body.Bytes()
	}
	code, b := do(http.MethodPost, "/v1/webhooks", `{"url": "https://a.example/", "events": ["completed"], "description": "first"}`)
	var w events.Webhook
	if err := json.Unmarshal(b, &w); err != nil || code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	code, b = do(http.MethodPatch, "/v1/webhooks/"+w.ID, `{"events": ["failed", "progress"]}`)
	var got events.Webhook
	_ = json.Unmarshal(b, &got)
	if code != http.StatusOK || got.URL != w.URL || strings.Join(got.Events, ",") != "failed,progress" || got.Description != "first" || got.Secret != "" {
		t.Errorf("patch events: %d %s", code, b)
	}
	stored, err := s.GetWebhook(context.Background(), "acme", w.ID)
	if err != nil || stored.Secret != w.Secret {
		t.Errorf("the secret changed: %v", err)
	}
	for body, want := range map[string]string{
		`{"url": "ftp://a.example/"}`:      "url: must be an http or https URL",
		`{"events": []}`:                   "events: must name at least one event",
		`{"secret": "0123456789abcdefgh"}`: "secret: is not a field here (url, events, description; to rotate the secret",
	} {
		code, b := do(http.MethodPatch, "/v1/webhooks/"+w.ID, body)
		var e events.ErrorBody
		_ = json.Unmarshal(b, &e)
		if code != http.StatusUnprocessableEntity || !strings.HasPrefix(e.Error.Message, want) {
			t.Errorf("%s: %d %s, want 422 %q", body, code, b, want)
		}
	}
	if code, _ := do(http.MethodPatch, "/v1/webhooks/wh_nope", `{"description": "x"}`); code != http.StatusNotFound {
		t.Errorf("patch of no webhook: %d", code)
	}
}
