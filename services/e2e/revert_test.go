package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/storeopen"
	"github.com/inlet-dev/inlet/pkg/client"
)

// recordsByID is a resource's live records of org by id.
func recordsByID(c *Cluster, org, resource string) map[string]Record {
	out := map[string]Record{}
	for _, r := range c.Records(org, resource) {
		out[r.ID] = r
	}
	return out
}

// checkRecordsAre asserts the records are exactly want: same ids, data and
// creation times.
func checkRecordsAre(t *testing.T, what string, got, want map[string]Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records, want %d", what, len(got), len(want))
	}
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			t.Errorf("%s: record %s (%s) is missing", what, id, w.Data)
		case !jsonSame(g.Data, w.Data) || !g.CreatedAt.Equal(w.CreatedAt):
			t.Errorf("%s: record %s is %s created %v, want %s created %v", what, id, g.Data, g.CreatedAt, w.Data, w.CreatedAt)
		}
	}
}

func jsonSame(a, b json.RawMessage) bool {
	var x, y any
	_ = json.Unmarshal(a, &x)
	_ = json.Unmarshal(b, &y)
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

func revert(t *testing.T, c *Cluster, org, id string, req events.RevertRequest) events.Import {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := c.Client(org).Revert(ctx, id, req, "")
	if err != nil {
		t.Fatalf("revert %s: %v", id, err)
	}
	if created.Action != events.ActionRevert || created.ParentImportID != id {
		t.Errorf("revert of %s answered action %q parent %q", id, created.Action, created.ParentImportID)
	}
	c.Remember(created.ID, org)
	return c.WaitTerminal(created.ID)
}

// TestRevert: a revert puts every record a merge, an overwrite or a delete
// touched back as it was (created ones removed, updated ones restored,
// deleted and overwritten ones recreated with their id, keys and creation
// time); a record another import changed since is reported revert.conflict
// and left alone unless forced; a dry run counts without writing; a revert
// is itself reverted; the same works as an event on NATS.
func TestRevert(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 2})
	const org = "acme"
	seed := run(c, org, "companies", "c.csv", fourCompanies, events.Options{})
	checkEnded(t, "seed", seed, events.StatusCompleted, events.Stats{Total: 4, Processed: 4, Created: 4})
	s0 := recordsByID(c, org, "companies")

	// A merge: A updated, B unchanged, E created.
	merge := run(c, org, "companies", "m.csv", "code,name\nA,Alpha2\nB,Beta\nE,Echo\n", events.Options{})
	checkEnded(t, "merge", merge, events.StatusCompleted, events.Stats{Total: 3, Processed: 3, Created: 1, Updated: 1, Unchanged: 1})
	s1 := recordsByID(c, org, "companies")
	r1 := revert(t, c, org, merge.ID, events.RevertRequest{})
	checkEnded(t, "revert of the merge", r1, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Updated: 1, Deleted: 1})
	checkRecordsAre(t, "after reverting the merge", recordsByID(c, org, "companies"), s0)
	if p, ok := c.Import(merge.ID); !ok || len(p.Children) != 1 || p.Children[0] != r1.ID || r1.Links.Parent != "/v1/imports/"+merge.ID {
		t.Errorf("the merge lists children %v, its revert %s links parent %q", p.Children, r1.ID, r1.Links.Parent)
	}
	// Keys come back too: A is found by its code, E's code is free.
	if a, ok := c.RecordByKey(org, "companies", "A"); !ok || a.Fields()["name"] != "Alpha" {
		t.Errorf("A by its key after the revert: %+v %v", a, ok)
	}
	if _, ok := c.RecordByKey(org, "companies", "E"); ok {
		t.Errorf("E is still found by its key after the revert")
	}

	// The revert reverted: the merge's state again, E with its id.
	rr := revert(t, c, org, r1.ID, events.RevertRequest{})
	checkEnded(t, "revert of the revert", rr, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 1, Updated: 1})
	checkRecordsAre(t, "after reverting the revert", recordsByID(c, org, "companies"), s1)

	// An overwrite removes B, C, D and E; its revert recreates them as they were.
	over := run(c, org, "companies", "o.csv", "code,name\nA,Alpha\nX,Xray\n", events.Options{Action: events.ActionOverwrite})
	checkEnded(t, "overwrite", over, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 1, Updated: 1, Overwritten: 4})
	r2 := revert(t, c, org, over.ID, events.RevertRequest{})
	checkEnded(t, "revert of the overwrite", r2, events.StatusCompleted, events.Stats{Total: 6, Processed: 6, Created: 4, Updated: 1, Deleted: 1})
	checkRecordsAre(t, "after reverting the overwrite", recordsByID(c, org, "companies"), s1)

	// A delete, reverted: B is back with its id and key.
	del := run(c, org, "companies", "d.csv", "code\nB\n", events.Options{Action: events.ActionDelete})
	checkEnded(t, "delete", del, events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Deleted: 1})
	r3 := revert(t, c, org, del.ID, events.RevertRequest{})
	checkEnded(t, "revert of the delete", r3, events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Created: 1})
	checkRecordsAre(t, "after reverting the delete", recordsByID(c, org, "companies"), s1)

	// C changed by a later import: the revert leaves it and says why; a dry
	// run says the same and writes nothing; force puts it back.
	m6 := run(c, org, "companies", "m6.csv", "code,name\nC,Gamma6\nD,Delta6\n", events.Options{})
	checkEnded(t, "m6", m6, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Updated: 2})
	m7 := run(c, org, "companies", "m7.csv", "code,name\nC,Gamma7\n", events.Options{})
	checkEnded(t, "m7", m7, events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Updated: 1})
	before := recordsByID(c, org, "companies")
	dry := revert(t, c, org, m6.ID, events.RevertRequest{DryRun: true})
	checkEnded(t, "dry revert of m6", dry, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Updated: 1, Skipped: 1})
	checkRecordsAre(t, "after the dry revert", recordsByID(c, org, "companies"), before)
	r6 := revert(t, c, org, m6.ID, events.RevertRequest{})
	checkEnded(t, "revert of m6", r6, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Updated: 1, Skipped: 1})
	errs := c.ErrorsJSON(r6.ID)
	if len(errs) != 1 || errs[0].Code != "revert.conflict" || !strings.Contains(errs[0].Message, m6.ID) {
		t.Errorf("revert of m6: errors %+v, want one revert.conflict naming %s", errs, m6.ID)
	}
	if cRec, _ := c.RecordByKey(org, "companies", "C"); cRec.Fields()["name"] != "Gamma7" {
		t.Errorf("C after a revert that conflicted: %s, want m7's Gamma7 kept", cRec.Data)
	}
	if dRec, _ := c.RecordByKey(org, "companies", "D"); dRec.Fields()["name"] != "Delta" {
		t.Errorf("D after reverting m6: %s, want Delta", dRec.Data)
	}
	forced := revert(t, c, org, m6.ID, events.RevertRequest{Force: true})
	checkEnded(t, "forced revert of m6", forced, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Updated: 2})
	if cRec, _ := c.RecordByKey(org, "companies", "C"); cRec.Fields()["name"] != "Gamma" {
		t.Errorf("C after a forced revert: %s, want Gamma (before m6)", cRec.Data)
	}

	// E deleted, then its code taken by a new record: the revert cannot
	// recreate E under its key, and says so; its dry run foresees it.
	delE := run(c, org, "companies", "de.csv", "code\nE\n", events.Options{Action: events.ActionDelete})
	checkEnded(t, "delete of E", delE, events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Deleted: 1})
	newE := run(c, org, "companies", "ne.csv", "code,name\nE,Echo Two\n", events.Options{})
	checkEnded(t, "a new E", newE, events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Created: 1})
	held := events.Stats{Total: 1, Processed: 1, Skipped: 1}
	checkEnded(t, "dry revert of the delete of E", revert(t, c, org, delE.ID, events.RevertRequest{DryRun: true}), events.StatusCompleted, held)
	rE := revert(t, c, org, delE.ID, events.RevertRequest{})
	checkEnded(t, "revert of the delete of E", rE, events.StatusCompleted, held)
	if errs := c.ErrorsJSON(rE.ID); len(errs) != 1 || errs[0].Code != "revert.conflict" || !strings.Contains(errs[0].Message, "is held by record") {
		t.Errorf("revert of the delete of E: errors %+v, want one revert.conflict naming the key's holder", errs)
	}
	if e, _ := c.RecordByKey(org, "companies", "E"); e.Fields()["name"] != "Echo Two" {
		t.Errorf("E after the revert: %s, want the new record kept", e.Data)
	}

	// As an event on NATS: the same revert, by the pipeline alone.
	m8 := run(c, org, "companies", "m8.csv", "code,name\nF,Foxtrot\n", events.Options{})
	checkEnded(t, "m8", m8, events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Created: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := c.Client(org).RequestImport(ctx, events.ImportRequested{Options: events.Options{
		OrganizationID: org, Resource: "companies", Action: events.ActionRevert, ParentImportID: m8.ID}})
	if err != nil {
		t.Fatalf("publish a revert: %v", err)
	}
	c.Remember(id, org)
	byEvent := c.WaitTerminal(id)
	checkEnded(t, "revert by event", byEvent, events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Deleted: 1})
	if _, ok := c.RecordByKey(org, "companies", "F"); ok {
		t.Errorf("F is still there after its import was reverted by event")
	}

	// Refusals: an unknown import, another organization's, a dry run's,
	// and a revert over NATS of an import that does not exist fails with
	// its reason.
	for _, tc := range []struct {
		org, id string
		status  int
	}{{org, "imp_nope", http.StatusNotFound}, {"other", m8.ID, http.StatusNotFound}, {org, dry.ID, http.StatusUnprocessableEntity}} {
		_, err := c.Client(tc.org).Revert(ctx, tc.id, events.RevertRequest{}, "")
		if client.StatusCode(err) != tc.status {
			t.Errorf("revert of %s as %s: %v, want HTTP %d", tc.id, tc.org, err, tc.status)
		}
	}
	id, err = c.Client(org).RequestImport(ctx, events.ImportRequested{Options: events.Options{
		OrganizationID: org, Resource: "companies", Action: events.ActionRevert, ParentImportID: "imp_nope"}})
	if err != nil {
		t.Fatalf("publish a revert: %v", err)
	}
	c.Remember(id, org)
	if bad := c.WaitTerminal(id); bad.Status != events.StatusFailed || !strings.Contains(deref(bad.Reason), "imp_nope") {
		t.Errorf("revert of an unknown import by event: %s (%s), want failed naming it", bad.Status, deref(bad.Reason))
	}
}

