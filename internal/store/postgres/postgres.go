// Package postgres is the production store.Store on PostgreSQL through a pgx
// pool. Writes take the bulk path (COPY into temp tables, then one set-based
// statement per table) because batches are hundreds to thousands of rows.
package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/store/internal/batchplan"
)

// migrationLock is the pg_advisory_xact_lock key that serializes schema
// creation: concurrent CREATE TABLE IF NOT EXISTS can still fail with a
// unique violation on pg_type when two processes start at once.
const migrationLock = 0x696e6c6574 // "inlet"

// record_keys has no foreign key to records (SQLite's schema has one): the
// per-row RI trigger cost about 40% of bulk Apply throughput, and Apply is the
// only writer, always removing a touched record's key rows itself.
//
// Every text column is COLLATE "C": ids and keys are compared bytewise (as
// in SQLite and Go) and btree comparisons skip the locale, whatever the
// database was created with.
const schema = `
CREATE TABLE IF NOT EXISTS records (
	org        text COLLATE "C" NOT NULL,
	mode       text COLLATE "C" NOT NULL,
	resource   text COLLATE "C" NOT NULL,
	id         text COLLATE "C" NOT NULL,
	parent_id  text COLLATE "C" NOT NULL DEFAULT '',
	data       jsonb NOT NULL,
	import_id  text COLLATE "C" NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	keys       jsonb NOT NULL DEFAULT '{}',
	PRIMARY KEY (org, mode, resource, id)
);
-- A record's keys live in its row as well as in record_keys: replacing or
-- deleting a record finds its key rows by their primary key, so record_keys
-- needs no index by id (two fewer index entries for every new record).
ALTER TABLE records ADD COLUMN IF NOT EXISTS keys jsonb NOT NULL DEFAULT '{}';
-- store.Fingerprint of the data as written; NULL for records written before.
ALTER TABLE records ADD COLUMN IF NOT EXISTS fp bytea;
CREATE TABLE IF NOT EXISTS record_keys (
	org       text COLLATE "C" NOT NULL,
	mode      text COLLATE "C" NOT NULL,
	resource  text COLLATE "C" NOT NULL,
	key_name  text COLLATE "C" NOT NULL,
	key_value text COLLATE "C" NOT NULL,
	id        text COLLATE "C" NOT NULL,
	CONSTRAINT record_keys_pkey PRIMARY KEY (key_value, key_name, org, mode, resource)
);
-- The holder's records.fp, written with it (every write of a record writes
-- all its key rows again): LookupKeys returns it without touching records.
-- NULL for key rows written before.
ALTER TABLE record_keys ADD COLUMN IF NOT EXISTS fp bytea;
-- No index of record_keys leads with the scope: with one, the planner,
-- misled by statistics taken before a bulk load, searched a whole scope per
-- looked-up key or id (TestHotQueriesUseIndexes). Databases made before
-- have both indexes led by the scope: rebuilt once.
DO $$ BEGIN
	IF pg_get_indexdef('record_keys_pkey'::regclass) LIKE '%(org, mode, resource, key_name, key_value)%' THEN
		ALTER TABLE record_keys DROP CONSTRAINT record_keys_pkey,
			ADD CONSTRAINT record_keys_pkey PRIMARY KEY (key_value, key_name, org, mode, resource);
	END IF;
END $$;
-- Databases made before kept a record's keys in record_keys only, found
-- through an index by id: copied into the rows once, then the index goes.
DO $$ BEGIN
	IF to_regclass('record_keys_by_id_v2') IS NOT NULL OR to_regclass('record_keys_by_id') IS NOT NULL THEN
		UPDATE records r SET keys = k.keys
		FROM (SELECT org, mode, resource, id, jsonb_object_agg(key_name, key_value) AS keys
			FROM record_keys GROUP BY org, mode, resource, id) k
		WHERE r.org = k.org AND r.mode = k.mode AND r.resource = k.resource AND r.id = k.id;
		DROP INDEX IF EXISTS record_keys_by_id_v2;
		DROP INDEX IF EXISTS record_keys_by_id;
	END IF;
END $$;
-- What each import did to each record it wrote: the record before (NULL:
-- it did not exist) and the fingerprint of what it left (NULL: deleted),
-- written in the transaction of the batch (store.Change; a revert reads it).
CREATE TABLE IF NOT EXISTS record_changes (
	import_id text COLLATE "C" NOT NULL,
	org       text COLLATE "C" NOT NULL,
	mode      text COLLATE "C" NOT NULL,
	resource  text COLLATE "C" NOT NULL,
	id        text COLLATE "C" NOT NULL,
	before    jsonb,
	after_fp  bytea,
	PRIMARY KEY (import_id, org, mode, resource, id)
);
-- The imports whose changes are kept, since when: what PruneChanges forgets
-- once they are older than the revert window.
CREATE TABLE IF NOT EXISTS change_sets (
	import_id text COLLATE "C" PRIMARY KEY,
	kept_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS change_sets_kept_at ON change_sets (kept_at);
CREATE TABLE IF NOT EXISTS applied_batches (
	batch_id   text COLLATE "C" PRIMARY KEY,
	result     jsonb NOT NULL,
	applied_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS import_views (
	id         text COLLATE "C" PRIMARY KEY,
	org        text COLLATE "C" NOT NULL,
	resource   text COLLATE "C" NOT NULL,
	status     text COLLATE "C" NOT NULL,
	created_at timestamptz NOT NULL,
	doc        jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS import_views_org ON import_views (org, id DESC);
CREATE INDEX IF NOT EXISTS import_views_org_resource ON import_views (org, resource, id DESC);
CREATE INDEX IF NOT EXISTS import_views_org_status ON import_views (org, status, id DESC);
CREATE INDEX IF NOT EXISTS import_views_status ON import_views (status, id DESC);
`

