// Package sqlite is the embedded store.Store: one SQLite file through the
// pure-Go modernc.org/sqlite driver, so the all-in-one binary needs no cgo and
// no server.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/internal/batchplan"

	_ "modernc.org/sqlite" // registers driver "sqlite"
)

// timeFormat is fixed-width so that stored timestamps sort as text.
const timeFormat = "2006-01-02T15:04:05.000000Z"

const schema = `
CREATE TABLE IF NOT EXISTS records (
	org        TEXT NOT NULL,
	mode       TEXT NOT NULL,
	resource   TEXT NOT NULL,
	id         TEXT NOT NULL,
	parent_id  TEXT NOT NULL DEFAULT '',
	data       TEXT NOT NULL,
	import_id  TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	keys       TEXT NOT NULL DEFAULT '{}',
	fp         BLOB, -- store.Fingerprint of data; NULL for records written before
	PRIMARY KEY (org, mode, resource, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS record_keys (
	org       TEXT NOT NULL,
	mode      TEXT NOT NULL,
	resource  TEXT NOT NULL,
	key_name  TEXT NOT NULL,
	key_value TEXT NOT NULL,
	id        TEXT NOT NULL,
	PRIMARY KEY (org, mode, resource, key_name, key_value)
) WITHOUT ROWID;
-- What each import did to each record it wrote (store.Change): the record
-- before (NULL: it did not exist), the fingerprint it left (NULL: deleted).
CREATE TABLE IF NOT EXISTS record_changes (
	import_id TEXT NOT NULL,
	org       TEXT NOT NULL,
	mode      TEXT NOT NULL,
	resource  TEXT NOT NULL,
	id        TEXT NOT NULL,
	before    TEXT,
	after_fp  BLOB,
	PRIMARY KEY (import_id, org, mode, resource, id)
) WITHOUT ROWID;
-- The imports whose changes are kept, since when (PruneChanges).
CREATE TABLE IF NOT EXISTS change_sets (
	import_id TEXT PRIMARY KEY,
	kept_at   TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS change_sets_kept_at ON change_sets (kept_at);
CREATE TABLE IF NOT EXISTS applied_batches (
	batch_id   TEXT PRIMARY KEY,
	result     TEXT NOT NULL,
	applied_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS import_views (
	id         TEXT PRIMARY KEY,
	org        TEXT NOT NULL,
	resource   TEXT NOT NULL,
	status     TEXT NOT NULL,
	created_at TEXT NOT NULL,
	doc        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS import_views_org ON import_views (org, id DESC);
CREATE INDEX IF NOT EXISTS import_views_org_resource ON import_views (org, resource, id DESC);
CREATE INDEX IF NOT EXISTS import_views_org_status ON import_views (org, status, id DESC);
CREATE INDEX IF NOT EXISTS import_views_status ON import_views (status, id DESC);
`

// MemoryLimit bounds the page caches of a store's connections together:
// what SQLite adds to the process's memory, besides the Go heap.
const MemoryLimit = 64 << 20

// maxConns is the connections a store opens at most.
const maxConns = 8

// Store is a store.Store on one SQLite file.
type Store struct {
	db *sql.DB
	// writeMu serializes this process's write transactions: SQLite has one
	// writer at a time, and queuing in Go is cheaper and fairer than letting
	// connections spin on busy_timeout. busy_timeout still covers other
	// processes opening the same file.
	writeMu sync.Mutex
	ckpt    *checkpointer
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path and its schema.
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// NORMAL is durable across application crashes in WAL mode; only an OS
	// crash can lose the last transactions, and batches are re-derivable.
	q.Add("_pragma", "synchronous(NORMAL)")
	// The default 2 MiB page cache makes every key lookup of a large table a
	// disk read (profiled: half of an embedded import's time). The caches
	// are outside the Go heap and its limit, so all of them together stay
	// under MemoryLimit (SQLite's own heap limit is not enforced in this
	// build: it keeps no memory statistics).
	q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", MemoryLimit/maxConns>>10)) // KiB
	// Checkpoints are the checkpointer's (checkpoint.go), not the writer's.
	q.Add("_pragma", "wal_autocheckpoint(0)")
	// BEGIN IMMEDIATE takes the write lock up front, so a transaction never
	// fails half-way with SQLITE_BUSY when it upgrades from read to write.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: create schema in %s: %w", path, err)
	}
	s.startCheckpointer()
	return s, nil
}

