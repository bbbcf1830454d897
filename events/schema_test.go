package events_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compileAll registers every embedded schema under its $id (so $refs resolve
// offline) and compiles each one, keyed by file name.
func compileAll(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	files := events.SchemaFiles()
	for name, b := range files {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.AddResource(events.SchemaBaseURL+name, doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	out := map[string]*jsonschema.Schema{}
	for name := range files {
		sch, err := c.Compile(events.SchemaBaseURL + name)
		if err != nil {
			t.Fatalf("compile %s: %v", name, err)
		}
		out[name] = sch
	}
	return out
}

var schemas map[string]*jsonschema.Schema

func schemaFor(t *testing.T, event string) *jsonschema.Schema {
	t.Helper()
	if schemas == nil {
		schemas = compileAll(t)
	}
	f := events.SchemaFile(event)
	sch := schemas[f]
	if sch == nil {
		t.Fatalf("no compiled schema for %q (%q)", event, f)
	}
	return sch
}

func toInstance(t *testing.T, v any) any {
	t.Helper()
	var b []byte
	switch x := v.(type) {
	case []byte:
		b = x
	case string:
		b = []byte(x)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return inst
}

func mustValid(t *testing.T, event string, v any) {
	t.Helper()
	if err := schemaFor(t, event).Validate(toInstance(t, v)); err != nil {
		t.Errorf("%s: want valid, got %v", event, err)
	}
}

func mustInvalid(t *testing.T, event string, v any) {
	t.Helper()
	if err := schemaFor(t, event).Validate(toInstance(t, v)); err == nil {
		b, _ := json.Marshal(v)
		t.Errorf("%s: want invalid, got valid: %.300s", event, b)
	}
}

func ptr[T any](v T) *T { return &v }

var t0 = time.Date(2026, 3, 14, 9, 26, 53, 589793000, time.UTC)

func at(d time.Duration) *time.Time { return ptr(t0.Add(d)) }

// fullImport is a completed import with every field set.
func fullImport() events.Import {
	phases := make([]events.PhaseStatus, len(events.Phases))
	for i, name := range events.Phases {
		phases[i] = events.PhaseStatus{
			Name: name, Status: events.PhaseStatusCompleted,
			StartedAt: at(time.Duration(i) * time.Second), CompletedAt: at(time.Duration(i+1) * time.Second),
			BatchesTotal: 3, BatchesDone: 3, RowsIn: 1000, RowsOut: 990, RowsFailed: 10,
		}
	}
	return events.Import{
		Options: events.Options{
			ID:                "imp_01HV3K8Z9Q4W7XJ2M5N6P8R0ST",
			OrganizationID:    "acme",
			Mode:              "live",
			Name:              "March customers",
			Resource:          "customers",
			Format:            "csv",
			Action:            "overwrite",
			DuplicateHandling: "use_first",
			UploadMode:        "async",
			ColumnMapping:     map[string]string{"email": "E-mail", "name": "Full name"},
			ParentResourceID:  ptr("cmp_42"),
			ErrorThreshold:    ptr(0.25),
			SkipErrors:        true,
			DryRun:            false,
			Reference:         "crm-sync-2026-03",
			ReferenceOrigin:   "salesforce",
			Metadata:          map[string]any{"batch": 7, "tags": []string{"q1"}},
			CreatedBy:         "usr_1",
			Sheet:             "March",
			Delimiter:         ",",
			Deadline:          at(time.Hour),
		},
		Status: events.StatusCompleted,
		Reason: nil,
		Phases: phases,
		Stats: events.Stats{Total: 1000, Processed: 1000, Created: 600, Updated: 200, Unchanged: 150,
			Deleted: 0, Skipped: 40, Failed: 10, Warnings: 5, Overwritten: 12},
		File: events.File{Name: "customers.csv", Size: 123456, ContentType: "text/csv",
			Checksum: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			Encoding: "utf-8", Delimiter: ",", HasHeader: true},
		UpdatedBy:     "key_2",
		CreatedAt:     t0,
		UpdatedAt:     t0.Add(9 * time.Second),
		StartedAt:     at(time.Second),
		CompletedAt:   at(8 * time.Second),
		InterruptedAt: at(7 * time.Second),
		ExpiresAt:     at(24 * time.Hour),
		Links: events.Links{
			Self:       "/v1/imports/imp_01HV3K8Z9Q4W7XJ2M5N6P8R0ST",
			Upload:     "https://blob.example.com/inlet/uploads/imp_01HV3K8Z9Q4W7XJ2M5N6P8R0ST?X-Amz-Signature=abc",
			ErrorsCSV:  "/v1/imports/imp_01HV3K8Z9Q4W7XJ2M5N6P8R0ST/errors.csv",
			ErrorsJSON: "/v1/imports/imp_01HV3K8Z9Q4W7XJ2M5N6P8R0ST/errors.json",
			UploadCSV:  "/v1/imports/imp_01HV3K8Z9Q4W7XJ2M5N6P8R0ST/upload.csv",
			UploadJSON: "/v1/imports/imp_01HV3K8Z9Q4W7XJ2M5N6P8R0ST/upload.json",
		},
	}
}

// expiredImport is a terminal import that never started: nulls everywhere
// they are allowed.
func expiredImport() events.Import {
	return events.Import{
		Options: events.Options{ID: "imp_01HV3K8Z9Q4W7XJ2M5N6P8R0SU", OrganizationID: "acme", Mode: "test",
			Resource: "customers", Format: "xlsx", Action: "merge", DuplicateHandling: "ignore_all",
			UploadMode: "async"},
		Status: events.StatusExpired, Reason: ptr("no file was uploaded before expires_at"),
		CreatedAt: t0, UpdatedAt: t0.Add(24 * time.Hour), ExpiresAt: at(24 * time.Hour),
		Links: events.Links{Self: "/v1/imports/imp_01HV3K8Z9Q4W7XJ2M5N6P8R0SU"},
	}
}

func requestedWithSource() events.ImportRequested {
	return events.ImportRequested{
		Options: events.Options{
			ID: "imp_01HV3K8Z9Q4W7XJ2M5N6P8R0SV", OrganizationID: "acme", Mode: "live", Name: "nightly",
			Resource: "customers", Format: "csv", Action: "merge", DuplicateHandling: "ignore_all",
			UploadMode: "async", ColumnMapping: map[string]string{"email": "Email"},
			ParentResourceID: ptr("cmp_42"), ErrorThreshold: ptr(0.05), SkipErrors: true, DryRun: true,
			Reference: "nightly-2026-03-14", ReferenceOrigin: "cron", Metadata: map[string]any{"run": 14},
			CreatedBy: "key_2",
		},
		Source: &events.Source{Bucket: "inlet", Key: "uploads/acme/customers.csv", Name: "customers.csv", ContentType: "text/csv"},
	}
}

func requestedWithInputs() events.ImportRequested {
	return events.ImportRequested{
		Options: events.Options{OrganizationID: "acme", Resource: "customers", Format: "json"},
		Inputs: []json.RawMessage{
			json.RawMessage(`{"email":"ada@example.com","name":"Ada"}`),
			json.RawMessage(`{"email":"bob@example.com","name":"Bob","age":41}`),
		},
	}
}

func batchProgress() events.BatchProgress {
	return events.BatchProgress{ImportID: "imp_01HV3K8Z9Q4W7XJ2M5N6P8R0ST", Phase: events.PhaseProcessing,
		Batch: 2, BatchesTotal: 3, RowsIn: 500, RowsOut: 495, RowsFailed: 5, Skipped: 1, Created: 300,
		Updated: 150, Unchanged: 44, Deleted: 0, Warnings: 2, Overwritten: 0,
		StartedAt: t0, CompletedAt: t0.Add(1500 * time.Millisecond)}
}

func phaseCompleted() events.PhaseCompleted {
	return events.PhaseCompleted{ImportID: "imp_01HV3K8Z9Q4W7XJ2M5N6P8R0ST", Phase: events.PhaseTransforming,
		BatchesTotal: 3, CompletedAt: t0}
}

func withStatus(i events.Import, s events.Status, reason string) events.Import {
	i.Status = s
	if reason != "" {
		i.Reason = &reason
	} else {
		i.Reason = nil
	}
	return i
}

// dataFor is a realistic data value for every event.
func dataFor() map[string]any {
	full := fullImport()
	return map[string]any{
		events.EventRequested:      requestedWithSource(),
		events.EventQueued:         withStatus(full, events.StatusQueued, ""),
		events.EventStarted:        withStatus(full, events.StatusProcessing, ""),
		events.EventPhaseCompleted: phaseCompleted(),
		events.EventProgress:       batchProgress(),
		events.EventCompleted:      full,
		events.EventFailed:         withStatus(full, events.StatusFailed, "store unreachable after 5 attempts"),
		events.EventInterrupted:    withStatus(full, events.StatusInterrupted, "error threshold crossed: 12% of rows failed"),
		events.EventTimedOut:       withStatus(full, events.StatusTimedOut, "deadline of 1h passed"),
		events.EventExpired:        expiredImport(),
	}
}

func TestSchemasCompileAndAreComplete(t *testing.T) {
	files := events.SchemaFiles()
	compiled := compileAll(t)
	if len(compiled) != len(files) {
		t.Fatalf("compiled %d of %d", len(compiled), len(files))
	}
	used := map[string]bool{events.SchemaImportFile: true, events.SchemaCloudEventFile: true}
	for _, ev := range slices.Concat(events.AllEvents, events.Commands) {
		f := events.SchemaFile(ev)
		if f == "" {
			t.Errorf("event %q has no schema", ev)
			continue
		}
		used[f] = true
		b, err := events.Schema(ev)
		if err != nil || !bytes.Equal(b, files[f]) {
			t.Errorf("Schema(%q) = %d bytes, %v; want %s", ev, len(b), err, f)
		}
		if events.SchemaID(ev) != events.SchemaBaseURL+f {
			t.Errorf("SchemaID(%q) = %q", ev, events.SchemaID(ev))
		}
	}
	for name, b := range files {
		if !used[name] {
			t.Errorf("schema file %s belongs to no event", name)
		}
		var doc struct {
			Schema string `json:"$schema"`
			ID     string `json:"$id"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if doc.ID != events.SchemaBaseURL+name {
			t.Errorf("%s: $id %q, want %q", name, doc.ID, events.SchemaBaseURL+name)
		}
		if doc.Schema != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema %q", name, doc.Schema)
		}
	}
	for _, name := range []string{"import", "cloudevent"} {
		if _, err := events.Schema(name); err != nil {
			t.Errorf("Schema(%q): %v", name, err)
		}
	}
	if _, err := events.Schema("nope"); err == nil {
		t.Error("Schema(nope): want error")
	}
	// SchemaFiles hands out a copy.
	files[events.SchemaImportFile] = nil
	if len(events.SchemaFiles()[events.SchemaImportFile]) == 0 {
		t.Error("SchemaFiles shares its map")
	}
}

func TestValidValues(t *testing.T) {
	full := fullImport()
	mustValid(t, "import", full)
	mustValid(t, "import", expiredImport())
	norm := expiredImport()
	norm.Normalize()
	mustValid(t, "import", norm)
	if b, _ := json.Marshal(norm); !bytes.Contains(b, []byte(`"phases":[]`)) || !bytes.Contains(b, []byte(`"metadata":{}`)) {
		t.Errorf("Normalize: %s", b)
	}
	mustValid(t, events.EventRequested, requestedWithSource())
	mustValid(t, events.EventRequested, requestedWithInputs())
	mustValid(t, events.EventRequested, `{"organization_id":"acme","resource":"customers","source":{"key":"k.csv"}}`)
	mustValid(t, events.EventProgress, batchProgress())
	mustValid(t, events.EventPhaseCompleted, phaseCompleted())

	for ev, data := range dataFor() {
		mustValid(t, ev, data)
		ce, err := events.New("evt-"+ev, "inlet/test", ev, "imp_01HV3K8Z9Q4W7XJ2M5N6P8R0ST", data)
		if err != nil {
			t.Fatal(err)
		}
		mustValid(t, "cloudevent", ce)
		// The envelope survives a round trip through Decode.
		b, _ := json.Marshal(ce)
		got, err := events.Decode(b)
		if err != nil || got.Type != events.Type(ev) || !got.Time.Equal(ce.Time) || !bytes.Equal(got.Data, ce.Data) {
			t.Errorf("%s: Decode round trip: %+v, %v", ev, got, err)
		}
	}
}

// jsonMap marshals v and returns it as a generic map for surgery.
func jsonMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestInvalidValues(t *testing.T) {
	imp := func(edit func(m map[string]any)) map[string]any {
		m := jsonMap(t, fullImport())
		edit(m)
		return m
	}
	for _, counter := range []string{"total", "processed", "created", "updated", "unchanged", "deleted", "skipped", "failed", "warnings", "overwritten"} {
		mustInvalid(t, "import", imp(func(m map[string]any) { delete(m["stats"].(map[string]any), counter) }))
	}
	mustInvalid(t, "import", imp(func(m map[string]any) { m["stats"].(map[string]any)["failed"] = -1 }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["stats"].(map[string]any)["failed"] = 1.5 }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["status"] = "done" }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["status"] = "" }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["organization_id"] = "acme.eu" }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["resource"] = "cust*" }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["mode"] = "prod" }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["format"] = "xml" }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["action"] = "upsert" }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["duplicate_handling"] = "use_last" }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["upload_mode"] = "batch" }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["error_threshold"] = 1.5 }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["created_at"] = nil }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["started_at"] = "yesterday" }))
	mustInvalid(t, "import", imp(func(m map[string]any) { delete(m, "completed_at") }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["surprise"] = true }))
	mustInvalid(t, "import", imp(func(m map[string]any) { delete(m["links"].(map[string]any), "self") }))
	mustInvalid(t, "import", imp(func(m map[string]any) { delete(m["file"].(map[string]any), "has_header") }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["phases"].([]any)[0].(map[string]any)["name"] = "loading" }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["phases"].([]any)[0].(map[string]any)["status"] = "done" }))
	mustInvalid(t, "import", imp(func(m map[string]any) { m["column_mapping"] = map[string]any{"email": 1} }))

	// Event-specific import schemas pin the status and demand a reason.
	mustInvalid(t, events.EventCompleted, withStatus(fullImport(), events.StatusFailed, "boom"))
	mustInvalid(t, events.EventStarted, withStatus(fullImport(), events.StatusQueued, ""))
	mustInvalid(t, events.EventFailed, withStatus(fullImport(), events.StatusFailed, ""))
	mustInvalid(t, events.EventExpired, withStatus(expiredImport(), events.StatusExpired, ""))

	// import-requested.
	req := func(edit func(m map[string]any)) map[string]any {
		m := jsonMap(t, requestedWithSource())
		edit(m)
		return m
	}
	mustInvalid(t, events.EventRequested, req(func(m map[string]any) { m["organization_id"] = "acme.eu" }))
	mustInvalid(t, events.EventRequested, req(func(m map[string]any) { m["organization_id"] = "" }))
	mustInvalid(t, events.EventRequested, req(func(m map[string]any) { m["organization_id"] = strings.Repeat("a", 65) }))
	mustInvalid(t, events.EventRequested, req(func(m map[string]any) { m["resource"] = "customers.>" }))
	mustInvalid(t, events.EventRequested, req(func(m map[string]any) { delete(m, "organization_id") }))
	// Options alone are valid: the import waits for its upload.
	mustValid(t, events.EventRequested, req(func(m map[string]any) { delete(m, "source") }))
	mustInvalid(t, events.EventRequested, req(func(m map[string]any) { m["inputs"] = []any{map[string]any{"email": "a@b.c"}} }))
	mustInvalid(t, events.EventRequested, req(func(m map[string]any) { delete(m, "source"); m["inputs"] = []any{} }))
	mustInvalid(t, events.EventRequested, req(func(m map[string]any) { delete(m, "source"); m["inputs"] = []any{"a,b"} }))
	mustInvalid(t, events.EventRequested, req(func(m map[string]any) { delete(m["source"].(map[string]any), "key") }))
	mustInvalid(t, events.EventRequested, req(func(m map[string]any) { m["mode"] = "prod" }))
	mustInvalid(t, events.EventRequested, req(func(m map[string]any) { m["skip_error"] = true }))
	neither := requestedWithInputs()
	neither.Inputs = nil
	mustValid(t, events.EventRequested, neither)
	mustInvalid(t, events.EventRequested, req(func(m map[string]any) { m["delimiter"] = "x" }))

	// progress and phase_completed.
	bp := jsonMap(t, batchProgress())
	bp["phase"] = "loading"
	mustInvalid(t, events.EventProgress, bp)
	bp = jsonMap(t, batchProgress())
	delete(bp, "rows_failed")
	mustInvalid(t, events.EventProgress, bp)
	pc := jsonMap(t, phaseCompleted())
	pc["batches_total"] = -3
	mustInvalid(t, events.EventPhaseCompleted, pc)

	// The envelope.
	ce := func(edit func(m map[string]any)) map[string]any {
		e, err := events.New("evt-1", "inlet/cleanup", events.EventCompleted, "imp_1", fullImport())
		if err != nil {
			t.Fatal(err)
		}
		m := jsonMap(t, e)
		edit(m)
		return m
	}
	mustValid(t, "cloudevent", ce(func(m map[string]any) { m["inletextension"] = "x" }))
	mustValid(t, "cloudevent", ce(func(m map[string]any) { m["type"] = "dev.inlet.import.archived.v1"; m["data"] = map[string]any{} }))
	mustInvalid(t, "cloudevent", ce(func(m map[string]any) { m["specversion"] = "0.3" }))
	mustInvalid(t, "cloudevent", ce(func(m map[string]any) { m["type"] = "com.example.completed" }))
	mustInvalid(t, "cloudevent", ce(func(m map[string]any) { m["type"] = "dev.inlet.import.completed" }))
	mustInvalid(t, "cloudevent", ce(func(m map[string]any) { m["datacontenttype"] = "text/plain" }))
	mustInvalid(t, "cloudevent", ce(func(m map[string]any) { m["id"] = "" }))
	mustInvalid(t, "cloudevent", ce(func(m map[string]any) { m["subject"] = "" }))
	mustInvalid(t, "cloudevent", ce(func(m map[string]any) { delete(m, "time") }))
	mustInvalid(t, "cloudevent", ce(func(m map[string]any) { delete(m, "data") }))
	// The envelope checks data against the event's schema.
	mustInvalid(t, "cloudevent", ce(func(m map[string]any) { m["data"] = jsonMap(t, batchProgress()) }))
	mustInvalid(t, "cloudevent", ce(func(m map[string]any) { delete(m["data"].(map[string]any)["stats"].(map[string]any), "total") }))
	mustInvalid(t, "cloudevent", ce(func(m map[string]any) {
		m["type"] = events.Type(events.EventRequested)
		m["data"] = map[string]any{"organization_id": "acme", "resource": "customers", "mode": "prod"}
	}))
}

// --- drift: Go structs versus schemas ------------------------------------

type goField struct {
	omitempty bool
	typ       reflect.Type
}

// jsonFields lists the JSON properties encoding/json emits for t, flattening
// embedded structs the way encoding/json does. For a type with its own
// MarshalJSON, what its zero value emits says which are always there.
func jsonFields(t reflect.Type) map[string]goField {
	out := tagFields(t)
	if !t.Implements(reflect.TypeOf((*json.Marshaler)(nil)).Elem()) {
		return out
	}
	b, err := json.Marshal(reflect.Zero(t).Interface())
	if err != nil {
		panic(err)
	}
	var emitted map[string]json.RawMessage
	if err := json.Unmarshal(b, &emitted); err != nil {
		panic(err)
	}
	for name, f := range out {
		_, always := emitted[name]
		f.omitempty = !always
		out[name] = f
	}
	return out
}

func tagFields(t reflect.Type) map[string]goField {
	out := map[string]goField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, hasTag := f.Tag.Lookup("json")
		if tag == "-" {
			continue
		}
		if f.Anonymous && !hasTag && f.Type.Kind() == reflect.Struct {
			for k, v := range tagFields(f.Type) {
				if _, shallower := out[k]; !shallower {
					out[k] = v
				}
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		out[name] = goField{omitempty: slices.Contains(strings.Split(opts, ","), "omitempty"), typ: f.Type}
	}
	return out
}

type schemaDocs map[string]map[string]any

func loadDocs(t *testing.T) schemaDocs {
	docs := schemaDocs{}
	for name, b := range events.SchemaFiles() {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		docs[name] = m
	}
	return docs
}

// resolve follows $ref (possibly into another file) and, for arrays, items,
// until it reaches a node with properties (or gives up).
func (d schemaDocs) resolve(t *testing.T, file string, node map[string]any) (string, map[string]any) {
	for range 10 {
		if ref, ok := node["$ref"].(string); ok {
			target, ptr, _ := strings.Cut(ref, "#")
			if target != "" {
				file = target
			}
			n := any(d[file])
			for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
				if tok == "" {
					continue
				}
				n = n.(map[string]any)[tok]
			}
			if n == nil {
				t.Fatalf("unresolvable $ref %q in %s", ref, file)
			}
			node = n.(map[string]any)
			continue
		}
		if items, ok := node["items"].(map[string]any); ok {
			node = items
			continue
		}
		break
	}
	return file, node
}

func checkDrift(t *testing.T, d schemaDocs, goType reflect.Type, file string, node map[string]any, where string) {
	t.Helper()
	props, _ := node["properties"].(map[string]any)
	if props == nil {
		t.Errorf("%s (%s): schema node has no properties", where, goType)
		return
	}
	required := map[string]bool{}
	for _, r := range node["required"].([]any) {
		required[r.(string)] = true
		if props[r.(string)] == nil {
			t.Errorf("%s: required %q is no property", where, r)
		}
	}
	fields := jsonFields(goType)
	for name, f := range fields {
		p, ok := props[name].(map[string]any)
		if !ok {
			t.Errorf("%s: Go field %s.%s (json %q) is not a schema property", where, goType.Name(), name, name)
			continue
		}
		// A field without omitempty is always emitted: the schema must require it,
		// and must not require one Go may leave out.
		if !f.omitempty && !required[name] {
			t.Errorf("%s: %q is always emitted by Go but not required by the schema", where, name)
		}
		if f.omitempty && required[name] {
			t.Errorf("%s: %q is omitempty in Go but required by the schema", where, name)
		}
		et := f.typ
		for et.Kind() == reflect.Pointer || et.Kind() == reflect.Slice {
			et = et.Elem()
		}
		if et.Kind() == reflect.Struct && et != reflect.TypeOf(time.Time{}) {
			sf, sn := d.resolve(t, file, p)
			checkDrift(t, d, et, sf, sn, where+"."+name)
		}
	}
	for name := range props {
		if _, ok := fields[name]; !ok {
			t.Errorf("%s: schema property %q has no Go field in %s", where, name, goType)
		}
	}
}

func TestSchemaMatchesGoTypes(t *testing.T) {
	d := loadDocs(t)
	for _, c := range []struct {
		v    any
		file string
	}{
		{events.Import{}, events.SchemaImportFile},
		{events.ImportRequested{}, events.SchemaFile(events.EventRequested)},
		{events.BatchProgress{}, events.SchemaFile(events.EventProgress)},
		{events.PhaseCompleted{}, events.SchemaFile(events.EventPhaseCompleted)},
		{events.CloudEvent{}, events.SchemaCloudEventFile},
	} {
		typ := reflect.TypeOf(c.v)
		checkDrift(t, d, typ, c.file, d[c.file], c.file)
	}
}

func stringsOf[T ~string](values []T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

func enumOf(t *testing.T, d schemaDocs, def string) []string {
	var out []string
	for _, v := range d[events.SchemaImportFile]["$defs"].(map[string]any)[def].(map[string]any)["enum"].([]any) {
		out = append(out, v.(string))
	}
	return out
}

func TestSchemaEnumsMatchGo(t *testing.T) {
	d := loadDocs(t)
	// In the schema as in Go, in the order an import goes through them.
	statuses := stringsOf(events.Statuses)
	if got := enumOf(t, d, "status"); !slices.Equal(got, statuses) {
		t.Errorf("status enum %v, Go %v", got, statuses)
	}
	if got := enumOf(t, d, "phase_name"); !slices.Equal(got, events.Phases) {
		t.Errorf("phase_name enum %v, Go %v", got, events.Phases)
	}
	// The option values, the default first in Go (the schema's order need
	// not put it first, so the sets are compared).
	for def, goValues := range map[string][]string{
		"mode":               stringsOf(events.Modes),
		"format":             stringsOf(events.Formats),
		"action":             stringsOf(events.Actions),
		"duplicate_handling": stringsOf(events.DuplicateHandlings),
		"upload_mode":        stringsOf(events.UploadModes),
	} {
		got := enumOf(t, d, def)
		slices.Sort(got)
		slices.Sort(goValues)
		if !slices.Equal(got, goValues) {
			t.Errorf("%s enum %v, Go %v", def, got, goValues)
		}
	}
	phase := d[events.SchemaImportFile]["$defs"].(map[string]any)["phase"].(map[string]any)
	var ps []string
	for _, v := range phase["properties"].(map[string]any)["status"].(map[string]any)["enum"].([]any) {
		ps = append(ps, v.(string))
	}
	want := []string{events.PhaseStatusPending, events.PhaseStatusRunning, events.PhaseStatusCompleted, events.PhaseStatusSkipped}
	if !slices.Equal(ps, want) {
		t.Errorf("phase status enum %v, Go %v", ps, want)
	}
	// The envelope dispatches data to the schema of every event.
	var dispatched []string
	for _, c := range d[events.SchemaCloudEventFile]["allOf"].([]any) {
		typ := c.(map[string]any)["if"].(map[string]any)["properties"].(map[string]any)["type"].(map[string]any)["const"].(string)
		ref := c.(map[string]any)["then"].(map[string]any)["properties"].(map[string]any)["data"].(map[string]any)["$ref"].(string)
		ev, v, ok := events.EventFromType(typ)
		if !ok || v != 1 || ref != events.SchemaFile(ev) {
			t.Errorf("cloudevent dispatch %s -> %s", typ, ref)
		}
		dispatched = append(dispatched, ev)
	}
	all := slices.Concat(events.AllEvents, events.Commands)
	sort.Strings(all)
	sort.Strings(dispatched)
	if !slices.Equal(all, dispatched) {
		t.Errorf("cloudevent dispatches %v, want %v", dispatched, all)
	}
}

// --- unit tests of the helpers --------------------------------------------

func TestSubjectRoundTrip(t *testing.T) {
	for _, ev := range events.AllEvents {
		s := events.Subject("acme", "customers", ev)
		if want := "imports.acme.customers." + ev; s != want {
			t.Errorf("Subject = %q, want %q", s, want)
		}
		org, res, got, err := events.ParseSubject(s)
		if err != nil || org != "acme" || res != "customers" || got != ev {
			t.Errorf("ParseSubject(%q) = %q %q %q %v", s, org, res, got, err)
		}
		if !events.KnownEvent(ev) {
			t.Errorf("KnownEvent(%q) = false", ev)
		}
	}
	if events.KnownEvent("archived") {
		t.Error("KnownEvent(archived) = true")
	}
	for _, bad := range []string{
		"", "imports", "imports.acme.customers", "imports.acme.customers.completed.x",
		"exports.acme.customers.completed", "imports.*.customers.completed", "imports.acme.>.completed",
		"imports.acme..completed", "imports..customers.completed", "imports.acme.customers.",
		"imports.acme.customers.*", "imports.ac me.customers.completed",
	} {
		if org, res, ev, err := events.ParseSubject(bad); err == nil {
			t.Errorf("ParseSubject(%q) = %q %q %q, want error", bad, org, res, ev)
		}
	}
	if events.AllSubjects != "imports.>" {
		t.Errorf("AllSubjects = %q", events.AllSubjects)
	}
}

func TestValidToken(t *testing.T) {
	for _, ok := range []string{"acme", "a", "ACME_corp-2", "default", strings.Repeat("x", 64)} {
		if !events.ValidToken(ok) {
			t.Errorf("ValidToken(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "acme.eu", "*", ">", "a b", "acmé", "a\n", strings.Repeat("x", 65), "a/b"} {
		if events.ValidToken(bad) {
			t.Errorf("ValidToken(%q) = true", bad)
		}
	}
	// The schema's token pattern is the same as ValidToken's.
	re := regexp.MustCompile(loadDocs(t)[events.SchemaImportFile]["$defs"].(map[string]any)["token"].(map[string]any)["pattern"].(string))
	for _, s := range []string{"acme", "acme.eu", "", strings.Repeat("x", 64), strings.Repeat("x", 65), "a-b_c"} {
		if re.MatchString(s) != events.ValidToken(s) {
			t.Errorf("schema token pattern and ValidToken disagree on %q", s)
		}
	}
}

func TestTerminalEvent(t *testing.T) {
	want := map[events.Status]string{
		events.StatusRequested: "", events.StatusQueued: "", events.StatusProcessing: "",
		events.StatusCompleted: events.EventCompleted, events.StatusFailed: events.EventFailed,
		events.StatusInterrupted: events.EventInterrupted, events.StatusTimedOut: events.EventTimedOut,
		events.StatusExpired: events.EventExpired, events.Status("bogus"): "",
	}
	var terminal []string
	for s, ev := range want {
		if ev != "" {
			terminal = append(terminal, ev)
		}
		if got := events.TerminalEvent(s); got != ev {
			t.Errorf("TerminalEvent(%q) = %q, want %q", s, got, ev)
		}
		if s.Terminal() != (ev != "") {
			t.Errorf("%q.Terminal() = %v", s, s.Terminal())
		}
		if ev != "" && string(s) != ev {
			t.Errorf("terminal event %q differs from its status %q", ev, s)
		}
	}
	sort.Strings(terminal)
	listed := append([]string(nil), events.TerminalEvents...)
	sort.Strings(listed)
	if !slices.Equal(listed, terminal) {
		t.Errorf("TerminalEvents = %v, want the events of the terminal statuses %v", events.TerminalEvents, terminal)
	}
}

func TestType(t *testing.T) {
	pattern := regexp.MustCompile(loadDocs(t)[events.SchemaCloudEventFile]["properties"].(map[string]any)["type"].(map[string]any)["pattern"].(string))
	for _, ev := range events.AllEvents {
		typ := events.Type(ev)
		if typ != "dev.inlet.import."+ev+".v1" {
			t.Errorf("Type(%q) = %q", ev, typ)
		}
		if !pattern.MatchString(typ) {
			t.Errorf("Type(%q) = %q does not match the schema pattern", ev, typ)
		}
		got, v, ok := events.EventFromType(typ)
		if !ok || got != ev || v != 1 {
			t.Errorf("EventFromType(%q) = %q %d %v", typ, got, v, ok)
		}
	}
	for _, bad := range []string{"", "dev.inlet.import.completed", "dev.inlet.import.Completed.v1", "com.x.completed.v1", "dev.inlet.import.completed.v1.x", "dev.inlet.import.completed.v99999999999999999999"} {
		if ev, v, ok := events.EventFromType(bad); ok {
			t.Errorf("EventFromType(%q) = %q %d, want !ok", bad, ev, v)
		}
	}
}

func TestNew(t *testing.T) {
	before := time.Now()
	ce, err := events.New("imp_1:completed", "inlet/cleanup", events.EventCompleted, "imp_1", map[string]int{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	if ce.SpecVersion != "1.0" || ce.ID != "imp_1:completed" || ce.Source != "inlet/cleanup" ||
		ce.Type != "dev.inlet.import.completed.v1" || ce.Subject != "imp_1" || ce.DataContentType != "application/json" ||
		string(ce.Data) != `{"a":1}` || ce.Time.Location() != time.UTC || ce.Time.Before(before.Add(-time.Second)) {
		t.Errorf("New = %+v", ce)
	}
	if _, err := events.New("x", "s", events.EventCompleted, "imp_1", make(chan int)); err == nil {
		t.Error("New with unmarshalable data: want error")
	}
}

func TestDecode(t *testing.T) {
	// A bare body (no specversion) is taken as the data.
	bare := []byte(`{"id":"imp_9","organization_id":"acme","resource":"customers","source":{"key":"a.csv"}}`)
	ce, err := events.Decode(bare)
	if err != nil || ce.SpecVersion != "" || ce.Type != "" || !bytes.Equal(ce.Data, bare) {
		t.Fatalf("Decode(bare) = %+v, %v", ce, err)
	}
	var req events.ImportRequested
	if err := json.Unmarshal(ce.Data, &req); err != nil || req.ID != "imp_9" || req.Source == nil || req.Source.Key != "a.csv" {
		t.Errorf("bare data = %+v, %v", req, err)
	}
	mustValid(t, events.EventRequested, ce.Data)

	// A structured event.
	in, _ := events.New("req-1", "client/cli", events.EventRequested, "imp_9", requestedWithInputs())
	b, _ := json.Marshal(in)
	out, err := events.Decode(b)
	if err != nil || out.ID != "req-1" || out.Type != events.Type(events.EventRequested) || out.Subject != "imp_9" ||
		!out.Time.Equal(in.Time) || !bytes.Equal(out.Data, in.Data) {
		t.Errorf("Decode(structured) = %+v, %v", out, err)
	}

	for _, bad := range []string{`{"specversion":"0.3","type":"x","data":{}}`, `not json`, `[1,2]`, ``} {
		if _, err := events.Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q): want error", bad)
		}
	}
}
