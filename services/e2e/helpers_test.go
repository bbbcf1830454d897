package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// run imports a CSV (or any file, by its name) through the gateway and waits
// for the end.
func run(c *Cluster, org, resource, name, body string, opts events.Options) events.Import {
	c.T.Helper()
	return c.WaitTerminal(c.Upload(org, resource, name, body, opts))
}

// checkEnded asserts an import ended with status and exactly want stats, and
// the identity processed == sum of the buckets (spec §3, always).
func checkEnded(t *testing.T, what string, imp events.Import, status events.Status, want events.Stats) {
	t.Helper()
	if imp.Status != status {
		t.Errorf("%s: status %s (reason %s), want %s", what, imp.Status, deref(imp.Reason), status)
	}
	if imp.Stats != want {
		t.Errorf("%s: stats\n got %+v\nwant %+v", what, imp.Stats, want)
	}
	s := imp.Stats
	if sum := s.Created + s.Updated + s.Unchanged + s.Deleted + s.Skipped + s.Failed; sum != s.Processed {
		t.Errorf("%s: buckets sum to %d, processed %d", what, sum, s.Processed)
	}
	if status != events.StatusCompleted && (imp.Reason == nil || *imp.Reason == "") {
		t.Errorf("%s: ended %s without a reason", what, imp.Status)
	}
	if imp.CompletedAt == nil {
		t.Errorf("%s: ended %s without completed_at", what, imp.Status)
	}
}

// fieldSet is a resource's stored live records of org as key field value →
// canonical JSON of the data.
func fieldSet(t *testing.T, c *Cluster, org, mode, resource, keyField string) map[string]string {
	t.Helper()
	set, err := DataSet(c.RecordsIn(org, mode, resource), keyField)
	if err != nil {
		t.Fatalf("%s %s/%s: %v", org, mode, resource, err)
	}
	return set
}

// keysOf lists the keys of a set, sorted and joined by commas.
func keysOf(set map[string]string) string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func checkKeys(t *testing.T, what string, set map[string]string, want string) {
	t.Helper()
	if got := keysOf(set); got != want {
		t.Errorf("%s: stored keys %q, want %q", what, got, want)
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// companyRows is a companies CSV of codes prefix0..prefix<n-1>.
func companyRows(prefix string, n int) string {
	var b strings.Builder
	b.WriteString("code,name\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%s%d,Company %d\n", prefix, i, i)
	}
	return b.String()
}

// listImports reads one page of org's imports.
func (c *Cluster) listImports(org string, f client.Filters) client.Page {
	c.T.Helper()
	p, err := c.Client(org).List(context.Background(), f)
	if err != nil {
		c.T.Fatalf("GET /v1/imports %+v as %s: %v", f, org, err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

func ids(list []events.Import) []string {
	out := make([]string, len(list))
	for i, imp := range list {
		out[i] = imp.ID
	}
	return out
}
