package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
)

// The mixed-fate workload: an organization gets companies C0..C4 and a base
// of baseCustomers customers; then a file of n rows where row i (0-based,
// k = i/10) ends by i%10:
//
//	0-3 created    new customer n<i>
//	4   updated    u<k> renamed
//	5   unchanged  u<300+k> exactly as stored
//	6,7 skipped    both rows share the key dup<k> (ignore_all)
//	8   failed     k even: schema.format (bad email); k odd: reference.not_found
//	9   failed     k%3==0: ambiguous (email of u<600+k>, external id of
//	               u<900+k/3>); 1: schema.type; 2: schema.required
//
// n must be at most 3000 (k < 300).
const baseCustomers = 1000

const companiesCSV = "code,name,country,employees\nC0,Zero,DE,10\nC1,One,FR,20\nC2,Two,IT,30\nC3,Three,ES,40\nC4,Four,NL,50\n"

const customerHeader = "email,external_id,name,age,vip,company_code,signed_up"

func baseRow(j int) []string {
	return []string{fmt.Sprintf("u%d@x.io", j), fmt.Sprintf("X%d", j), fmt.Sprintf("U%d", j),
		fmt.Sprint(j % 80), []string{"true", "false"}[j%2], fmt.Sprintf("C%d", j%5), fmt.Sprintf("2023-%02d-%02d", 1+j%12, 1+j%28)}
}

func baseCSV() string {
	var b strings.Builder
	b.WriteString(customerHeader + "\n")
	for j := 0; j < baseCustomers; j++ {
		b.WriteString(strings.Join(baseRow(j), ",") + "\n")
	}
	return b.String()
}

// mixedCSV builds the n-row file and predicts its stats and the customers
// stored afterwards (email → fields).
func mixedCSV(n int) (string, events.Stats, map[string]map[string]any) {
	if n > 3000 {
		panic("mixedCSV: n > 3000")
	}
	want := map[string]map[string]any{}
	for j := 0; j < baseCustomers; j++ {
		want[fmt.Sprintf("u%d@x.io", j)] = rowFields(baseRow(j))
	}
	st := events.Stats{Total: int64(n), Processed: int64(n)}
	var b strings.Builder
	b.WriteString(customerHeader + "\n")
	for i := 0; i < n; i++ {
		k := i / 10
		var row []string
		switch r := i % 10; {
		case r <= 3:
			row = []string{fmt.Sprintf("n%d@x.io", i), fmt.Sprintf("NX%d", i), fmt.Sprintf("New \"%d\", esq.", i),
				fmt.Sprint(i % 70), "", fmt.Sprintf("C%d", i%5), ""}
			want[row[0]] = rowFields(row)
			st.Created++
		case r == 4:
			row = baseRow(k)
			row[2] = fmt.Sprintf("U%d v2", k)
			want[row[0]] = rowFields(row)
			st.Updated++
		case r == 5:
			row = baseRow(300 + k)
			st.Unchanged++
		case r == 6, r == 7:
			row = []string{fmt.Sprintf("dup%d@x.io", k), "", fmt.Sprintf("Dup %d", i), "1", "", "", ""}
			st.Skipped++
		case r == 8 && k%2 == 0:
			row = []string{fmt.Sprintf("bad%d.x.io", k), "", "Bad", "1", "", "", ""}
			st.Failed++
		case r == 8:
			row = []string{fmt.Sprintf("ref%d@x.io", k), "", "Ref", "1", "", "NOPE", ""}
			st.Failed++
		case k%3 == 0:
			row = baseRow(600 + k)
			row[1] = fmt.Sprintf("X%d", 900+k/3)
			st.Failed++
		case k%3 == 1:
			row = []string{fmt.Sprintf("type%d@x.io", k), "", "Type", "old", "", "", ""}
			st.Failed++
		default:
			row = []string{fmt.Sprintf("req%d@x.io", k), "", "", "1", "", "", ""}
			st.Failed++
		}
		for c, cell := range row {
			if strings.ContainsAny(cell, ",\"\n") {
				row[c] = `"` + strings.ReplaceAll(cell, `"`, `""`) + `"`
			}
		}
		b.WriteString(strings.Join(row, ",") + "\n")
	}
	return b.String(), st, want
}

// rowFields is what a stored customer holds for a row: empty cells are not given.
func rowFields(row []string) map[string]any {
	names := strings.Split(customerHeader, ",")
	m := map[string]any{}
	for i, v := range row {
		if v == "" {
			continue
		}
		switch names[i] {
		case "age":
			var n int
			fmt.Sscan(v, &n)
			m[names[i]] = n
		case "vip":
			m[names[i]] = v == "true"
		default:
			m[names[i]] = v
		}
	}
	return m
}

// seedOrg imports the companies and the base customers into org.
func seedOrg(t *testing.T, c *Cluster, org string) {
	t.Helper()
	imp := c.WaitTerminal(c.Upload(org, "companies", "companies.csv", companiesCSV, events.Options{}))
	checkImport(t, org+" companies", imp, events.Stats{Total: 5, Processed: 5, Created: 5})
	imp = c.WaitTerminal(c.Upload(org, "customers", "base.csv", baseCSV(), events.Options{}))
	checkImport(t, org+" base customers", imp, events.Stats{Total: baseCustomers, Processed: baseCustomers, Created: baseCustomers})
	if t.Failed() {
		t.FailNow()
	}
}

// checkCustomers compares org's stored customers with want.
func checkCustomers(t *testing.T, c *Cluster, org string, want map[string]map[string]any) map[string]string {
	t.Helper()
	recs := c.Records(org, "customers")
	got, err := DataSet(recs, "email")
	if err != nil {
		t.Errorf("%s: %v", org, err)
		return nil
	}
	bad := 0
	for k, w := range want {
		if g := got[k]; g != canon(w) {
			if bad++; bad <= 5 {
				t.Errorf("%s: customer %s\n got %s\nwant %s", org, k, g, canon(w))
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			if bad++; bad <= 5 {
				t.Errorf("%s: unexpected customer %s: %s", org, k, got[k])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d customers differ from the prediction (%d stored, %d predicted)", org, bad, len(got), len(want))
	}
	return got
}

// batchesOf checks that every phase of imp ran over want batches and that
// the progress events saw each batch of each phase.
func checkBatches(t *testing.T, c *Cluster, imp events.Import, want int) {
	t.Helper()
	for _, p := range imp.Phases {
		n := want
		if p.Name == events.PhaseCleanup {
			n = p.BatchesTotal // cleanup works on the import as a whole
		}
		if p.BatchesTotal != n || p.BatchesDone != n {
			t.Errorf("import %s: phase %s has %d/%d batches, want %d", imp.ID, p.Name, p.BatchesDone, p.BatchesTotal, n)
		}
		if got := len(c.Progress(imp.ID, p.Name)); got != p.BatchesTotal {
			t.Errorf("import %s: progress events for %d distinct %s batches, want %d", imp.ID, got, p.Name, p.BatchesTotal)
		}
	}
}

func elapsed(start time.Time) string { return time.Since(start).Round(time.Millisecond).String() }
