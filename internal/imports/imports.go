// Package imports holds what every service knows about an import: option
// defaults and validation, ids, blob keys, and the one function that turns
// batch progress into the import object (used by cleanup and the projector,
// so the completion event and the projector's view can never disagree).
package imports

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/textlimit"
)

// DefaultErrorThreshold is spec §1's default share of failed rows.
const DefaultErrorThreshold = events.DefaultErrorThreshold

// NewID returns a fresh import id, sortable by creation time. The id's form
// is public (clients read its time): events.NewID is its one home.
func NewID(t time.Time) string { return events.NewID(t) }

// IDTime is the creation time inside an imp_<ULID> id (events.IDTime).
func IDTime(id string) (time.Time, bool) { return events.IDTime(id) }

// DerivedID is the id of a request that did not choose one: the same request
// (same seed, same time) always gets the same id, so a redelivered request
// never creates a second import.
func DerivedID(t time.Time, seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return events.IDPrefix + ulid.MustNew(ulid.Timestamp(t), &fixedEntropy{b: sum[:]}).String()
}

type fixedEntropy struct{ b []byte }

func (f *fixedEntropy) Read(p []byte) (int, error) {
	if len(f.b) < len(p) {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// RecordID is the id a new record gets: the import's creation time, a hash
// of the import id and the row number, so a re-run of the phase that assigns
// it assigns the same one, two imports never collide, and the ids of one
// import ascend with its rows. Ascending ids append to the id indexes instead
// of landing on a random page of them: half the cost of loading new records
// into PostgreSQL (docs/performance.md). An import id that is not imp_<ULID>
// takes the hash's first bits in place of the time.
func RecordID(importID string, row int64) string { return RecordIDs(importID)(row) }

// RecordIDs is RecordID for many rows of one import: the import's part is
// worked out once (per row it was 0.8 CPU-s of a 1M-row import).
func RecordIDs(importID string) func(row int64) string {
	sum := sha256.Sum256([]byte(importID))
	ms := binary.BigEndian.Uint64(sum[:8]) >> 16
	if t, ok := IDTime(importID); ok {
		ms = uint64(t.UnixMilli())
	}
	prefix := fmt.Sprintf("rec_%012x%08x", ms&(1<<48-1), binary.BigEndian.Uint32(sum[8:12]))
	return func(row int64) string {
		const digits = 10 // 40 bits of row number, in hex
		b := make([]byte, len(prefix)+digits)
		copy(b, prefix)
		n := uint64(row) & (1<<40 - 1)
		for i := len(b) - 1; i >= len(prefix); i-- {
			b[i] = "0123456789abcdef"[n&0xf]
			n >>= 4
		}
		return string(b)
	}
}

// Option validation errors name the option.
type OptionError struct {
	Field   string
	Message string
}

func (e *OptionError) Error() string { return e.Field + ": " + e.Message }

// CheckDeadline refuses a deadline that had passed when the import was
// created: such an import could only time out. It is checked once, at
// creation: a deadline that passes later ends the import timed_out.
func CheckDeadline(o events.Options, created time.Time) *OptionError {
	if o.Deadline != nil && !o.Deadline.After(created) {
		return &OptionError{"deadline", fmt.Sprintf("%s is not after the import's creation (%s)",
			o.Deadline.UTC().Format(time.RFC3339), created.UTC().Format(time.RFC3339))}
	}
	return nil
}

// choose gives an unset option its default (the first allowed value) and
// refuses a value that is not allowed.
func choose[T ~string](field string, p *T, allowed []T) error {
	if *p == "" {
		*p = allowed[0]
	}
	if slices.Contains(allowed, *p) {
		return nil
	}
	return &OptionError{field, fmt.Sprintf("%s is not one of %v", textlimit.Quote(string(*p)), allowed)}
}

// Normalize applies the defaults of spec §1 and validates the options.
func Normalize(o *events.Options) error {
	if o.OrganizationID == "" {
		o.OrganizationID = "default"
	}
	if !events.ValidToken(o.OrganizationID) {
		return &OptionError{"organization_id", textlimit.Quote(o.OrganizationID) + " is not a valid organization id ([A-Za-z0-9_-]{1,64})"}
	}
	if o.Resource == "" {
		return &OptionError{"resource", "is required"}
	}
	if !events.ValidToken(o.Resource) {
		return &OptionError{"resource", textlimit.Quote(o.Resource) + " is not a valid resource name"}
	}
	for _, err := range []error{
		choose("mode", &o.Mode, events.Modes),
		choose("format", &o.Format, events.Formats),
		choose("action", &o.Action, events.Actions),
		choose("duplicate_handling", &o.DuplicateHandling, events.DuplicateHandlings),
		choose("upload_mode", &o.UploadMode, events.UploadModes),
	} {
		if err != nil {
			return err
		}
	}
	switch o.Delimiter {
	case "", ",", ";", "\t", "|", ":":
	case "tab", "\\t":
		o.Delimiter = "\t"
	default:
		return &OptionError{"delimiter", textlimit.Quote(o.Delimiter) + " is not one of , ; tab | :"}
	}
	switch {
	case o.Action == events.ActionRevert && o.ParentImportID == "":
		return &OptionError{"parent_import_id", "is required for action revert (the import to revert)"}
	case o.Force && o.Action != events.ActionRevert:
		return &OptionError{"force", "applies to action revert only"}
	case len(o.ParentImportID) > 255:
		return &OptionError{"parent_import_id", "is longer than 255 bytes"}
	case o.ParentImportID == "." || o.ParentImportID == ".." || strings.ContainsAny(o.ParentImportID, "/\\\x00"):
		return &OptionError{"parent_import_id", textlimit.Quote(o.ParentImportID) + " is not an import id"}
	}
	if o.ErrorThreshold == nil {
		t := DefaultErrorThreshold
		o.ErrorThreshold = &t
	}
	if t := *o.ErrorThreshold; math.IsNaN(t) || t < 0 || t > 1 {
		return &OptionError{"error_threshold", fmt.Sprintf("%v is not between 0 and 1", *o.ErrorThreshold)}
	}
	return checkLimits(o)
}

// ProcessingBatchID is the store batch id of processing's batch b: the store
// applies it once.
func ProcessingBatchID(id string, b int) string { return fmt.Sprintf("%s:%06d", id, b) }

// Initial builds the import object of a new import from its options.
func Initial(o events.Options, now time.Time) events.Import {
	now = now.UTC()
	if o.Deadline != nil {
		d := o.Deadline.UTC()
		o.Deadline = &d
	}
	imp := events.Import{
		Options:   o,
		Status:    events.StatusQueued,
		UpdatedBy: o.CreatedBy,
		CreatedAt: now,
		UpdatedAt: now,
		Links:     Links(o),
	}
	if imp.ColumnMapping == nil {
		imp.ColumnMapping = map[string]string{}
	}
	if imp.Metadata == nil {
		imp.Metadata = map[string]any{}
	}
	imp.Phases = make([]events.PhaseStatus, len(events.Phases))
	for i, p := range events.Phases {
		imp.Phases[i] = events.PhaseStatus{Name: p, Status: "pending"}
	}
	return imp
}

// Links are the links every import has from its start: itself, and the
// import it derives from.
func Links(o events.Options) events.Links {
	l := events.Links{Self: "/v1/imports/" + o.ID}
	if o.ParentImportID != "" {
		l.Parent = "/v1/imports/" + o.ParentImportID
	}
	return l
}

// Progress is the set of batch results known for an import, keyed so that a
// result seen twice counts once.
type Progress map[string]events.BatchProgress

// ProgressKey identifies one batch of one phase.
func ProgressKey(phase string, batch int) string { return fmt.Sprintf("%s/%06d", phase, batch) }

// Add records p (a repeat of the same batch replaces it: same numbers).
func (pr Progress) Add(p events.BatchProgress) { pr[ProgressKey(p.Phase, p.Batch)] = p }

// PhaseSums is the running total of the batch results of one phase: what a
// consumer that sees each batch once (the projector) keeps instead of every
// BatchProgress.
type PhaseSums struct {
	BatchesDone  int        `json:"batches_done"`
	BatchesTotal int        `json:"batches_total"`
	RowsIn       int64      `json:"rows_in"`
	RowsOut      int64      `json:"rows_out"`
	RowsFailed   int64      `json:"rows_failed"`
	Skipped      int64      `json:"skipped"`
	Created      int64      `json:"created"`
	Updated      int64      `json:"updated"`
	Unchanged    int64      `json:"unchanged"`
	Deleted      int64      `json:"deleted"`
	Warnings     int64      `json:"warnings"`
	Overwritten  int64      `json:"overwritten"`
	StartedAt    *time.Time `json:"started_at,omitempty"`
	CompletedAt  *time.Time `json:"completed_at,omitempty"`
}

// Add counts one batch result. The caller guarantees each (phase, batch) is
// added once: sums cannot tell a repeat from a new batch.
func (s *PhaseSums) Add(p events.BatchProgress) {
	s.BatchesDone++
	if p.BatchesTotal > s.BatchesTotal {
		s.BatchesTotal = p.BatchesTotal
	}
	s.RowsIn += p.RowsIn
	s.RowsOut += p.RowsOut
	s.RowsFailed += p.RowsFailed
	s.Skipped += p.Skipped
	s.Created += p.Created
	s.Updated += p.Updated
	s.Unchanged += p.Unchanged
	s.Deleted += p.Deleted
	s.Warnings += p.Warnings
	s.Overwritten += p.Overwritten
	st, c := p.StartedAt.UTC(), p.CompletedAt.UTC()
	if s.StartedAt == nil || st.Before(*s.StartedAt) {
		s.StartedAt = &st
	}
	if s.CompletedAt == nil || c.After(*s.CompletedAt) {
		s.CompletedAt = &c
	}
}

// Apply fills imp's phases and stats from the batch results (spec §3). It does
// not change imp's status.
func Apply(imp *events.Import, pr Progress, completedPhases map[string]bool) {
	sums := map[string]*PhaseSums{}
	for _, p := range pr {
		s := sums[p.Phase]
		if s == nil {
			s = &PhaseSums{}
			sums[p.Phase] = s
		}
		s.Add(p)
	}
	ApplySums(imp, sums, completedPhases)
}

// ApplySums is Apply over per-phase sums (phase name → sums; phases not in
// events.Phases are ignored). It does not change imp's status.
func ApplySums(imp *events.Import, sums map[string]*PhaseSums, completedPhases map[string]bool) {
	var st events.Stats
	phases := make([]events.PhaseStatus, len(events.Phases))
	for i, name := range events.Phases {
		ps := events.PhaseStatus{Name: name, Status: "pending"}
		if s := sums[name]; s != nil {
			ps.BatchesDone = s.BatchesDone
			ps.BatchesTotal = s.BatchesTotal
			ps.RowsIn, ps.RowsOut, ps.RowsFailed, ps.RowsSkipped = s.RowsIn, s.RowsOut, s.RowsFailed, s.Skipped
			if s.StartedAt != nil {
				t := *s.StartedAt
				ps.StartedAt = &t
			}
			if s.CompletedAt != nil {
				t := *s.CompletedAt
				ps.CompletedAt = &t
			}
			if name == events.PhasePrevalidation {
				st.Total += s.RowsIn
			}
			st.Failed += s.RowsFailed
			st.Skipped += s.Skipped
			st.Warnings += s.Warnings
			st.Created += s.Created
			st.Updated += s.Updated
			st.Unchanged += s.Unchanged
			st.Deleted += s.Deleted
			st.Overwritten += s.Overwritten
		}
		switch {
		case completedPhases[name] || (ps.BatchesTotal > 0 && ps.BatchesDone >= ps.BatchesTotal):
			ps.Status = "completed"
		case ps.BatchesDone > 0:
			ps.Status = "running"
			ps.CompletedAt = nil
		}
		phases[i] = ps
	}
	st.Processed = bucketSum(st)
	imp.Phases = phases
	imp.Stats = st
}

// bucketSum is processed as spec §3 defines it: every row in one bucket.
func bucketSum(st events.Stats) int64 {
	return st.Created + st.Updated + st.Unchanged + st.Deleted + st.Skipped + st.Failed
}

// Finish sets a terminal status on imp. Its processed is the sum of the
// buckets again (spec §3), whatever the running import showed.
func Finish(imp *events.Import, status events.Status, reason string, now time.Time) {
	now = now.UTC()
	imp.Status = status
	imp.Stats.Processed = bucketSum(imp.Stats)
	imp.UpdatedAt = now
	imp.CompletedAt = &now
	if status == events.StatusInterrupted {
		imp.InterruptedAt = &now
	}
	if status != events.StatusCompleted && reason != "" {
		imp.Reason = &reason
	} else {
		imp.Reason = nil
	}
	bound(imp)
	SetProgress(imp, imp.Progress.Percent, now)
	imp.Links.ErrorsCSV = imp.Links.Self + "/errors.csv"
	imp.Links.ErrorsJSON = imp.Links.Self + "/errors.json"
	for i := range imp.Phases {
		if imp.Phases[i].Status == "pending" {
			imp.Phases[i].Status = "skipped"
		}
	}
}