// Store is a store.Store on a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to url (postgres:// or postgresql://) and creates the schema.
// Several processes may Open the same database at once.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse store url: %w", err)
	}
	// pgx prepares and caches statements; after five runs PostgreSQL may
	// switch them to a generic plan made when the tables were small (a seq
	// scan for "id = ANY($n)"), and keep it while the tables grow to millions
	// of rows. Planning per execution costs microseconds per batch.
	if _, ok := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !ok {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect to %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: create schema in %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, schema); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, webhookSchema)
		return err
	})
}

// Pool exposes the pool for readiness checks and tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Close closes the pool.
func (s *Store) Close() error { s.pool.Close(); return nil }

const recordCols = `r.id, r.parent_id, r.data, r.import_id, r.created_at, r.updated_at, r.keys`

// The queries of the import hot path take arrays of a whole batch. Written
// as joins or "= ANY($n)", the planner answers a batch of thousands of
// values with a hash join over a sequential scan of the whole table once it
// holds a few hundred thousand rows (profiled: 137 ms a batch at 200k keys,
// growing with every import). A LATERAL subquery with LIMIT 1 is never
// flattened into a join, so each value is one probe of the primary key or
// the by-id index, whatever the table size. TestHotQueriesUseIndexes checks
// every one with EXPLAIN.
const (
	lookupKeysQuery = `SELECT q.name, q.value, k.id, k.fp
		FROM unnest($4::text[], $5::text[]) AS q(name, value)
		CROSS JOIN LATERAL (SELECT k.id, k.fp FROM record_keys k
			WHERE k.org = $1 AND k.mode = $2 AND k.resource = $3
				AND k.key_name = q.name AND k.key_value = q.value LIMIT 1) k`
	getDataQuery = `SELECT r.id, r.data
		FROM unnest($4::text[]) AS q(id)
		CROSS JOIN LATERAL (SELECT r.id, r.data FROM records r
			WHERE r.org = $1 AND r.mode = $2 AND r.resource = $3 AND r.id = q.id LIMIT 1) r`
	fingerprintsQuery = `SELECT r.id, r.fp
		FROM unnest($4::text[]) AS q(id)
		CROSS JOIN LATERAL (SELECT r.id, r.fp FROM records r
			WHERE r.org = $1 AND r.mode = $2 AND r.resource = $3 AND r.id = q.id LIMIT 1) r`
	getManyQuery = `SELECT ` + recordCols + `
		FROM unnest($4::text[]) AS q(id)
		CROSS JOIN LATERAL (SELECT * FROM records r
			WHERE r.org = $1 AND r.mode = $2 AND r.resource = $3 AND r.id = q.id LIMIT 1) r`
	// FOR UPDATE: a concurrent batch writing or deleting the same record
	// waits, then sees what it left (its keys; a delete is counted once
	// across batches). The ids come sorted: rows are locked in one order by
	// every batch.
	lockRecordsQuery = `SELECT r.id, r.keys, r.fp FROM unnest($4::text[]) AS q(id)
		CROSS JOIN LATERAL (SELECT r.id, r.keys, r.fp FROM records r
			WHERE r.org = $1 AND r.mode = $2 AND r.resource = $3 AND r.id = q.id
			LIMIT 1 FOR UPDATE) r`
	// The records as they are before the batch writes them, under the
	// import: the first batch of an import to touch a record keeps its
	// before-image, the last what it left.
	keepChangesQuery = `INSERT INTO record_changes (import_id, org, mode, resource, id, before, after_fp)
		SELECT $4, $1, $2, $3, q.id, r.before, q.fp
		FROM unnest($5::text[], $6::bytea[]) AS q(id, fp)
		LEFT JOIN LATERAL (SELECT jsonb_build_object('id', r.id, 'parent_id', r.parent_id, 'data', r.data,
				'keys', r.keys, 'import_id', r.import_id, 'created_at', r.created_at, 'updated_at', r.updated_at) AS before
			FROM records r WHERE r.org = $1 AND r.mode = $2 AND r.resource = $3 AND r.id = q.id LIMIT 1) r ON true
		ORDER BY q.id
		ON CONFLICT (import_id, org, mode, resource, id) DO UPDATE SET after_fp = EXCLUDED.after_fp`
	// A DELETE cannot take the LATERAL form: the rows are found (and
	// locked, so their ctid holds) by it, then deleted by ctid.
	deleteRecordsQuery = `DELETE FROM records WHERE ctid = ANY (ARRAY(
		SELECT r.ctid FROM unnest($4::text[]) AS q(id)
		CROSS JOIN LATERAL (SELECT ctid FROM records
			WHERE org = $1 AND mode = $2 AND resource = $3 AND id = q.id
			LIMIT 1 FOR UPDATE) r))`
	// The key rows a locked record held, by their primary key; "id = q.id"
	// leaves a key another record took meanwhile alone.
	dropKeysQuery = `DELETE FROM record_keys WHERE ctid = ANY (ARRAY(
		SELECT k.ctid FROM unnest($4::text[], $5::text[], $6::text[]) AS q(name, value, id)
		CROSS JOIN LATERAL (SELECT ctid FROM record_keys
			WHERE key_value = q.value AND key_name = q.name AND org = $1 AND mode = $2 AND resource = $3
				AND id = q.id
			FOR UPDATE) k))`
)

