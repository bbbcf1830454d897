package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
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
		imp := run(c, org, "companies", "c.csv", fmt.Sprintf("code,name\nC%d,Company %d\n", i, i), nil)
		all = append(all, imp.ID)
		kinds[imp.ID] = "companies/completed"
	}
	for i := 0; i < 2; i++ {
		imp := run(c, org, "customers", "u.csv", fmt.Sprintf("email,name\nu%d@x.io,U\n", i), nil)
		all = append(all, imp.ID)
		kinds[imp.ID] = "customers/completed"
	}
	bad := run(c, org, "customers", "bad.csv", "email,name\nnot-an-email,X\n", nil)
	if bad.Status != events.StatusInterrupted {
		t.Fatalf("bad import ended %s, want interrupted", bad.Status)
	}
	all = append(all, bad.ID)
	kinds[bad.ID] = "customers/interrupted"
	run(c, "other", "companies", "c.csv", "code,name\nO,Other\n", nil) // never listed for acme

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
		q    url.Values
		want []string
	}{
		{"all", nil, newestFirst},
		{"status=completed", url.Values{"status": {"completed"}}, want(func(k string) bool { return strings.HasSuffix(k, "/completed") })},
		{"status=interrupted", url.Values{"status": {"interrupted"}}, []string{bad.ID}},
		{"status=failed", url.Values{"status": {"failed"}}, nil},
		{"resource=customers", url.Values{"resource": {"customers"}}, want(func(k string) bool { return strings.HasPrefix(k, "customers/") })},
		{"resource=companies&status=completed", url.Values{"resource": {"companies"}, "status": {"completed"}},
			want(func(k string) bool { return k == "companies/completed" })},
		{"resource=contacts", url.Values{"resource": {"contacts"}}, nil},
	} {
		for _, limit := range []int{0, 1, 2, 3} {
			got := pageAll(t, c, org, tc.q, limit)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("%s (limit %d):\n got %v\nwant %v", tc.name, limit, got, tc.want)
			}
		}
	}
	// The cursor's pages: 3 + 3 + 2, has_more on all but the last.
	p1 := c.listImports(org, url.Values{"limit": {"3"}})
	if len(p1.Data) != 3 || !p1.HasMore || p1.NextCursor == nil || *p1.NextCursor != newestFirst[2] {
		t.Errorf("page 1: %v has_more %v cursor %v", ids(p1.Data), p1.HasMore, p1.NextCursor)
	}
	last := c.listImports(org, url.Values{"limit": {"3"}, "starting_after": {newestFirst[5]}})
	if fmt.Sprint(ids(last.Data)) != fmt.Sprint(newestFirst[6:]) || last.HasMore || last.NextCursor != nil {
		t.Errorf("last page: %v has_more %v cursor %v", ids(last.Data), last.HasMore, last.NextCursor)
	}
	// Another organization sees its own one import only.
	if l := c.listImports("other", nil); len(l.Data) != 1 || l.Data[0].OrganizationID != "other" {
		t.Errorf("other's list: %v", ids(l.Data))
	}
	if r := c.Read(org, "/v1/imports", url.Values{"status": {"bogus"}}); r.Status != http.StatusBadRequest {
		t.Errorf("status=bogus: %d %s, want 400", r.Status, r.Body)
	}
}

// pageAll follows the cursor from the first page to the last (limit 0: the
// server's default page size).
func pageAll(t *testing.T, c *Cluster, org string, q url.Values, limit int) []string {
	t.Helper()
	var out []string
	cursor := ""
	for pages := 0; ; pages++ {
		qq := url.Values{}
		for k, v := range q {
			qq[k] = v
		}
		if limit > 0 {
			qq.Set("limit", fmt.Sprint(limit))
		}
		if cursor != "" {
			qq.Set("starting_after", cursor)
		}
		p := c.listImports(org, qq)
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
