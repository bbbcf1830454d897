package e2e

import (
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
)

const fourCompanies = "code,name\nA,Alpha\nB,Beta\nC,Gamma\nD,Delta\n"

// contactsResource is a resource whose records live under a company.
const contactsResource = `{
  "name": "contacts",
  "key": ["email"],
  "parent": "companies",
  "schema": {
    "type": "object",
    "required": ["email", "name"],
    "properties": {
      "email": {"type": "string", "format": "email"},
      "name": {"type": "string", "minLength": 1}
    },
    "additionalProperties": false
  }
}`

// TestDryRun: a dry run reports what would be created, updated, unchanged,
// deleted and overwritten, and leaves the store as it was.
func TestDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 2})
	const org = "acme"
	seed := run(c, org, "companies", "c.csv", "code,name\nA,Alpha\nB,Beta\n", events.Options{})
	checkEnded(t, "seed", seed, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 2})
	before := fieldSet(t, c, org, "live", "companies", "code")

	dry := run(c, org, "companies", "c.csv", "code,name\nA,Alpha\nB,Bravo\nE,Echo\n", events.Options{DryRun: true})
	checkEnded(t, "dry merge", dry, events.StatusCompleted, events.Stats{Total: 3, Processed: 3, Created: 1, Updated: 1, Unchanged: 1})
	if !dry.DryRun {
		t.Errorf("dry_run not echoed")
	}
	checkSame(t, "after the dry merge", before, fieldSet(t, c, org, "live", "companies", "code"))

	over := run(c, org, "companies", "c.csv", "code,name\nA,Alpha\nF,Foxtrot\n", events.Options{DryRun: true, Action: "overwrite"})
	checkEnded(t, "dry overwrite", over, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 1, Unchanged: 1, Overwritten: 1})
	checkSame(t, "after the dry overwrite", before, fieldSet(t, c, org, "live", "companies", "code"))

	del := run(c, org, "companies", "c.csv", "code\nA\nZ\n", events.Options{DryRun: true, Action: "delete"})
	checkEnded(t, "dry delete", del, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Deleted: 1, Skipped: 1})
	checkSame(t, "after the dry delete", before, fieldSet(t, c, org, "live", "companies", "code"))

	// The same merge for real does what the dry run said.
	real := run(c, org, "companies", "c.csv", "code,name\nA,Alpha\nB,Bravo\nE,Echo\n", events.Options{})
	checkEnded(t, "real merge", real, events.StatusCompleted, dry.Stats)
	checkKeys(t, "after the real merge", fieldSet(t, c, org, "live", "companies", "code"), "a,b,e")
}

func checkSame(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records (%s), want %d (%s)", what, len(got), keysOf(got), len(want), keysOf(want))
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: record %s is %s, want %s", what, k, got[k], v)
		}
	}
}

