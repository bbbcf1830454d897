package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/pkg/client"
)

// The chaos suite: every Inlet process separate (two replicas of the intake
// and of each per-batch phase), on NATS, MinIO and PostgreSQL that restart.
// A seeded loop SIGKILLs a random Inlet process every 1–4 s and starts it
// again 0.2–2 s later, as a supervisor would, and every ~20 s restarts one
// of NATS, MinIO or PostgreSQL at once, while a big import runs, then an
// overwrite of it (changed, unchanged, removed and new rows), and a stream
// of small imports of three other organizations runs beside them.
//
// Afterwards every import must have completed with the stats its file
// implies, the store must hold exactly the records a clean run leaves, and
// nothing may be left non-terminal.
//
// INLET_CHAOS_SEEDS (default "1,2": the short runs of make test), INLET_CHAOS_ROWS
// (default 20000; make chaos: 200000), INLET_CHAOS_BATCH (default: odd
// seeds 100-row batches, even seeds the default 10,000) and
// INLET_CHAOS_MINIMUM (how long the faults last at least, from the cluster's
// start; default 75s) choose the runs.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	seeds := strings.Split(envOr("INLET_CHAOS_SEEDS", "1,2"), ",")
	rows, err := strconv.Atoi(envOr("INLET_CHAOS_ROWS", "20000"))
	if err != nil || rows < 100 {
		t.Fatalf("INLET_CHAOS_ROWS=%q: want a number of rows ≥ 100", os.Getenv("INLET_CHAOS_ROWS"))
	}
	green := 0
	for _, s := range seeds {
		seed, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			t.Fatalf("INLET_CHAOS_SEEDS: %q is not a seed", s)
		}
		batch := 10000
		if seed%2 == 1 {
			batch = 100
		}
		if b := os.Getenv("INLET_CHAOS_BATCH"); b != "" {
			if batch, err = strconv.Atoi(b); err != nil {
				t.Fatalf("INLET_CHAOS_BATCH=%q", b)
			}
		}
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { chaosRun(t, seed, rows, batch) })
		if ok {
			green++
		}
	}
	fmt.Printf("CHAOS %d of %d runs green\n", green, len(seeds))
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// chaosMinimum is how long the faults last at least (INLET_CHAOS_MINIMUM).
var chaosMinimum = func() time.Duration {
	d, err := time.ParseDuration(envOr("INLET_CHAOS_MINIMUM", "75s"))
	if err != nil {
		panic("INLET_CHAOS_MINIMUM: " + err.Error())
	}
	return d
}()

// chaosCounts is what the chaos loop did.
type chaosCounts struct {
	kills                       atomic.Int64
	nats, minio, postgres, errs atomic.Int64
}

func (k *chaosCounts) String() string {
	return fmt.Sprintf("kills=%d restarts: nats=%d minio=%d postgres=%d", k.kills.Load(), k.nats.Load(), k.minio.Load(), k.postgres.Load())
}

// chaosImport is an import the run created and what its file implies.
type chaosImport struct {
	org, id string
	want    events.Stats
}

