// Package batchplan turns the ordered ops of one batch into the final state
// the adapters write. Both adapters share it so that SQLite and PostgreSQL
// agree on the edge cases: an id touched twice in one batch, a key moving
// between records inside a batch, counting deletes of missing records.
package batchplan

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/inlet-dev/inlet/internal/jsonenc"
	"github.com/inlet-dev/inlet/internal/store"
)

// Key is one key row to insert.
type Key struct {
	ID    string
	Name  string
	Value string
	// Fingerprint is its record's (store.Holder).
	Fingerprint []byte
}

// Plan is the net effect of a batch: what to write after collapsing the ops.
type Plan struct {
	// Upserts are the final records (last upsert of each id whose last op is
	// an upsert), sorted by id so concurrent batches lock rows in one order
	// (fewer deadlocks in PostgreSQL).
	Upserts []store.Record
	// Fingerprints are store.Fingerprint of each of Upserts' data.
	Fingerprints [][]byte
	// Deletes are the ids whose last op is a delete, sorted.
	Deletes []string
	// Touched is every id of the batch, sorted: their old key rows go away.
	Touched []string
	// Keys are the key rows of Upserts, in their order: each adapter sorts
	// them in its own index's order.
	Keys []Key
	// NeedExist are the ids whose first op is a delete: the adapter tells
	// Count whether they existed before the batch.
	NeedExist []string
	// AllCreates is true when every op is a create of a distinct id: if
	// none of the records or keys exists, plain inserts are the whole batch.
	AllCreates bool
	// ImportID is the import every op names (store.Op): the adapter keeps
	// what the batch changes under it (Changes). Empty: no changes kept.
	ImportID string
	// Expects is true when some op has an Expect: the adapter reads the
	// state of Touched under its locks and asks Unmet.
	Expects bool
	// Conflicts are the ids left out by Without; HeldKeys says, of those
	// left out by WithoutKeyConflict, which key another record holds.
	Conflicts []string
	HeldKeys  map[string]string
	// Restores are the upserts that give their record's created_at
	// (store.Op), by index in Upserts.
	Restores []int

	ops []store.Op
}

// Build validates ops and collapses them. Empty key values are skipped: an
// alternate key that a row does not give must not collide with every other
// row that does not give it either.
func Build(batchID string, ops []store.Op) (*Plan, error) {
	last := make(map[string]int, len(ops))
	seen := make(map[string]bool, len(ops))
	p := &Plan{ops: ops, AllCreates: len(ops) > 0}
	for i, op := range ops {
		id := op.Record.ID
		if id == "" {
			return nil, fmt.Errorf("store: batch %s op %d (%s): empty record id", batchID, i, op.Kind)
		}
		if p.ImportID == "" {
			p.ImportID = op.Record.ImportID
		} else if op.Record.ImportID != "" && op.Record.ImportID != p.ImportID {
			return nil, fmt.Errorf("store: batch %s op %d: record %s: import %q in a batch of import %q",
				batchID, i, id, op.Record.ImportID, p.ImportID)
		}
		if op.Expect != nil {
			p.Expects = true
		}
		if op.Kind != store.OpCreate || seen[id] || op.Expect != nil || !op.Record.CreatedAt.IsZero() {
			p.AllCreates = false
		}
		switch op.Kind {
		case store.OpUpsert, store.OpCreate:
		case store.OpDelete:
			if !seen[id] {
				p.NeedExist = append(p.NeedExist, id)
			}
		default:
			return nil, fmt.Errorf("store: batch %s op %d: record %s: unknown op kind %q", batchID, i, id, op.Kind)
		}
		seen[id] = true
		last[id] = i
	}
	for id := range seen {
		p.Touched = append(p.Touched, id)
	}
	slices.Sort(p.Touched)
	slices.Sort(p.NeedExist) // rows are locked in one order by every batch
	holder := map[[2]string]string{}
	for _, id := range p.Touched {
		op := ops[last[id]]
		if op.Kind == store.OpDelete {
			p.Deletes = append(p.Deletes, id)
			continue
		}
		rec := op.Record
		if len(rec.Data) == 0 {
			rec.Data = json.RawMessage("{}")
		}
		fp := store.Fingerprint(rec.Data)
		if !rec.CreatedAt.IsZero() {
			p.Restores = append(p.Restores, len(p.Upserts))
		}
		p.Upserts = append(p.Upserts, rec)
		p.Fingerprints = append(p.Fingerprints, fp)
		for name, value := range rec.Keys {
			if value == "" {
				continue
			}
			k := [2]string{name, value}
			if other, ok := holder[k]; ok {
				a, b := other, id
				return nil, fmt.Errorf("%w: batch %s gives key %s=%q to both record %s and record %s",
					store.ErrKeyConflict, batchID, name, value, a, b)
			}
			holder[k] = id
			p.Keys = append(p.Keys, Key{ID: id, Name: name, Value: value, Fingerprint: fp})
		}
	}
	return p, nil
}