// TestKillProcessingMidRevert: processing SIGKILLed while it puts records
// back, then restarted: every record is back exactly as it was, and the
// revert's stats count each once.
func TestKillProcessingMidRevert(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 100, AckWait: "3s"})
	const org = "acme"
	seed := run(c, org, "companies", "c.csv", companyRows("K", 1500), events.Options{})
	checkEnded(t, "seed", seed, events.StatusCompleted, events.Stats{Total: 1500, Processed: 1500, Created: 1500})
	s0 := recordsByID(c, org, "companies")
	changed := strings.ReplaceAll(companyRows("K", 2000), "Company", "Firm")
	merge := run(c, org, "companies", "m.csv", changed, events.Options{})
	checkEnded(t, "merge", merge, events.StatusCompleted, events.Stats{Total: 2000, Processed: 2000, Created: 500, Updated: 1500})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := c.Client(org).Revert(ctx, merge.ID, events.RevertRequest{}, "")
	if err != nil {
		t.Fatal(err)
	}
	c.Remember(created.ID, org)
	c.WaitProgress(created.ID, events.PhaseProcessing, 1, 2*time.Minute)
	c.Kill("processing", 0)
	done := len(c.Progress(created.ID, events.PhaseProcessing))
	t.Logf("SIGKILLed processing after %d/20 batches of the revert", done)
	if done >= 20 {
		t.Logf("warning: every batch was committed before the kill; it tested a restart only")
	}
	time.Sleep(time.Second)
	c.Restart("processing", 0)
	r := c.WaitTerminalFor(created.ID, 3*time.Minute)
	checkEnded(t, "revert", r, events.StatusCompleted, events.Stats{Total: 2000, Processed: 2000, Updated: 1500, Deleted: 500})
	checkRecordsAre(t, "after the revert", recordsByID(c, org, "companies"), s0)
}