func chaosRun(t *testing.T, seed uint64, rows, batch int) {
	start := time.Now()
	pg := testenv.StartPostgresServer(t)
	replicas := map[string]int{}
	for _, s := range []string{events.PhasePrevalidation, events.PhaseTransforming, events.PhaseValidation, events.PhaseProcessing} {
		replicas[s] = 2
	}
	orgs := []string{"chaos-big", "chaos-a", "chaos-b", "chaos-c"}
	c := NewCluster(t, Options{BatchSize: batch, AckWait: "3s", Replicas: replicas, Postgres: pg, Orgs: orgs, Quiet: true,
		Env: map[string]map[string]string{"projector": {"INLET_STALL_AFTER": "30s"}}})
	c.HTTP.Timeout = 10 * time.Second
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))

	ctx, stopChaos := context.WithCancel(context.Background())
	var counts chaosCounts
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		chaos(ctx, c, pg, rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())), &counts)
	}()

	// Small imports of three organizations, one after another, until the big
	// ones are done: new codes every time, so each must create all its rows.
	var (
		mu    sync.Mutex
		small []chaosImport
		kept  = map[string]map[string]string{} // org → code → name
	)
	smallCtx, stopSmall := context.WithCancel(context.Background())
	smallDone := make(chan struct{})
	go func() {
		defer close(smallDone)
		srng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		for n := 0; smallCtx.Err() == nil; n++ {
			org := orgs[1+n%3]
			size := 5 + srng.IntN(46)
			var b strings.Builder
			b.WriteString("code,name,country,employees\n")
			names := map[string]string{}
			for i := range size {
				code := fmt.Sprintf("S%05d-%03d", n, i)
				names[code] = "Small " + code
				fmt.Fprintf(&b, "%s,%s,DE,%d\n", code, names[code], i)
			}
			id, err := chaosCreate(smallCtx, c, org, fmt.Sprintf("small-%d-%d", seed, n), b.String(), events.Options{})
			if err != nil {
				if smallCtx.Err() == nil {
					t.Errorf("small import %d: %v", n, err)
				}
				return
			}
			mu.Lock()
			small = append(small, chaosImport{org: org, id: id, want: events.Stats{Total: int64(size), Processed: int64(size), Created: int64(size)}})
			if kept[org] == nil {
				kept[org] = map[string]string{}
			}
			for code, name := range names {
				kept[org][code] = name
			}
			mu.Unlock()
			select {
			case <-smallCtx.Done():
			case <-time.After(time.Duration(300+srng.IntN(700)) * time.Millisecond):
			}
		}
	}()

	// The big import, then its overwrite: i%4 == 0 renamed, 1 and 3 as they
	// were, 2 left out (removed by the overwrite), and rows/10 new ones.
	first, second, want := chaosFiles(rows)
	var big []chaosImport
	for i, f := range []struct {
		body string
		opts events.Options
		want events.Stats
	}{
		{first, events.Options{}, events.Stats{Total: int64(rows), Processed: int64(rows), Created: int64(rows)}},
		{second, events.Options{Action: "overwrite"}, overwriteStats(rows)},
	} {
		id, err := chaosCreate(context.Background(), c, "chaos-big", fmt.Sprintf("big-%d-%d", seed, i), f.body, f.opts)
		if err != nil {
			t.Fatalf("big import %d: %v", i, err)
		}
		big = append(big, chaosImport{org: "chaos-big", id: id, want: f.want})
		if _, err := chaosWait(c, "chaos-big", id, 20*time.Minute); err != nil {
			t.Errorf("big import %d: %v", i, err)
			break
		}
	}
	// Faults go on for a while even when the imports were quick, so that
	// every run sees restarts of the servers under a stream of imports.
	if rest := time.Until(start.Add(chaosMinimum)); rest > 0 {
		time.Sleep(rest)
	}
	stopSmall()
	<-smallDone
	stopChaos()
	<-chaosDone
	// Everything back up, as a supervisor leaves it.
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.MinIOServer.Start(); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Procs() {
		if err := c.Revive(p.Service, p.Replica); err != nil {
			t.Fatal(err)
		}
	}

	failures := 0
	check := func(imp chaosImport) {
		got, err := chaosWait(c, imp.org, imp.id, 10*time.Minute)
		if err != nil {
			t.Errorf("%s %s: %v", imp.org, imp.id, err)
			failures++
			return
		}
		before := t.Failed()
		checkImport(t, imp.org+" "+imp.id, got, imp.want)
		if got.Stats.Overwritten != imp.want.Overwritten {
			t.Errorf("%s %s: overwritten %d, want %d", imp.org, imp.id, got.Stats.Overwritten, imp.want.Overwritten)
		}
		if !before && t.Failed() {
			failures++
		}
	}
	for _, imp := range append(big, small...) {
		check(imp)
	}
	mu.Lock()
	kept["chaos-big"] = want
	mu.Unlock()
	checkChaosStore(t, c, kept)
	line := fmt.Sprintf("CHAOS seed=%d rows=%d batch=%d imports=%d (%d small) %s in %s: ",
		seed, rows, batch, len(big)+len(small), len(small), &counts, time.Since(start).Round(time.Second))
	if t.Failed() {
		line += fmt.Sprintf("FAILED (%d imports wrong)", failures)
		c.Opts.Quiet = false
	} else {
		line += "ok"
	}
	fmt.Println(line)
}

// chaos kills and restarts until ctx ends.
func chaos(ctx context.Context, c *Cluster, pg *testenv.PostgresServer, rng *rand.Rand, counts *chaosCounts) {
	procs := c.Procs()
	nextInfra := time.Now().Add(time.Duration(18+rng.IntN(5)) * time.Second)
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	for sleep(time.Duration(1000+rng.IntN(3000)) * time.Millisecond) {
		if time.Now().After(nextInfra) {
			nextInfra = time.Now().Add(time.Duration(18+rng.IntN(5)) * time.Second)
			switch rng.IntN(3) {
			case 0:
				c.RestartNATS(nil)
				counts.nats.Add(1)
			case 1:
				c.MinIOServer.Stop()
				if err := c.MinIOServer.Start(); err != nil {
					c.T.Errorf("restart MinIO: %v", err)
				}
				counts.minio.Add(1)
			case 2:
				pg.Stop()
				if err := pg.Start(); err != nil {
					c.T.Errorf("restart PostgreSQL: %v", err)
				}
				counts.postgres.Add(1)
			}
			continue
		}
		p := procs[rng.IntN(len(procs))]
		c.Crash(p.Service, p.Replica)
		counts.kills.Add(1)
		sleep(time.Duration(200+rng.IntN(1800)) * time.Millisecond)
		if err := c.Revive(p.Service, p.Replica); err != nil {
			c.T.Errorf("restart %s/%d: %v", p.Service, p.Replica, err)
		}
	}
}

