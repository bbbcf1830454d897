package imports_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
)

func TestRetryOptionsTakeTheParentsButTheRunsOwn(t *testing.T) {
	pr, th := "rec_1", 0.7
	parent := events.Options{ID: "imp_parent", OrganizationID: "acme", Resource: "customers", Mode: events.ModeTest,
		Action: events.ActionOverwrite, DuplicateHandling: events.DuplicatesUseFirst, ColumnMapping: map[string]string{"email": "E-mail"},
		ParentResourceID: &pr, ErrorThreshold: &th, SkipErrors: true, DryRun: true, Name: "nightly", Format: events.FormatXLSX,
		Sheet: "Data", Metadata: map[string]any{"a": 1.0}}
	req := events.Options{ID: "imp_child", OrganizationID: "acme", Resource: "customers", Name: "fix", Action: events.ActionMerge,
		ParentImportID: "imp_parent", Force: true, UploadMode: events.UploadSync}
	got := imports.RetryOptions(parent, req, false)
	want := events.Options{ID: "imp_child", OrganizationID: "acme", Resource: "customers", Mode: events.ModeTest, Name: "fix",
		Action: events.ActionMerge, DuplicateHandling: events.DuplicatesUseFirst, ColumnMapping: parent.ColumnMapping,
		ParentResourceID: &pr, ParentImportID: "imp_parent", UploadMode: events.UploadAsync, Delimiter: ","}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("retry options:\n got %+v\nwant %+v", got, want)
	}
	if again := imports.RetryOptions(parent, got, false); !reflect.DeepEqual(again, got) {
		t.Errorf("a second merge changed the options:\n%+v\n%+v", again, got)
	}
	withFile := imports.RetryOptions(parent, events.Options{Format: events.FormatCSV, Delimiter: ";", UploadMode: events.UploadSync}, true)
	if withFile.Format != events.FormatCSV || withFile.Delimiter != ";" || withFile.UploadMode != events.UploadSync {
		t.Errorf("with a file the file's options are the request's: %+v", withFile)
	}
	del := parent
	del.Action = events.ActionDelete
	if o := imports.RetryOptions(del, events.Options{}, false); o.Action != events.ActionDelete {
		t.Errorf("a delete's retry deletes: %s", o.Action)
	}
}

func TestCheckRetryParent(t *testing.T) {
	base := imports.Initial(events.Options{ID: "imp_p", Resource: "customers", Action: events.ActionMerge}, time.Now())
	for _, c := range []struct {
		name   string
		edit   func(*events.Import)
		status int
		code   string
	}{
		{"completed with failed rows", func(i *events.Import) { i.Status, i.Stats.Failed = events.StatusCompleted, 2 }, 0, ""},
		{"interrupted while processing", func(i *events.Import) {
			i.Status, i.Stats.Failed, i.Phases[5].BatchesDone = events.StatusInterrupted, 9, 1
		}, 0, ""},
		{"interrupted before writing (threshold)", func(i *events.Import) { i.Status, i.Stats.Failed = events.StatusInterrupted, 9 }, 422, "nothing_written"},
		{"running", func(i *events.Import) { i.Status, i.Stats.Failed = events.StatusProcessing, 2 }, 409, "not_finished"},
		{"no failed rows", func(i *events.Import) { i.Status, i.Stats.Skipped = events.StatusCompleted, 2 }, 422, "no_failed_rows"},
		{"a revert", func(i *events.Import) {
			i.Status, i.Stats.Failed, i.Action = events.StatusCompleted, 1, events.ActionRevert
		}, 422, "not_retryable"},
	} {
		imp := base
		imp.Phases = slices.Clone(base.Phases)
		c.edit(&imp)
		err := imports.CheckRetryParent(imp)
		switch {
		case c.status == 0 && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.status != 0 && (err == nil || err.Status != c.status || err.Code != c.code):
			t.Errorf("%s: %+v, want %d %s", c.name, err, c.status, c.code)
		}
	}
}

func TestDoneWeighsPhasesEquallyByBatches(t *testing.T) {
	imp := imports.Initial(events.Options{ID: "imp_p"}, time.Now())
	if d := imports.Done(imp.Phases); d != 0 {
		t.Errorf("nothing done: %v", d)
	}
	imp.Phases[0].Status, imp.Phases[0].BatchesTotal, imp.Phases[0].BatchesDone = events.PhaseStatusCompleted, 8, 8
	imp.Phases[2].BatchesDone, imp.Phases[2].BatchesTotal = 4, 8
	imp.Phases[3].Status = events.PhaseStatusCompleted // a barrier's phase_completed before its batches' progress
	if d, want := imports.Done(imp.Phases), (1+0.5+1)/7.0; d != want {
		t.Errorf("done %v, want %v", d, want)
	}
}
