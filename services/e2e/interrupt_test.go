package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// TestInterrupt: an import interrupted while processing stops at a batch
// boundary: it ends interrupted with interrupted_at, what was applied stays
// and is counted exactly. Once through the gateway's HTTP route, once by
// publishing the NATS command imports.<org>.<resource>.interrupt.
func TestInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const rows, batch = 2000, 20
	c := NewCluster(t, Options{BatchSize: batch})
	const org = "acme"

	check := func(what string, imp events.Import, prefix string) {
		t.Helper()
		if imp.Status != events.StatusInterrupted || imp.InterruptedAt == nil || imp.Reason == nil {
			t.Fatalf("%s: ended %s at %v (reason %s), want interrupted with interrupted_at", what, imp.Status, imp.InterruptedAt, deref(imp.Reason))
		}
		stored := int64(0)
		for _, r := range c.Records(org, "companies") {
			if strings.HasPrefix(r.Fields()["code"].(string), prefix) {
				stored++
			}
		}
		t.Logf("%s: %d of %d rows stored (%d batches of %d); reason %q", what, stored, rows, stored/batch, batch, *imp.Reason)
		if stored == 0 || stored >= rows {
			t.Errorf("%s: %d of %d rows stored, want some but not all", what, stored, rows)
		}
		if stored%batch != 0 {
			t.Errorf("%s: %d rows stored: not a whole number of batches of %d", what, stored, batch)
		}
		want := events.Stats{Total: rows, Processed: stored, Created: stored}
		if imp.Stats != want {
			t.Errorf("%s: stats\n got %+v\nwant %+v (the store holds %d)", what, imp.Stats, want, stored)
		}
		if imp.CompletedAt == nil {
			t.Errorf("%s: no completed_at", what)
		}
	}

	ctx := context.Background()
	cl := c.Client(org)
	id := c.Upload(org, "companies", "big.csv", companyRows("H", rows), events.Options{})
	c.WaitProgress(id, events.PhaseProcessing, 1, 2*time.Minute)
	if _, err := cl.Interrupt(ctx, id); err != nil {
		t.Fatalf("POST interrupt: %v, want 202", err)
	}
	imp := c.WaitTerminal(id)
	check("HTTP interrupt", imp, "H")
	if !strings.Contains(*imp.Reason, KeyID(org)) {
		t.Errorf("HTTP interrupt: reason %q does not name who asked (%s)", *imp.Reason, KeyID(org))
	}
	// Ended: a second interrupt is refused; unknown ids are not found.
	if _, err := cl.Interrupt(ctx, id); client.StatusCode(err) != http.StatusConflict {
		t.Errorf("interrupt of an ended import: %v, want 409", err)
	}
	if _, err := cl.Interrupt(ctx, "imp_01ZZZZZZZZZZZZZZZZZZZZZZZZ"); client.StatusCode(err) != http.StatusNotFound {
		t.Errorf("interrupt of an unknown import: %v, want 404", err)
	}

	id2 := c.Upload(org, "companies", "big2.csv", companyRows("N", rows), events.Options{})
	c.WaitProgress(id2, events.PhaseProcessing, 1, 2*time.Minute)
	body, _ := json.Marshal(map[string]string{"import_id": id2})
	if err := c.NC.Publish(events.Subject(org, "companies", "interrupt"), body); err != nil {
		t.Fatal(err)
	}
	check("NATS interrupt", c.WaitTerminal(id2), "N")

	// An interrupted overwrite removes nothing: the file was not wholly applied.
	keep := run(c, org, "companies", "keep.csv", "code,name\nKEEP1,Keep\nKEEP2,Keep\n", events.Options{})
	checkEnded(t, "keep", keep, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 2})
	id3 := c.Upload(org, "companies", "over.csv", companyRows("V", rows), events.Options{Action: "overwrite"})
	c.WaitProgress(id3, events.PhaseProcessing, 1, 2*time.Minute)
	if _, err := cl.Interrupt(ctx, id3); err != nil {
		t.Fatalf("POST interrupt: %v, want 202", err)
	}
	check("interrupted overwrite", c.WaitTerminal(id3), "V")
	for _, k := range []string{"KEEP1", "H0", "N0"} {
		if _, ok := c.RecordByKey(org, "companies", k); !ok {
			t.Errorf("an interrupted overwrite removed %s", k)
		}
	}

	// An import still waiting for its file ends at once, and a file that
	// arrives afterwards does not revive it.
	waiting := c.Created(org, client.CreateRequest{Options: events.Options{Resource: "companies", Format: "csv"}})
	c.WaitStatus(waiting.ID, events.StatusRequested, 30*time.Second)
	if _, err := cl.Interrupt(ctx, waiting.ID); err != nil {
		t.Fatalf("interrupt of a requested import: %v, want 202", err)
	}
	ended := c.WaitTerminal(waiting.ID)
	if ended.Status != events.StatusInterrupted || ended.InterruptedAt == nil {
		t.Errorf("requested import after an interrupt: %s at %v, want interrupted", ended.Status, ended.InterruptedAt)
	}
	// Whatever the blob store answers: the file lands there or not, and
	// either way it must not revive the import.
	if err := cl.Upload(ctx, waiting.Import, client.File{Body: strings.NewReader("code,name\nLATE1,Late\n")}); err != nil && client.StatusCode(err) == 0 {
		t.Fatal(err)
	}

	// The pipeline is free again: a small import goes through.
	after := run(c, org, "companies", "c.csv", "code,name\nZ1,After\n", events.Options{})
	checkEnded(t, "import after the interrupts", after, events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Created: 1})
	time.Sleep(time.Second)
	if imp, _ := c.Import(waiting.ID); imp.Status != events.StatusInterrupted || imp.Stats.Created != 0 {
		t.Errorf("the interrupted import after its file arrived: %s %+v", imp.Status, imp.Stats)
	}
	if _, ok := c.RecordByKey(org, "companies", "LATE1"); ok {
		t.Errorf("the file of an interrupted import was imported")
	}
}