func (s *Store) migrate() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := upgradeKeys(tx); err != nil {
		return err
	}
	if _, err := tx.Exec(schema); err != nil {
		return err
	}
	if _, err := tx.Exec(webhookSchema); err != nil {
		return err
	}
	if err := addFingerprints(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// addFingerprints gives a database made before fingerprints their column.
func addFingerprints(tx *sql.Tx) error {
	var has int
	if err := tx.QueryRow(`SELECT count(*) FROM pragma_table_info('records') WHERE name = 'fp'`).Scan(&has); err != nil || has > 0 {
		return err
	}
	_, err := tx.Exec(`ALTER TABLE records ADD COLUMN fp BLOB`)
	return err
}

// A record's keys live in its row as well as in record_keys, which has
// neither a foreign key to records nor an index by id: replacing or deleting
// a record finds its key rows by their primary key, and a new record costs
// two fewer index searches and two fewer index entries a key. Databases made
// before are upgraded once: keys copied into the rows, record_keys rebuilt.
func upgradeKeys(tx *sql.Tx) error {
	var old int
	if err := tx.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'record_keys_by_id'`).Scan(&old); err != nil || old == 0 {
		return err
	}
	for _, stmt := range []string{
		`ALTER TABLE records ADD COLUMN keys TEXT NOT NULL DEFAULT '{}'`,
		`UPDATE records SET keys = (SELECT json_group_object(k.key_name, k.key_value) FROM record_keys k
			WHERE k.org = records.org AND k.mode = records.mode AND k.resource = records.resource AND k.id = records.id)
		WHERE EXISTS (SELECT 1 FROM record_keys k
			WHERE k.org = records.org AND k.mode = records.mode AND k.resource = records.resource AND k.id = records.id)`,
		`CREATE TABLE record_keys_v2 (
			org TEXT NOT NULL, mode TEXT NOT NULL, resource TEXT NOT NULL,
			key_name TEXT NOT NULL, key_value TEXT NOT NULL, id TEXT NOT NULL,
			PRIMARY KEY (org, mode, resource, key_name, key_value)) WITHOUT ROWID`,
		`INSERT INTO record_keys_v2 SELECT org, mode, resource, key_name, key_value, id FROM record_keys`,
		`DROP TABLE record_keys`,
		`ALTER TABLE record_keys_v2 RENAME TO record_keys`,
	} {
		if _, err := tx.Exec(stmt); err != nil {
			return fmt.Errorf("upgrade record keys: %w", err)
		}
	}
	return nil
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close closes the database.
// Close stops the checkpointer; the last connection to close copies what
// is left of the log into the file.
func (s *Store) Close() error {
	s.ckpt.close()
	return s.db.Close()
}

// writeTx runs fn in one write transaction.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.ckpt.committed()
	return nil
}

func fmtTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeFormat, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: bad stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

// jsonArray encodes ids for json_each: one bound parameter instead of one per
// id keeps statements cacheable and clear of SQLite's variable limit.
func jsonArray(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

const recordCols = `r.id, r.parent_id, r.data, r.import_id, r.created_at, r.updated_at, r.keys`

// The queries of the import hot path. Each must find its rows through an
// index whatever the table sizes: json_each is the outer loop (CROSS JOIN
// fixes SQLite's join order; left to itself the planner may scan
// record_keys once per looked-up value). TestHotQueriesUseIndexes checks
// every one with EXPLAIN QUERY PLAN.
const (
	// The holder's fingerprint is read from its row here: a probe in the
	// same process costs less than keeping a copy in every key row.
	lookupKeysQuery = `SELECT k.key_name, k.key_value, k.id, r.fp
		FROM json_each(?1) j
		CROSS JOIN record_keys k
		CROSS JOIN records r
		WHERE k.org = ?2 AND k.mode = ?3 AND k.resource = ?4
			AND k.key_name = j.value ->> 0 AND k.key_value = j.value ->> 1
			AND r.org = k.org AND r.mode = k.mode AND r.resource = k.resource AND r.id = k.id`
	getManyQuery = `SELECT ` + recordCols + ` FROM json_each(?1) j
		CROSS JOIN records r
		WHERE r.org = ?2 AND r.mode = ?3 AND r.resource = ?4 AND r.id = j.value`
	fingerprintsQuery = `SELECT r.id, r.fp FROM json_each(?1) j
		CROSS JOIN records r
		WHERE r.org = ?2 AND r.mode = ?3 AND r.resource = ?4 AND r.id = j.value`
	getDataQuery = `SELECT r.id, r.data FROM json_each(?1) j
		CROSS JOIN records r
		WHERE r.org = ?2 AND r.mode = ?3 AND r.resource = ?4 AND r.id = j.value`
	// The records a batch touches and the keys they hold now.
	touchedQuery = `SELECT r.id, r.keys, r.fp FROM json_each(?4) j
		CROSS JOIN records r
		WHERE r.org = ?1 AND r.mode = ?2 AND r.resource = ?3 AND r.id = j.value`
	// One key row a record held, by its primary key; "id" leaves a key
	// another record took meanwhile alone.
	dropKeyQuery = `DELETE FROM record_keys
		WHERE org = ?1 AND mode = ?2 AND resource = ?3 AND key_name = ?4 AND key_value = ?5 AND id = ?6`
	// The record as it is before the batch writes it, kept under the
	// import by the first batch that touches it; the last keeps what it left.
	keepChangeQuery = `INSERT INTO record_changes (import_id, org, mode, resource, id, before, after_fp)
		VALUES (?4, ?1, ?2, ?3, ?5, (SELECT json_object('id', r.id, 'parent_id', r.parent_id, 'data', json(r.data),
				'keys', json(r.keys), 'import_id', r.import_id, 'created_at', r.created_at, 'updated_at', r.updated_at)
			FROM records r WHERE r.org = ?1 AND r.mode = ?2 AND r.resource = ?3 AND r.id = ?5), ?6)
		ON CONFLICT (import_id, org, mode, resource, id) DO UPDATE SET after_fp = excluded.after_fp`
	deleteRecordsQuery = `DELETE FROM records
		WHERE org = ?1 AND mode = ?2 AND resource = ?3 AND id IN (SELECT value FROM json_each(?4))`
)

func scanRecord(sc interface{ Scan(...any) error }) (store.Record, error) {
	var (
		r                  store.Record
		data, keys         string
		created, updated   string
		parentID, importID string
	)
	if err := sc.Scan(&r.ID, &parentID, &data, &importID, &created, &updated, &keys); err != nil {
		return r, err
	}
	r.ParentID, r.ImportID = parentID, importID
	r.Data = json.RawMessage(data)
	var err error
	if r.CreatedAt, err = parseTime(created); err != nil {
		return r, err
	}
	if r.UpdatedAt, err = parseTime(updated); err != nil {
		return r, err
	}
	if keys != "" && keys != "{}" {
		if err := json.Unmarshal([]byte(keys), &r.Keys); err != nil {
			return r, fmt.Errorf("sqlite: record %s: bad keys: %w", r.ID, err)
		}
	}
	return r, nil
}

// LookupKeys finds the records holding refs, in one query.
func (s *Store) LookupKeys(ctx context.Context, scope store.Scope, refs []store.KeyRef) (map[string]store.Holder, error) {
	out := make(map[string]store.Holder, len(refs))
	if len(refs) == 0 {
		return out, nil
	}
	pairs := make([][2]string, len(refs))
	for i, r := range refs {
		pairs[i] = [2]string{r.Name, r.Value}
	}
	rows, err := s.db.QueryContext(ctx, lookupKeysQuery, jsonArray(pairs), scope.Org, scope.Mode, scope.Resource)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lookup %d keys in %s/%s/%s: %w", len(refs), scope.Org, scope.Mode, scope.Resource, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name, value string
			h           store.Holder
		)
		if err := rows.Scan(&name, &value, &h.ID, &h.Fingerprint); err != nil {
			return nil, err
		}
		out[name+"\x00"+value] = h
	}
	return out, rows.Err()
}

// GetMany returns the records with ids, in one query.
func (s *Store) GetMany(ctx context.Context, scope store.Scope, ids []string) (map[string]store.Record, error) {
	out := make(map[string]store.Record, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, getManyQuery, jsonArray(ids), scope.Org, scope.Mode, scope.Resource)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get %d records in %s/%s/%s: %w", len(ids), scope.Org, scope.Mode, scope.Resource, err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out[r.ID] = r
	}
	return out, rows.Err()
}

// Fingerprints returns the fingerprints of the records with ids, in one query.
func (s *Store) Fingerprints(ctx context.Context, scope store.Scope, ids []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, fingerprintsQuery, jsonArray(ids), scope.Org, scope.Mode, scope.Resource)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get fingerprints of %d records in %s/%s/%s: %w", len(ids), scope.Org, scope.Mode, scope.Resource, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var fp []byte
		if err := rows.Scan(&id, &fp); err != nil {
			return nil, err
		}
		out[id] = fp
	}
	return out, rows.Err()
}

// GetData returns the data of the records with ids, in one query.
func (s *Store) GetData(ctx context.Context, scope store.Scope, ids []string) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, getDataQuery, jsonArray(ids), scope.Org, scope.Mode, scope.Resource)
	if err != nil {
		return nil, fmt.Errorf("sqlite: get data of %d records in %s/%s/%s: %w", len(ids), scope.Org, scope.Mode, scope.Resource, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, data string
		if err := rows.Scan(&id, &data); err != nil {
			return nil, err
		}
		out[id] = json.RawMessage(data)
	}
	return out, rows.Err()
}

// Get returns one record or an error wrapping store.ErrNotFound.
func (s *Store) Get(ctx context.Context, scope store.Scope, id string) (store.Record, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+recordCols+` FROM records r
		WHERE r.org = ? AND r.mode = ? AND r.resource = ? AND r.id = ?`,
		scope.Org, scope.Mode, scope.Resource, id)
	r, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("record %s in %s/%s/%s: %w", id, scope.Org, scope.Mode, scope.Resource, store.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("sqlite: get record %s: %w", id, err)
	}
	return r, nil
}

// List pages through records by id (limit default 100, max 1000).
func (s *Store) List(ctx context.Context, scope store.Scope, after string, limit int) ([]store.Record, error) {
	limit = batchplan.ClampLimit(limit, 100, 1000)
	rows, err := s.db.QueryContext(ctx, `SELECT `+recordCols+` FROM records r
		WHERE r.org = ? AND r.mode = ? AND r.resource = ? AND r.id > ?
		ORDER BY r.id LIMIT ?`,
		scope.Org, scope.Mode, scope.Resource, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list %s/%s/%s: %w", scope.Org, scope.Mode, scope.Resource, err)
	}
	defer rows.Close()
	var out []store.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ListIDs pages through record ids, optionally of one parent.
func (s *Store) ListIDs(ctx context.Context, scope store.Scope, parentID, after string, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM records
		WHERE org = ? AND mode = ? AND resource = ? AND id > ? AND (? = '' OR parent_id = ?)
		ORDER BY id LIMIT ?`,
		scope.Org, scope.Mode, scope.Resource, after, parentID, parentID, batchplan.ClampLimit(limit, 1000, 10000))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list ids of %s/%s/%s: %w", scope.Org, scope.Mode, scope.Resource, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// ChangedIDs pages through the records importID changed in scope.
func (s *Store) ChangedIDs(ctx context.Context, scope store.Scope, importID, after string, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM record_changes
		WHERE import_id = ? AND org = ? AND mode = ? AND resource = ? AND id > ?
		ORDER BY id LIMIT ?`,
		importID, scope.Org, scope.Mode, scope.Resource, after, batchplan.ClampLimit(limit, 1000, 10000))
	if err != nil {
		return nil, fmt.Errorf("sqlite: records changed by %s: %w", importID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// Changes reads what importID did to these records.
func (s *Store) Changes(ctx context.Context, scope store.Scope, importID string, ids []string) (map[string]store.Change, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT c.id, c.before, c.after_fp FROM json_each(?5) j
		CROSS JOIN record_changes c
		WHERE c.import_id = ?1 AND c.org = ?2 AND c.mode = ?3 AND c.resource = ?4 AND c.id = j.value`,
		importID, scope.Org, scope.Mode, scope.Resource, jsonArray(ids))
	if err != nil {
		return nil, fmt.Errorf("sqlite: changes of %s: %w", importID, err)
	}
	defer rows.Close()
	out := make(map[string]store.Change, len(ids))
	for rows.Next() {
		var (
			id     string
			before sql.NullString
			after  []byte
		)
		if err := rows.Scan(&id, &before, &after); err != nil {
			return nil, err
		}
		var b []byte
		if before.Valid {
			b = []byte(before.String)
		}
		ch, err := batchplan.DecodeChange(id, b, after)
		if err != nil {
			return nil, fmt.Errorf("sqlite: changes of %s: %w", importID, err)
		}
		out[id] = ch
	}
	return out, rows.Err()
}

