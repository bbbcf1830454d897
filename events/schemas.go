package events

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
)

// SchemaBaseURL prefixes the $id of every schema under schemas/: the $id of
// schemas/completed.v1.json is SchemaBaseURL + "completed.v1.json". The
// schemas $ref each other by these ids; register every file of SchemaFiles
// under its id to resolve them offline.
const SchemaBaseURL = "https://inlet.dev/schemas/events/"

// Schema files that describe no single event.
const (
	// SchemaImportFile is the import object of spec §1, the data of the
	// queued, started and terminal events.
	SchemaImportFile = "import.json"
	// SchemaCloudEventFile is the CloudEvents 1.0 envelope of every event;
	// for the known types it also checks data against the event's schema.
	SchemaCloudEventFile = "cloudevent.json"
)

//go:embed schemas/*.json
var schemaFS embed.FS

// schemaFiles maps each event name to its schema file (under schemas/).
var schemaFiles = map[string]string{
	EventRequested:      "import-requested.v1.json",
	EventQueued:         "queued.v1.json",
	EventStarted:        "started.v1.json",
	EventPhaseCompleted: "phase-completed.v1.json",
	EventProgress:       "progress.v1.json",
	EventCompleted:      "completed.v1.json",
	EventFailed:         "failed.v1.json",
	EventInterrupted:    "interrupted.v1.json",
	EventTimedOut:       "timed-out.v1.json",
	EventExpired:        "expired.v1.json",
	EventInterrupt:      "interrupt.v1.json",
}

// SchemaFile is the file name (under schemas/) of the JSON Schema of an
// event's data, e.g. "completed.v1.json"; "" for an unknown event. The names
// "import" and "cloudevent" give SchemaImportFile and SchemaCloudEventFile.
func SchemaFile(event string) string {
	switch event {
	case "import":
		return SchemaImportFile
	case "cloudevent":
		return SchemaCloudEventFile
	}
	return schemaFiles[event]
}

// SchemaID is the $id of the schema of an event's data ("" for an unknown event).
func SchemaID(event string) string {
	f := SchemaFile(event)
	if f == "" {
		return ""
	}
	return SchemaBaseURL + f
}

// Schema returns the JSON Schema (draft 2020-12) of the data of event, one of
// AllEvents; "import" and "cloudevent" give the import object and the
// envelope. The schema may $ref others: see SchemaFiles.
func Schema(event string) ([]byte, error) {
	f := SchemaFile(event)
	if f == "" {
		return nil, fmt.Errorf("no schema for event %q", event)
	}
	return schemaFS.ReadFile(path.Join("schemas", f))
}

// SchemaFiles returns every schema file by file name (e.g. "import.json");
// each file's $id is SchemaBaseURL + its name. The map is a fresh copy.
func SchemaFiles() map[string][]byte {
	entries, err := fs.ReadDir(schemaFS, "schemas")
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	out := make(map[string][]byte, len(entries))
	for _, e := range entries {
		b, err := schemaFS.ReadFile(path.Join("schemas", e.Name()))
		if err != nil {
			panic(err)
		}
		out[e.Name()] = b
	}
	return out
}