func scanRecord(row pgx.Row) (store.Record, error) {
	var (
		r    store.Record
		data []byte
		keys map[string]string
	)
	if err := row.Scan(&r.ID, &r.ParentID, &data, &r.ImportID, &r.CreatedAt, &r.UpdatedAt, &keys); err != nil {
		return r, err
	}
	r.Data = json.RawMessage(data)
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	if len(keys) > 0 {
		r.Keys = keys
	}
	return r, nil
}

func scopeName(sc store.Scope) string { return sc.Org + "/" + sc.Mode + "/" + sc.Resource }

// LookupKeys finds the records holding refs with one query over unnest.
func (s *Store) LookupKeys(ctx context.Context, scope store.Scope, refs []store.KeyRef) (map[string]store.Holder, error) {
	out := make(map[string]store.Holder, len(refs))
	if len(refs) == 0 {
		return out, nil
	}
	// Probed in the index's order (inIndexOrder).
	sorted := slices.Clone(refs)
	slices.SortFunc(sorted, func(a, b store.KeyRef) int { return indexOrder(a.Value, a.Name, b.Value, b.Name) })
	names := make([]string, len(sorted))
	values := make([]string, len(sorted))
	for i, r := range sorted {
		names[i], values[i] = r.Name, r.Value
	}
	rows, err := s.pool.Query(ctx, lookupKeysQuery, scope.Org, scope.Mode, scope.Resource, names, values)
	if err != nil {
		return nil, fmt.Errorf("postgres: lookup %d keys in %s: %w", len(refs), scopeName(scope), err)
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

// GetMany returns the records with ids in one query.
func (s *Store) GetMany(ctx context.Context, scope store.Scope, ids []string) (map[string]store.Record, error) {
	out := make(map[string]store.Record, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, getManyQuery, scope.Org, scope.Mode, scope.Resource, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: get %d records in %s: %w", len(ids), scopeName(scope), err)
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

// GetData returns the data of the records with ids in one query.
func (s *Store) GetData(ctx context.Context, scope store.Scope, ids []string) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, getDataQuery, scope.Org, scope.Mode, scope.Resource, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: get data of %d records in %s: %w", len(ids), scopeName(scope), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			return nil, err
		}
		out[id] = json.RawMessage(data)
	}
	return out, rows.Err()
}

// Fingerprints returns the fingerprints of the records with ids in one query.
func (s *Store) Fingerprints(ctx context.Context, scope store.Scope, ids []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, fingerprintsQuery, scope.Org, scope.Mode, scope.Resource, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: get fingerprints of %d records in %s: %w", len(ids), scopeName(scope), err)
	}
	var (
		id string
		fp []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &fp}, func() error {
		out[id] = fp
		return nil
	})
	return out, err
}