// TestRevertWindow: the sweep forgets what an import changed once it is
// older than INLET_REVERT_WINDOW, and a revert of it is refused with the
// reason, over HTTP and over NATS.
func TestRevertWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 2, Env: map[string]map[string]string{
		// Changes go once the window and the longest a revert accepted at
		// its end may run (the import timeout and its grace) have passed.
		"*": {"INLET_REVERT_WINDOW": "2s", "INLET_IMPORT_TIMEOUT": "15s", "INLET_DEADLINE_GRACE": "1s", "INLET_SWEEP_INTERVAL": "200ms"}}})
	const org = "acme"
	old := run(c, org, "companies", "c.csv", fourCompanies, events.Options{})
	checkEnded(t, "import", old, events.StatusCompleted, events.Stats{Total: 4, Processed: 4, Created: 4})
	st, err := storeopen.Open(context.Background(), c.StoreURL, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	scope := store.Scope{Org: org, Mode: "live", Resource: "companies"}
	kept := func() int {
		ids, err := st.ChangedIDs(context.Background(), scope, old.ID, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(ids)
	}
	if n := kept(); n != 4 {
		t.Fatalf("%d changes kept of the import, want 4", n)
	}
	// Past the window, a revert is refused at once, while the changes are
	// still kept for a revert accepted just before.
	time.Sleep(time.Until(old.CreatedAt.Add(2500 * time.Millisecond)))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = c.Client(org).Revert(ctx, old.ID, events.RevertRequest{}, "")
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity || apiErr.Code != "revert_window_passed" {
		t.Errorf("revert past the window: %v, want 422 revert_window_passed", err)
	}
	if n := kept(); n != 4 {
		t.Errorf("%d changes kept right after the window, want 4 (until the window, the timeout and the grace have passed)", n)
	}
	deadline := time.Now().Add(60 * time.Second)
	for kept() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the changes of %s are still kept 60 s after its 2 s revert window", old.ID)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if since := time.Since(old.CreatedAt); since < 18*time.Second {
		t.Errorf("the changes were forgot %s after the import's creation, before window + timeout + grace (18 s)", since)
	}
	id, err := c.Client(org).RequestImport(ctx, events.ImportRequested{Options: events.Options{
		OrganizationID: org, Resource: "companies", Action: events.ActionRevert, ParentImportID: old.ID}})
	if err != nil {
		t.Fatal(err)
	}
	c.Remember(id, org)
	if r := c.WaitTerminal(id); r.Status != events.StatusFailed || !strings.Contains(deref(r.Reason), "no longer kept") {
		t.Errorf("revert by event past the window: %s (%s), want failed saying why", r.Status, deref(r.Reason))
	}
	if n := len(c.Records(org, "companies")); n != 4 {
		t.Errorf("%d companies after refused reverts, want the 4 imported", n)
	}
}
