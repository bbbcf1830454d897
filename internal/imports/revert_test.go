package imports

import (
	"testing"
	"time"

	"github.com/inlet-dev/inlet/events"
)

func TestCheckRevertible(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	imp := func(status events.Status, dry bool, age time.Duration) events.Import {
		return events.Import{Options: events.Options{ID: "imp_1", DryRun: dry}, Status: status, CreatedAt: now.Add(-age)}
	}
	for _, tc := range []struct {
		name   string
		parent events.Import
		window time.Duration
		want   string
	}{
		{"completed, within the window", imp(events.StatusCompleted, false, time.Hour), 24 * time.Hour, ""},
		{"interrupted: what it applied can be undone", imp(events.StatusInterrupted, false, time.Hour), 24 * time.Hour, ""},
		{"still processing", imp(events.StatusProcessing, false, time.Minute), 24 * time.Hour, RevertNotFinished},
		{"a dry run", imp(events.StatusCompleted, true, time.Minute), 24 * time.Hour, RevertNothing},
		{"past the window", imp(events.StatusCompleted, false, 25*time.Hour), 24 * time.Hour, RevertWindowPassed},
		{"no window", imp(events.StatusCompleted, false, 1000*time.Hour), 0, ""},
	} {
		got := CheckRevertible(tc.parent, tc.window, now)
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("%s: refused: %v", tc.name, got)
		case tc.want != "" && (got == nil || got.Code != tc.want):
			t.Errorf("%s: %v, want %s", tc.name, got, tc.want)
		}
	}
}