// PruneChanges forgets the changes of the oldest import kept before before,
// limit rows a transaction.
func (s *Store) PruneChanges(ctx context.Context, before time.Time, limit int) (int64, bool, error) {
	limit = batchplan.ClampLimit(limit, 10000, 100000)
	var (
		pruned int64
		done   bool
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var importID string
		err := tx.QueryRowContext(ctx, `SELECT import_id FROM change_sets WHERE kept_at < ? ORDER BY kept_at LIMIT 1`,
			fmtTime(before)).Scan(&importID)
		if errors.Is(err, sql.ErrNoRows) {
			done = true
			return nil
		} else if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM record_changes WHERE (import_id, org, mode, resource, id) IN (
			SELECT import_id, org, mode, resource, id FROM record_changes WHERE import_id = ? LIMIT ?)`, importID, limit)
		if err != nil {
			return err
		}
		if pruned, err = res.RowsAffected(); err == nil && pruned < int64(limit) {
			_, err = tx.ExecContext(ctx, `DELETE FROM change_sets WHERE import_id = ?`, importID)
		}
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("sqlite: prune changes kept before %s: %w", before.Format(time.RFC3339), err)
	}
	return pruned, done, nil
}

// Applied reads the stored result of a batch.
func (s *Store) Applied(ctx context.Context, batchID string) (store.BatchResult, bool, error) {
	var res store.BatchResult
	var stored string
	err := s.db.QueryRowContext(ctx, `SELECT result FROM applied_batches WHERE batch_id = ?`, batchID).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return res, false, nil
	}
	if err != nil {
		return res, false, fmt.Errorf("sqlite: batch %s: %w", batchID, err)
	}
	if err := json.Unmarshal([]byte(stored), &res); err != nil {
		return res, false, fmt.Errorf("sqlite: batch %s: bad stored result: %w", batchID, err)
	}
	return res, true, nil
}

// Apply writes the batch and marks it applied in one transaction.
func (s *Store) Apply(ctx context.Context, scope store.Scope, batchID string, ops []store.Op) (store.BatchResult, error) {
	if batchID == "" {
		return store.BatchResult{}, errors.New("sqlite: apply: empty batch id")
	}
	var res store.BatchResult
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var stored string
		err := tx.QueryRowContext(ctx, `SELECT result FROM applied_batches WHERE batch_id = ?`, batchID).Scan(&stored)
		if err == nil {
			if err := json.Unmarshal([]byte(stored), &res); err != nil {
				return fmt.Errorf("sqlite: batch %s: bad stored result: %w", batchID, err)
			}
			res.Replayed = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: batch %s: %w", batchID, err)
		}
		// Validated after the replay check: a replayed batch returns its
		// result even if the redelivered ops would no longer pass.
		plan, err := batchplan.Build(batchID, ops)
		if err != nil {
			return err
		}
		if err := batchplan.CheckData(batchID, ops); err != nil {
			return err
		}
		res, err = s.applyPlan(ctx, tx, scope, batchID, plan)
		return err
	})
	if err != nil {
		return store.BatchResult{}, err
	}
	return res, nil
}

func (s *Store) applyPlan(ctx context.Context, tx *sql.Tx, scope store.Scope, batchID string, plan *batchplan.Plan) (store.BatchResult, error) {
	sc := []any{scope.Org, scope.Mode, scope.Resource}
	wrap := func(what string, err error) error {
		return fmt.Errorf("sqlite: batch %s: %s: %w", batchID, what, err)
	}
	// The batch's writer lock (one write transaction at a time) makes the
	// keys read here all the key rows these records have.
	existed := map[string]bool{}
	stored := map[string][]byte{} // fingerprints, for Expect
	var held []heldKey
	{
		rows, err := tx.QueryContext(ctx, touchedQuery, append(sc, jsonArray(plan.Touched))...)
		if err != nil {
			return store.BatchResult{}, wrap("read touched records", err)
		}
		for rows.Next() {
			var (
				id, keys string
				fp       []byte
			)
			if err := rows.Scan(&id, &keys, &fp); err != nil {
				rows.Close()
				return store.BatchResult{}, err
			}
			existed[id] = true
			stored[id] = fp
			var m map[string]string
			if err := json.Unmarshal([]byte(keys), &m); err != nil {
				rows.Close()
				return store.BatchResult{}, wrap("keys of record "+id, err)
			}
			for name, value := range m {
				held = append(held, heldKey{id, name, value})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return store.BatchResult{}, err
		}
	}
	if plan.Expects {
		var err error
		if plan, err = plan.Without(batchID, plan.Unmet(stored)); err != nil {
			return store.BatchResult{}, err
		}
	}
	// An op that expects a state whose key another record holds now is
	// left out too (see the PostgreSQL adapter): rolled back to a savepoint,
	// the rest written again.
	now := fmtTime(batchplan.Now())
	for {
		if !plan.Expects {
			if err := s.write(ctx, tx, scope, batchID, plan, existed, held, now); err != nil {
				return store.BatchResult{}, err
			}
			break
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT expecting`); err != nil {
			return store.BatchResult{}, wrap("savepoint", err)
		}
		err := s.write(ctx, tx, scope, batchID, plan, existed, held, now)
		var kc *store.KeyConflictError
		if errors.As(err, &kc) && plan.Expecting(kc.Wanted) {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO expecting`); err != nil {
				return store.BatchResult{}, wrap("roll back to savepoint", err)
			}
			if plan, err = plan.WithoutKeyConflict(batchID, kc); err != nil {
				return store.BatchResult{}, err
			}
			continue
		}
		if err != nil {
			return store.BatchResult{}, err
		}
		if _, err := tx.ExecContext(ctx, `RELEASE expecting`); err != nil {
			return store.BatchResult{}, wrap("release savepoint", err)
		}
		break
	}
	res := plan.Count(existed)
	b, _ := json.Marshal(res)
	if _, err := tx.ExecContext(ctx, `INSERT INTO applied_batches (batch_id, result, applied_at) VALUES (?, ?, ?)`,
		batchID, string(b), now); err != nil {
		return store.BatchResult{}, wrap("mark applied", err)
	}
	return res, nil
}

// heldKey is a key row a record of the batch holds.
type heldKey struct{ id, name, value string }

// write applies plan: the changes kept for its import, the touched
// records' old key rows dropped, deletes, upserts, key rows.
func (s *Store) write(ctx context.Context, tx *sql.Tx, scope store.Scope, batchID string, plan *batchplan.Plan,
	existed map[string]bool, held []heldKey, now string) error {
	sc := []any{scope.Org, scope.Mode, scope.Resource}
	wrap := func(what string, err error) error {
		return fmt.Errorf("sqlite: batch %s: %s: %w", batchID, what, err)
	}
	held = slices.DeleteFunc(slices.Clone(held), func(k heldKey) bool {
		_, touched := slices.BinarySearch(plan.Touched, k.id)
		return !touched
	})
	if plan.ImportID != "" && len(plan.Touched) > 0 {
		st, err := tx.PrepareContext(ctx, keepChangeQuery)
		if err != nil {
			return wrap("prepare keeping changes", err)
		}
		defer st.Close()
		ids, after := plan.Changes(existed)
		for i, id := range ids {
			if _, err := st.ExecContext(ctx, scope.Org, scope.Mode, scope.Resource, plan.ImportID, id, after[i]); err != nil {
				return wrap("keep change of record "+id, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO change_sets (import_id, kept_at) VALUES (?, ?) ON CONFLICT DO NOTHING`,
			plan.ImportID, fmtTime(batchplan.Now())); err != nil {
			return wrap("keep changes", err)
		}
	}
	if len(held) > 0 {
		st, err := tx.PrepareContext(ctx, dropKeyQuery)
		if err != nil {
			return wrap("prepare key drop", err)
		}
		defer st.Close()
		for _, k := range held {
			if _, err := st.ExecContext(ctx, scope.Org, scope.Mode, scope.Resource, k.name, k.value, k.id); err != nil {
				return wrap("drop old keys", err)
			}
		}
	}
	if len(plan.Deletes) > 0 {
		if _, err := tx.ExecContext(ctx, deleteRecordsQuery, append(sc, jsonArray(plan.Deletes))...); err != nil {
			return wrap("delete records", err)
		}
	}
	if len(plan.Upserts) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO records
			(org, mode, resource, id, parent_id, data, import_id, created_at, updated_at, keys, fp)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (org, mode, resource, id) DO UPDATE SET
				parent_id = excluded.parent_id, data = excluded.data, keys = excluded.keys, fp = excluded.fp,
				import_id = excluded.import_id, updated_at = excluded.updated_at`)
		if err != nil {
			return wrap("prepare upsert", err)
		}
		defer st.Close()
		for i, r := range plan.Upserts {
			if _, err := st.ExecContext(ctx, scope.Org, scope.Mode, scope.Resource, r.ID, r.ParentID,
				string(r.Data), r.ImportID, now, now, plan.KeysJSON(i), plan.Fingerprints[i]); err != nil {
				return wrap("upsert record "+r.ID, err)
			}
		}
		for _, u := range plan.Restores {
			r := plan.Upserts[u]
			if _, err := tx.ExecContext(ctx, `UPDATE records SET created_at = ?
				WHERE org = ? AND mode = ? AND resource = ? AND id = ?`,
				fmtTime(r.CreatedAt), scope.Org, scope.Mode, scope.Resource, r.ID); err != nil {
				return wrap("restore creation time of record "+r.ID, err)
			}
		}
	}
	if len(plan.Keys) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO record_keys
			(org, mode, resource, key_name, key_value, id) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`)
		if err != nil {
			return wrap("prepare keys", err)
		}
		defer st.Close()
		for _, k := range inIndexOrder(plan.Keys) {
			r, err := st.ExecContext(ctx, scope.Org, scope.Mode, scope.Resource, k.Name, k.Value, k.ID)
			if err != nil {
				return wrap("insert key of record "+k.ID, err)
			}
			if n, _ := r.RowsAffected(); n == 1 {
				continue
			}
			var holder string
			if err := tx.QueryRowContext(ctx, `SELECT id FROM record_keys
				WHERE org = ? AND mode = ? AND resource = ? AND key_name = ? AND key_value = ?`,
				scope.Org, scope.Mode, scope.Resource, k.Name, k.Value).Scan(&holder); err != nil {
				return wrap("find holder of key "+k.Name, err)
			}
			return batchplan.ConflictError(batchID, k.Name, k.Value, holder, k.ID)
		}
	}
	return nil
}

