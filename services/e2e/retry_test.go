package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// A retry, three ways, on the real cluster: an import fails a row for a
// missing reference and one for a missing name; the referenced company is
// imported; a retry without a file runs the failed rows as they were and
// the first completes; a retry with the parent's errors.csv, downloaded and
// one cell fixed, completes the other; a retry published on NATS runs them
// again too. The parent lists its three children, each links its parent.
func TestRetry(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 2})
	const org = "acme"
	ctx := context.Background()
	cl := c.Client(org)

	parent := run(c, org, "customers", "people.csv",
		"email,name,company_code\na@x.com,Ann,ACME\nb@x.com,Bob,\nd@x.com,,\n", events.Options{SkipErrors: true, Name: "people"})
	checkEnded(t, "parent", parent, events.StatusCompleted, events.Stats{Total: 3, Processed: 3, Created: 1, Failed: 2})

	// Refused: nothing to retry, unknown, another organization's.
	companies := run(c, org, "companies", "c.csv", "code,name\nACME,Acme\n", events.Options{})
	checkEnded(t, "the referenced company", companies, events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Created: 1})
	refusal := func(what string, err error, status int, code string) {
		t.Helper()
		var e *client.Error
		if !errors.As(err, &e) || e.Status != status || e.Code != code {
			t.Errorf("%s: %v, want %d %s", what, err, status, code)
		}
	}
	_, err := cl.Retry(ctx, companies.ID, client.CreateRequest{})
	refusal("retry of an import without failed rows", err, http.StatusUnprocessableEntity, "no_failed_rows")
	_, err = cl.Retry(ctx, "imp_01ZZZZZZZZZZZZZZZZZZZZZZZZ", client.CreateRequest{})
	refusal("retry of an unknown import", err, http.StatusNotFound, "not_found")
	_, err = c.Client("other").Retry(ctx, parent.ID, client.CreateRequest{})
	refusal("retry of another organization's import", err, http.StatusNotFound, "not_found")

	// No file: the failed rows as they were; the reference now resolves.
	asWere, err := cl.Retry(ctx, parent.ID, client.CreateRequest{Options: events.Options{SkipErrors: true, Name: "again"}})
	if err != nil {
		t.Fatal(err)
	}
	c.Remember(asWere.ID, org)
	if asWere.ParentImportID != parent.ID || asWere.Links.Parent != "/v1/imports/"+parent.ID || asWere.Status != events.StatusQueued {
		t.Errorf("retry as created: parent %q links %+v status %s", asWere.ParentImportID, asWere.Links, asWere.Status)
	}
	first := c.WaitTerminal(asWere.ID)
	checkEnded(t, "retry without a file", first, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 1, Failed: 1})
	if first.Format != events.FormatCSV || first.Resource != "customers" || first.Name != "again" || !first.SkipErrors {
		t.Errorf("retry without a file: format %s resource %s name %q skip_errors %v", first.Format, first.Resource, first.Name, first.SkipErrors)
	}
	if _, ok := c.RecordByKey(org, "customers", "a@x.com"); !ok {
		t.Errorf("a@x.com, whose company now exists, was not imported by the retry")
	}

	// The parent's errors.csv, one cell fixed.
	var raw bytes.Buffer
	if err := cl.ErrorsCSV(ctx, parent.ID, &raw); err != nil {
		t.Fatal(err)
	}
	lines, err := csv.NewReader(&raw).ReadAll()
	if err != nil || len(lines) != 3 || !slices.Equal(lines[0][:3], []string{"email", "name", "company_code"}) || lines[0][3] != "_row" {
		t.Fatalf("parent's errors.csv: %v %q", err, lines)
	}
	fixed := 0
	for _, l := range lines[1:] {
		if l[0] == "d@x.com" {
			l[1] = "Dee"
			fixed++
		}
	}
	if fixed != 1 {
		t.Fatalf("d@x.com is not in the parent's errors.csv: %q", lines)
	}
	var corrected bytes.Buffer
	w := csv.NewWriter(&corrected)
	_ = w.WriteAll(lines)
	withFile, err := cl.Retry(ctx, parent.ID, client.CreateRequest{File: &client.File{Name: "errors.csv", ContentType: "text/csv", Body: &corrected}})
	if err != nil {
		t.Fatal(err)
	}
	c.Remember(withFile.ID, org)
	second := c.WaitTerminal(withFile.ID)
	checkEnded(t, "retry with the corrected errors.csv", second, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Created: 1, Unchanged: 1})
	if rec, ok := c.RecordByKey(org, "customers", "d@x.com"); !ok || !strings.Contains(string(rec.Data), `"Dee"`) {
		t.Errorf("d@x.com after the corrected retry: %v %s", ok, rec.Data)
	}

	// Over NATS: parent_import_id, no source, no inputs.
	id, err := cl.RequestImport(ctx, events.ImportRequested{Options: events.Options{OrganizationID: org, Resource: "customers",
		ParentImportID: parent.ID, SkipErrors: true}})
	if err != nil {
		t.Fatal(err)
	}
	c.Remember(id, org)
	third := c.WaitTerminal(id)
	checkEnded(t, "retry over NATS", third, events.StatusCompleted, events.Stats{Total: 2, Processed: 2, Unchanged: 1, Failed: 1})
	if third.ParentImportID != parent.ID || third.Links.Parent != "/v1/imports/"+parent.ID || third.SkipErrors != true {
		t.Errorf("retry over NATS: parent %q links %+v", third.ParentImportID, third.Links)
	}
	// Over NATS a parent that cannot be retried fails the request, saying why.
	id, err = cl.RequestImport(ctx, events.ImportRequested{Options: events.Options{OrganizationID: org, Resource: "companies", ParentImportID: companies.ID}})
	if err != nil {
		t.Fatal(err)
	}
	c.Remember(id, org)
	if bad := c.WaitTerminal(id); bad.Status != events.StatusFailed || !strings.Contains(deref(bad.Reason), "no failed rows") {
		t.Errorf("retry over NATS of an import without failed rows: %s %q", bad.Status, deref(bad.Reason))
	}

	got, ok := c.Import(parent.ID)
	if want := []string{first.ID, second.ID, third.ID}; !ok || !slices.Equal(got.Children, want) || got.Status != events.StatusCompleted {
		t.Errorf("parent: children %v, want %v (oldest first)", got.Children, want)
	}
	if got.Stats != parent.Stats {
		t.Errorf("the parent's stats changed with its children: %+v, was %+v", got.Stats, parent.Stats)
	}

	// The command line follows a retry like an import: exit 0 only when it
	// completed. Without a file d@x.com fails again, 1 row of 2: over the
	// default threshold.
	code, out, errOut := c.cli(org, "retry", parent.ID, "--json")
	var cliImp events.Import
	if code != 1 || json.Unmarshal([]byte(out), &cliImp) != nil || cliImp.Status != events.StatusInterrupted || cliImp.ParentImportID != parent.ID {
		t.Errorf("inlet retry without a file: exit %d, want 1 (interrupted)\n%s\n%s", code, out, errOut)
	}
	file := filepath.Join(t.TempDir(), "errors.csv")
	var again bytes.Buffer
	w = csv.NewWriter(&again)
	_ = w.WriteAll(lines)
	if err := os.WriteFile(file, again.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = c.cli(org, "retry", parent.ID, file, "--name", "from the CLI")
	if code != 0 || !strings.Contains(out, "completed") || !strings.Contains(errOut, "retry imp_") {
		t.Errorf("inlet retry with the corrected file: exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	if got, _ := c.Import(parent.ID); len(got.Children) != 5 {
		t.Errorf("the parent lists %d children after two more retries from the command line, want 5: %v", len(got.Children), got.Children)
	}
}

// Progress on a real import: processing is held back, so the import stops
// part-way, where its percent, rate and ETA must already show the work done
// (and processed the rows already in a bucket: spec §3); then it completes at
// exactly 100% and processed == total. No read on the way goes back.
func TestProgressGrowsBeforeTheEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 20})
	const org, rows = "acme", 300
	c.Stop(events.PhaseProcessing, 0)
	var b strings.Builder
	b.WriteString("code,name\n")
	for i := range rows {
		fmt.Fprintf(&b, "P%04d,Company %d\n", i, i)
	}
	fmt.Fprintf(&b, "P0000,Again\n") // a duplicate pair: two rows skipped in preparsing
	id := c.Upload(org, "companies", "many.csv", b.String(), events.Options{})

	var last events.Import
	check := func(imp events.Import) {
		t.Helper()
		if imp.Progress.Percent < last.Progress.Percent || imp.Stats.Processed < last.Stats.Processed {
			t.Fatalf("went back: percent %v → %v, processed %d → %d", last.Progress.Percent, imp.Progress.Percent, last.Stats.Processed, imp.Stats.Processed)
		}
		if imp.Status != events.StatusCompleted && imp.Progress.Percent >= 100 {
			t.Fatalf("%s at %v%%", imp.Status, imp.Progress.Percent)
		}
		if s := imp.Stats; s.Processed != s.Created+s.Updated+s.Unchanged+s.Deleted+s.Skipped+s.Failed {
			t.Fatalf("%s: processed %d is not the buckets' sum (spec §3: always): %+v", imp.Status, s.Processed, s)
		}
		last = imp
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		imp, ok := c.Import(id)
		if ok {
			check(imp)
			if imp.Phases[4].Status == events.PhaseStatusCompleted {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("validation did not complete: %+v", last.Phases)
		}
		time.Sleep(pollStep)
	}
	held := last
	const total = rows + 1
	if held.Status != events.StatusProcessing || held.Progress.Percent != 71.4 || held.Stats.Processed != 2 ||
		held.Progress.RowsPerSecond == nil || *held.Progress.RowsPerSecond <= 0 || held.Progress.ETA == nil || held.Progress.ETA.Before(held.UpdatedAt) {
		t.Errorf("held before processing: status %s progress %+v processed %d of %d, want 71.4%% (5 of 7 phases), 2 (the skipped pair: processed is the buckets' sum, spec §3), a rate and an ETA",
			held.Status, held.Progress, held.Stats.Processed, held.Stats.Total)
	}
	if ph := held.Phases[1]; ph.RowsSkipped != 2 || ph.RowsFailed != 0 {
		t.Errorf("preparsing's entry: rows_skipped %d rows_failed %d, want the duplicate pair skipped", ph.RowsSkipped, ph.RowsFailed)
	}

	c.Restart(events.PhaseProcessing, 0)
	for {
		imp, ok := c.Import(id)
		if ok {
			check(imp)
			if imp.Status.Terminal() {
				break
			}
		}
		if time.Now().After(deadline.Add(time.Minute)) {
			t.Fatalf("the import did not end: %s %+v", last.Status, last.Progress)
		}
		time.Sleep(pollStep)
	}
	checkEnded(t, "the import", last, events.StatusCompleted, events.Stats{Total: total, Processed: total, Created: rows - 1, Skipped: 2})
	if last.Progress.Percent != 100 || last.Progress.ETA != nil || last.Progress.RowsPerSecond == nil {
		t.Errorf("completed: progress %+v, want 100%%, a rate, no ETA", last.Progress)
	}
}

