package imports_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/imports"
)

func fptr(f float64) *float64 { return &f }

func TestNormalizeDefaults(t *testing.T) {
	o := events.Options{Resource: "customers"}
	if err := imports.Normalize(&o); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"organization_id":    "default",
		"mode":               "live",
		"format":             "csv",
		"action":             "merge",
		"duplicate_handling": "ignore_all",
		"upload_mode":        "async",
	}
	got := map[string]string{
		"organization_id":    o.OrganizationID,
		"mode":               string(o.Mode),
		"format":             string(o.Format),
		"action":             string(o.Action),
		"duplicate_handling": string(o.DuplicateHandling),
		"upload_mode":        string(o.UploadMode),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("default %s = %q, want %q", k, got[k], v)
		}
	}
	if o.ErrorThreshold == nil || *o.ErrorThreshold != 0.1 || imports.DefaultErrorThreshold != 0.1 {
		t.Errorf("default error_threshold = %v, want 0.1", o.ErrorThreshold)
	}
	if o.SkipErrors || o.DryRun {
		t.Errorf("skip_errors/dry_run default to true")
	}

	// Given values are kept, not overwritten by defaults.
	given := events.Options{OrganizationID: "acme", Resource: "companies", Mode: "test", Format: "jsonl",
		Action: "delete", DuplicateHandling: "use_first", UploadMode: "sync", ErrorThreshold: fptr(0)}
	if err := imports.Normalize(&given); err != nil {
		t.Fatal(err)
	}
	if given.OrganizationID != "acme" || given.Mode != "test" || given.Format != "jsonl" || given.Action != "delete" ||
		given.DuplicateHandling != "use_first" || given.UploadMode != "sync" || *given.ErrorThreshold != 0 {
		t.Errorf("given options changed: %+v", given)
	}
	// Normalizing twice is a no-op.
	again := given
	if err := imports.Normalize(&again); err != nil || again.Mode != given.Mode || *again.ErrorThreshold != 0 {
		t.Errorf("second Normalize: %v %+v", err, again)
	}
}

func TestNormalizeAcceptsEveryAllowedValue(t *testing.T) {
	for _, m := range []events.Mode{"live", "test"} {
		for _, f := range []events.Format{"csv", "json", "jsonl", "xlsx"} {
			for _, a := range []events.Action{"merge", "overwrite", "delete"} {
				for _, d := range []events.DuplicateHandling{"ignore_all", "use_first"} {
					for _, u := range []events.UploadMode{"sync", "async"} {
						o := events.Options{Resource: "r", Mode: m, Format: f, Action: a, DuplicateHandling: d, UploadMode: u}
						if err := imports.Normalize(&o); err != nil {
							t.Errorf("%s/%s/%s/%s/%s: %v", m, f, a, d, u, err)
						}
					}
				}
			}
		}
	}
	for _, th := range []float64{0, 0.5, 1} {
		o := events.Options{Resource: "r", ErrorThreshold: fptr(th)}
		if err := imports.Normalize(&o); err != nil {
			t.Errorf("error_threshold %v: %v", th, err)
		}
	}
	for _, tok := range []string{"a", "ACME_corp-2", strings.Repeat("x", 64)} {
		o := events.Options{OrganizationID: tok, Resource: tok}
		if err := imports.Normalize(&o); err != nil {
			t.Errorf("token %q: %v", tok, err)
		}
	}
}

