package e2e

import (
	"testing"

	"github.com/inlet-dev/inlet/events"
)

// TestWarnings: a value with surrounding spaces is imported trimmed; the row
// counts in stats.warnings (and in its own bucket), and the errors files list
// it under warning.trimmed.
func TestWarnings(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 2})
	const org = "acme"
	file := "code,name\nA,  Alpha  \nB,Beta\nC,\tGamma\n"
	imp := run(c, org, "companies", "w.csv", file, events.Options{})
	checkEnded(t, "warnings", imp, events.StatusCompleted, events.Stats{Total: 3, Processed: 3, Created: 3, Warnings: 2})
	got := fieldSet(t, c, org, "live", "companies", "code")
	for k, want := range map[string]string{"a": `{"code":"A","name":"Alpha"}`, "b": `{"code":"B","name":"Beta"}`, "c": `{"code":"C","name":"Gamma"}`} {
		if got[k] != want {
			t.Errorf("record %s: %s, want %s", k, got[k], want)
		}
	}
	checkErrorsJSON(t, "warnings", c.ErrorsJSON(imp.ID), []errKey{
		{1, "prevalidation", "warning.trimmed", "name"},
		{3, "prevalidation", "warning.trimmed", "name"},
	})
	checkErrorsCSV(t, c.ErrorsCSV(imp.ID), "code,name,_row,_phase,_code,_field,_message\n", []string{
		// encoding/csv quotes a cell that starts with a space: the same cell.
		"A,\"  Alpha  \",1,prevalidation,warning.trimmed,name,",
		"C,\"\tGamma\",3,prevalidation,warning.trimmed,name,",
	})

	// A second import of the same values, trimmed now: unchanged, no warning.
	again := run(c, org, "companies", "w.csv", "code,name\nA,Alpha\nB, Beta\n", events.Options{})
	checkEnded(t, "again", again, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Unchanged: 2, Warnings: 1})
	checkErrorsJSON(t, "again", c.ErrorsJSON(again.ID), []errKey{{2, "prevalidation", "warning.trimmed", "name"}})
}
