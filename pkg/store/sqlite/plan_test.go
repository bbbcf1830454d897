package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/pkg/store"
)

// Every lookup the import phases make (transforming: LookupKeys; parsing:
// GetMany; validation: LookupKeys, GetMany; processing: the existing ids and
// deletes of Apply) must reach its rows through an index: a SCAN of records
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
		{"Apply existing ids", existingIDsQuery, []any{sc.Org, sc.Mode, sc.Resource, ids}},
		{"Apply drop keys", dropKeysQuery, []any{sc.Org, sc.Mode, sc.Resource, ids}},
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
