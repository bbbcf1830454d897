package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/store"
)

// Every lookup the import phases make (transforming: LookupKeys; parsing:
// GetMany; validation: LookupKeys, GetMany; processing: the touched records,
// key drops and deletes of Apply) must reach its rows through an index: a SCAN of records
// or record_keys costs a pass over every stored record per batch.
func TestHotQueriesUseIndexes(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "plan.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	sc := store.Scope{Org: "acme", Mode: "live", Resource: "contacts"}
	// No ANALYZE: the store never runs it, so the planner works without statistics.
	for b := 0; b < 5; b++ {
		var ops []store.Op
		for i := 0; i < 400; i++ {
			n := b*400 + i
			ops = append(ops, store.Op{Kind: store.OpUpsert, Record: store.Record{
				ID: fmt.Sprintf("rec_%05d", n), Data: []byte(`{"a":1}`),
				Keys: map[string]string{"email": fmt.Sprintf("u%d@x.test", n), "external_id": fmt.Sprintf("E%d", n)}}})
		}
		if _, err := s.Apply(ctx, sc, fmt.Sprintf("b%d", b), ops); err != nil {
			t.Fatal(err)
		}
	}
	pairs := jsonArray([][2]string{{"email", "u1@x.test"}, {"external_id", "E2"}})
	ids := jsonArray([]string{"rec_00001", "rec_00002"})
	for _, q := range []struct {
		name, sql string
		args      []any
	}{
		{"LookupKeys", lookupKeysQuery, []any{pairs, sc.Org, sc.Mode, sc.Resource}},
		{"GetMany", getManyQuery, []any{ids, sc.Org, sc.Mode, sc.Resource}},
		{"GetData", getDataQuery, []any{ids, sc.Org, sc.Mode, sc.Resource}},
		{"Fingerprints", fingerprintsQuery, []any{ids, sc.Org, sc.Mode, sc.Resource}},
		{"Apply touched records", touchedQuery, []any{sc.Org, sc.Mode, sc.Resource, ids}},
		{"Apply drop key", dropKeyQuery, []any{sc.Org, sc.Mode, sc.Resource, "email", "u1@x.test", "rec_00001"}},
		{"Apply delete records", deleteRecordsQuery, []any{sc.Org, sc.Mode, sc.Resource, ids}},
	} {
		t.Run(q.name, func(t *testing.T) {
			rows, err := s.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.sql, q.args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, notused int
				var detail string
				if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			if len(plan) == 0 {
				t.Fatal("no plan")
			}
			for _, d := range plan {
				if !strings.HasPrefix(d, "SCAN ") && !strings.HasPrefix(d, "SEARCH ") {
					continue
				}
				table := strings.Fields(d)[1]
				if table == "j" || table == "json_each" {
					continue // the looked-up values: the outer loop by design
				}
				// A stored table is reached one row per looked-up value: through
				// the whole primary key or the by-id index, never a range of the
				// scope (a scan of every record of the resource).
				if !strings.Contains(d, "id=?)") && !strings.Contains(d, "key_value=?)") {
					t.Errorf("%s is not searched by a whole key: %q in plan %q", table, d, plan)
				}
			}
			t.Logf("%s", strings.Join(plan, " | "))
		})
	}
}

// A database made by an earlier version (keys only in record_keys, with a
// foreign key to records and an index by id) is upgraded by Open: keys
// copied into the rows, record_keys rebuilt without either, and a record
// replaced afterwards loses its old key rows.
func TestOpenUpgradesOldKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`
		CREATE TABLE records (org TEXT NOT NULL, mode TEXT NOT NULL, resource TEXT NOT NULL, id TEXT NOT NULL,
			parent_id TEXT NOT NULL DEFAULT '', data TEXT NOT NULL, import_id TEXT NOT NULL DEFAULT '',
			created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (org, mode, resource, id)) WITHOUT ROWID;
		CREATE TABLE record_keys (org TEXT NOT NULL, mode TEXT NOT NULL, resource TEXT NOT NULL,
			key_name TEXT NOT NULL, key_value TEXT NOT NULL, id TEXT NOT NULL,
			PRIMARY KEY (org, mode, resource, key_name, key_value),
			FOREIGN KEY (org, mode, resource, id) REFERENCES records (org, mode, resource, id) ON DELETE CASCADE) WITHOUT ROWID;
		CREATE INDEX record_keys_by_id ON record_keys (org, mode, resource, id);
		INSERT INTO records VALUES ('o', 'live', 'r', 'r1', '', '{"email":"a@x.io"}', '', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');
		INSERT INTO records VALUES ('o', 'live', 'r', 'r2', '', '{}', '', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');
		INSERT INTO record_keys VALUES ('o', 'live', 'r', 'email', 'a@x.io', 'r1'), ('o', 'live', 'r', 'external_id', 'E1', 'r1');`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var defs []string
	rows, err := s.db.Query(`SELECT coalesce(sql, name) FROM sqlite_master WHERE tbl_name = 'record_keys' ORDER BY name`)
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
	rows.Close()
	if len(defs) != 1 || strings.Contains(defs[0], "FOREIGN KEY") {
		t.Fatalf("record_keys after Open: %q", defs)
	}
	ctx := context.Background()
	sc := store.Scope{Org: "o", Mode: "live", Resource: "r"}
	rec, err := s.Get(ctx, sc, "r1")
	if err != nil || rec.Keys["email"] != "a@x.io" || rec.Keys["external_id"] != "E1" || len(rec.Keys) != 2 {
		t.Fatalf("record after the upgrade: %+v %v", rec, err)
	}
	if rec, err := s.Get(ctx, sc, "r2"); err != nil || len(rec.Keys) != 0 {
		t.Fatalf("a record without keys after the upgrade: %+v %v", rec, err)
	}
	// A record written before fingerprints has none until it is written again.
	if fps, err := s.Fingerprints(ctx, sc, []string{"r1", "r2"}); err != nil || len(fps) != 2 || fps["r1"] != nil {
		t.Fatalf("fingerprints of old records: %x %v", fps, err)
	}
	if _, err := s.Apply(ctx, sc, "after-upgrade", []store.Op{{Kind: store.OpUpsert, Record: store.Record{
		ID: "r1", Data: []byte(`{"email":"b@x.io"}`), Keys: map[string]string{"email": "b@x.io"}}}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LookupKeys(ctx, sc, []store.KeyRef{{Name: "email", Value: "a@x.io"}, {Name: "external_id", Value: "E1"}, {Name: "email", Value: "b@x.io"}})
	if err != nil || len(got) != 1 || got["email\x00b@x.io"].ID != "r1" || !bytes.Equal(got["email\x00b@x.io"].Fingerprint, store.Fingerprint([]byte(`{"email":"b@x.io"}`))) {
		t.Fatalf("keys after replacing the record: %v %v", got, err)
	}
	if fps, err := s.Fingerprints(ctx, sc, []string{"r1"}); err != nil || !bytes.Equal(fps["r1"], store.Fingerprint([]byte(`{"email":"b@x.io"}`))) {
		t.Fatalf("fingerprint of a record written after the upgrade: %x %v", fps, err)
	}
	// Opening again changes nothing.
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}