func TestNormalizeNamesTheInvalidOption(t *testing.T) {
	base := func(mod func(*events.Options)) events.Options {
		o := events.Options{OrganizationID: "acme", Resource: "customers"}
		mod(&o)
		return o
	}
	cases := []struct {
		name  string
		o     events.Options
		field string
	}{
		{"org with dot", base(func(o *events.Options) { o.OrganizationID = "acme.eu" }), "organization_id"},
		{"org wildcard", base(func(o *events.Options) { o.OrganizationID = "*" }), "organization_id"},
		{"org gt", base(func(o *events.Options) { o.OrganizationID = ">" }), "organization_id"},
		{"org space", base(func(o *events.Options) { o.OrganizationID = "a b" }), "organization_id"},
		{"org unicode", base(func(o *events.Options) { o.OrganizationID = "acmé" }), "organization_id"},
		{"org too long", base(func(o *events.Options) { o.OrganizationID = strings.Repeat("x", 65) }), "organization_id"},
		{"resource missing", base(func(o *events.Options) { o.Resource = "" }), "resource"},
		{"resource with dot", base(func(o *events.Options) { o.Resource = "customers.v2" }), "resource"},
		{"resource slash", base(func(o *events.Options) { o.Resource = "a/b" }), "resource"},
		{"resource too long", base(func(o *events.Options) { o.Resource = strings.Repeat("r", 65) }), "resource"},
		{"mode", base(func(o *events.Options) { o.Mode = "prod" }), "mode"},
		{"mode case", base(func(o *events.Options) { o.Mode = "LIVE" }), "mode"},
		{"format", base(func(o *events.Options) { o.Format = "xml" }), "format"},
		{"action", base(func(o *events.Options) { o.Action = "upsert" }), "action"},
		{"duplicate_handling", base(func(o *events.Options) { o.DuplicateHandling = "use_last" }), "duplicate_handling"},
		{"upload_mode", base(func(o *events.Options) { o.UploadMode = "stream" }), "upload_mode"},
		{"threshold negative", base(func(o *events.Options) { o.ErrorThreshold = fptr(-0.01) }), "error_threshold"},
		{"threshold above 1", base(func(o *events.Options) { o.ErrorThreshold = fptr(1.0001) }), "error_threshold"},
		{"threshold +Inf", base(func(o *events.Options) { o.ErrorThreshold = fptr(math.Inf(1)) }), "error_threshold"},
		// Form fields are parsed with strconv.ParseFloat, which accepts "NaN".
		{"threshold NaN", base(func(o *events.Options) { o.ErrorThreshold = fptr(math.NaN()) }), "error_threshold"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := c.o
			err := imports.Normalize(&o)
			var oe *imports.OptionError
			if !errors.As(err, &oe) {
				t.Fatalf("err = %v, want an *OptionError", err)
			}
			if oe.Field != c.field {
				t.Errorf("OptionError.Field = %q, want %q (%v)", oe.Field, c.field, err)
			}
			if !strings.HasPrefix(err.Error(), c.field+": ") || oe.Message == "" {
				t.Errorf("message %q does not start with the field", err)
			}
		})
	}
}