// Unmet returns the ids whose first op expects a state (store.Expect) their
// record is not in before the batch: stored maps the ids of Touched that
// exist to their fingerprints.
func (p *Plan) Unmet(stored map[string][]byte) []string {
	var unmet []string
	seen := map[string]bool{}
	for _, op := range p.ops {
		id := op.Record.ID
		if seen[id] {
			continue
		}
		seen[id] = true
		if fp, exists := stored[id]; op.Expect != nil && !op.Expect.Met(exists, fp) {
			unmet = append(unmet, id)
		}
	}
	return unmet
}

// Without is the plan of the batch less every op of these ids, which it
// reports as Conflicts.
func (p *Plan) Without(batchID string, ids []string) (*Plan, error) {
	if len(ids) == 0 {
		return p, nil
	}
	drop := make(map[string]bool, len(ids))
	for _, id := range ids {
		drop[id] = true
	}
	kept := make([]store.Op, 0, len(p.ops))
	for _, op := range p.ops {
		if !drop[op.Record.ID] {
			kept = append(kept, op)
		}
	}
	next, err := Build(batchID, kept)
	if err != nil {
		return nil, err
	}
	next.AllCreates = false
	next.ImportID = p.ImportID
	next.Conflicts = append(slices.Clone(p.Conflicts), ids...)
	slices.Sort(next.Conflicts)
	next.HeldKeys = p.HeldKeys
	return next, nil
}

// firstOps maps each id to its first op.
func (p *Plan) firstOps() map[string]store.Op {
	first := make(map[string]store.Op, len(p.Touched))
	for _, op := range p.ops {
		if _, ok := first[op.Record.ID]; !ok {
			first[op.Record.ID] = op
		}
	}
	return first
}

