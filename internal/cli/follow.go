package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// pollEvery is how often a followed import is read.
const pollEvery = 250 * time.Millisecond

// importNotCompleted is the error of a followed import that ended otherwise
// than completed: the summary said why, the exit status is 1.
type importNotCompleted struct{ status events.Status }

func (e importNotCompleted) Error() string { return "the import ended " + string(e.status) }

// follow reads import id until it ends, showing its progress on env.Err (a
// bar per phase on a terminal, a line per phase change elsewhere), then
// prints its summary (or the import object, asJSON) on env.Out.
func follow(env *Env, srv Server, id string, asJSON bool) error {
	cl := srv.client()
	var show progress = &phaseLines{w: env.Err}
	if terminal(env.Err) {
		show = newPhaseBars(env.Ctx, env.Err)
	}
	imp, err := poll(env.Ctx, cl, id, show.update)
	show.end(imp)
	if err != nil {
		return err
	}
	if asJSON {
		if err := printJSON(env.Out, imp); err != nil {
			return err
		}
	} else {
		printSummary(env.Out, srv.readBase(), imp)
	}
	if imp.Status != events.StatusCompleted {
		return importNotCompleted{imp.Status}
	}
	return nil
}

// poll reads import id every pollEvery, handing each read to seen, until
// the import ends or ctx does. What a read side answers for a while (not
// found yet, unavailable) is waited out.
func poll(ctx context.Context, cl *client.Client, id string, seen func(events.Import)) (events.Import, error) {
	var last events.Import
	for {
		imp, err := cl.Get(ctx, id)
		switch {
		case err == nil:
			last = imp
			seen(imp)
			if imp.Status.Terminal() {
				return imp, nil
			}
		case client.IsNotFound(err) && last.ID == "", client.IsUnavailable(err):
		case ctx.Err() == nil:
			return last, err
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("stopped following import %s (%s): %w", id, orUnknown(last.Status), ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

func orUnknown(s events.Status) string {
	if s == "" {
		return "not read yet"
	}
	return string(s)
}

// progress shows the reads of an import.
type progress interface {
	update(events.Import)
	// end closes the display after the last read (imp may be zero).
	end(imp events.Import)
}

// phaseBars draws one bar per phase: the rows it has read of the file's,
// its rows per second and the time it has left.
type phaseBars struct {
	p     *mpb.Progress
	bars  map[string]*mpb.Bar
	last  map[string]time.Time
	order []string
}

func newPhaseBars(ctx context.Context, w io.Writer) *phaseBars {
	return &phaseBars{
		p:    mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(32), mpb.WithRefreshRate(120*time.Millisecond)),
		bars: map[string]*mpb.Bar{}, last: map[string]time.Time{},
	}
}

func (b *phaseBars) bar(name string) *mpb.Bar {
	if bar, ok := b.bars[name]; ok {
		return bar
	}
	bar := b.p.AddBar(0,
		mpb.PrependDecorators(
			decor.Name(name, decor.WC{C: decor.DindentRight | decor.DextraSpace, W: len(events.PhasePrevalidation) + 1}),
			decor.CountersNoUnit("%d / %d rows", decor.WCSyncWidth),
		),
		mpb.AppendDecorators(
			// Age 0 is a simple moving average: a figure from the second
			// read on, where a variable one waits for ten reads that moved.
			decor.OnAbort(decor.OnComplete(decor.EwmaSpeed(0, "%.0f rows/s", 0, decor.WCSyncWidth), "done"), "stopped"),
			decor.OnAbort(decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 0, decor.WCSyncSpace), ""), ""),
		),
		mpb.BarFillerClearOnComplete(),
	)
	b.bars[name] = bar
	b.order = append(b.order, name)
	return bar
}

func (b *phaseBars) update(imp events.Import) {
	total := fileRows(imp)
	now := time.Now()
	for _, ph := range imp.Phases {
		bar := b.bar(ph.Name)
		if bar.Completed() || bar.Aborted() {
			continue
		}
		switch ph.Status {
		case events.PhaseStatusSkipped:
			bar.Abort(false)
			continue
		case events.PhaseStatusPending:
			if total > 0 {
				bar.SetTotal(total, false)
			}
			continue
		}
		cur := ph.RowsIn
		since := now.Sub(b.last[ph.Name])
		if b.last[ph.Name].IsZero() {
			since = pollEvery
		}
		b.last[ph.Name] = now
		if total > 0 {
			bar.SetTotal(max(total, cur), false)
		} else {
			bar.SetTotal(cur+1, false) // not known yet: the bar never looks done
		}
		bar.EwmaSetCurrent(cur, since)
		if ph.Status == events.PhaseStatusCompleted {
			bar.SetTotal(cur, true)
		}
	}
}

func (b *phaseBars) end(imp events.Import) {
	for _, name := range b.order {
		if bar := b.bars[name]; !bar.Completed() {
			bar.Abort(false)
		}
	}
	b.p.Wait()
}

// fileRows is how many rows the import's file holds, once the first phase
// has read it all (0 before).
func fileRows(imp events.Import) int64 {
	for _, ph := range imp.Phases {
		if ph.Name == events.PhasePrevalidation && ph.Status == events.PhaseStatusCompleted {
			return ph.RowsIn
		}
	}
	return imp.Stats.Total
}

// phaseLines writes a line whenever a phase starts or ends: progress for a
// log or a pipe.
type phaseLines struct {
	w    io.Writer
	seen map[string]string
}

func (l *phaseLines) update(imp events.Import) {
	if l.seen == nil {
		l.seen = map[string]string{}
		fmt.Fprintf(l.w, "import %s: %s\n", imp.ID, imp.Status)
	}
	for _, ph := range imp.Phases {
		if l.seen[ph.Name] == ph.Status {
			continue
		}
		l.seen[ph.Name] = ph.Status
		switch ph.Status {
		case events.PhaseStatusRunning:
			fmt.Fprintf(l.w, "%-13s running\n", ph.Name)
		case events.PhaseStatusCompleted:
			took := ""
			if ph.StartedAt != nil && ph.CompletedAt != nil {
				took = " in " + ph.CompletedAt.Sub(*ph.StartedAt).Round(time.Millisecond).String()
			}
			fmt.Fprintf(l.w, "%-13s completed%s: %d rows in, %d out, %d failed\n", ph.Name, took, ph.RowsIn, ph.RowsOut, ph.RowsFailed)
		case events.PhaseStatusSkipped:
			fmt.Fprintf(l.w, "%-13s skipped\n", ph.Name)
		}
	}
}

func (l *phaseLines) end(events.Import) {}

// printSummary says how the import ended, its stats, and where its
// rejected rows are.
func printSummary(w io.Writer, readBase string, imp events.Import) {
	took := ""
	if imp.StartedAt != nil && imp.CompletedAt != nil {
		d := imp.CompletedAt.Sub(*imp.StartedAt)
		took = " in " + d.Round(time.Millisecond).String()
		if secs := d.Seconds(); secs > 0 && imp.Stats.Processed > 0 {
			took += fmt.Sprintf(" (%.0f rows/s)", float64(imp.Stats.Processed)/secs)
		}
	}
	fmt.Fprintf(w, "import %s %s%s\n", imp.ID, imp.Status, took)
	if imp.Reason != nil && *imp.Reason != "" {
		fmt.Fprintf(w, "  reason: %s\n", *imp.Reason)
	}
	printStats(w, imp)
	if n := imp.Stats.Failed + imp.Stats.Skipped; n > 0 {
		fmt.Fprintf(w, "  %d rows rejected: inlet errors %s -o errors.csv", n, imp.ID)
		if link := imp.Links.ErrorsCSV; link != "" {
			if strings.HasPrefix(link, "/") {
				link = strings.TrimRight(readBase, "/") + link
			}
			fmt.Fprintf(w, "  (%s)", link)
		}
		fmt.Fprintln(w)
	}
	if imp.Stats.Failed > 0 && imp.Action != events.ActionRevert {
		fmt.Fprintf(w, "  to run the failed rows again: inlet retry %s errors.csv (corrected), or inlet retry %s (as they were)\n", imp.ID, imp.ID)
	}
}

func printStats(w io.Writer, imp events.Import) {
	s := imp.Stats
	fmt.Fprintf(w, "  rows %d: created %d, updated %d, unchanged %d, deleted %d, skipped %d, failed %d, warnings %d\n",
		s.Total, s.Created, s.Updated, s.Unchanged, s.Deleted, s.Skipped, s.Failed, s.Warnings)
}
