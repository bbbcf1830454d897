// Package events holds Inlet's public contract on the wire: the import object,
// the events published about it, their subjects, stream and CloudEvents
// envelope, the form of import ids, and the names and shapes the HTTP API
// shares with its clients (http.go). A client outside Go uses the JSON
// Schemas under schemas/ instead.
package events

import (
	"encoding/json"
	"time"
)

// Status of an import (spec §2).
type Status string

const (
	StatusRequested   Status = "requested"
	StatusQueued      Status = "queued"
	StatusProcessing  Status = "processing"
	StatusCompleted   Status = "completed"
	StatusFailed      Status = "failed"
	StatusInterrupted Status = "interrupted"
	StatusTimedOut    Status = "timed_out"
	StatusExpired     Status = "expired"
)

// Statuses lists every Status, in the order an import goes through them.
var Statuses = []Status{StatusRequested, StatusQueued, StatusProcessing, StatusCompleted,
	StatusFailed, StatusInterrupted, StatusTimedOut, StatusExpired}

// Terminal reports whether the status never changes again.
func (s Status) Terminal() bool {
	switch s {
	case StatusCompleted, StatusFailed, StatusInterrupted, StatusTimedOut, StatusExpired:
		return true
	}
	return false
}

// Phase names, in pipeline order (spec §4).
const (
	PhasePrevalidation = "prevalidation"
	PhasePreparsing    = "preparsing"
	PhaseTransforming  = "transforming"
	PhaseParsing       = "parsing"
	PhaseValidation    = "validation"
	PhaseProcessing    = "processing"
	PhaseCleanup       = "cleanup"
)

// Phases lists the phase names in pipeline order.
var Phases = []string{PhasePrevalidation, PhasePreparsing, PhaseTransforming, PhaseParsing, PhaseValidation, PhaseProcessing, PhaseCleanup}

// Options are what a user chooses when requesting an import (spec §1).
type Options struct {
	ID                string            `json:"id,omitempty"`
	OrganizationID    string            `json:"organization_id"`
	Mode              Mode              `json:"mode,omitempty"`
	Name              string            `json:"name,omitempty"`
	Resource          string            `json:"resource"`
	Format            Format            `json:"format,omitempty"`
	Action            Action            `json:"action,omitempty"`
	DuplicateHandling DuplicateHandling `json:"duplicate_handling,omitempty"`
	UploadMode        UploadMode        `json:"upload_mode,omitempty"`
	ColumnMapping     map[string]string `json:"column_mapping,omitempty"`
	ParentResourceID  *string           `json:"parent_resource_id,omitempty"`
	ErrorThreshold    *float64          `json:"error_threshold,omitempty"`
	SkipErrors        bool              `json:"skip_errors,omitempty"`
	DryRun            bool              `json:"dry_run,omitempty"`
	Reference         string            `json:"reference,omitempty"`
	ReferenceOrigin   string            `json:"reference_origin,omitempty"`
	Metadata          map[string]any    `json:"metadata,omitempty"`
	CreatedBy         string            `json:"created_by,omitempty"`
	// Sheet names the XLSX sheet to read (default: the first).
	Sheet string `json:"sheet,omitempty"`
	// Delimiter forces the CSV delimiter (default: detected).
	Delimiter string `json:"delimiter,omitempty"`
	// Deadline ends the import timed_out if it has not finished by then.
	Deadline *time.Time `json:"deadline,omitempty"`
	// ParentImportID names the import this one derives from: the import a
	// revert undoes, or whose failed rows a retry runs again.
	ParentImportID string `json:"parent_import_id,omitempty"`
	// Force makes a revert put records back even where another import
	// changed them since (they are reported revert.conflict otherwise).
	Force bool `json:"force,omitempty"`
}

// Source points at a file already in the blob store.
type Source struct {
	Bucket      string `json:"bucket,omitempty"`
	Key         string `json:"key"`
	Name        string `json:"name,omitempty"`
	ContentType string `json:"content_type,omitempty"`
}

// ImportRequested is the body a client publishes on imports.<org>.<resource>.requested.
// Exactly one of Source and Inputs is set.
type ImportRequested struct {
	Options
	Source *Source           `json:"source,omitempty"`
	Inputs []json.RawMessage `json:"inputs,omitempty"`
	// ExpiresAt and UploadURL are set by the gateway on a request that waits
	// for its file: until when, and where to upload it.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	UploadURL string     `json:"upload_url,omitempty"`
}

