// Package resources loads resource definitions (spec §5): data, not code.
package resources

import "encoding/json"

// Definition is one resource type, loaded from <name>.json in the resources directory.
type Definition struct {
	Name string `json:"name"`
	// Key lists the fields that identify a record.
	Key []string `json:"key"`
	// AlternateKeys are further unique keys, each a list of fields.
	AlternateKeys [][]string `json:"alternate_keys,omitempty"`
	// References maps a field to "other_resource.key_field".
	References map[string]string `json:"references,omitempty"`
	// Parent names the resource records are created under.
	Parent string `json:"parent,omitempty"`
	// Aliases maps a field to other headers a file may give it under
	// ("email_address": ["E-mail", "Mail"]). Headers are matched to fields
	// and aliases by HeaderKey (case, spaces, underscores, hyphens and
	// accents aside); an alias that matches another field or its aliases is
	// a definition error.
	Aliases map[string][]string `json:"aliases,omitempty"`
	// Schema is a JSON Schema (2020-12) for one record.
	Schema json.RawMessage `json:"schema"`
}