const viewCols = `id, org, resource, status, created_at, doc`

func scanView(sc interface{ Scan(...any) error }) (store.View, error) {
	var v store.View
	var created, doc string
	if err := sc.Scan(&v.ID, &v.Org, &v.Resource, &v.Status, &created, &doc); err != nil {
		return v, err
	}
	v.Doc = json.RawMessage(doc)
	var err error
	v.CreatedAt, err = parseTime(created)
	return v, err
}

// GetView returns one view or an error wrapping store.ErrNotFound.
func (s *Store) GetView(ctx context.Context, id string) (store.View, error) {
	v, err := scanView(s.db.QueryRowContext(ctx, `SELECT `+viewCols+` FROM import_views WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("view %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("sqlite: get view %s: %w", id, err)
	}
	return v, nil
}

// ListViews returns views newest first (limit default 50, max 1000).
// CountViews counts views by status.
func (s *Store) CountViews(ctx context.Context) (map[string]int64, error) {
	const q = `SELECT status, count(*) FROM import_views GROUP BY status`
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: count views: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("sqlite: count views: %w", err)
		}
		out[status] = n
	}
	return out, rows.Err()
}

func (s *Store) ListViews(ctx context.Context, f store.ViewFilter) ([]store.View, error) {
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{{"org", f.Org}, {"resource", f.Resource}, {"status", f.Status}} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if f.Before != "" {
		where = append(where, "id < ?")
		args = append(args, f.Before)
	}
	q := `SELECT ` + viewCols + ` FROM import_views`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, batchplan.ClampLimit(f.Limit, 50, 1000))
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list views: %w", err)
	}
	defer rows.Close()
	var out []store.View
	for rows.Next() {
		v, err := scanView(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// UpdateView is a read-modify-write under the write lock, so concurrent
// updates of one view are serialized and none is lost.
func (s *Store) UpdateView(ctx context.Context, id string, fn func(current *store.View) (*store.View, error)) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		var cur *store.View
		v, err := scanView(tx.QueryRowContext(ctx, `SELECT `+viewCols+` FROM import_views WHERE id = ?`, id))
		switch {
		case err == nil:
			cur = &v
		case errors.Is(err, sql.ErrNoRows):
		default:
			return fmt.Errorf("sqlite: read view %s: %w", id, err)
		}
		next, err := fn(cur)
		if err != nil || next == nil {
			return err
		}
		created := next.CreatedAt
		if created.IsZero() {
			if cur != nil {
				created = cur.CreatedAt
			} else {
				created = batchplan.Now()
			}
		}
		doc := next.Doc
		if len(doc) == 0 {
			doc = json.RawMessage("{}")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO import_views (id, org, resource, status, created_at, doc)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET org = excluded.org, resource = excluded.resource,
				status = excluded.status, created_at = excluded.created_at, doc = excluded.doc`,
			id, next.Org, next.Resource, next.Status, fmtTime(created), string(doc)); err != nil {
			return fmt.Errorf("sqlite: store view %s: %w", id, err)
		}
		return nil
	})
}

// ResetViews deletes every view.
func (s *Store) ResetViews(ctx context.Context) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM import_views`)
		return err
	})
}

// inIndexOrder sorts key rows as record_keys' primary key does (name, then
// value): the inserts walk the b-tree once.
func inIndexOrder(keys []batchplan.Key) []batchplan.Key {
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b batchplan.Key) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Value, b.Value))
	})
	return sorted
}
