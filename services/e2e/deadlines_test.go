package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// TestDeadlines: with every phase service stopped, the projector's sweep
// still ends imports whose time is up: one past its deadline ends timed_out,
// one still waiting for its file at expires_at ends expired. Started again,
// the phases leave both as they ended.
func TestDeadlines(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 20, Env: map[string]map[string]string{
		"projector": {"INLET_SWEEP_INTERVAL": "200ms", "INLET_UPLOAD_TTL": "3s"},
		"gateway":   {"INLET_UPLOAD_TTL": "3s"},
	}})
	const org = "acme"
	c.StopPhases()

	deadline := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
	late := c.Created(org, client.CreateRequest{
		Options: events.Options{Resource: "companies", Deadline: &deadline},
		Inputs:  []json.RawMessage{json.RawMessage(`{"code":"DL","name":"Deadline"}`)},
	})
	if late.Deadline == nil || !late.Deadline.Equal(deadline) {
		t.Errorf("deadline echoed as %v, want %s", late.Deadline, deadline)
	}
	waiting := c.Created(org, client.CreateRequest{Options: events.Options{Resource: "companies", Format: "csv"}})
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
	after := run(c, org, "companies", "c.csv", "code,name\nOK,Fine\n", events.Options{})
	checkEnded(t, "an import after the restart", after, events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Created: 1})
	time.Sleep(2 * time.Second)
	if imp, _ := c.Import(late.ID); imp.Status != events.StatusTimedOut || imp.Stats.Created != 0 {
		t.Errorf("after the phases restarted the timed-out import is %s with %+v", imp.Status, imp.Stats)
	}
	if imp, _ := c.Import(waiting.ID); imp.Status != events.StatusExpired {
		t.Errorf("after the phases restarted the expired import is %s", imp.Status)
	}
	checkKeys(t, "companies", fieldSet(t, c, org, "live", "companies", "code"), "ok")
	// A deadline that passes while the phases work: the import ends
	// timed_out, and once the pipeline is quiet its stats still count
	// exactly what is stored.
	var inputs []json.RawMessage
	for i := 0; i < 2000; i++ {
		inputs = append(inputs, json.RawMessage(fmt.Sprintf(`{"code":"RUN%d","name":"Running"}`, i)))
	}
	busyDeadline := time.Now().Add(1500 * time.Millisecond).UTC()
	busy := c.Created(org, client.CreateRequest{Options: events.Options{Resource: "companies", Deadline: &busyDeadline}, Inputs: inputs})
	end := c.WaitTerminal(busy.ID)
	if end.Status != events.StatusTimedOut {
		t.Errorf("busy import ended %s (reason %s), want timed_out", end.Status, deref(end.Reason))
	}
	c.waitQuiet(busy.ID, 2*time.Second, time.Minute)
	final, _ := c.Import(busy.ID)
	stored := int64(0)
	for _, r := range c.Records(org, "companies") {
		if strings.HasPrefix(r.Fields()["code"].(string), "RUN") {
			stored++
		}
	}
	t.Logf("busy import: %s, %d of 2000 stored, stats %+v", final.Status, stored, final.Stats)
	if final.Status != events.StatusTimedOut || final.Stats.Created != stored {
		t.Errorf("after the pipeline went quiet the timed-out import is %s with created %d, the store holds %d", final.Status, final.Stats.Created, stored)
	}

	listed := c.listImports(org, client.Filters{})
	for s, n := range map[events.Status]int{events.StatusTimedOut: 2, events.StatusExpired: 1} {
		if l := c.listImports(org, client.Filters{Status: s}); len(l.Data) != n {
			t.Errorf("status=%s lists %v (all: %v)", s, ids(l.Data), ids(listed.Data))
		}
	}
}

// waitQuiet waits until no progress event of import id has arrived for
// quiet (at most timeout).
func (c *Cluster) waitQuiet(id string, quiet, timeout time.Duration) {
	c.T.Helper()
	count := func() int {
		n := 0
		for _, p := range PhaseServices {
			n += len(c.Progress(id, p))
		}
		return n
	}
	deadline := time.Now().Add(timeout)
	last, since := count(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(pollStep * 2)
		if n := count(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= quiet {
			return
		}
	}
	c.T.Fatalf("import %s: progress events still arriving after %s", id, timeout)
}
