package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
)

// TestDeadlines: with every phase service stopped, the projector's sweep
// still ends imports whose time is up: one past its deadline ends timed_out,
// one still waiting for its file at expires_at ends expired. Started again,
// the phases leave both as they ended.
func TestDeadlines(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{Env: map[string]map[string]string{
		"projector": {"INLET_SWEEP_INTERVAL": "200ms", "INLET_UPLOAD_TTL": "3s"},
		"gateway":   {"INLET_UPLOAD_TTL": "3s"},
	}})
	const org = "acme"
	c.StopPhases()

	deadline := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
	late := c.Created(c.CreateJSON(org, map[string]any{
		"resource": "companies", "deadline": deadline.Format(time.RFC3339),
		"inputs": []map[string]any{{"code": "DL", "name": "Deadline"}},
	}, nil))
	if late.Deadline == nil || !late.Deadline.Equal(deadline) {
		t.Errorf("deadline echoed as %v, want %s", late.Deadline, deadline)
	}
	waiting := c.Created(c.CreateJSON(org, map[string]any{"resource": "companies", "format": "csv"}, nil))
	if waiting.Status != events.StatusRequested || waiting.ExpiresAt == nil || waiting.Links.Upload == "" {
		t.Fatalf("options alone: %s expires_at %v upload %q, want requested with both", waiting.Status, waiting.ExpiresAt, waiting.Links.Upload)
	}
	if d := waiting.ExpiresAt.Sub(waiting.CreatedAt); d < 2*time.Second || d > 4*time.Second {
		t.Errorf("expires_at is created_at + %s, want INLET_UPLOAD_TTL=3s", d)
	}

	timedOut := c.WaitStatus(late.ID, events.StatusTimedOut, 30*time.Second)
	if time.Now().Before(deadline) {
		t.Errorf("timed out before its deadline %s", deadline)
	}
	if timedOut.Reason == nil || !strings.Contains(*timedOut.Reason, "deadline") || timedOut.CompletedAt == nil {
		t.Errorf("timed_out: reason %s, completed_at %v", deref(timedOut.Reason), timedOut.CompletedAt)
	}
	expired := c.WaitStatus(waiting.ID, events.StatusExpired, 30*time.Second)
	if expired.Reason == nil || !strings.Contains(*expired.Reason, "expires_at") || expired.CompletedAt == nil {
		t.Errorf("expired: reason %s, completed_at %v", deref(expired.Reason), expired.CompletedAt)
	}

	// Too late for the file: the gateway's upload route says so.
	if r := c.Call("gateway", http.MethodPut, "/v1/imports/"+waiting.ID+"/upload", c.Key(org),
		http.Header{"Content-Type": {"text/csv"}}, strings.NewReader("code,name\nLATE,Late\n")); r.Status != http.StatusGone {
		t.Errorf("upload after expires_at: %d %s, want 410", r.Status, r.Body)
	}

	// The phases come back: the requests waiting in the stream must not
	// revive either import.
	c.StartPhases()
	after := run(c, org, "companies", "c.csv", "code,name\nOK,Fine\n", nil)
	checkEnded(t, "an import after the restart", after, events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Created: 1})
	time.Sleep(2 * time.Second)
	if imp, _ := c.Import(late.ID); imp.Status != events.StatusTimedOut || imp.Stats.Created != 0 {
		t.Errorf("after the phases restarted the timed-out import is %s with %+v", imp.Status, imp.Stats)
	}
	if imp, _ := c.Import(waiting.ID); imp.Status != events.StatusExpired {
		t.Errorf("after the phases restarted the expired import is %s", imp.Status)
	}
	checkKeys(t, "companies", fieldSet(t, c, org, "live", "companies", "code"), "ok")
	listed := c.listImports(org, nil)
	for _, s := range []events.Status{events.StatusTimedOut, events.StatusExpired} {
		if l := c.listImports(org, map[string][]string{"status": {string(s)}}); len(l.Data) != 1 {
			t.Errorf("status=%s lists %v (all: %v)", s, ids(l.Data), ids(listed.Data))
		}
	}
}
