package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
)

// received is one request a receiver got.
type received struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

// receiver is a local HTTP endpoint that webhooks are pointed at: each path
// answers with its own behaviour and keeps every request it got.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      map[string][]received
	changed  chan struct{}
	behavior map[string]func(n int, w http.ResponseWriter, r *http.Request) // n: the request's number on its path, from 1
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{got: map[string][]received{}, changed: make(chan struct{}),
		behavior: map[string]func(int, http.ResponseWriter, *http.Request){}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got[r.URL.Path] = append(rc.got[r.URL.Path], received{Header: r.Header.Clone(), Body: body, At: time.Now()})
		n := len(rc.got[r.URL.Path])
		close(rc.changed)
		rc.changed = make(chan struct{})
		b := rc.behavior[r.URL.Path]
		rc.mu.Unlock()
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if b == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		b(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) on(path string, b func(n int, w http.ResponseWriter, r *http.Request)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.behavior[path] = b
}

func (rc *receiver) requests(path string) []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got[path])
}

// wait waits until path got at least n requests.
func (rc *receiver) wait(t *testing.T, path string, n int, timeout time.Duration) []received {
	t.Helper()
	deadline := time.After(timeout)
	for {
		rc.mu.Lock()
		got, ch := slices.Clone(rc.got[path]), rc.changed
		rc.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s got %d requests, want ≥ %d within %s", path, len(got), n, timeout)
		}
	}
}

// delivered is a request's event, checked: a valid signature by secret,
// the headers naming the event in the body.
func checkDelivery(t *testing.T, r received, secret string) events.CloudEvent {
	t.Helper()
	if err := events.VerifyWebhook(secret, r.Header, r.Body, 5*time.Minute, time.Now()); err != nil {
		t.Fatalf("delivery does not verify: %v (headers %v)", err, r.Header)
	}
	if ct := r.Header.Get("Content-Type"); ct != events.ContentType {
		t.Errorf("Content-Type %q, want %q", ct, events.ContentType)
	}
	ce, err := events.Decode(r.Body)
	if err != nil {
		t.Fatalf("body is not a CloudEvent: %v\n%s", err, r.Body)
	}
	name, _, _ := events.EventFromType(ce.Type)
	if ce.ID == "" || r.Header.Get(events.WebhookIDHeader) != ce.ID || r.Header.Get(events.WebhookTypeHeader) != name {
		t.Errorf("headers id %q type %q, body id %q type %q", r.Header.Get(events.WebhookIDHeader),
			r.Header.Get(events.WebhookTypeHeader), ce.ID, ce.Type)
	}
	// A signature by another secret, or of another body, does not verify.
	if events.VerifyWebhook(secret+"x", r.Header, r.Body, 0, time.Now()) == nil ||
		events.VerifyWebhook(secret, r.Header, append(slices.Clone(r.Body), ' '), 0, time.Now()) == nil {
		t.Errorf("a wrong secret or a changed body verifies")
	}
	return ce
}

// createWebhook subscribes url for org through the gateway (a write) and
// returns the answer, secret included.
func createWebhook(t *testing.T, c *Cluster, org string, body map[string]any) events.Webhook {
	t.Helper()
	resp := postWebhook(t, c, org, body)
	if resp.Status != http.StatusCreated {
		t.Fatalf("create webhook: %d %s", resp.Status, resp.Body)
	}
	var w events.Webhook
	resp.JSON(t, &w)
	if w.Secret == "" || w.OrganizationID != org || w.Status != events.WebhookEnabled {
		t.Fatalf("created %+v", w)
	}
	return w
}

func postWebhook(t *testing.T, c *Cluster, org string, body map[string]any) Response {
	t.Helper()
	b, _ := json.Marshal(body)
	return c.Call("gateway", http.MethodPost, "/v1/webhooks", c.Key(org), http.Header{"Content-Type": {"application/json"}}, bytes.NewReader(b))
}

// webhook reads a subscription through the projector (a read).
func webhook(t *testing.T, c *Cluster, org, id string) events.Webhook {
	t.Helper()
	resp := c.Read(org, "/v1/webhooks/"+id, nil)
	if resp.Status != http.StatusOK {
		t.Fatalf("GET webhook %s: %d %s", id, resp.Status, resp.Body)
	}
	var w events.Webhook
	resp.JSON(t, &w)
	if w.Secret != "" {
		t.Errorf("GET shows the secret")
	}
	return w
}

