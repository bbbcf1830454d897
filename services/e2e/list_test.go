package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// TestListImports: GET /v1/imports lists an organization's imports newest
// first, filters by status and resource, and pages with a cursor.
func TestListImports(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{BatchSize: 100})
	const org = "acme"
	var all []string // creation order
	kinds := map[string]string{}
	for i := 0; i < 5; i++ {
		imp := run(c, org, "companies", "c.csv", fmt.Sprintf("code,name\nC%d,Company %d\n", i, i), events.Options{})
		all = append(all, imp.ID)
		kinds[imp.ID] = "companies/completed"
	}
	for i := 0; i < 2; i++ {
		imp := run(c, org, "customers", "u.csv", fmt.Sprintf("email,name\nu%d@x.io,U\n", i), events.Options{})
		all = append(all, imp.ID)
		kinds[imp.ID] = "customers/completed"
	}
	bad := run(c, org, "customers", "bad.csv", "email,name\nnot-an-email,X\n", events.Options{})
	if bad.Status != events.StatusInterrupted {
		t.Fatalf("bad import ended %s, want interrupted", bad.Status)
	}
	all = append(all, bad.ID)
	kinds[bad.ID] = "customers/interrupted"
	run(c, "other", "companies", "c.csv", "code,name\nO,Other\n", events.Options{}) // never listed for acme

	newestFirst := slices.Clone(all)
	slices.Reverse(newestFirst)
	want := func(filter func(kind string) bool) []string {
		var out []string
		for _, id := range newestFirst {
			if filter(kinds[id]) {
				out = append(out, id)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    client.Filters
		want []string
	}{
		{"all", client.Filters{}, newestFirst},
		{"status=completed", client.Filters{Status: events.StatusCompleted}, want(func(k string) bool { return strings.HasSuffix(k, "/completed") })},
		{"status=interrupted", client.Filters{Status: events.StatusInterrupted}, []string{bad.ID}},
		{"status=failed", client.Filters{Status: events.StatusFailed}, nil},
		{"resource=customers", client.Filters{Resource: "customers"}, want(func(k string) bool { return strings.HasPrefix(k, "customers/") })},
		{"resource=companies&status=completed", client.Filters{Resource: "companies", Status: events.StatusCompleted},
			want(func(k string) bool { return k == "companies/completed" })},
		{"resource=contacts", client.Filters{Resource: "contacts"}, nil},
	} {
		for _, limit := range []int{0, 1, 2, 3} {
			got := pageAll(t, c, org, tc.f, limit)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("%s (limit %d):\n got %v\nwant %v", tc.name, limit, got, tc.want)
			}
		}
	}
	// The cursor's pages: 3 + 3 + 2, has_more on all but the last.
	p1 := c.listImports(org, client.Filters{Limit: 3})
	if len(p1.Data) != 3 || !p1.HasMore || p1.NextCursor == nil || *p1.NextCursor != newestFirst[2] {
		t.Errorf("page 1: %v has_more %v cursor %v", ids(p1.Data), p1.HasMore, p1.NextCursor)
	}
	last := c.listImports(org, client.Filters{Limit: 3, StartingAfter: newestFirst[5]})
	if fmt.Sprint(ids(last.Data)) != fmt.Sprint(newestFirst[6:]) || last.HasMore || last.NextCursor != nil {
		t.Errorf("last page: %v has_more %v cursor %v", ids(last.Data), last.HasMore, last.NextCursor)
	}
	// Another organization sees its own one import only.
	if l := c.listImports("other", client.Filters{}); len(l.Data) != 1 || l.Data[0].OrganizationID != "other" {
		t.Errorf("other's list: %v", ids(l.Data))
	}
	if _, err := c.Client(org).List(context.Background(), client.Filters{Status: "bogus"}); client.StatusCode(err) != http.StatusBadRequest {
		t.Errorf("status=bogus: %v, want 400", err)
	}
}

// pageAll follows the cursor from the first page to the last (limit 0: the
// server's default page size).
func pageAll(t *testing.T, c *Cluster, org string, f client.Filters, limit int) []string {
	t.Helper()
	var out []string
	cursor := ""
	for pages := 0; ; pages++ {
		f.Limit, f.StartingAfter = limit, cursor
		p := c.listImports(org, f)
		if limit > 0 && len(p.Data) > limit {
			t.Errorf("page of %d with limit %d", len(p.Data), limit)
		}
		out = append(out, ids(p.Data)...)
		if !p.HasMore {
			return out
		}
		if p.NextCursor == nil || *p.NextCursor == cursor || pages > 50 {
			t.Fatalf("cursor does not advance: %v", p.NextCursor)
		}
		cursor = *p.NextCursor
	}
}
