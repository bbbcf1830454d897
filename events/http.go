package events

import (
	"encoding/json"
	"time"
)

// The names and shapes of the HTTP API (spec §6) that the server and its
// clients share. pkg/client takes them all from here and internal/httpapi the
// names, ErrorBody and Page; the gateway's prevalidation and the
// projector's errors.json have encoders of their own, held to Prevalidation
// and RowError by internal/contract's tests.

// OrgHeader names the organization of a request made without an API key
// (the embedded default); with a key it may only repeat the key's own.
const OrgHeader = "X-Organization-Id"

// OrgParam is the query parameter (and body field) naming the organization.
const OrgParam = "organization_id"

// DefaultOrg is the organization of a request that names none.
const DefaultOrg = "default"

// IdempotencyHeader names a create: a repeat with the same key (in the same
// organization) creates nothing and answers 200 with the import the first
// request created; the same key with a different request is refused
// (422 idempotency_key_reused).
const IdempotencyHeader = "Idempotency-Key"

// ErrorBody is the JSON of every error response: {"error": {...}}.
type ErrorBody struct {
	Error APIError `json:"error"`
}

// APIError is a machine-readable code, a human message and details naming
// what was wrong (e.g. {"field": "mode"}); details is {} when there are none.
type APIError struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

// Page is the body of every list response: cursor pagination where
// next_cursor is the starting_after of the next page (null on the last).
type Page[T any] struct {
	Data       []T     `json:"data"`
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`
}

// Prevalidation is the "prevalidation" member of the answer to an
// upload_mode sync create: the rows of the file prevalidated inside the
// request (decoded, mapped, coerced, validated against the schema, as the
// pipeline's first phase does) and the first failed rows.
type Prevalidation struct {
	Total  int64 `json:"total"`
	Valid  int64 `json:"valid"`
	Failed int64 `json:"failed"`
	// Errors are the first failed rows, in file order: the row's first
	// problem names the code and field, the message holds all.
	Errors []PrevalidationError `json:"errors"`
	// Truncated is true when more rows failed than Errors lists.
	Truncated bool `json:"truncated"`
}

// PrevalidationError is one failed row of a sync prevalidation.
type PrevalidationError struct {
	Row     int64  `json:"row"`
	Code    string `json:"code"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// RowError is one element of GET /v1/imports/{id}/errors.json: one problem
// of one rejected row (a row with two problems appears twice).
type RowError struct {
	Row     int64  `json:"row"`
	Phase   string `json:"phase"`
	Code    string `json:"code"`
	Field   string `json:"field"`
	Message string `json:"message"`
	// Data is the row's fields as the rejecting phase saw them.
	Data json.RawMessage `json:"data"`
}

// Resource is one entry of GET /v1/resources: a resource of the registry
// (spec §5), the fields of its records in Schema (a JSON Schema).
type Resource struct {
	Name          string            `json:"name"`
	Key           []string          `json:"key"`
	AlternateKeys [][]string        `json:"alternate_keys"`
	References    map[string]string `json:"references"`
	Parent        *string           `json:"parent"`
	// Aliases are the other headers a field is matched by (field → headers);
	// absent when the definition declares none.
	Aliases map[string][]string `json:"aliases,omitempty"`
	Schema  json.RawMessage     `json:"schema"`
}

// Record is a stored record: GET /v1/resources/{name}/records/{id}, and the
// elements of its list.
type Record struct {
	ID        string          `json:"id"`
	ParentID  *string         `json:"parent_id"`
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// RevertRequest is the body of POST /v1/imports/{id}/revert, every field
// optional: the child import reverts its parent for real and leaves records
// another import changed since (revert.conflict) unless Force.
type RevertRequest struct {
	Name            string         `json:"name,omitempty"`
	Reference       string         `json:"reference,omitempty"`
	ReferenceOrigin string         `json:"reference_origin,omitempty"`
	Metadata        map[string]any `json:"metadata,omitempty"`
	Deadline        *time.Time     `json:"deadline,omitempty"`
	DryRun          bool           `json:"dry_run,omitempty"`
	Force           bool           `json:"force,omitempty"`
}
