// Package store keeps the imported records and the projector's import views.
// Adapters: PostgreSQL through pgx (bulk write path) and an embedded SQLite.
package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned (wrapped) when a record or view does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrKeyConflict is returned (wrapped, with the key and both record ids) by
// Apply when a batch would give a key value to a record while a different
// record holds it. The whole batch is rolled back: callers can fix the rows
// and apply the same batch id again.
var ErrKeyConflict = errors.New("store: key conflict")

// Scope confines records: records of different organizations, modes or
// resources never see each other.
type Scope struct {
	Org      string
	Mode     string // live | test
	Resource string
}

// Record is one stored record of a resource.
type Record struct {
	ID       string          `json:"id"`
	ParentID string          `json:"parent_id,omitempty"`
	Data     json.RawMessage `json:"data"`
	// Keys maps a key name (the key's fields joined by ",") to its normalized
	// value; the store keeps every key unique within the scope.
	Keys      map[string]string `json:"keys,omitempty"`
	ImportID  string            `json:"import_id,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// Fingerprint identifies a record's data by the bytes it was written with:
// the first 16 bytes of their SHA-256. A writer that always writes the same
// record as the same bytes (the import writes canonical JSON) tells an
// unchanged record by its fingerprint, without reading or decoding it:
// profiled, reading and decoding the stored records was most of a
// re-import's parsing. Different bytes say nothing: the caller compares the
// data.
func Fingerprint(data []byte) []byte {
	sum := sha256.Sum256(data)
	return sum[:16]
}

// KeyRef names one key value to look up.
type KeyRef struct {
	Name  string
	Value string
}

// Holder is the record that holds a key.
type Holder struct {
	ID string
	// Fingerprint is the Fingerprint of the data the record was last
	// written with, when the store keeps it alongside its keys (nil when it
	// does not, or did not when the record was written): a lookup by key
	// then also tells whether a row is the record as stored, without a
	// second query (profiled: the second query was a third of PostgreSQL's
	// work on a re-import).
	Fingerprint []byte
}

// Op is one write of a batch.
type Op struct {
	Kind string // upsert | delete
	// Record is what an upsert writes; a delete reads only its ID and
	// ImportID. A non-empty ImportID keeps the record as it was before in
	// that import's changes (RecordStore.Changes), so the import can be
	// reverted: a batch is one import's, named by any of its ops (two
	// different names are refused). An
	// upsert's CreatedAt, when set, is the created_at it gives its record
	// (a revert recreating one); else a new record gets the write's time.
	Record Record
	// Expect, when set, is the state the record must be in when the batch
	// applies; if it is not, the op is left out and its id reported in
	// BatchResult.Conflicts (a revert does not clobber a record changed
	// since).
	Expect *Expect
}

// Expect is a record's required state: absent, or present with the data
// whose Fingerprint this is; or Anything. An op with an Expect that gives a
// key another record holds is left out as a conflict (BatchResult.HeldKeys)
// rather than failing the batch.
type Expect struct {
	Exists      bool
	Fingerprint []byte
	// Anything requires no state (a forced revert): only the key rule holds.
	Anything bool
}

// Met reports whether a record in this state (exists, with the data whose
// Fingerprint is fp) is as e requires.
func (e *Expect) Met(exists bool, fp []byte) bool {
	return e.Anything || exists == e.Exists && (!exists || bytes.Equal(fp, e.Fingerprint))
}

// Change is what one import did to one record.
type Change struct {
	ID string
	// Before is the record as it was when the import first wrote it (ID,
	// ParentID, Data, Keys, ImportID, CreatedAt); nil when it did not exist.
	Before *Record
	// After is the Fingerprint of the data the import left the record
	// with; nil when the import left no record (it deleted it).
	After []byte
}

// Op kinds.
const (
	OpUpsert = "upsert"
	OpDelete = "delete"
	// OpCreate is an upsert of a record the caller expects not to exist yet
	// (transforming found none of its keys). It has exactly an upsert's
	// effect and result; an adapter may load a batch of creates on a faster
	// path and falls back to upserting when the expectation was wrong.
	OpCreate = "create"
)

// BatchResult is what applying a batch did. It is stored with the batch, so a
// second Apply of the same batch returns the first result and writes nothing.
type BatchResult struct {
	Upserted int64 `json:"upserted"`
	Deleted  int64 `json:"deleted"`
	Missing  int64 `json:"missing"` // deletes whose record did not exist
	// Replayed is true when the batch had been applied before.
	Replayed bool `json:"replayed"`
	// MissingIDs lists the deletes whose record did not exist.
	MissingIDs []string `json:"missing_ids,omitempty"`
	// Conflicts lists the ops left out because their record was not in the
	// state they expected (Op.Expect), or because a key they give is held
	// by another record: HeldKeys names it ("email=a@x is held by record
	// rec_2"). An op without Expect meeting a held key fails the batch
	// (ErrKeyConflict) instead.
	Conflicts []string          `json:"conflicts,omitempty"`
	HeldKeys  map[string]string `json:"held_keys,omitempty"`
}

// RecordStore holds the records of every resource.
type RecordStore interface {
	// LookupKeys returns, for each ref found, the record holding it, keyed
	// by ref.Name + "\x00" + ref.Value.
	LookupKeys(ctx context.Context, scope Scope, refs []KeyRef) (map[string]Holder, error)
	// GetMany returns the records with these ids (missing ids are absent).
	GetMany(ctx context.Context, scope Scope, ids []string) (map[string]Record, error)
	// GetData returns the data of the records with these ids (missing ids
	// are absent): GetMany without keys and timestamps, for the import's
	// hot path (its keys cost two thirds of GetMany on PostgreSQL).
	GetData(ctx context.Context, scope Scope, ids []string) (map[string]json.RawMessage, error)
	// Fingerprints returns the Fingerprint of the data the records with
	// these ids were last written with (missing ids are absent; a record
	// written before fingerprints were kept has a nil one).
	Fingerprints(ctx context.Context, scope Scope, ids []string) (map[string][]byte, error)
	Get(ctx context.Context, scope Scope, id string) (Record, error)
	// List pages through records ordered by id; after is the last id of the previous page.
	List(ctx context.Context, scope Scope, after string, limit int) ([]Record, error)
	// ListIDs pages through the ids of records in scope ordered by id; a
	// non-empty parentID keeps only that parent's records (what an overwrite
	// import may remove).
	ListIDs(ctx context.Context, scope Scope, parentID, after string, limit int) ([]string, error)
	// Apply performs ops in one transaction together with marking batchID applied.
	// An upsert replaces the record's data and its keys. Applying a batchID that
	// was applied before changes nothing and returns the stored result.
	Apply(ctx context.Context, scope Scope, batchID string, ops []Op) (BatchResult, error)
	// Applied returns the stored result of batchID, and whether it was applied.
	Applied(ctx context.Context, batchID string) (BatchResult, bool, error)
	// ChangedIDs pages through the ids of the records importID changed in
	// scope, ordered by id; after is the last id of the previous page.
	ChangedIDs(ctx context.Context, scope Scope, importID, after string, limit int) ([]string, error)
	// Changes returns what importID did to the records with these ids
	// (ids it did not change are absent).
	Changes(ctx context.Context, scope Scope, importID string, ids []string) (map[string]Change, error)
	// PruneChanges forgets up to limit changes of the import whose changes
	// were first kept longest ago, if before before, and returns how many
	// it forgot; done is true when no such import was left.
	PruneChanges(ctx context.Context, before time.Time, limit int) (n int64, done bool, err error)
}

// KeyConflictError is the ErrKeyConflict of one key: Wanted asked for the
// key Held holds.
type KeyConflictError struct {
	BatchID, Name, Value string
	Held, Wanted         string
}

func (e *KeyConflictError) Error() string {
	return fmt.Sprintf("%v: batch %s: key %s=%q is held by record %s, cannot give it to record %s",
		ErrKeyConflict, e.BatchID, e.Name, e.Value, e.Held, e.Wanted)
}

func (e *KeyConflictError) Unwrap() error { return ErrKeyConflict }

// HeldKey says which key another record holds, as BatchResult.HeldKeys does.
func HeldKey(name, value, holder string) string {
	return fmt.Sprintf("%s=%s is held by record %s", name, value, holder)
}

// View is the projector's stored document of one import.
type View struct {
	ID        string
	Org       string
	Resource  string
	Status    string
	CreatedAt time.Time
	Doc       json.RawMessage
}

// ViewFilter selects views for a list; empty fields match everything.
type ViewFilter struct {
	Org      string
	Resource string
	Status   string
	// Before is the cursor: only views whose id sorts before it.
	Before string
	Limit  int
}

// ViewStore keeps the projector's views and the facts they are built from.
type ViewStore interface {
	GetView(ctx context.Context, id string) (View, error)
	// ListViews returns views newest first (ids sort by creation time).
	ListViews(ctx context.Context, f ViewFilter) ([]View, error)
	// CountViews counts the views of every organization by status (the
	// imports-by-status gauge; statuses with none are absent).
	CountViews(ctx context.Context) (map[string]int64, error)
	// UpdateView runs fn on the current view (ErrNotFound-free: a missing view
	// is passed as nil) inside a transaction and stores what fn returns; fn
	// returning nil stores nothing.
	UpdateView(ctx context.Context, id string, fn func(current *View) (*View, error)) error
	// ResetViews deletes every view (before a rebuild from the stream).
	ResetViews(ctx context.Context) error
}

// Store is every table Inlet keeps.
type Store interface {
	RecordStore
	ViewStore
	WebhookStore
	Ping(ctx context.Context) error
	Close() error
}
