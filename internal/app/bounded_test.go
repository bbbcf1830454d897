package app

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/textlimit"
)

// A failure caused by a huge input ends the import with a bounded reason and
// a terminal event far below a broker's default 1 MB limit; before, a 50 MB
// header line was quoted whole and the event could not be published, so the
// import never ended.
func TestHugeInputsMakeBoundedFailures(t *testing.T) {
	a := startEmbedded(t)
	huge := strings.Repeat("h\x00", 25<<20) // 50 MB, binary included
	for _, tc := range []struct {
		name, body string
	}{
		{"a 50 MB header", "code,name," + huge + "\nC1,One,x\n"},
		{"a 50 MB duplicated column", huge + "," + huge + "\nx,y\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imp := runImport(t, a, events.Options{OrganizationID: "acme", Resource: "companies"}, "huge.csv", tc.body)
			if imp.Status != events.StatusFailed || imp.Reason == nil {
				t.Fatalf("%s (reason %v), want failed with a reason", imp.Status, imp.Reason)
			}
			if n := len(*imp.Reason); n > textlimit.Reason {
				t.Errorf("reason of %d bytes, want at most %d", n, textlimit.Reason)
			}
			if strings.ContainsRune(*imp.Reason, 0) {
				t.Errorf("reason carries a raw NUL: %q", *imp.Reason)
			}
			b, _ := json.Marshal(imp)
			if len(b) > 64<<10 {
				t.Errorf("terminal import object of %d bytes", len(b))
			}
			t.Logf("reason: %.200s", *imp.Reason)
		})
	}
}
