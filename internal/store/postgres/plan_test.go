package postgres

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/store"
	"github.com/inlet-dev/inlet/internal/testenv"
)

// Every lookup the import phases make (transforming: LookupKeys; parsing:
// GetMany; validation: LookupKeys, GetMany; processing: the record locks,
// deletes and key drops of Apply) must probe an index once per value of the
// batch, whether the statistics are fresh or still describe the table before
// a bulk load (autovacuum analyzes it later). Either way a plan with a
// sequential scan costs a pass over every stored record per batch, or per
// value.
func TestHotQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, testenv.StartPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.pool.Exec(ctx, `ALTER TABLE records SET (autovacuum_enabled = false);
		ALTER TABLE record_keys SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	sc := store.Scope{Org: "acme", Mode: "live", Resource: "contacts"}
	const batch = 2000
	seed := func(sc store.Scope, from, to int) {
		for b := from; b < to; b += batch {
			var ops []store.Op
			for n := b; n < b+batch && n < to; n++ {
				ops = append(ops, store.Op{Kind: store.OpCreate, Record: store.Record{ID: fmt.Sprintf("rec_%06d", n), Data: []byte(`{"a":1}`),
					Keys: map[string]string{"email": fmt.Sprintf("u%d@x.test", n), "external_id": fmt.Sprintf("E%d", n)}}})
			}
			if _, err := s.Apply(ctx, sc, fmt.Sprintf("seed-%d", b), ops); err != nil {
				t.Fatal(err)
			}
		}
	}
	var names, values, keyIDs, ids []string
	for i := 0; i < batch; i++ {
		names = append(names, "email", "external_id")
		values = append(values, fmt.Sprintf("u%d@x.test", i*7), fmt.Sprintf("E%d", i*7))
		keyIDs = append(keyIDs, fmt.Sprintf("rec_%06d", i*7), fmt.Sprintf("rec_%06d", i*7))
		ids = append(ids, fmt.Sprintf("rec_%06d", i*11))
	}
	args := []any{sc.Org, sc.Mode, sc.Resource}
	queries := []struct {
		name, sql string
		args      []any
	}{
		{"LookupKeys", lookupKeysQuery, append(args, names, values)},
		{"GetMany", getManyQuery, append(args, ids)},
		{"GetData", getDataQuery, append(args, ids)},
		{"Fingerprints", fingerprintsQuery, append(args, ids)},
		{"Apply lock records", lockRecordsQuery, append(args, ids)},
		{"Apply delete records", deleteRecordsQuery, append(args, ids)},
		{"Apply drop keys", dropKeysQuery, append(args, names, values, keyIDs)},
	}
	check := func(t *testing.T) {
		for _, q := range queries {
			t.Run(q.name, func(t *testing.T) {
				tx, err := s.pool.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback(ctx) // EXPLAIN ANALYZE of a DELETE deletes
				rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF) "+q.sql, q.args...)
				if err != nil {
					t.Fatal(err)
				}
				var plan []string
				for rows.Next() {
					var line string
					if err := rows.Scan(&line); err != nil {
						t.Fatal(err)
					}
					plan = append(plan, line)
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				text := strings.Join(plan, "\n")
				for _, table := range []string{"records", "record_keys"} {
					if strings.Contains(text, "Seq Scan on "+table) {
						t.Errorf("sequential scan of %s:\n%.3000s", table, text)
					}
				}
				if !strings.Contains(text, "Index Cond") {
					t.Errorf("no index in the plan:\n%.3000s", text)
				}
				// An index searched by the scope alone is a scan of every record
				// of the resource: each search must name the record or the key.
				for _, line := range plan {
					if strings.Contains(line, "Index Cond:") && !strings.Contains(line, "(id = ") && !strings.Contains(line, "(key_value = ") {
						t.Errorf("index searched by less than a whole key: %q in\n%.3000s", line, text)
					}
				}
			})
		}
	}
	// As after an import of companies: analyzed while contacts had no record.
	seed(store.Scope{Org: sc.Org, Mode: sc.Mode, Resource: "companies"}, 0, 30)
	if _, err := s.pool.Exec(ctx, `ANALYZE records; ANALYZE record_keys`); err != nil {
		t.Fatal(err)
	}
	seed(sc, 0, 30_000)
	t.Run("stale statistics", check)
	if _, err := s.pool.Exec(ctx, `ANALYZE records; ANALYZE record_keys`); err != nil {
		t.Fatal(err)
	}
	t.Run("fresh statistics", check)
}

// A database made by an earlier version (record_keys indexes led by the
// scope, keys only in record_keys, found by an index by id) is rebuilt by
// Open: keys copied into the rows, one index on record_keys, and a record
// replaced afterwards loses its old key rows.
func TestOpenRebuildsOldKeyIndexes(t *testing.T) {
	ctx := context.Background()
	url := testenv.StartPostgres(t)
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `DROP TABLE record_keys;
		ALTER TABLE records DROP COLUMN keys;
		CREATE TABLE record_keys (org text COLLATE "C" NOT NULL, mode text COLLATE "C" NOT NULL,
			resource text COLLATE "C" NOT NULL, key_name text COLLATE "C" NOT NULL,
			key_value text COLLATE "C" NOT NULL, id text COLLATE "C" NOT NULL,
			PRIMARY KEY (org, mode, resource, key_name, key_value));
		CREATE INDEX record_keys_by_id ON record_keys (org, mode, resource, id);
		INSERT INTO records (org, mode, resource, id, data, created_at, updated_at)
			VALUES ('o', 'live', 'r', 'r1', '{"email":"a@x.io"}', now(), now());
		INSERT INTO record_keys VALUES ('o', 'live', 'r', 'email', 'a@x.io', 'r1'),
			('o', 'live', 'r', 'external_id', 'E1', 'r1')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var defs []string
	rows, err := s.pool.Query(ctx, `SELECT indexdef FROM pg_indexes WHERE tablename = 'record_keys' ORDER BY indexname`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		defs = append(defs, d)
	}
	if len(defs) != 1 || !strings.Contains(defs[0], "(key_value, key_name, org, mode, resource)") {
		t.Fatalf("indexes after Open: %q", defs)
	}
	sc := store.Scope{Org: "o", Mode: "live", Resource: "r"}
	rec, err := s.Get(ctx, sc, "r1")
	if err != nil || rec.Keys["email"] != "a@x.io" || rec.Keys["external_id"] != "E1" || len(rec.Keys) != 2 {
		t.Fatalf("record after the rebuild: %+v %v", rec, err)
	}
	// A key row written before fingerprints were kept has none: no hint.
	if old, err := s.LookupKeys(ctx, sc, []store.KeyRef{{Name: "email", Value: "a@x.io"}}); err != nil ||
		old["email\x00a@x.io"].ID != "r1" || old["email\x00a@x.io"].Fingerprint != nil {
		t.Fatalf("key row written before fingerprints: %+v %v", old, err)
	}
	// Replacing the record drops the key rows it held before the rebuild.
	if _, err := s.Apply(ctx, sc, "after-rebuild", []store.Op{{Kind: store.OpUpsert, Record: store.Record{
		ID: "r1", Data: []byte(`{"email":"b@x.io"}`), Keys: map[string]string{"email": "b@x.io"}}}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LookupKeys(ctx, sc, []store.KeyRef{{Name: "email", Value: "a@x.io"}, {Name: "external_id", Value: "E1"}, {Name: "email", Value: "b@x.io"}})
	if err != nil || len(got) != 1 || got["email\x00b@x.io"].ID != "r1" || !bytes.Equal(got["email\x00b@x.io"].Fingerprint, store.Fingerprint([]byte(`{"email":"b@x.io"}`))) {
		t.Fatalf("keys after replacing the record: %v %v", got, err)
	}
}
