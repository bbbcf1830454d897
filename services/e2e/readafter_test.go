package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/inlet-dev/inlet/events"
)

// The import a create's 201 names is readable at once, on the projector, a
// process of its own: before, a read right after the create raced the
// projector's consumer and could answer 404 (seen once in 25 on an idle
// all-in-one).
func TestReadAfterCreate(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := NewCluster(t, Options{})
	const n = 40
	missing := 0
	for i := range n {
		id := c.Upload("acme", "companies", fmt.Sprintf("c%d.csv", i), fmt.Sprintf("code,name\nR%d,Read %d\n", i, i), events.Options{})
		if _, err := c.Client("acme").Get(context.Background(), id); err != nil {
			missing++
			t.Errorf("create %d: GET /v1/imports/%s right after its 201 answered %v", i, id, err)
		}
	}
	t.Logf("%d of %d imports readable right after their create", n-missing, n)
}
