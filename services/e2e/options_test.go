package e2e

import (
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// TestOptionsEchoed: the import object carries every option given, and each
// one does what it says: column_mapping reads other headers, mode test and
// live never mix, parent_resource_id puts records under a parent (and rejects
// every row when the parent does not exist).
func TestOptionsEchoed(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 3, Resources: map[string]string{"contacts.json": contactsResource}})
	const org = "acme"

	mapping := map[string]string{"email": "E-Mail", "name": "Full Name", "age": "Years"}
	meta := map[string]any{"batch": "q3", "count": 3.0, "nested": map[string]any{"ok": true}}
	imp := run(c, org, "customers", "people.csv", "E-Mail,Full Name,Years\nann@x.io,Ann,31\nbob@x.io,Bob,42\n", events.Options{
		ColumnMapping: mapping, Name: "September customers", Reference: "ERP-42",
		ReferenceOrigin: "erp", Metadata: meta,
	})
	checkEnded(t, "mapped import", imp, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 2})
	if canon(imp.ColumnMapping) != canon(mapping) {
		t.Errorf("column_mapping echoed as %v, want %v", imp.ColumnMapping, mapping)
	}
	if imp.Name != "September customers" || imp.Reference != "ERP-42" || imp.ReferenceOrigin != "erp" {
		t.Errorf("name/reference/reference_origin echoed as %q/%q/%q", imp.Name, imp.Reference, imp.ReferenceOrigin)
	}
	if canon(imp.Metadata) != canon(meta) {
		t.Errorf("metadata echoed as %s, want %s", canon(imp.Metadata), canon(meta))
	}
	if imp.Mode != "live" || imp.Resource != "customers" || imp.Format != "csv" || imp.OrganizationID != org {
		t.Errorf("mode/resource/format/organization: %s/%s/%s/%s", imp.Mode, imp.Resource, imp.Format, imp.OrganizationID)
	}
	if imp.CreatedBy != KeyID(org) {
		t.Errorf("created_by %q, want the key id %q", imp.CreatedBy, KeyID(org))
	}
	if f := fieldsOf(t, c, org, "customers", "ann@x.io"); canon(f) != `{"age":31,"email":"ann@x.io","name":"Ann"}` {
		t.Errorf("mapped record: %s", canon(f))
	}
	// The list shows the same object.
	if l := c.listImports(org, client.Filters{}); len(l.Data) != 1 || canon(l.Data[0].Metadata) != canon(meta) || l.Data[0].Reference != "ERP-42" {
		t.Errorf("list: %d imports, first %+v", len(l.Data), l.Data)
	}

	// mode: test records and live records never mix.
	tst := run(c, org, "companies", "c.csv", "code,name\nA,Test Alpha\nB,Test Beta\n", events.Options{Mode: "test"})
	checkEnded(t, "test mode", tst, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 2})
	if tst.Mode != "test" {
		t.Errorf("mode echoed as %q", tst.Mode)
	}
	checkKeys(t, "live companies after a test import", fieldSet(t, c, org, "live", "companies", "code"), "")
	live := run(c, org, "companies", "c.csv", "code,name\nA,Alpha\n", events.Options{})
	checkEnded(t, "live after test", live, events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Created: 1})
	if got := fieldSet(t, c, org, "test", "companies", "code"); got["a"] != `{"code":"A","name":"Test Alpha"}` || len(got) != 2 {
		t.Errorf("test companies after a live import: %v", got)
	}
	if got := fieldSet(t, c, org, "live", "companies", "code"); got["a"] != `{"code":"A","name":"Alpha"}` || len(got) != 1 {
		t.Errorf("live companies: %v", got)
	}
	// A test-mode customer cannot reference a live-only company.
	ref := run(c, org, "customers", "r.csv", "email,name,company_code\nt@x.io,T,A\nu@x.io,U,Z\n",
		events.Options{Mode: "test", SkipErrors: true})
	checkEnded(t, "test-mode references", ref, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 1, Failed: 1})
	checkErrorsJSON(t, "test-mode references", c.ErrorsJSON(ref.ID), []errKey{{2, "validation", "reference.not_found", "company_code"}})

	// parent_resource_id: records under the parent; a missing parent
	// rejects every row.
	parent, ok := c.RecordByKey(org, "companies", "A")
	if !ok {
		t.Fatal("company A not found")
	}
	under := run(c, org, "contacts", "p.csv", "email,name\nx@a.io,X\ny@a.io,Y\n", events.Options{ParentResourceID: &parent.ID})
	checkEnded(t, "contacts under A", under, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 2})
	if under.ParentResourceID == nil || *under.ParentResourceID != parent.ID {
		t.Errorf("parent_resource_id echoed as %v, want %s", under.ParentResourceID, parent.ID)
	}
	for _, r := range c.Records(org, "contacts") {
		if r.ParentID == nil || *r.ParentID != parent.ID {
			t.Errorf("contact %s has parent %v, want %s", r.Data, r.ParentID, parent.ID)
		}
	}
	missing := run(c, org, "contacts", "p.csv", "email,name\nq@a.io,Q\nr@a.io,R\n",
		events.Options{ParentResourceID: ptr("rec_doesnotexist"), SkipErrors: true})
	checkEnded(t, "missing parent", missing, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Failed: 2})
	checkErrorsJSON(t, "missing parent", c.ErrorsJSON(missing.ID), []errKey{
		{1, "validation", "reference.not_found", "parent_resource_id"},
		{2, "validation", "reference.not_found", "parent_resource_id"},
	})
	// A test-mode import cannot use the live parent either.
	tparent := run(c, org, "contacts", "p.csv", "email,name\ns@a.io,S\n",
		events.Options{ParentResourceID: &parent.ID, Mode: "test", SkipErrors: true})
	checkEnded(t, "live parent in test mode", tparent, events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Failed: 1})
	if n := len(c.Records(org, "contacts")); n != 2 {
		t.Errorf("%d live contacts, want 2", n)
	}
	if n := len(c.RecordsIn(org, "test", "contacts")); n != 0 {
		t.Errorf("%d test contacts, want 0", n)
	}
}