// chaosCreate creates an import, retrying through a gateway that is down or
// restarting: the Idempotency-Key makes every retry name the same import.
func chaosCreate(ctx context.Context, c *Cluster, org, key, body string, opts events.Options) (string, error) {
	opts.Resource = "companies"
	var last error
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); {
		created, err := c.Create(org, client.CreateRequest{Options: opts, IdempotencyKey: key,
			File: &client.File{Name: key + ".csv", Body: strings.NewReader(body)}})
		if err == nil {
			return created.ID, nil
		}
		if status := client.StatusCode(err); status != 0 && status < 500 && status != http.StatusTooManyRequests {
			return "", fmt.Errorf("create: %w", err)
		}
		last = err
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("create: the gateway did not take it in 5m (last: %v)", last)
}

// chaosWait polls the import until it is terminal, through a projector that
// may be down.
func chaosWait(c *Cluster, org, id string, timeout time.Duration) (events.Import, error) {
	var last events.Import
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		imp, err := c.Client(org).Get(context.Background(), id)
		if err != nil {
			continue
		}
		last = imp
		if imp.Status.Terminal() {
			return imp, nil
		}
	}
	return last, fmt.Errorf("not terminal after %s: status %q, phases %+v", timeout, last.Status, last.Phases)
}

// chaosFiles builds the big file, its overwrite, and the records (code →
// name) the two leave.
func chaosFiles(rows int) (first, second string, want map[string]string) {
	want = map[string]string{}
	var a, b strings.Builder
	a.WriteString("code,name,country,employees\n")
	b.WriteString("code,name,country,employees\n")
	for i := range rows {
		code, name := fmt.Sprintf("K%07d", i), fmt.Sprintf("Company %d", i)
		fmt.Fprintf(&a, "%s,%s,FR,%d\n", code, name, i%500)
		switch i % 4 {
		case 0:
			name += " v2"
			fallthrough
		case 1, 3:
			fmt.Fprintf(&b, "%s,%s,FR,%d\n", code, name, i%500)
			want[code] = name
		}
	}
	for i := rows; i < rows+rows/10; i++ {
		code, name := fmt.Sprintf("K%07d", i), fmt.Sprintf("New %d", i)
		fmt.Fprintf(&b, "%s,%s,FR,%d\n", code, name, i%500)
		want[code] = name
	}
	return a.String(), b.String(), want
}

func overwriteStats(rows int) events.Stats {
	var st events.Stats
	for i := range rows {
		switch i % 4 {
		case 0:
			st.Updated++
		case 1, 3:
			st.Unchanged++
		case 2:
			st.Overwritten++
		}
	}
	st.Created = int64(rows / 10)
	st.Total = st.Updated + st.Unchanged + st.Created
	st.Processed = st.Total
	return st
}

// checkChaosStore compares the store with what a clean run leaves, record by
// record, and checks that no key is held twice and no import is left
// non-terminal.
func checkChaosStore(t *testing.T, c *Cluster, want map[string]map[string]string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.StoreURL)
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	defer conn.Close(ctx)
	for org, records := range want {
		got := map[string]string{}
		rs, err := conn.Query(ctx, `SELECT data->>'code', data->>'name', count(*) OVER (PARTITION BY data->>'code')
			FROM records WHERE org = $1 AND resource = 'companies'`, org)
		if err != nil {
			t.Fatal(err)
		}
		twice := 0
		for rs.Next() {
			var code, name string
			var n int64
			if err := rs.Scan(&code, &name, &n); err != nil {
				t.Fatal(err)
			}
			if n > 1 {
				twice++
			}
			got[code] = name
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		if twice > 0 {
			t.Errorf("%s: %d records share their code with another", org, twice)
		}
		diff := 0
		for code, name := range records {
			if got[code] != name {
				if diff < 5 {
					t.Errorf("%s: record %s is %q, want %q", org, code, got[code], name)
				}
				diff++
			}
		}
		for code := range got {
			if _, ok := records[code]; !ok {
				if diff < 5 {
					t.Errorf("%s: record %s should not exist", org, code)
				}
				diff++
			}
		}
		if diff > 0 || len(got) != len(records) {
			t.Errorf("%s: %d records, want %d; %d differ", org, len(got), len(records), diff)
		}
		var keys int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM record_keys WHERE org = $1 AND resource = 'companies'`, org).Scan(&keys); err != nil {
			t.Fatal(err)
		}
		if keys != len(records) {
			t.Errorf("%s: %d key rows, want one per record (%d)", org, keys, len(records))
		}
	}
	var open []string
	rs, err := conn.Query(ctx, `SELECT id || ' ' || status FROM import_views WHERE status NOT IN ('completed','failed','interrupted','timed_out','expired')`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var s string
		_ = rs.Scan(&s)
		open = append(open, s)
	}
	if len(open) > 0 {
		t.Errorf("imports left non-terminal: %v", open)
	}
}