func TestNewID(t *testing.T) {
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var ids []string
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		id := imports.NewID(base.Add(time.Duration(i) * time.Millisecond))
		if !strings.HasPrefix(id, "imp_") || len(id) != 4+26 {
			t.Fatalf("id %q is not imp_ + a ULID", id)
		}
		if !events.ValidToken(id) {
			t.Fatalf("id %q is not token-safe", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Errorf("ids of increasing times do not sort: %v", ids)
	}
	// Same instant: still unique.
	a, b := imports.NewID(base), imports.NewID(base)
	if a == b {
		t.Errorf("two ids at the same time are equal: %s", a)
	}
	// Later by a day sorts after, whatever the random part.
	if !(imports.NewID(base) < imports.NewID(base.Add(24*time.Hour))) {
		t.Errorf("a later id sorts first")
	}
}

func TestDerivedID(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	a := imports.DerivedID(t0, "seed-1")
	if a != imports.DerivedID(t0, "seed-1") {
		t.Errorf("same (time, seed) gave two ids")
	}
	if !strings.HasPrefix(a, "imp_") || len(a) != 30 {
		t.Errorf("derived id %q is not imp_ + ULID", a)
	}
	if a == imports.DerivedID(t0, "seed-2") {
		t.Errorf("different seeds gave the same id %s", a)
	}
	if a == imports.DerivedID(t0, "") {
		t.Errorf("empty seed gave the seed-1 id")
	}
	later := imports.DerivedID(t0.Add(time.Second), "seed-1")
	if later == a || !(a < later) {
		t.Errorf("derived id of a later time %s does not sort after %s", later, a)
	}
	// Seeds are hashed: a very long seed works too.
	long := strings.Repeat("s", 10000)
	if imports.DerivedID(t0, long) != imports.DerivedID(t0, long) {
		t.Errorf("long seed not deterministic")
	}
}

func TestRecordID(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	imp := imports.NewID(t0)
	a := imports.RecordID(imp, 7)
	if a != imports.RecordID(imp, 7) {
		t.Fatal("not deterministic")
	}
	if !strings.HasPrefix(a, "rec_") || len(a) != 4+30 {
		t.Errorf("record id %q", a)
	}
	later := imports.NewID(t0.Add(time.Millisecond))
	others := map[string]string{
		"row":              imports.RecordID(imp, 8),
		"import, same ms":  imports.RecordID(imports.NewID(t0), 7),
		"import, later ms": imports.RecordID(later, 7),
		"client's import":  imports.RecordID("my-import-1", 7),
	}
	for what, id := range others {
		if id == a {
			t.Errorf("a different %s gave the same id %s", what, id)
		}
	}
	// Ids ascend with the row, and with the import's creation time.
	prev := ""
	for _, row := range []int64{1, 2, 9, 10, 255, 256, 99999, 1 << 32} {
		id := imports.RecordID(imp, row)
		if id <= prev {
			t.Errorf("row %d: id %s does not sort after %s", row, id, prev)
		}
		prev = id
	}
	if imports.RecordID(later, 1) <= imports.RecordID(imp, 1<<32) {
		t.Errorf("a later import's first id sorts before an earlier import's last")
	}
	if imports.RecordID("my-import-1", 1) == imports.RecordID("my-import-2", 1) {
		t.Errorf("two client-chosen import ids gave the same record id")
	}
	// Stored ids keep their form: 12 hex digits of milliseconds, 8 of the
	// import's hash, 10 of the row (its low 40 bits).
	ids := imports.RecordIDs(imp)
	sum := sha256.Sum256([]byte(imp))
	for _, row := range []int64{0, 1, 0xabc, 1<<40 - 1, 1 << 40, 1<<40 + 5} {
		want := fmt.Sprintf("rec_%012x%08x%010x", t0.UnixMilli(), binary.BigEndian.Uint32(sum[8:12]), uint64(row)&(1<<40-1))
		if got := ids(row); got != want || imports.RecordID(imp, row) != want {
			t.Errorf("row %d: id %s, want %s", row, got, want)
		}
	}
}

func TestKeysSortInBatchOrder(t *testing.T) {
	id := "imp_X"
	for _, f := range []func(string, string, int) string{imports.OutKey, imports.RejectsKey, imports.StatsKey} {
		var keys []string
		for _, b := range []int{0, 1, 2, 9, 10, 99, 100, 1000, 12345} {
			keys = append(keys, f(id, "parsing", b))
		}
		if !sort.StringsAreSorted(keys) {
			t.Errorf("keys do not sort in batch order: %v", keys)
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, imports.PhasePrefix(id, "parsing")) || !strings.HasPrefix(k, imports.Prefix(id)) {
				t.Errorf("key %q is outside the phase prefix", k)
			}
		}
	}
	if k := imports.StatsKey(id, "parsing", 3); !strings.HasPrefix(k, imports.StatsPrefix(id, "parsing")) || k != "imports/imp_X/parsing/stats/000003.json" {
		t.Errorf("StatsKey = %q", k)
	}
	if k := imports.OutKey(id, "preparsing", 7); k != "imports/imp_X/preparsing/out/000007.ndjson" {
		t.Errorf("OutKey = %q", k)
	}
	if k := imports.RejectsKey(id, "preparsing", 7); k != "imports/imp_X/preparsing/rejects/000007.ndjson" {
		t.Errorf("RejectsKey = %q", k)
	}
	// Out, rejects and stats of one phase never share a prefix, so listing one lists nothing of the others.
	if strings.HasPrefix(imports.OutKey(id, "p", 0), imports.StatsPrefix(id, "p")) ||
		strings.HasPrefix(imports.RejectsKey(id, "p", 0), imports.StatsPrefix(id, "p")) {
		t.Errorf("out/rejects keys under the stats prefix")
	}
	// One import's keys are never under another's prefix (imp_1 vs imp_10).
	for _, k := range []string{imports.ImportKey("imp_10"), imports.TerminalKey("imp_10"), imports.HeaderKey("imp_10"),
		imports.SourceKey("imp_10", "f.csv"), imports.StatsKey("imp_10", "p", 0)} {
		if strings.HasPrefix(k, imports.Prefix("imp_1")) {
			t.Errorf("%q is under imp_1's prefix", k)
		}
		if !strings.HasPrefix(k, imports.Prefix("imp_10")) {
			t.Errorf("%q is not under its import's prefix", k)
		}
	}
	if imports.ProgressKey("parsing", 2) == imports.ProgressKey("parsing", 20) ||
		imports.ProgressKey("a", 1) == imports.ProgressKey("b", 1) {
		t.Errorf("progress keys collide")
	}
}