// Stats is the row accounting of spec §3.
type Stats struct {
	Total       int64 `json:"total"`
	Processed   int64 `json:"processed"`
	Created     int64 `json:"created"`
	Updated     int64 `json:"updated"`
	Unchanged   int64 `json:"unchanged"`
	Deleted     int64 `json:"deleted"`
	Skipped     int64 `json:"skipped"`
	Failed      int64 `json:"failed"`
	Warnings    int64 `json:"warnings"`
	Overwritten int64 `json:"overwritten"`
}

// PhaseStatus is one entry of Import.Phases.
type PhaseStatus struct {
	Name         string     `json:"name"`
	Status       string     `json:"status"` // PhaseStatusPending | Running | Completed | Skipped
	StartedAt    *time.Time `json:"started_at"`
	CompletedAt  *time.Time `json:"completed_at"`
	BatchesTotal int        `json:"batches_total"`
	BatchesDone  int        `json:"batches_done"`
	RowsIn       int64      `json:"rows_in"`
	RowsOut      int64      `json:"rows_out"`
	RowsFailed   int64      `json:"rows_failed"`
	// RowsSkipped are the rows the phase set aside on purpose (duplicates,
	// a delete's missing record): like failed rows they go no further.
	RowsSkipped int64 `json:"rows_skipped"`
}

// Values of PhaseStatus.Status.
const (
	PhaseStatusPending   = "pending"
	PhaseStatusRunning   = "running"
	PhaseStatusCompleted = "completed"
	PhaseStatusSkipped   = "skipped"
)

// File describes what was received and what was detected in it.
type File struct {
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
	Checksum    string `json:"checksum"`
	Encoding    string `json:"encoding"`
	Delimiter   string `json:"delimiter"`
	HasHeader   bool   `json:"has_header"`
	// Sheet is the XLSX sheet that was read, when one was named (extension).
	Sheet string `json:"sheet,omitempty"`
	// Compression is "gzip" when the upload was gzip-compressed (read
	// decompressed); "" otherwise.
	Compression string `json:"compression,omitempty"`
	// Columns is the mapping the import used: each header column (CSV,
	// XLSX) by the field it fed. Absent for JSON, whose keys are mapped
	// record by record, and before the header was read.
	Columns map[string]string `json:"columns,omitempty"`
	// UnmappedHeaders are the header columns no field took, in file order,
	// each with the closest field names.
	UnmappedHeaders []UnmappedHeader `json:"unmapped_headers,omitempty"`
}

// UnmappedHeader is a header column of the file that no field took.
type UnmappedHeader struct {
	Header string `json:"header"`
	// Suggestions are the fields whose names (or aliases) are closest to
	// the header, closest first, at most three; empty when none is close.
	Suggestions []string `json:"suggestions"`
}

// Links of an import; empty ones are omitted.
type Links struct {
	Self       string `json:"self"`
	Upload     string `json:"upload,omitempty"`
	ErrorsCSV  string `json:"errors_csv,omitempty"`
	ErrorsJSON string `json:"errors_json,omitempty"`
	UploadCSV  string `json:"upload_csv,omitempty"`
	UploadJSON string `json:"upload_json,omitempty"`
	// Parent is the import this one derives from (parent_import_id).
	Parent string `json:"parent,omitempty"`
}

// Progress is how far a running import has got, for a person to read. It is
// derived from the batches the phases have committed: each of the seven
// phases is a seventh of the work, done in the share of its batches
// committed.
type Progress struct {
	// Percent of the work done, 0 to 100, one decimal; it never goes back,
	// and is 100 only once the import completed.
	Percent float64 `json:"percent"`
	// RowsPerSecond is the file's rows carried through the pipeline per
	// second since the import started (the rows' worth of the work done);
	// null until a batch committed.
	RowsPerSecond *float64 `json:"rows_per_second"`
	// ETA is when the import should end at the rate so far: a time, not a
	// count of seconds, so that a stored or cached object does not go stale.
	// Null when unknown (nothing committed yet) and once the import ended.
	ETA *time.Time `json:"eta"`
}

// Import is the import object of spec §1: every read returns it. It carries
// the options it was created with; unlike a request, it shows every option,
// set or not (see MarshalJSON).
type Import struct {
	Options
	Status        Status        `json:"status"`
	Reason        *string       `json:"reason"`
	Phases        []PhaseStatus `json:"phases"`
	Stats         Stats         `json:"stats"`
	File          File          `json:"file"`
	UpdatedBy     string        `json:"updated_by"`
	CreatedAt     time.Time     `json:"created_at"`
	UpdatedAt     time.Time     `json:"updated_at"`
	StartedAt     *time.Time    `json:"started_at"`
	CompletedAt   *time.Time    `json:"completed_at"`
	InterruptedAt *time.Time    `json:"interrupted_at"`
	ExpiresAt     *time.Time    `json:"expires_at"`
	Links         Links         `json:"links"`
	// Children are the imports started from this one (reverts, retries),
	// oldest first.
	Children []string `json:"children"`
	Progress Progress `json:"progress"`
}

