package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
)

// TestErrorThreshold: more than error_threshold (default 0.1) of the rows
// failed before processing → the import ends interrupted and nothing is
// written, whichever phase rejected the rows and however many batches the
// file has; skip_errors imports the valid rows; a custom threshold moves the
// line.
func TestErrorThreshold(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 4})
	const org = "acme"
	bad := "code,name\nA,Alpha\nB,\nC,Gamma\n" // row 2 fails schema.required: 1/3 > 0.1

	over := run(c, org, "companies", "c.csv", bad, events.Options{})
	checkEnded(t, "over the threshold", over, events.StatusInterrupted, events.Stats{Total: 3, Processed: 1, Failed: 1})
	if over.Reason == nil || !strings.Contains(*over.Reason, "threshold") {
		t.Errorf("over the threshold: reason %q does not mention the threshold", deref(over.Reason))
	}
	if over.InterruptedAt == nil {
		t.Errorf("over the threshold: interrupted without interrupted_at")
	}
	if over.ErrorThreshold == nil || *over.ErrorThreshold != 0.1 || over.SkipErrors {
		t.Errorf("defaults: error_threshold %v skip_errors %v, want 0.1 false", over.Threshold(), over.SkipErrors)
	}
	checkErrorsJSON(t, "over the threshold", c.ErrorsJSON(over.ID), []errKey{{2, "prevalidation", "schema.required", "name"}})
	checkKeys(t, "after the interrupted import", fieldSet(t, c, org, "live", "companies", "code"), "")

	// Exactly at the threshold is not over it: 1 of 10 rows.
	var b strings.Builder
	b.WriteString("code,name\n")
	for i := 0; i < 10; i++ {
		name := fmt.Sprintf("Ten %d", i)
		if i == 6 {
			name = ""
		}
		fmt.Fprintf(&b, "T%d,%s\n", i, name)
	}
	at := run(c, org, "companies", "ten.csv", b.String(), events.Options{})
	checkEnded(t, "at the threshold", at, events.StatusCompleted, events.Stats{Total: 10, Processed: 10, Created: 9, Failed: 1})

	// skip_errors: the failed row is reported, the rest imported.
	skip := run(c, "other", "companies", "c.csv", bad, events.Options{SkipErrors: true})
	checkEnded(t, "skip_errors", skip, events.StatusCompleted, events.Stats{Total: 3, Processed: 3, Created: 2, Failed: 1})
	if !skip.SkipErrors {
		t.Errorf("skip_errors not echoed")
	}
	checkKeys(t, "skip_errors", fieldSet(t, c, "other", "live", "companies", "code"), "a,c")

	// A custom threshold: 0.5 lets 1/3 through, 0.2 stops 1/4.
	loose := run(c, org, "companies", "c.csv", "code,name\nL1,One\nL2,\nL3,Three\n", events.Options{ErrorThreshold: ptr(0.5)})
	checkEnded(t, "error_threshold 0.5", loose, events.StatusCompleted, events.Stats{Total: 3, Processed: 3, Created: 2, Failed: 1})
	if loose.ErrorThreshold == nil || *loose.ErrorThreshold != 0.5 {
		t.Errorf("error_threshold 0.5 echoed as %v", loose.Threshold())
	}
	strict := run(c, org, "companies", "c.csv", "code,name\nS1,One\nS2,\nS3,Three\nS4,Four\n", events.Options{ErrorThreshold: ptr(0.2)})
	checkEnded(t, "error_threshold 0.2", strict, events.StatusInterrupted, events.Stats{Total: 4, Processed: 1, Failed: 1})

	// Skipped rows are not failed rows: duplicates do not count.
	dups := run(c, org, "companies", "dups.csv", "code,name\nD1,One\nD2,Two\nD2,Again\nD3,Three\n", events.Options{})
	checkEnded(t, "duplicates", dups, events.StatusCompleted, events.Stats{Total: 4, Processed: 4, Created: 2, Skipped: 2})

	// A dry run over the threshold is interrupted like a real one.
	dry := run(c, org, "companies", "c.csv", "code,name\nY1,One\nY2,\n", events.Options{DryRun: true})
	checkEnded(t, "dry run over the threshold", dry, events.StatusInterrupted, events.Stats{Total: 2, Processed: 1, Failed: 1})

	// Rejections of later phases count too (validation: a missing
	// reference), and a file of many batches writes none of them.
	run(c, org, "companies", "refs.csv", "code,name\nR,Ref\n", events.Options{})
	var cb strings.Builder
	cb.WriteString("email,name,company_code\n")
	for i := 0; i < 40; i++ {
		code := "R"
		if i%5 == 4 {
			code = "NOPE" // 8 of 40 = 20%
		}
		fmt.Fprintf(&cb, "m%d@x.io,M %d,%s\n", i, i, code)
	}
	refs := run(c, org, "customers", "refs.csv", cb.String(), events.Options{})
	checkEnded(t, "failed references", refs, events.StatusInterrupted, events.Stats{Total: 40, Processed: 8, Failed: 8})
	if n := len(c.Records(org, "customers")); n != 0 {
		t.Errorf("an import interrupted by the threshold stored %d customers (of 32 valid rows in 10 batches)", n)
	}
	checkKeys(t, "companies at the end", fieldSet(t, c, org, "live", "companies", "code"),
		"d1,d3,l1,l3,r,t0,t1,t2,t3,t4,t5,t7,t8,t9")
}
