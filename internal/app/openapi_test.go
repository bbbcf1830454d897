package app

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/inlet-dev/inlet/internal/blob/local"
	"github.com/inlet-dev/inlet/internal/metrics"
	"github.com/inlet-dev/inlet/internal/openapi"
	"github.com/inlet-dev/inlet/internal/store"
)

// patterns records what is mounted on it.
type patterns []string

func (p *patterns) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	*p = append(*p, pattern)
}

// The all-in-one server (a superset of the gateway and the projector) serves
// exactly the operations the API description has.
func TestTheDocumentHasEveryRouteAndNoOther(t *testing.T) {
	blobs, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var mounted patterns
	// Only the routes count: the store is never called.
	a := &App{Blobs: blobs, Store: struct{ store.Store }{}, Log: zerolog.Nop(), Metrics: metrics.New()}
	a.mountAll(&mounted)
	a.mountMetrics(&mounted)
	documented, err := openapi.Operations()
	if err != nil {
		t.Fatal(err)
	}
	undocumented, unserved := routeDiff(mounted, documented)
	for _, r := range undocumented {
		t.Errorf("the server mounts %s, the document does not have it", r)
	}
	for _, r := range unserved {
		t.Errorf("the document has %s, no route serves it", r)
	}
}

// The comparison fails either way round.
func TestRouteDiffFindsWhatEitherSideLacks(t *testing.T) {
	undocumented, unserved := routeDiff(
		[]string{"GET /v1/imports", "DELETE /v1/imports/{id}", "GET /healthz"},
		[]string{"GET /healthz", "GET /v1/imports", "GET /readyz"})
	if !slices.Equal(undocumented, []string{"DELETE /v1/imports/{id}"}) || !slices.Equal(unserved, []string{"GET /readyz"}) {
		t.Errorf("undocumented %v, unserved %v", undocumented, unserved)
	}
}

// routeDiff compares mux patterns ("METHOD /path") with the document's
// operations in the same form.
func routeDiff(mounted, documented []string) (undocumented, unserved []string) {
	norm := func(list []string) []string {
		out := make([]string, len(list))
		for i, p := range list {
			method, path, _ := strings.Cut(p, " ")
			out[i] = strings.ToUpper(method) + " " + strings.TrimSpace(path)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	m, d := norm(mounted), norm(documented)
	for _, r := range m {
		if _, found := slices.BinarySearch(d, r); !found {
			undocumented = append(undocumented, r)
		}
	}
	for _, r := range d {
		if _, found := slices.BinarySearch(m, r); !found {
			unserved = append(unserved, r)
		}
	}
	return undocumented, unserved
}