// DefaultErrorThreshold is the error_threshold of an import that chose none
// (spec §1).
const DefaultErrorThreshold = 0.1

// Threshold is the share of failed rows the import tolerates.
func (o Options) Threshold() float64 {
	if o.ErrorThreshold == nil {
		return DefaultErrorThreshold
	}
	return *o.ErrorThreshold
}

// shownOptions are Options as the import object shows them: every option
// present, null or empty when unset, where a request leaves those out.
// Options convert to it field for field (struct conversion ignores tags), so
// an option added to one and not the other does not compile.
type shownOptions struct {
	ID                string            `json:"id"`
	OrganizationID    string            `json:"organization_id"`
	Mode              Mode              `json:"mode"`
	Name              string            `json:"name"`
	Resource          string            `json:"resource"`
	Format            Format            `json:"format"`
	Action            Action            `json:"action"`
	DuplicateHandling DuplicateHandling `json:"duplicate_handling"`
	UploadMode        UploadMode        `json:"upload_mode"`
	ColumnMapping     map[string]string `json:"column_mapping"`
	ParentResourceID  *string           `json:"parent_resource_id"`
	ErrorThreshold    *float64          `json:"error_threshold"`
	SkipErrors        bool              `json:"skip_errors"`
	DryRun            bool              `json:"dry_run"`
	Reference         string            `json:"reference"`
	ReferenceOrigin   string            `json:"reference_origin"`
	Metadata          map[string]any    `json:"metadata"`
	CreatedBy         string            `json:"created_by"`
	Sheet             string            `json:"sheet,omitempty"`
	Delimiter         string            `json:"delimiter,omitempty"`
	Deadline          *time.Time        `json:"deadline"`
	ParentImportID    string            `json:"parent_import_id,omitempty"`
	Force             bool              `json:"force,omitempty"`
}

// MarshalJSON writes the import object with every option present; an unset
// error_threshold shows its default.
func (i Import) MarshalJSON() ([]byte, error) {
	type fields Import // without this method
	shown := shownOptions(i.Options)
	if shown.ErrorThreshold == nil {
		t := DefaultErrorThreshold
		shown.ErrorThreshold = &t
	}
	rest := fields(i)
	if rest.Children == nil {
		rest.Children = []string{}
	}
	// shownOptions' fields lie shallower than the embedded Options': they win.
	return json.Marshal(struct {
		shownOptions
		fields
	}{shown, rest})
}

// Normalize replaces nil maps and slices by empty ones, so the import
// marshals "column_mapping": {}, "metadata": {} and "phases": [] instead of
// null. The schema accepts both; publishers should prefer the empty forms.
func (i *Import) Normalize() {
	if i.ColumnMapping == nil {
		i.ColumnMapping = map[string]string{}
	}
	if i.Metadata == nil {
		i.Metadata = map[string]any{}
	}
	if i.Phases == nil {
		i.Phases = []PhaseStatus{}
	}
	if i.Children == nil {
		i.Children = []string{}
	}
}

// BatchProgress is the data of a progress event: one batch of one phase is done.
// Events about the same (import, phase, batch) carry the same numbers, so a
// consumer keys them by that triple and never counts one twice.
type BatchProgress struct {
	ImportID     string    `json:"import_id"`
	Phase        string    `json:"phase"`
	Batch        int       `json:"batch"`
	BatchesTotal int       `json:"batches_total"`
	RowsIn       int64     `json:"rows_in"`
	RowsOut      int64     `json:"rows_out"`
	RowsFailed   int64     `json:"rows_failed"`
	Skipped      int64     `json:"skipped"`
	Created      int64     `json:"created"`
	Updated      int64     `json:"updated"`
	Unchanged    int64     `json:"unchanged"`
	Deleted      int64     `json:"deleted"`
	Warnings     int64     `json:"warnings"`
	Overwritten  int64     `json:"overwritten"`
	StartedAt    time.Time `json:"started_at"`
	CompletedAt  time.Time `json:"completed_at"`
}

// PhaseCompleted is the data of a phase_completed event.
type PhaseCompleted struct {
	ImportID     string    `json:"import_id"`
	Phase        string    `json:"phase"`
	BatchesTotal int       `json:"batches_total"`
	CompletedAt  time.Time `json:"completed_at"`
}