// TestKillProcessingMidRetry: processing SIGKILLed while a retry without a
// file writes its parent's failed rows, then restarted: every row is
// written once, and the retry's stats count each once.
func TestKillProcessingMidRetry(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 100, AckWait: "3s"})
	const org, rows = "acme", 2000
	var b strings.Builder
	b.WriteString("email,name,company_code\n")
	for i := range rows {
		fmt.Fprintf(&b, "u%04d@x.com,User %d,BIG\n", i, i)
	}
	parent := run(c, org, "customers", "people.csv", b.String(), events.Options{SkipErrors: true})
	checkEnded(t, "parent", parent, events.StatusCompleted, events.Stats{Total: rows, Processed: rows, Failed: rows})
	company := run(c, org, "companies", "c.csv", "code,name\nBIG,Big Co\n", events.Options{})
	checkEnded(t, "the company", company, events.StatusCompleted, events.Stats{Total: 1, Processed: 1, Created: 1})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := c.Client(org).Retry(ctx, parent.ID, client.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	c.Remember(created.ID, org)
	c.WaitProgress(created.ID, events.PhaseProcessing, 1, 2*time.Minute)
	c.Kill("processing", 0)
	done := len(c.Progress(created.ID, events.PhaseProcessing))
	t.Logf("SIGKILLed processing after %d/%d batches of the retry", done, rows/100)
	time.Sleep(time.Second)
	c.Restart("processing", 0)
	r := c.WaitTerminalFor(created.ID, 3*time.Minute)
	checkEnded(t, "retry", r, events.StatusCompleted, events.Stats{Total: rows, Processed: rows, Created: rows})
	emails := map[string]int{}
	for _, rec := range c.Records(org, "customers") {
		emails[fmt.Sprint(rec.Fields()["email"])]++
	}
	if len(emails) != rows {
		t.Errorf("%d customers stored, want %d", len(emails), rows)
	}
	for e, n := range emails {
		if n != 1 {
			t.Errorf("%s stored %d times", e, n)
		}
	}
	if p, ok := c.Import(parent.ID); !ok || !slices.Equal(p.Children, []string{created.ID}) {
		t.Errorf("the parent lists %v, want its retry %s", p.Children, created.ID)
	}
}