// Get returns one record or an error wrapping store.ErrNotFound.
func (s *Store) Get(ctx context.Context, scope store.Scope, id string) (store.Record, error) {
	r, err := scanRecord(s.pool.QueryRow(ctx, `SELECT `+recordCols+` FROM records r
		WHERE r.org = $1 AND r.mode = $2 AND r.resource = $3 AND r.id = $4`,
		scope.Org, scope.Mode, scope.Resource, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("record %s in %s: %w", id, scopeName(scope), store.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("postgres: get record %s in %s: %w", id, scopeName(scope), err)
	}
	return r, nil
}

// List pages through records by id (limit default 100, max 1000).
func (s *Store) List(ctx context.Context, scope store.Scope, after string, limit int) ([]store.Record, error) {
	// The text columns are COLLATE "C" (see schema): the order is bytewise,
	// like SQLite and Go, whatever the database's locale, and the primary key
	// index serves this range scan.
	rows, err := s.pool.Query(ctx, `SELECT `+recordCols+` FROM records r
		WHERE r.org = $1 AND r.mode = $2 AND r.resource = $3 AND r.id > $4
		ORDER BY r.id LIMIT $5`,
		scope.Org, scope.Mode, scope.Resource, after, batchplan.ClampLimit(limit, 100, 1000))
	if err != nil {
		return nil, fmt.Errorf("postgres: list %s: %w", scopeName(scope), err)
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
	rows, err := s.pool.Query(ctx, `SELECT id FROM records
		WHERE org = $1 AND mode = $2 AND resource = $3 AND id > $4 AND ($5::text = '' OR parent_id = $5::text)
		ORDER BY id LIMIT $6`,
		scope.Org, scope.Mode, scope.Resource, after, parentID, batchplan.ClampLimit(limit, 1000, 10000))
	if err != nil {
		return nil, fmt.Errorf("postgres: list ids of %s: %w", scopeName(scope), err)
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
	rows, err := s.pool.Query(ctx, `SELECT id FROM record_changes
		WHERE import_id = $1 AND org = $2 AND mode = $3 AND resource = $4 AND id > $5
		ORDER BY id LIMIT $6`,
		importID, scope.Org, scope.Mode, scope.Resource, after, batchplan.ClampLimit(limit, 1000, 10000))
	if err != nil {
		return nil, fmt.Errorf("postgres: records changed by %s in %s: %w", importID, scopeName(scope), err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Changes reads what importID did to these records.
func (s *Store) Changes(ctx context.Context, scope store.Scope, importID string, ids []string) (map[string]store.Change, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.id, c.before, c.after_fp
		FROM unnest($5::text[]) AS q(id)
		CROSS JOIN LATERAL (SELECT c.id, c.before, c.after_fp FROM record_changes c
			WHERE c.import_id = $1 AND c.org = $2 AND c.mode = $3 AND c.resource = $4 AND c.id = q.id LIMIT 1) c`,
		importID, scope.Org, scope.Mode, scope.Resource, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: changes of %s in %s: %w", importID, scopeName(scope), err)
	}
	out := make(map[string]store.Change, len(ids))
	var (
		id     string
		before []byte
		after  []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &before, &after}, func() error {
		ch, err := batchplan.DecodeChange(id, before, after)
		out[id] = ch
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: changes of %s in %s: %w", importID, scopeName(scope), err)
	}
	return out, nil
}

func keepChangeSet(ctx context.Context, tx pgx.Tx, importID string, now time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO change_sets (import_id, kept_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`, importID, now)
	return err
}

// PruneChanges forgets the changes of the oldest import kept before before,
// limit rows a transaction.
func (s *Store) PruneChanges(ctx context.Context, before time.Time, limit int) (int64, bool, error) {
	limit = batchplan.ClampLimit(limit, 10000, 100000)
	var (
		pruned int64
		done   bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var importID string
		err := tx.QueryRow(ctx, `SELECT import_id FROM change_sets WHERE kept_at < $1 ORDER BY kept_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
			before).Scan(&importID)
		if errors.Is(err, pgx.ErrNoRows) {
			done = true
			return nil
		} else if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM record_changes WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM record_changes WHERE import_id = $1 LIMIT $2))`, importID, limit)
		if err != nil {
			return err
		}
		if pruned = tag.RowsAffected(); pruned < int64(limit) {
			// The last of them: the set goes, and the next call moves on.
			_, err = tx.Exec(ctx, `DELETE FROM change_sets WHERE import_id = $1`, importID)
		}
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("postgres: prune changes kept before %s: %w", before.Format(time.RFC3339), err)
	}
	return pruned, done, nil
}

// retryable reports errors after which the whole transaction may simply be
// run again: deadlocks between batches that touch the same records in
// different orders, and serialization failures.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// Apply writes the batch and marks it applied in one transaction. The
// applied_batches row is inserted first: a concurrent Apply of the same batch
// waits on its unique index until this one commits, then sees it and replays.
func (s *Store) Apply(ctx context.Context, scope store.Scope, batchID string, ops []store.Op) (store.BatchResult, error) {
	if batchID == "" {
		return store.BatchResult{}, errors.New("postgres: apply: empty batch id")
	}
	var (
		res store.BatchResult
		err error
	)
	for attempt := 0; ; attempt++ {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var e error
			res, e = s.apply(ctx, tx, scope, batchID, ops)
			return e
		})
		if err == nil || !retryable(err) || attempt >= 4 || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "22P02" { // invalid_text_representation: a jsonb refused
		if named := batchplan.CheckData(batchID, ops); named != nil {
			return store.BatchResult{}, named
		}
	}
	if err != nil {
		return store.BatchResult{}, err
	}
	return res, nil
}

// Applied reads the stored result of a batch.
func (s *Store) Applied(ctx context.Context, batchID string) (store.BatchResult, bool, error) {
	var res store.BatchResult
	err := s.pool.QueryRow(ctx, `SELECT result FROM applied_batches WHERE batch_id = $1`, batchID).Scan(&res)
	if errors.Is(err, pgx.ErrNoRows) {
		return res, false, nil
	}
	if err != nil {
		return res, false, fmt.Errorf("postgres: batch %s: %w", batchID, err)
	}
	return res, true, nil
}

func (s *Store) apply(ctx context.Context, tx pgx.Tx, scope store.Scope, batchID string, ops []store.Op) (store.BatchResult, error) {
	wrap := func(what string, err error) error {
		return fmt.Errorf("postgres: batch %s in %s: %s: %w", batchID, scopeName(scope), what, err)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO applied_batches (batch_id, result, applied_at)
		VALUES ($1, '{}', now()) ON CONFLICT (batch_id) DO NOTHING`, batchID)
	if err != nil {
		return store.BatchResult{}, wrap("claim batch", err)
	}
	if tag.RowsAffected() == 0 {
		var res store.BatchResult
		if err := tx.QueryRow(ctx, `SELECT result FROM applied_batches WHERE batch_id = $1`, batchID).Scan(&res); err != nil {
			return store.BatchResult{}, wrap("read stored result", err)
		}
		res.Replayed = true
		return res, nil
	}
	// Validated after the replay check: a redelivered batch returns its
	// first result even if its ops would no longer pass.
	plan, err := batchplan.Build(batchID, ops)
	if err != nil {
		return store.BatchResult{}, err
	}
	sc := []any{scope.Org, scope.Mode, scope.Resource}
	now := batchplan.Now()
	if plan.AllCreates {
		created, err := s.insertCreates(ctx, tx, scope, plan, now)
		if err != nil {
			return store.BatchResult{}, wrap("insert new records", err)
		}
		if created {
			return s.storeResult(ctx, tx, batchID, plan.Count(nil), now, wrap)
		}
	}

	// A record a revert expects absent has no row to lock: two reverts
	// recreating it would both find it absent. Its id's advisory lock,
	// taken in id order before any row lock, makes the second wait and
	// find it.
	if absent := plan.ExpectedAbsent(); len(absent) > 0 {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2 || '/' || $3 || '/' || q.id, 0))
			FROM unnest($4::text[]) AS q(id) ORDER BY q.id`, append(sc, absent)...); err != nil {
			return store.BatchResult{}, wrap("lock absent records", err)
		}
	}
	// Lock every record the batch touches and read the keys it holds now.
	existed := map[string]bool{}
	stored := map[string][]byte{} // fingerprints, for Expect
	var held []heldKey
	{
		rows, err := tx.Query(ctx, lockRecordsQuery, append(sc, plan.Touched)...)
		if err != nil {
			return store.BatchResult{}, wrap("lock records", err)
		}
		var (
			id   string
			keys map[string]string
			fp   []byte
		)
		_, err = pgx.ForEachRow(rows, []any{&id, &keys, &fp}, func() error {
			existed[id] = true
			if plan.Expects {
				stored[id] = slices.Clone(fp)
			}
			for name, value := range keys {
				held = append(held, heldKey{name, value, id})
			}
			clear(keys)
			return nil
		})
		if err != nil {
			return store.BatchResult{}, wrap("lock records", err)
		}
	}
	if plan.Expects {
		if plan, err = plan.Without(batchID, plan.Unmet(stored)); err != nil {
			return store.BatchResult{}, err
		}
	}
	// An op that expects a state (a revert putting a record back) whose
	// record's key another record holds now is left out too: its writes
	// are rolled back to a savepoint and the rest written again, so the
	// stored result names it and a replay reports the same.
	for {
		if !plan.Expects {
			if err := s.write(ctx, tx, scope, batchID, plan, existed, held, now); err != nil {
				return store.BatchResult{}, err
			}
			break
		}
		sp, err := tx.Begin(ctx)
		if err != nil {
			return store.BatchResult{}, wrap("savepoint", err)
		}
		err = s.write(ctx, sp, scope, batchID, plan, existed, held, now)
		var kc *store.KeyConflictError
		if errors.As(err, &kc) && plan.Expecting(kc.Wanted) {
			if err := sp.Rollback(ctx); err != nil {
				return store.BatchResult{}, wrap("roll back to savepoint", err)
			}
			if plan, err = plan.WithoutKeyConflict(batchID, kc); err != nil {
				return store.BatchResult{}, err
			}
			continue
		}
		if err != nil {
			_ = sp.Rollback(ctx)
			return store.BatchResult{}, err
		}
		if err := sp.Commit(ctx); err != nil {
			return store.BatchResult{}, wrap("release savepoint", err)
		}
		break
	}
	return s.storeResult(ctx, tx, batchID, plan.Count(existed), now, wrap)
}

// heldKey is a key row a locked record holds.
type heldKey struct{ name, value, id string }

// write applies plan (its records locked, held their key rows): the
// changes kept for its import, deletes, upserts, key rows.
func (s *Store) write(ctx context.Context, tx pgx.Tx, scope store.Scope, batchID string, plan *batchplan.Plan,
	existed map[string]bool, held []heldKey, now time.Time) error {
	sc := []any{scope.Org, scope.Mode, scope.Resource}
	wrap := func(what string, err error) error {
		return fmt.Errorf("postgres: batch %s in %s: %s: %w", batchID, scopeName(scope), what, err)
	}
	var oldNames, oldValues, oldIDs []string
	for _, k := range held {
		if _, touched := slices.BinarySearch(plan.Touched, k.id); touched {
			oldNames, oldValues, oldIDs = append(oldNames, k.name), append(oldValues, k.value), append(oldIDs, k.id)
		}
	}
	if plan.ImportID != "" && len(plan.Touched) > 0 {
		ids, after := plan.Changes(existed)
		if _, err := tx.Exec(ctx, keepChangesQuery, append(sc, plan.ImportID, ids, after)...); err != nil {
			return wrap("keep changes", err)
		}
		if err := keepChangeSet(ctx, tx, plan.ImportID, now); err != nil {
			return wrap("keep changes", err)
		}
	}
	if len(plan.Deletes) > 0 {
		if _, err := tx.Exec(ctx, deleteRecordsQuery, append(sc, plan.Deletes)...); err != nil {
			return wrap("delete records", err)
		}
	}
	if len(plan.Upserts) > 0 {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE inlet_tmp_records
			(id text COLLATE "C", parent_id text, data jsonb, import_id text, keys jsonb, fp bytea) ON COMMIT DROP`); err != nil {
			return wrap("create temp table", err)
		}
		c := newCopyRows(len(recordColumns), nil)
		for i := range plan.Upserts {
			c.row()
			c.record(plan, i)
		}
		if err := c.into(ctx, tx, "inlet_tmp_records", recordColumns...); err != nil {
			return wrap("copy records", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO records
			(org, mode, resource, id, parent_id, data, import_id, created_at, updated_at, keys, fp)
			SELECT $1, $2, $3, t.id, t.parent_id, t.data, t.import_id, $4, $4, t.keys, t.fp
			FROM inlet_tmp_records t ORDER BY t.id
			ON CONFLICT (org, mode, resource, id) DO UPDATE SET
				parent_id = EXCLUDED.parent_id, data = EXCLUDED.data, keys = EXCLUDED.keys, fp = EXCLUDED.fp,
				import_id = EXCLUDED.import_id, updated_at = EXCLUDED.updated_at`,
			append(sc, now)...); err != nil {
			return wrap("upsert records", err)
		}
		if len(plan.Restores) > 0 {
			ids, created := make([]string, len(plan.Restores)), make([]time.Time, len(plan.Restores))
			for i, u := range plan.Restores {
				ids[i], created[i] = plan.Upserts[u].ID, plan.Upserts[u].CreatedAt
			}
			if _, err := tx.Exec(ctx, `UPDATE records r SET created_at = q.created_at
				FROM unnest($4::text[], $5::timestamptz[]) AS q(id, created_at)
				WHERE r.org = $1 AND r.mode = $2 AND r.resource = $3 AND r.id = q.id`,
				append(sc, ids, created)...); err != nil {
				return wrap("restore creation times", err)
			}
		}
	}
	// The keys read under the row locks are all the key rows these records
	// have: a batch that changed them committed before our lock was granted.
	if len(oldIDs) > 0 {
		if _, err := tx.Exec(ctx, dropKeysQuery, append(sc, oldNames, oldValues, oldIDs)...); err != nil {
			return wrap("drop old keys", err)
		}
	}
	if len(plan.Keys) > 0 {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE inlet_tmp_keys
			(key_name text COLLATE "C", key_value text COLLATE "C", id text COLLATE "C", fp bytea) ON COMMIT DROP`); err != nil {
			return wrap("create temp table", err)
		}
		c := newCopyRows(len(keyColumns), nil)
		for _, k := range plan.Keys {
			c.row()
			c.key(k)
		}
		if err := c.into(ctx, tx, "inlet_tmp_keys", keyColumns...); err != nil {
			return wrap("copy keys", err)
		}
		// DO NOTHING rather than failing on the primary key: a key held by a
		// concurrent, not yet committed batch makes this wait for it, and the
		// rows it skips are exactly the conflicts, which we then name.
		tag, err := tx.Exec(ctx, `INSERT INTO record_keys (org, mode, resource, key_name, key_value, id, fp)
			SELECT $1, $2, $3, t.key_name, t.key_value, t.id, t.fp FROM inlet_tmp_keys t
			ORDER BY t.key_value, t.key_name
			ON CONFLICT DO NOTHING`, sc...)
		if err != nil {
			return wrap("insert keys", err)
		}
		if tag.RowsAffected() != int64(len(plan.Keys)) {
			var name, value, want, held string
			err := tx.QueryRow(ctx, `SELECT t.key_name, t.key_value, t.id, k.id
				FROM inlet_tmp_keys t JOIN record_keys k
				  ON k.org = $1 AND k.mode = $2 AND k.resource = $3
				 AND k.key_name = t.key_name AND k.key_value = t.key_value
				WHERE k.id <> t.id ORDER BY t.key_name, t.key_value LIMIT 1`, sc...).Scan(&name, &value, &want, &held)
			switch {
			case err == nil:
				return batchplan.ConflictError(batchID, name, value, held, want)
			case !errors.Is(err, pgx.ErrNoRows):
				return wrap(fmt.Sprintf("find key conflict (%d of %d keys inserted)", tag.RowsAffected(), len(plan.Keys)), err)
			}
			// Every skipped key is already held by the record that wants it:
			// the end state is right, nothing to report.
		}
	}
	return nil
}

func (s *Store) storeResult(ctx context.Context, tx pgx.Tx, batchID string, res store.BatchResult, now time.Time, wrap func(string, error) error) (store.BatchResult, error) {
	if _, err := tx.Exec(ctx, `UPDATE applied_batches SET result = $2, applied_at = $3 WHERE batch_id = $1`,
		batchID, res, now); err != nil {
		return store.BatchResult{}, wrap("store result", err)
	}
	return res, nil
}

// inIndexOrder sorts key rows as record_keys_pkey does (value, then name):
// a batch's probes and inserts then walk the index once, neighbours sharing
// pages, instead of touching a random page each (measured at 1M records,
// 10k lookups: 150–290 ms in file order, 80–110 ms sorted).
func inIndexOrder(keys []batchplan.Key) []batchplan.Key {
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b batchplan.Key) int { return indexOrder(a.Value, a.Name, b.Value, b.Name) })
	return sorted
}

func indexOrder(aValue, aName, bValue, bName string) int {
	return cmp.Or(strings.Compare(aValue, bValue), strings.Compare(aName, bName))
}

// insertCreates loads a batch of creates with COPY straight into records and
// record_keys: no temp tables, no conflict handling, no key rows to drop. It
// runs under a savepoint; if a record or key exists after all (a concurrent
// import, a rerun after a crash), the unique violation rolls the savepoint
// back and it reports false, and the caller upserts the batch instead.
func (s *Store) insertCreates(ctx context.Context, tx pgx.Tx, scope store.Scope, plan *batchplan.Plan, now time.Time) (bool, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, err
	}
	columns := append([]string{"org", "mode", "resource", "created_at", "updated_at"}, recordColumns...)
	c := newCopyRows(len(columns), nil)
	for i := range plan.Upserts {
		c.row()
		c.scope(scope)
		c.timestamptz(now)
		c.timestamptz(now)
		c.record(plan, i)
	}
	err = c.into(ctx, sp, "records", columns...)
	if err == nil && len(plan.Keys) > 0 {
		columns = append([]string{"org", "mode", "resource"}, keyColumns...)
		c = newCopyRows(len(columns), c.buf)
		for _, k := range inIndexOrder(plan.Keys) {
			c.row()
			c.scope(scope)
			c.key(k)
		}
		err = c.into(ctx, sp, "record_keys", columns...)
	}
	if err == nil && plan.ImportID != "" {
		// New records: nothing before, the fingerprint they were written with after.
		columns = []string{"import_id", "org", "mode", "resource", "id", "after_fp"}
		c = newCopyRows(len(columns), c.buf)
		for i, r := range plan.Upserts {
			c.row()
			c.text(plan.ImportID)
			c.scope(scope)
			c.text(r.ID)
			c.bytea(plan.Fingerprints[i])
		}
		err = c.into(ctx, sp, "record_changes", columns...)
		if err == nil {
			err = keepChangeSet(ctx, sp, plan.ImportID, now)
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return false, sp.Rollback(ctx)
	}
	if err != nil {
		_ = sp.Rollback(ctx)
		return false, err
	}
	return true, sp.Commit(ctx)
}

const viewCols = `id, org, resource, status, created_at, doc`

func scanView(row pgx.Row) (store.View, error) {
	var v store.View
	var doc []byte
	if err := row.Scan(&v.ID, &v.Org, &v.Resource, &v.Status, &v.CreatedAt, &doc); err != nil {
		return v, err
	}
	v.Doc = json.RawMessage(doc)
	v.CreatedAt = v.CreatedAt.UTC()
	return v, nil
}

// GetView returns one view or an error wrapping store.ErrNotFound.
func (s *Store) GetView(ctx context.Context, id string) (store.View, error) {
	v, err := scanView(s.pool.QueryRow(ctx, `SELECT `+viewCols+` FROM import_views WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("view %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("postgres: get view %s: %w", id, err)
	}
	return v, nil
}

// ListViews returns views newest first (limit default 50, max 1000).
// CountViews counts views by status.
func (s *Store) CountViews(ctx context.Context) (map[string]int64, error) {
	const q = `SELECT status, count(*) FROM import_views GROUP BY status`
	rows, err := s.pool.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("postgres: count views: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("postgres: count views: %w", err)
		}
		out[status] = n
	}
	return out, rows.Err()
}

func (s *Store) ListViews(ctx context.Context, f store.ViewFilter) ([]store.View, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Org != "" {
		add("org = ?", f.Org)
	}
	if f.Resource != "" {
		add("resource = ?", f.Resource)
	}
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.Before != "" {
		add("id < ?", f.Before)
	}
	q := `SELECT ` + viewCols + ` FROM import_views`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, batchplan.ClampLimit(f.Limit, 50, 1000))
	q += " ORDER BY id DESC LIMIT $" + strconv.Itoa(len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list views: %w", err)
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

// UpdateView is a read-modify-write in one transaction. SELECT … FOR UPDATE
// serializes updates of an existing view; the transaction-scoped advisory
// lock on the id also serializes the first writes of a view that does not
// exist yet (there is no row to lock), so two projector replicas never both
// see nil and overwrite each other.
func (s *Store) UpdateView(ctx context.Context, id string, fn func(current *store.View) (*store.View, error)) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('inlet.view:' || $1, 0))`, id); err != nil {
			return fmt.Errorf("postgres: lock view %s: %w", id, err)
		}
		var cur *store.View
		v, err := scanView(tx.QueryRow(ctx, `SELECT `+viewCols+` FROM import_views WHERE id = $1 FOR UPDATE`, id))
		switch {
		case err == nil:
			cur = &v
		case errors.Is(err, pgx.ErrNoRows):
		default:
			return fmt.Errorf("postgres: read view %s: %w", id, err)
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
		if _, err := tx.Exec(ctx, `INSERT INTO import_views (id, org, resource, status, created_at, doc)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (id) DO UPDATE SET org = EXCLUDED.org, resource = EXCLUDED.resource,
				status = EXCLUDED.status, created_at = EXCLUDED.created_at, doc = EXCLUDED.doc`,
			id, next.Org, next.Resource, next.Status, created.UTC(), string(doc)); err != nil {
			return fmt.Errorf("postgres: store view %s: %w", id, err)
		}
		return nil
	})
}

// ResetViews deletes every view.
func (s *Store) ResetViews(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `TRUNCATE import_views`); err != nil {
		return fmt.Errorf("postgres: reset views: %w", err)
	}
	return nil
}
