package imports

import (
	"math"
	"time"

	"github.com/inlet-dev/inlet/events"
)

// Done is the share of an import's work its phases have committed, 0 to 1:
// each phase is an equal share (the phases are seven services, and which
// one is slow depends on the file and the store, not on its place), done in
// the share of its batches committed. Every phase works on the same batches
// (batch b covers the same rows in each), so their count is the most any
// phase reports. A phase completed with no batch counts whole.
func Done(phases []events.PhaseStatus) float64 {
	if len(events.Phases) == 0 {
		return 0
	}
	total := 0
	for _, p := range phases {
		total = max(total, p.BatchesTotal)
	}
	var sum float64
	for _, p := range phases {
		switch {
		case p.Status == events.PhaseStatusCompleted:
			sum++
		case total > 0:
			sum += float64(min(p.BatchesDone, total)) / float64(total)
		}
	}
	return min(1, sum/float64(len(events.Phases)))
}

// SetProgress fills imp.Progress from its phases, stats and times. It
// leaves stats.processed alone: spec §3 holds it to the sum of the buckets
// at every moment (rows land in failed and skipped in the phase that rejects
// them, in created… only in processing); the work done through the phases
// is the percent.
//
// floor is the percent shown before: the percent never goes back, even when
// what it is computed from is seen in another order (the projector folds
// events as they come). Percent is 100 only for a completed import, and
// below it otherwise. Rows per second and the ETA are measured from the
// import's start to at, the last batch committed (a finished import: its
// completed_at), never the reader's clock, so the object stays a function of
// its events.
func SetProgress(imp *events.Import, floor float64, at time.Time) {
	done := Done(imp.Phases)
	pct := math.Floor(done*1000) / 10
	if imp.Status == events.StatusCompleted {
		pct = 100
	} else {
		pct = min(max(pct, floor), 99.9)
	}
	p := events.Progress{Percent: pct}
	end := at
	if imp.Status.Terminal() && imp.CompletedAt != nil {
		end = *imp.CompletedAt
	}
	if imp.Status == events.StatusCompleted {
		done = 1
	}
	if imp.StartedAt != nil && done > 0 && imp.Stats.Total > 0 {
		if elapsed := end.Sub(*imp.StartedAt).Seconds(); elapsed > 0 {
			rate := math.Round(float64(imp.Stats.Total)*done/elapsed*10) / 10
			p.RowsPerSecond = &rate
			if !imp.Status.Terminal() && done < 1 {
				left := time.Duration(elapsed * (1 - done) / done * float64(time.Second))
				eta := end.Add(left).Round(time.Second).UTC()
				p.ETA = &eta
			}
		}
	}
	imp.Progress = p
}