func deliveries(t *testing.T, c *Cluster, org, id string) []events.WebhookDelivery {
	t.Helper()
	resp := c.Read(org, "/v1/webhooks/"+id+"/deliveries", nil)
	if resp.Status != http.StatusOK {
		t.Fatalf("GET deliveries of %s: %d %s", id, resp.Status, resp.Body)
	}
	var page events.Page[events.WebhookDelivery]
	resp.JSON(t, &page)
	return page.Data
}

// waitDelivery waits until webhook id has a delivery of eventType in state.
func waitDelivery(t *testing.T, c *Cluster, org, id, eventType, state string, timeout time.Duration) events.WebhookDelivery {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []events.WebhookDelivery
	for time.Now().Before(deadline) {
		last = deliveries(t, c, org, id)
		for _, d := range last {
			if d.EventType == eventType && d.State == state {
				return d
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no %s delivery of %s to %s within %s; the log: %+v", state, eventType, id, timeout, last)
	return events.WebhookDelivery{}
}

const hookCompaniesCSV = "code,name\nACME,Acme\nGLOBEX,Globex\n"

// Webhooks against a real local receiver, on the separate shape (writes
// through the gateway, reads through the projector, the webhooks service
// delivering), with retries, a kill mid-delivery, disabling after
// failures, and organizations kept apart.
func TestWebhooks(t *testing.T) {
	rc := newReceiver(t)
	orgs := []string{"wh-ok", "wh-flaky", "wh-kill", "wh-dead", "wh-other"}
	c := NewCluster(t, Options{Orgs: orgs, Env: map[string]map[string]string{"webhooks": {
		"INLET_WEBHOOK_BACKOFF":       "200ms",
		"INLET_WEBHOOK_BACKOFF_MAX":   "1s",
		"INLET_WEBHOOK_RETRY_WINDOW":  "10m",
		"INLET_WEBHOOK_TIMEOUT":       "2s",
		"INLET_WEBHOOK_DISABLE_AFTER": "4",
		"INLET_WEBHOOK_POLL":          "200ms",
	}}})

	// Another organization subscribes to every event of its own imports.
	other := createWebhook(t, c, "wh-other", map[string]any{"url": rc.URL + "/other", "events": events.WebhookEvents})

	t.Run("Refused", func(t *testing.T) {
		for _, tc := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"url": "ftp://example.com/x"}, "url"},
			{map[string]any{"url": "not a url"}, "url"},
			{map[string]any{"url": "https://user:pw@example.com/"}, "url"},
			{map[string]any{"url": "https://example.com/" + strings.Repeat("a", 3000)}, "url"},
			{map[string]any{"url": "https://example.com/", "events": []string{"completed", "nope"}}, "events[1]"},
			{map[string]any{"url": "https://example.com/", "events": []string{}}, "events"},
			{map[string]any{"url": "https://example.com/", "secret": "short"}, "secret"},
			{map[string]any{"url": "https://example.com/", "colour": "red"}, "colour"},
		} {
			resp := postWebhook(t, c, "wh-ok", tc.body)
			var e events.ErrorBody
			resp.JSON(t, &e)
			if resp.Status != http.StatusUnprocessableEntity || e.Error.Code != "invalid_webhook" || e.Error.Details["field"] != tc.field {
				t.Errorf("%v: %d %s, want 422 invalid_webhook on %s", tc.body, resp.Status, resp.Body, tc.field)
			}
		}
		// Another organization's webhook does not exist for this one.
		if resp := c.Read("wh-ok", "/v1/webhooks/"+other.ID, nil); resp.Status != http.StatusNotFound {
			t.Errorf("another organization's webhook: %d %s", resp.Status, resp.Body)
		}
		if resp := c.Call("gateway", http.MethodDelete, "/v1/webhooks/"+other.ID, c.Key("wh-ok"), nil, nil); resp.Status != http.StatusNotFound {
			t.Errorf("delete of another organization's webhook: %d %s", resp.Status, resp.Body)
		}
	})

	t.Run("CompletedImportIsDeliveredSigned", func(t *testing.T) {
		const secret = "ok-secret-0123456789"
		w := createWebhook(t, c, "wh-ok", map[string]any{"url": rc.URL + "/ok", "secret": secret, "description": "ci"})
		if w.Secret != secret || !slices.Equal(w.Events, events.DefaultWebhookEvents) {
			t.Errorf("created %+v: want the given secret and the terminal events", w)
		}
		var list events.Page[events.Webhook]
		c.Read("wh-ok", "/v1/webhooks", nil).JSON(t, &list)
		if len(list.Data) != 1 || list.Data[0].ID != w.ID || list.Data[0].Secret != "" {
			t.Errorf("list %+v", list)
		}
		id := c.Upload("wh-ok", "companies", "companies.csv", hookCompaniesCSV, events.Options{})
		if imp := c.WaitTerminal(id); imp.Status != events.StatusCompleted {
			t.Fatalf("import %s", imp.Status)
		}
		got := rc.wait(t, "/ok", 1, 30*time.Second)
		ce := checkDelivery(t, got[0], secret)
		var imp events.Import
		if err := json.Unmarshal(ce.Data, &imp); err != nil || ce.Subject != id || imp.ID != id || imp.Status != events.StatusCompleted {
			t.Errorf("delivered %s about %s (%v): %s", ce.Type, ce.Subject, err, ce.Data)
		}
		d := waitDelivery(t, c, "wh-ok", w.ID, events.EventCompleted, events.DeliveryDelivered, 10*time.Second)
		if d.EventID != ce.ID || d.ImportID != id || d.Attempts != 1 || d.LastStatusCode == nil || *d.LastStatusCode != 204 ||
			d.LastError != nil || d.NextAttemptAt != nil || d.DeliveredAt == nil || got[0].Header.Get(events.WebhookDeliveryHeader) != d.ID {
			t.Errorf("delivery log %+v", d)
		}
	})

	t.Run("CommandLine", func(t *testing.T) {
		run := func(args ...string) string {
			t.Helper()
			code, out, errOut := c.cli("wh-ok", args...)
			if code != 0 {
				t.Fatalf("inlet %v: exit %d\n%s%s", args, code, out, errOut)
			}
			return out
		}
		var created events.Webhook
		if err := json.Unmarshal([]byte(run("webhooks", "create", rc.URL+"/cli", "-e", "completed,failed", "-d", "from the CLI", "--json")), &created); err != nil {
			t.Fatal(err)
		}
		if created.Secret == "" || strings.Join(created.Events, ",") != "completed,failed" || created.Description != "from the CLI" {
			t.Errorf("created %+v", created)
		}
		var list []events.Webhook
		if err := json.Unmarshal([]byte(run("webhooks", "list", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		var ok events.Webhook
		for _, w := range list {
			if strings.HasSuffix(w.URL, "/ok") {
				ok = w
			}
		}
		if len(list) != 2 || ok.ID == "" {
			t.Fatalf("list %+v", list)
		}
		var log []events.WebhookDelivery
		if err := json.Unmarshal([]byte(run("webhooks", "deliveries", ok.ID, "--state", "delivered", "--json")), &log); err != nil {
			t.Fatal(err)
		}
		if len(log) != 1 || log[0].EventType != events.EventCompleted {
			t.Errorf("deliveries %+v", log)
		}
		if out := run("webhooks", "update", created.ID, "-e", "progress", "--url", rc.URL+"/cli2"); !strings.Contains(out, "/cli2 for progress") {
			t.Errorf("update printed %q", out)
		}
		if w := webhook(t, c, "wh-ok", created.ID); w.URL != rc.URL+"/cli2" || strings.Join(w.Events, ",") != "progress" || w.Description != "from the CLI" {
			t.Errorf("after the update: %+v", w)
		}
		if out := run("webhooks", "disable", created.ID); !strings.Contains(out, "disabled") {
			t.Errorf("disable printed %q", out)
		}
		if out := run("webhooks", "list"); !strings.Contains(out, created.ID) || !strings.Contains(out, "disabled (") {
			t.Errorf("list printed %q", out)
		}
		run("webhooks", "delete", created.ID)
		if code, _, errOut := c.cli("wh-ok", "webhooks", "delete", created.ID); code != 1 || !strings.Contains(errOut, "no webhook") {
			t.Errorf("second delete: exit %d %s", code, errOut)
		}
		if code, _, errOut := c.cli("wh-ok", "webhooks", "create", "ftp://example.com/"); code != 1 || !strings.Contains(errOut, "url") {
			t.Errorf("invalid create: exit %d %s", code, errOut)
		}
	})

	t.Run("FailingReceiverRecovers", func(t *testing.T) {
		rc.on("/flaky", func(n int, w http.ResponseWriter, _ *http.Request) {
			if n <= 2 {
				http.Error(w, "database is down", http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		w := createWebhook(t, c, "wh-flaky", map[string]any{"url": rc.URL + "/flaky"})
		id := c.Upload("wh-flaky", "companies", "companies.csv", hookCompaniesCSV, events.Options{})
		c.WaitTerminal(id)
		got := rc.wait(t, "/flaky", 3, 30*time.Second)
		d := waitDelivery(t, c, "wh-flaky", w.ID, events.EventCompleted, events.DeliveryDelivered, 10*time.Second)
		if d.Attempts != 3 || *d.LastStatusCode != 200 || d.LastError != nil {
			t.Errorf("delivery log %+v: want delivered at attempt 3", d)
		}
		for i, r := range got {
			ce := checkDelivery(t, r, w.Secret)
			if ce.ID != d.EventID || r.Header.Get(events.WebhookAttemptHeader) != []string{"1", "2", "3"}[i] {
				t.Errorf("request %d: event %s attempt %s", i+1, ce.ID, r.Header.Get(events.WebhookAttemptHeader))
			}
		}
		// Backoff: the attempts were spaced, by 200 ms then 400 ms at least.
		if gap := got[2].At.Sub(got[1].At); gap < 400*time.Millisecond {
			t.Errorf("second retry came %s after the first, want ≥ 400ms", gap)
		}
		if w := webhook(t, c, "wh-flaky", w.ID); w.ConsecutiveFailures != 0 || w.Status != events.WebhookEnabled {
			t.Errorf("after recovering: %+v", w)
		}
		// The webhooks service counts attempts by outcome: the two retried
		// here, and the two delivered so far (this one and the first test's).
		r, err := Do(c.HTTP, http.MethodGet, "http://"+c.Proc("webhooks", 0).Addr+"/metrics", "", nil, nil)
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("webhooks /metrics: %v %d", err, r.Status)
		}
		m := parseMetrics(t, r.Body)
		if m[`inlet_webhook_attempts_total{outcome="retrying"}`] != 2 || m[`inlet_webhook_attempts_total{outcome="delivered"}`] != 2 {
			t.Errorf("attempt counters: retrying %v, delivered %v; want 2 and 2", m[`inlet_webhook_attempts_total{outcome="retrying"}`],
				m[`inlet_webhook_attempts_total{outcome="delivered"}`])
		}
	})

	t.Run("KilledMidDeliveryDeliversLater", func(t *testing.T) {
		arrived := make(chan struct{}, 1)
		rc.on("/block", func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				arrived <- struct{}{}
				select { // held until the sender dies (its connection closes)
				case <-r.Context().Done():
				case <-time.After(time.Minute):
				}
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		w := createWebhook(t, c, "wh-kill", map[string]any{"url": rc.URL + "/block"})
		id := c.Upload("wh-kill", "companies", "companies.csv", hookCompaniesCSV, events.Options{})
		c.WaitTerminal(id)
		select {
		case <-arrived:
		case <-time.After(30 * time.Second):
			t.Fatal("the delivery never arrived")
		}
		c.Kill("webhooks", 0)
		c.Restart("webhooks", 0)
		got := rc.wait(t, "/block", 2, 60*time.Second)
		d := waitDelivery(t, c, "wh-kill", w.ID, events.EventCompleted, events.DeliveryDelivered, 20*time.Second)
		if d.Attempts < 2 {
			t.Errorf("delivery log %+v: want the attempt cut by the kill counted", d)
		}
		got = rc.requests("/block")
		for i, r := range got {
			if ce := checkDelivery(t, r, w.Secret); ce.ID != d.EventID || r.Header.Get(events.WebhookDeliveryHeader) != d.ID {
				t.Errorf("request %d carries event %s delivery %s, want %s %s", i+1, ce.ID, r.Header.Get(events.WebhookDeliveryHeader), d.EventID, d.ID)
			}
		}
		if n := len(deliveries(t, c, "wh-kill", w.ID)); n != 1 {
			t.Errorf("%d deliveries in the log, want 1: the event was recorded twice", n)
		}
	})

	t.Run("DisabledAfterRepeatedFailures", func(t *testing.T) {
		var healthy sync.Mutex // held while the receiver fails
		failing := true
		rc.on("/dead", func(_ int, w http.ResponseWriter, _ *http.Request) {
			healthy.Lock()
			defer healthy.Unlock()
			if failing {
				http.Error(w, "gone fishing", http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		w := createWebhook(t, c, "wh-dead", map[string]any{"url": rc.URL + "/dead"})
		id := c.Upload("wh-dead", "companies", "companies.csv", hookCompaniesCSV, events.Options{})
		c.WaitTerminal(id)
		rc.wait(t, "/dead", 4, 30*time.Second)
		deadline := time.Now().Add(10 * time.Second)
		var now events.Webhook
		for now = webhook(t, c, "wh-dead", w.ID); now.Status != events.WebhookDisabled && time.Now().Before(deadline); now = webhook(t, c, "wh-dead", w.ID) {
			time.Sleep(100 * time.Millisecond)
		}
		if now.Status != events.WebhookDisabled || now.ConsecutiveFailures != 4 || now.DisabledReason == nil ||
			!strings.Contains(*now.DisabledReason, "4 attempts in a row failed") || !strings.Contains(*now.DisabledReason, "HTTP 503") {
			t.Fatalf("after 4 failures: %+v", now)
		}
		d := waitDelivery(t, c, "wh-dead", w.ID, events.EventCompleted, events.DeliveryPending, 5*time.Second)
		if d.Attempts != 4 || *d.LastStatusCode != 503 || d.LastError == nil || !strings.Contains(*d.LastError, "gone fishing") {
			t.Errorf("delivery log %+v", d)
		}
		time.Sleep(2 * time.Second) // longer than the longest backoff: a live subscription would be tried again
		if n := len(rc.requests("/dead")); n != 4 {
			t.Errorf("a disabled subscription got %d requests, want 4", n)
		}
		// Enabled again, it gets what waited.
		healthy.Lock()
		failing = false
		healthy.Unlock()
		resp := c.Call("gateway", http.MethodPost, "/v1/webhooks/"+w.ID+"/enable", c.Key("wh-dead"), nil, nil)
		var enabled events.Webhook
		resp.JSON(t, &enabled)
		if resp.Status != http.StatusOK || enabled.Status != events.WebhookEnabled || enabled.ConsecutiveFailures != 0 {
			t.Fatalf("enable: %d %s", resp.Status, resp.Body)
		}
		d = waitDelivery(t, c, "wh-dead", w.ID, events.EventCompleted, events.DeliveryDelivered, 20*time.Second)
		if d.Attempts != 5 {
			t.Errorf("delivered at attempt %d, want 5", d.Attempts)
		}
		// Asked for again (a receiver lost it), it comes again: the same event.
		if _, err := c.Client("wh-dead").Redeliver(context.Background(), w.ID, d.ID); err != nil {
			t.Fatal(err)
		}
		got := rc.wait(t, "/dead", 6, 20*time.Second)
		if r := got[5]; r.Header.Get(events.WebhookIDHeader) != d.EventID || r.Header.Get(events.WebhookAttemptHeader) != "6" {
			t.Errorf("redelivery: event %s attempt %s, want %s 6", r.Header.Get(events.WebhookIDHeader), r.Header.Get(events.WebhookAttemptHeader), d.EventID)
		}
		checkDelivery(t, got[5], w.Secret)
	})

	t.Run("OrganizationsAreKeptApart", func(t *testing.T) {
		id := c.Upload("wh-other", "companies", "companies.csv", hookCompaniesCSV, events.Options{})
		c.WaitTerminal(id)
		waitDelivery(t, c, "wh-other", other.ID, events.EventCompleted, events.DeliveryDelivered, 30*time.Second)
		seen := map[string]bool{}
		for _, r := range rc.requests("/other") {
			ce := checkDelivery(t, r, other.Secret)
			if ce.Subject != id {
				t.Errorf("wh-other's webhook got an event of import %s (%s), not its own", ce.Subject, ce.Type)
			}
			name, _, _ := events.EventFromType(ce.Type)
			seen[name] = true
		}
		for _, want := range []string{events.EventQueued, events.EventStarted, events.EventProgress, events.EventPhaseCompleted, events.EventCompleted} {
			if !seen[want] {
				t.Errorf("a subscription to every event got no %s (got %v)", want, seen)
			}
		}
		for _, path := range []string{"/ok", "/flaky", "/block", "/dead"} {
			for _, r := range rc.requests(path) {
				if ce, _ := events.Decode(r.Body); ce.Subject == id {
					t.Errorf("%s got wh-other's event %s", path, ce.Type)
				}
			}
		}
		// Deleted, it receives nothing more.
		if resp := c.Call("gateway", http.MethodDelete, "/v1/webhooks/"+other.ID, c.Key("wh-other"), nil, nil); resp.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", resp.Status, resp.Body)
		}
		if resp := c.Read("wh-other", "/v1/webhooks/"+other.ID, nil); resp.Status != http.StatusNotFound {
			t.Errorf("deleted webhook: %d", resp.Status)
		}
		before := len(rc.requests("/other"))
		c.WaitTerminal(c.Upload("wh-other", "companies", "companies.csv", hookCompaniesCSV, events.Options{}))
		time.Sleep(time.Second)
		if n := len(rc.requests("/other")); n != before {
			t.Errorf("a deleted webhook got %d more requests", n-before)
		}
	})
}