// TestActions: overwrite removes the records the file lacked, in the same
// organization, mode and parent only, and nothing when the threshold stops
// it; delete removes the rows' records and skips the missing ones.
func TestActions(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 2, Resources: map[string]string{"contacts.json": contactsResource}})
	const org = "acme"
	for _, s := range []struct{ org, mode string }{{org, "live"}, {org, "test"}, {"other", "live"}} {
		imp := run(c, s.org, "companies", "c.csv", fourCompanies, events.Options{Mode: events.Mode(s.mode)})
		checkEnded(t, s.org+" "+s.mode+" seed", imp, events.StatusCompleted, events.Stats{Total: 4, Processed: 4, Created: 4})
	}

	// An overwrite whose file fails the threshold removes nothing.
	bad := run(c, org, "companies", "c.csv", "code,name\nA,Alpha\nB,\nC,\n", events.Options{Action: "overwrite"})
	checkEnded(t, "failed overwrite", bad, events.StatusInterrupted, events.Stats{Total: 3, Processed: 2, Failed: 2})
	checkKeys(t, "after the failed overwrite", fieldSet(t, c, org, "live", "companies", "code"), "a,b,c,d")

	over := run(c, org, "companies", "c.csv", "code,name\nA,Alpha\nC,Gamma2\nE,Echo\n", events.Options{Action: "overwrite"})
	checkEnded(t, "overwrite", over, events.StatusCompleted, events.Stats{Total: 3, Processed: 3, Created: 1, Updated: 1, Unchanged: 1, Overwritten: 2})
	if over.Action != "overwrite" {
		t.Errorf("action echoed as %q", over.Action)
	}
	live := fieldSet(t, c, org, "live", "companies", "code")
	checkKeys(t, "after the overwrite", live, "a,c,e")
	if !strings.Contains(live["c"], `"Gamma2"`) {
		t.Errorf("C after the overwrite: %s", live["c"])
	}
	checkKeys(t, "test mode after a live overwrite", fieldSet(t, c, org, "test", "companies", "code"), "a,b,c,d")
	checkKeys(t, "other organization after the overwrite", fieldSet(t, c, "other", "live", "companies", "code"), "a,b,c,d")

	del := run(c, org, "companies", "d.csv", "code\nA\nZ\n", events.Options{Action: "delete"})
	checkEnded(t, "delete", del, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Deleted: 1, Skipped: 1})
	checkErrorsJSON(t, "delete", c.ErrorsJSON(del.ID), []errKey{{2, "transforming", "not_found", "code"}})
	checkKeys(t, "after the delete", fieldSet(t, c, org, "live", "companies", "code"), "c,e")
	// Rows whose record is missing are skipped, not failed: no threshold.
	gone := run(c, org, "companies", "d.csv", "code\nA\nB\nZ\n", events.Options{Action: "delete"})
	checkEnded(t, "delete of missing records", gone, events.StatusCompleted, events.Stats{Total: 3, Processed: 3, Skipped: 3})
	checkKeys(t, "test mode after a live delete", fieldSet(t, c, org, "test", "companies", "code"), "a,b,c,d")

	// Overwrite under a parent touches that parent's records only.
	cRec, _ := c.RecordByKey(org, "companies", "C")
	eRec, _ := c.RecordByKey(org, "companies", "E")
	if cRec.ID == "" || eRec.ID == "" {
		t.Fatalf("companies C and E not found")
	}
	under := func(parent, file string, opts events.Options) events.Import {
		opts.ParentResourceID = &parent
		return run(c, org, "contacts", "p.csv", file, opts)
	}
	checkEnded(t, "contacts of C", under(cRec.ID, "email,name\nx@c.io,X\ny@c.io,Y\n", events.Options{}),
		events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 2})
	checkEnded(t, "contacts of E", under(eRec.ID, "email,name\nz@e.io,Z\nw@e.io,W\n", events.Options{}),
		events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 2})
	po := under(cRec.ID, "email,name\nx@c.io,X\n", events.Options{Action: "overwrite"})
	checkEnded(t, "overwrite of C's contacts", po, events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Unchanged: 1, Overwritten: 1})
	if po.ParentResourceID == nil || *po.ParentResourceID != cRec.ID {
		t.Errorf("parent_resource_id echoed as %v, want %s", po.ParentResourceID, cRec.ID)
	}
	parents := map[string]string{}
	for _, r := range c.Records(org, "contacts") {
		p := ""
		if r.ParentID != nil {
			p = *r.ParentID
		}
		parents[r.Fields()["email"].(string)] = p
	}
	want := map[string]string{"x@c.io": cRec.ID, "z@e.io": eRec.ID, "w@e.io": eRec.ID}
	if len(parents) != len(want) {
		t.Errorf("contacts after the overwrite under C: %v, want %v", parents, want)
	}
	for k, v := range want {
		if parents[k] != v {
			t.Errorf("contact %s has parent %q, want %q (all: %v)", k, parents[k], v, parents)
		}
	}
}