// ExpectedAbsent are the ids, sorted, whose first op expects no record.
func (p *Plan) ExpectedAbsent() []string {
	if !p.Expects {
		return nil
	}
	var ids []string
	for id, op := range p.firstOps() {
		if op.Expect != nil && !op.Expect.Exists && !op.Expect.Anything {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Expecting reports whether id's first op expects a state.
func (p *Plan) Expecting(id string) bool {
	op, ok := p.firstOps()[id]
	return ok && op.Expect != nil
}

// WithoutKeyConflict is the plan less the record that wanted the key of
// kc, which it reports as a conflict naming the key and its holder.
func (p *Plan) WithoutKeyConflict(batchID string, kc *store.KeyConflictError) (*Plan, error) {
	next, err := p.Without(batchID, []string{kc.Wanted})
	if err != nil {
		return nil, err
	}
	next.HeldKeys = maps.Clone(p.HeldKeys)
	if next.HeldKeys == nil {
		next.HeldKeys = map[string]string{}
	}
	next.HeldKeys[kc.Wanted] = store.HeldKey(kc.Name, kc.Value, kc.Held)
	return next, nil
}

// Changes are what the batch leaves each record of Touched with, for the
// import's changes: the Fingerprint of its data, nil where it deletes it.
// A delete of a record that did not exist (existed: before the batch)
// changed nothing and is not among them.
func (p *Plan) Changes(existed map[string]bool) (ids []string, after [][]byte) {
	fps := make(map[string][]byte, len(p.Upserts))
	for i, r := range p.Upserts {
		fps[r.ID] = p.Fingerprints[i]
	}
	for _, id := range p.Touched {
		if fp, ok := fps[id]; ok || existed[id] {
			ids, after = append(ids, id), append(after, fp)
		}
	}
	return ids, after
}

// CheckData names the first op whose data is not JSON. It is not part of
// Build: PostgreSQL checks every jsonb value it is given anyway, so its
// adapter asks only when the server refuses one (json.Valid was 1.2 CPU-s of
// a 1M-row import), where SQLite, which stores the text as it is, asks first.
func CheckData(batchID string, ops []store.Op) error {
	for i, op := range ops {
		if op.Kind != store.OpDelete && len(op.Record.Data) > 0 && !json.Valid(op.Record.Data) {
			return fmt.Errorf("store: batch %s op %d: record %s: data is not valid JSON", batchID, i, op.Record.ID)
		}
	}
	return nil
}

// KeysJSON is the JSON object of Upserts[i]'s key rows (its keys that have a
// value): what an adapter keeps in the record's own row, so that replacing
// or deleting the record finds its key rows without an index by id.
func (p *Plan) KeysJSON(i int) string {
	keys := p.Upserts[i].Keys
	for _, value := range keys {
		if value == "" {
			keys = maps.Clone(keys)
			maps.DeleteFunc(keys, func(_, v string) bool { return v == "" })
			break
		}
	}
	return string(jsonenc.AppendStrings(nil, keys))
}

// Count replays the ops in order against existed (which ids of NeedExist were
// stored before the batch) to produce the result: a delete counts as Deleted
// when its record exists at that point of the batch, else as Missing.
func (p *Plan) Count(existed map[string]bool) store.BatchResult {
	r := store.BatchResult{Conflicts: p.Conflicts, HeldKeys: p.HeldKeys}
	present := make(map[string]bool, len(existed))
	for id, ok := range existed {
		present[id] = ok
	}
	for _, op := range p.ops {
		id := op.Record.ID
		if op.Kind != store.OpDelete {
			r.Upserted++
			present[id] = true
			continue
		}
		if present[id] {
			r.Deleted++
		} else {
			r.Missing++
			r.MissingIDs = append(r.MissingIDs, id)
		}
		present[id] = false
	}
	return r
}

// ConflictError builds the error for a key held by another record.
func ConflictError(batchID, name, value, heldBy, wantedBy string) error {
	return &store.KeyConflictError{BatchID: batchID, Name: name, Value: value, Held: heldBy, Wanted: wantedBy}
}

// Now is the store clock: UTC, microsecond precision so that both adapters
// (PostgreSQL keeps microseconds) return the same instant that was written.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// ClampLimit applies a default and a maximum to a page size.
func ClampLimit(limit, def, max int) int {
	if limit <= 0 {
		return def
	}
	if limit > max {
		return max
	}
	return limit
}

// DecodeChange reads a record_changes row: before is the JSON object of the
// record's columns (nil: it did not exist), after the fingerprint it was
// left with (nil: deleted).
func DecodeChange(id string, before, after []byte) (store.Change, error) {
	ch := store.Change{ID: id, After: slices.Clone(after)}
	if before == nil {
		return ch, nil
	}
	var rec store.Record
	if err := json.Unmarshal(before, &rec); err != nil {
		return ch, fmt.Errorf("record %s as it was: %w", id, err)
	}
	rec.CreatedAt, rec.UpdatedAt = rec.CreatedAt.UTC(), rec.UpdatedAt.UTC()
	if len(rec.Keys) == 0 {
		rec.Keys = nil
	}
	ch.Before = &rec
	return ch, nil
}
