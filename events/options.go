package events

// The values of the enumerated options (spec §1). The first of each list is
// the default.

// Mode keeps the records of test imports apart from live ones.
type Mode string

const (
	ModeLive Mode = "live"
	ModeTest Mode = "test"
)

// Modes lists every Mode, the default first.
var Modes = []Mode{ModeLive, ModeTest}

// Format is the format of an import's file.
type Format string

const (
	FormatCSV   Format = "csv"
	FormatJSON  Format = "json"
	FormatJSONL Format = "jsonl"
	FormatXLSX  Format = "xlsx"
)

// Formats lists every Format, the default first.
var Formats = []Format{FormatCSV, FormatJSON, FormatJSONL, FormatXLSX}

// Action is what an import does with its rows.
type Action string

const (
	// ActionMerge creates or updates the rows given.
	ActionMerge Action = "merge"
	// ActionOverwrite merges, then removes every record of the resource
	// (same organization, mode and parent) the file did not hold.
	ActionOverwrite Action = "overwrite"
	// ActionDelete deletes the records the rows name.
	ActionDelete Action = "delete"
	// ActionRevert puts back every record its parent import touched, as it
	// was before: it has no file of its own.
	ActionRevert Action = "revert"
)

// Actions lists every Action, the default first.
var Actions = []Action{ActionMerge, ActionOverwrite, ActionDelete, ActionRevert}

// DuplicateHandling is what happens to rows of one file that share a key.
type DuplicateHandling string

const (
	// DuplicatesIgnoreAll skips every row of a shared key.
	DuplicatesIgnoreAll DuplicateHandling = "ignore_all"
	// DuplicatesUseFirst keeps the first by row number.
	DuplicatesUseFirst DuplicateHandling = "use_first"
)

// DuplicateHandlings lists every DuplicateHandling, the default first.
var DuplicateHandlings = []DuplicateHandling{DuplicatesIgnoreAll, DuplicatesUseFirst}

// UploadMode says where prevalidation runs.
type UploadMode string

const (
	// UploadAsync prevalidates in the pipeline.
	UploadAsync UploadMode = "async"
	// UploadSync prevalidates inside the create request.
	UploadSync UploadMode = "sync"
)

// UploadModes lists every UploadMode, the default first.
var UploadModes = []UploadMode{UploadAsync, UploadSync}