func TestInitial(t *testing.T) {
	now := time.Date(2024, 5, 1, 14, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	o := events.Options{ID: "imp_1", Resource: "customers", Name: "n", CreatedBy: "u1", Reference: "r", ReferenceOrigin: "ro"}
	if err := imports.Normalize(&o); err != nil {
		t.Fatal(err)
	}
	imp := imports.Initial(o, now)
	if imp.ID != "imp_1" || imp.OrganizationID != "default" || imp.Mode != "live" || imp.Format != "csv" ||
		imp.Action != "merge" || imp.DuplicateHandling != "ignore_all" || imp.UploadMode != "async" ||
		imp.Resource != "customers" || imp.Name != "n" || imp.Reference != "r" || imp.ReferenceOrigin != "ro" {
		t.Errorf("options not carried: %+v", imp)
	}
	if imp.ErrorThreshold == nil || *imp.ErrorThreshold != 0.1 {
		t.Errorf("error_threshold %v", imp.Threshold())
	}
	if imp.Status != events.StatusQueued {
		t.Errorf("status %s", imp.Status)
	}
	if imp.CreatedBy != "u1" || imp.UpdatedBy != "u1" {
		t.Errorf("created_by/updated_by %q/%q", imp.CreatedBy, imp.UpdatedBy)
	}
	if !imp.CreatedAt.Equal(now) || imp.CreatedAt.Location() != time.UTC || !imp.UpdatedAt.Equal(now) {
		t.Errorf("created_at %v (want %v in UTC)", imp.CreatedAt, now)
	}
	if imp.StartedAt != nil || imp.CompletedAt != nil || imp.InterruptedAt != nil || imp.Reason != nil {
		t.Errorf("times/reason set on a new import")
	}
	if imp.Links.Self != "/v1/imports/imp_1" || imp.Links.ErrorsCSV != "" || imp.Links.ErrorsJSON != "" {
		t.Errorf("links %+v", imp.Links)
	}
	if len(imp.Phases) != len(events.Phases) {
		t.Fatalf("%d phases", len(imp.Phases))
	}
	for i, p := range imp.Phases {
		if p.Name != events.Phases[i] || p.Status != events.PhaseStatusPending || p.StartedAt != nil || p.BatchesDone != 0 {
			t.Errorf("phase %d: %+v", i, p)
		}
	}
	b, _ := json.Marshal(imp)
	s := string(b)
	for _, frag := range []string{`"column_mapping":{}`, `"metadata":{}`, `"reason":null`, `"completed_at":null`} {
		if !strings.Contains(s, frag) {
			t.Errorf("JSON lacks %s: %s", frag, s)
		}
	}
	if imp.Stats != (events.Stats{}) {
		t.Errorf("stats %+v", imp.Stats)
	}
	// Given maps are carried.
	o.ColumnMapping = map[string]string{"email": "E-mail"}
	o.Metadata = map[string]any{"k": "v"}
	imp = imports.Initial(o, now)
	if imp.ColumnMapping["email"] != "E-mail" || imp.Metadata["k"] != "v" {
		t.Errorf("maps not carried: %v %v", imp.ColumnMapping, imp.Metadata)
	}
}

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func bp(phase string, batch, total int, in, out, failed int64, startS, endS int) events.BatchProgress {
	return events.BatchProgress{ImportID: "imp_1", Phase: phase, Batch: batch, BatchesTotal: total,
		RowsIn: in, RowsOut: out, RowsFailed: failed,
		StartedAt: t0.Add(time.Duration(startS) * time.Second), CompletedAt: t0.Add(time.Duration(endS) * time.Second)}
}

func phaseOf(t *testing.T, imp events.Import, name string) events.PhaseStatus {
	t.Helper()
	for _, p := range imp.Phases {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no phase %s", name)
	return events.PhaseStatus{}
}

func checkInvariant(t *testing.T, s events.Stats) {
	t.Helper()
	if s.Processed != s.Created+s.Updated+s.Unchanged+s.Deleted+s.Skipped+s.Failed {
		t.Errorf("processed %d != sum of buckets in %+v", s.Processed, s)
	}
}

func TestApplyStatsFromBatches(t *testing.T) {
	o := events.Options{ID: "imp_1", Resource: "customers"}
	_ = imports.Normalize(&o)
	imp := imports.Initial(o, t0)

	pr := imports.Progress{}
	// prevalidation: 2 batches of 5 + 3 rows; 1 failed in batch 0.
	pr.Add(bp("prevalidation", 0, 2, 5, 4, 1, 0, 2))
	pr.Add(bp("prevalidation", 1, 2, 3, 3, 0, 1, 5))
	// preparsing: 2 skipped duplicates.
	p := bp("preparsing", 0, 2, 4, 3, 0, 6, 7)
	p.Skipped = 1
	pr.Add(p)
	p = bp("preparsing", 1, 2, 3, 2, 0, 6, 8)
	p.Skipped = 1
	pr.Add(p)
	// transforming: 1 ambiguous in batch 1.
	pr.Add(bp("transforming", 0, 2, 3, 3, 0, 9, 10))
	pr.Add(bp("transforming", 1, 2, 2, 1, 1, 9, 11))
	// processing, one batch only so far (running).
	p = bp("processing", 0, 2, 3, 3, 0, 20, 21)
	p.Created, p.Updated, p.Unchanged, p.Warnings = 1, 1, 1, 1
	pr.Add(p)
	// The same batch reported again (a redelivered progress event) counts once.
	pr.Add(p)
	pr.Add(bp("prevalidation", 0, 2, 5, 4, 1, 0, 2))

	imports.Apply(&imp, pr, nil)
	want := events.Stats{Total: 8, Created: 1, Updated: 1, Unchanged: 1, Skipped: 2, Failed: 2, Warnings: 1,
		Processed: 1 + 1 + 1 + 2 + 2}
	if imp.Stats != want {
		t.Errorf("stats %+v, want %+v", imp.Stats, want)
	}
	checkInvariant(t, imp.Stats)
	if imp.Status != events.StatusQueued {
		t.Errorf("Apply changed the status to %s", imp.Status)
	}

	pv := phaseOf(t, imp, "prevalidation")
	if pv.Status != "completed" || pv.BatchesDone != 2 || pv.BatchesTotal != 2 || pv.RowsIn != 8 || pv.RowsOut != 7 || pv.RowsFailed != 1 {
		t.Errorf("prevalidation %+v", pv)
	}
	if pv.StartedAt == nil || !pv.StartedAt.Equal(t0) || pv.CompletedAt == nil || !pv.CompletedAt.Equal(t0.Add(5*time.Second)) {
		t.Errorf("prevalidation times %v..%v, want min start / max end", pv.StartedAt, pv.CompletedAt)
	}
	tr := phaseOf(t, imp, "transforming")
	if tr.Status != "completed" || tr.RowsFailed != 1 || !tr.CompletedAt.Equal(t0.Add(11*time.Second)) {
		t.Errorf("transforming %+v", tr)
	}
	pc := phaseOf(t, imp, "processing")
	if pc.Status != "running" || pc.BatchesDone != 1 || pc.BatchesTotal != 2 || pc.CompletedAt != nil || pc.StartedAt == nil {
		t.Errorf("processing %+v, want running with 1/2 batches and no completed_at", pc)
	}
	for _, name := range []string{"parsing", "validation", "cleanup"} {
		if ps := phaseOf(t, imp, name); ps.Status != "pending" || ps.StartedAt != nil || ps.BatchesDone != 0 {
			t.Errorf("%s %+v, want pending", name, ps)
		}
	}
	for i, ps := range imp.Phases {
		if ps.Name != events.Phases[i] {
			t.Errorf("phase %d is %s, want pipeline order", i, ps.Name)
		}
	}

	// Apply is a pure function of the progress: applying again gives the same.
	before := imp.Stats
	imports.Apply(&imp, pr, nil)
	if imp.Stats != before {
		t.Errorf("second Apply changed stats: %+v", imp.Stats)
	}

	// A phase named completed by the caller is completed even without batches (0-batch import).
	imports.Apply(&imp, pr, map[string]bool{"cleanup": true})
	if ps := phaseOf(t, imp, "cleanup"); ps.Status != "completed" {
		t.Errorf("cleanup %+v, want completed", ps)
	}
}

func TestApplyCountsDeletesAndOverwritten(t *testing.T) {
	imp := imports.Initial(events.Options{ID: "imp_1"}, t0)
	pr := imports.Progress{}
	pr.Add(bp("prevalidation", 0, 1, 4, 4, 0, 0, 1))
	p := bp("processing", 0, 1, 4, 3, 0, 2, 3)
	p.Deleted, p.Skipped = 3, 1
	pr.Add(p)
	p = bp("cleanup", 0, 1, 3, 3, 0, 4, 5)
	p.Overwritten = 7
	pr.Add(p)
	imports.Apply(&imp, pr, nil)
	want := events.Stats{Total: 4, Processed: 4, Deleted: 3, Skipped: 1, Overwritten: 7}
	if imp.Stats != want {
		t.Errorf("stats %+v, want %+v (overwritten is outside the sum)", imp.Stats, want)
	}
	checkInvariant(t, imp.Stats)
	// Unknown phase names are ignored.
	pr.Add(bp("bogus", 0, 1, 100, 0, 100, 0, 1))
	imports.Apply(&imp, pr, nil)
	if imp.Stats != want || len(imp.Phases) != len(events.Phases) {
		t.Errorf("an unknown phase changed the import: %+v", imp.Stats)
	}
}

// PhaseSums (the projector's running totals) gives what Apply gives.
func TestApplySumsMatchesApply(t *testing.T) {
	pr := imports.Progress{}
	var list []events.BatchProgress
	for b := 0; b < 3; b++ {
		p := bp("prevalidation", b, 3, 10, 9, 1, b, b+10)
		list = append(list, p)
		q := bp("processing", b, 3, 9, 9, 0, 20+b, 30-b)
		q.Created, q.Updated = 5, 4
		list = append(list, q)
	}
	sums := map[string]*imports.PhaseSums{}
	for _, p := range list {
		pr.Add(p)
		if sums[p.Phase] == nil {
			sums[p.Phase] = &imports.PhaseSums{}
		}
		sums[p.Phase].Add(p)
	}
	a := imports.Initial(events.Options{ID: "imp_1"}, t0)
	b := a
	imports.Apply(&a, pr, nil)
	imports.ApplySums(&b, sums, nil)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("Apply and ApplySums differ:\n%s\n%s", ja, jb)
	}
	if a.Stats.Total != 30 || a.Stats.Failed != 3 || a.Stats.Created != 15 || a.Stats.Updated != 12 {
		t.Errorf("stats %+v", a.Stats)
	}
	pc := phaseOf(t, a, "processing")
	if !pc.StartedAt.Equal(t0.Add(20*time.Second)) || !pc.CompletedAt.Equal(t0.Add(30*time.Second)) {
		t.Errorf("processing times %v..%v", pc.StartedAt, pc.CompletedAt)
	}
}

func TestFinish(t *testing.T) {
	later := time.Date(2024, 5, 1, 15, 0, 0, 0, time.FixedZone("X", 3600))
	cases := []struct {
		status      events.Status
		reason      string
		wantReason  bool
		interrupted bool
	}{
		{events.StatusCompleted, "", false, false},
		{events.StatusCompleted, "ignored", false, false},
		{events.StatusFailed, "disk on fire", true, false},
		{events.StatusInterrupted, "error threshold crossed", true, true},
		{events.StatusTimedOut, "deadline passed", true, false},
		{events.StatusExpired, "no file", true, false},
	}
	for _, c := range cases {
		t.Run(string(c.status), func(t *testing.T) {
			imp := imports.Initial(events.Options{ID: "imp_9"}, t0)
			pr := imports.Progress{}
			pr.Add(bp("prevalidation", 0, 1, 2, 2, 0, 0, 1))
			pr.Add(bp("preparsing", 0, 2, 2, 2, 0, 2, 3)) // running: 1 of 2
			imports.Apply(&imp, pr, nil)
			imports.Finish(&imp, c.status, c.reason, later)
			if imp.Status != c.status {
				t.Errorf("status %s", imp.Status)
			}
			if c.wantReason {
				if imp.Reason == nil || *imp.Reason != c.reason {
					t.Errorf("reason %v, want %q", imp.Reason, c.reason)
				}
			} else if imp.Reason != nil {
				t.Errorf("reason %q on a completed import", *imp.Reason)
			}
			if imp.CompletedAt == nil || !imp.CompletedAt.Equal(later) || imp.CompletedAt.Location() != time.UTC {
				t.Errorf("completed_at %v", imp.CompletedAt)
			}
			if !imp.UpdatedAt.Equal(later) {
				t.Errorf("updated_at %v", imp.UpdatedAt)
			}
			if c.interrupted != (imp.InterruptedAt != nil) {
				t.Errorf("interrupted_at %v for %s", imp.InterruptedAt, c.status)
			}
			if imp.InterruptedAt != nil && !imp.InterruptedAt.Equal(later) {
				t.Errorf("interrupted_at %v", imp.InterruptedAt)
			}
			if imp.Links.ErrorsCSV != "/v1/imports/imp_9/errors.csv" || imp.Links.ErrorsJSON != "/v1/imports/imp_9/errors.json" {
				t.Errorf("links %+v", imp.Links)
			}
			want := map[string]string{"prevalidation": "completed", "preparsing": "running"}
			for _, p := range imp.Phases {
				w, ok := want[p.Name]
				if !ok {
					w = "skipped"
				}
				if p.Status != w {
					t.Errorf("phase %s is %s, want %s", p.Name, p.Status, w)
				}
			}
		})
	}
	// A failed import without a reason has a null reason, not "".
	imp := imports.Initial(events.Options{ID: "imp_9"}, t0)
	imports.Finish(&imp, events.StatusFailed, "", later)
	if imp.Reason != nil {
		t.Errorf("empty reason stored as %q", *imp.Reason)
	}
}

// The id's form lives in package events (clients read its time) without the
// ULID library the server uses elsewhere (DerivedID): the two must agree.
func TestIDsAgreeWithTheULIDLibrary(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	for i := 0; i < 1000; i++ {
		at := base.Add(time.Duration(i) * 37 * time.Hour)
		id := imports.NewID(at)
		u, err := ulid.ParseStrict(strings.TrimPrefix(id, events.IDPrefix))
		if err != nil || ulid.Time(u.Time()).UnixMilli() != at.UnixMilli() {
			t.Fatalf("NewID(%v) = %s: the ULID library reads %v, %v", at, id, ulid.Time(u.Time()), err)
		}
		lib := ulid.MustNew(ulid.Timestamp(at), rand.Reader).String()
		if got, ok := imports.IDTime(lib); !ok || !got.Equal(at.Truncate(time.Millisecond)) {
			t.Fatalf("IDTime(%s) = %v %v, want %v", lib, got, ok, at)
		}
		if got, ok := imports.IDTime(imports.DerivedID(at, fmt.Sprint(i))); !ok || got.UnixMilli() != at.UnixMilli() {
			t.Fatalf("IDTime of a derived id = %v %v", got, ok)
		}
	}
	for _, s := range []string{"81ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAU", "01ARZ3NDEKTSV4RRFFQ69G5FA", "01arz3ndektsv4rrffq69g5fav"} {
		_, libErr := ulid.ParseStrict(s)
		if _, ok := imports.IDTime(s); ok != (libErr == nil) {
			t.Errorf("%q: IDTime ok %v, the ULID library says %v", s, ok, libErr)
		}
	}
}
