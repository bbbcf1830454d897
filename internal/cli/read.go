package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// StatusCmd shows one import.
type StatusCmd struct {
	Server `embed:""`
	ID     string `arg:"" help:"The import's id."`
	JSON   bool   `name:"json" help:"Print the import object as JSON."`
}

func (c *StatusCmd) Run(env *Env) error {
	imp, err := c.client().Get(env.Ctx, c.ID)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(env.Out, imp)
	}
	fmt.Fprintf(env.Out, "import %s: %s\n", imp.ID, imp.Status)
	fmt.Fprintf(env.Out, "  %s of %s into %s (%s, %s)", orDash(imp.File.Name), byteCount(imp.File.Size), imp.Resource, imp.Action, imp.Mode)
	if imp.Name != "" {
		fmt.Fprintf(env.Out, " %q", imp.Name)
	}
	fmt.Fprintf(env.Out, ", created %s\n", imp.CreatedAt.Local().Format(time.DateTime))
	if imp.Reason != nil && *imp.Reason != "" {
		fmt.Fprintf(env.Out, "  reason: %s\n", *imp.Reason)
	}
	if imp.ParentImportID != "" {
		fmt.Fprintf(env.Out, "  parent: %s\n", imp.ParentImportID)
	}
	if len(imp.Children) > 0 {
		fmt.Fprintf(env.Out, "  children: %s\n", strings.Join(imp.Children, ", "))
	}
	if !imp.Status.Terminal() {
		p := imp.Progress
		fmt.Fprintf(env.Out, "  progress: %.1f%%", p.Percent)
		if p.RowsPerSecond != nil {
			fmt.Fprintf(env.Out, ", %.0f rows/s", *p.RowsPerSecond)
		}
		if p.ETA != nil {
			fmt.Fprintf(env.Out, ", done about %s", p.ETA.Local().Format(time.TimeOnly))
		}
		fmt.Fprintln(env.Out)
	}
	tw := tabwriter.NewWriter(env.Out, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PHASE\tSTATUS\tBATCHES\tROWS IN\tOUT\tFAILED\tSKIPPED\tTOOK")
	for _, ph := range imp.Phases {
		took := ""
		if ph.StartedAt != nil && ph.CompletedAt != nil {
			took = ph.CompletedAt.Sub(*ph.StartedAt).Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d/%d\t%d\t%d\t%d\t%d\t%s\n", ph.Name, ph.Status, ph.BatchesDone, ph.BatchesTotal, ph.RowsIn, ph.RowsOut, ph.RowsFailed, ph.RowsSkipped, took)
	}
	tw.Flush()
	printStats(env.Out, imp)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ListCmd lists imports.
type ListCmd struct {
	Server   `embed:""`
	Status   string `name:"status" enum:",${statuses}" default:"" help:"Only imports with this status: ${statuses}."`
	Resource string `name:"resource" short:"r" help:"Only imports of this resource."`
	Limit    int    `name:"limit" short:"n" default:"20" help:"How many imports to list."`
	JSON     bool   `name:"json" help:"Print the import objects as a JSON array."`
	Quiet    bool   `name:"quiet" short:"q" help:"Print only the ids, one per line (for scripts: ID=$(inlet list -q -n 1))."`
}

func (c *ListCmd) Run(env *Env) error {
	cl := c.client()
	var list []events.Import
	f := client.Filters{Status: events.Status(c.Status), Resource: c.Resource}
	for len(list) < c.Limit {
		f.Limit = min(c.Limit-len(list), 100)
		page, err := cl.List(env.Ctx, f)
		if err != nil {
			return err
		}
		list = append(list, page.Data...)
		if !page.HasMore || page.NextCursor == nil {
			break
		}
		f.StartingAfter = *page.NextCursor
	}
	switch {
	case c.JSON:
		if list == nil {
			list = []events.Import{}
		}
		return printJSON(env.Out, list)
	case c.Quiet:
		for _, imp := range list {
			fmt.Fprintln(env.Out, imp.ID)
		}
		return nil
	}
	tw := tabwriter.NewWriter(env.Out, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tRESOURCE\tFILE\tROWS\tFAILED\tCREATED")
	for _, imp := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", imp.ID, imp.Status, imp.Resource, orDash(imp.File.Name),
			imp.Stats.Total, imp.Stats.Failed, imp.CreatedAt.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// WatchCmd follows an import to its end.
type WatchCmd struct {
	Server `embed:""`
	ID     string `arg:"" help:"The import's id."`
	JSON   bool   `name:"json" help:"Print the finished import object as JSON instead of the summary."`
}

func (c *WatchCmd) Run(env *Env) error { return follow(env, c.Server, c.ID, c.JSON) }

// ErrorsCmd downloads an import's rejected rows.
type ErrorsCmd struct {
	Server `embed:""`
	ID     string `arg:"" help:"The import's id."`
	Output string `name:"output" short:"o" default:"-" help:"File to write (- is standard output)."`
	JSON   bool   `name:"json" help:"errors.json (one entry per problem, with the row's data) instead of errors.csv."`
}

func (c *ErrorsCmd) Run(env *Env) (err error) {
	var w io.Writer = env.Out
	if c.Output != "-" {
		f, err := os.Create(c.Output)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
		w = f
	}
	cl := c.client()
	if !c.JSON {
		return cl.ErrorsCSV(env.Ctx, c.ID, w)
	}
	rows, err := cl.ErrorsJSON(env.Ctx, c.ID)
	if err != nil {
		return err
	}
	if rows == nil {
		rows = []events.RowError{}
	}
	return printJSON(w, rows)
}

// InterruptCmd asks an import to stop.
type InterruptCmd struct {
	Server `embed:""`
	ID     string `arg:"" help:"The import's id."`
	Wait   bool   `name:"wait" short:"w" help:"Follow the import until it has stopped."`
}

func (c *InterruptCmd) Run(env *Env) error {
	cl := c.client()
	imp, err := cl.Interrupt(env.Ctx, c.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Out, "import %s asked to stop (%s): it stops at its next batch boundary\n", imp.ID, imp.Status)
	if !c.Wait {
		return nil
	}
	imp, err = poll(env.Ctx, cl, c.ID, func(events.Import) {})
	if err != nil {
		return err
	}
	printSummary(env.Out, c.readBase(), imp)
	return nil
}

// RevertCmd starts a revert of an import and follows it.
type RevertCmd struct {
	Server         `embed:""`
	ID             string `arg:"" help:"The import to revert."`
	Force          bool   `name:"force" help:"Put back records another import changed since, too (they are skipped as revert.conflict otherwise)."`
	DryRun         bool   `name:"dry-run" help:"Count what would be put back and what conflicts; write nothing."`
	Name           string `name:"name" help:"The revert's name (default: Revert of <the import's name or id>)."`
	IdempotencyKey string `name:"idempotency-key" help:"Repeating the command with the same key starts no second revert."`
	Detach         bool   `name:"detach" short:"d" help:"Print the revert's id and return without following it."`
	JSON           bool   `name:"json" help:"Print the finished import object as JSON instead of the summary."`
}

func (c *RevertCmd) Run(env *Env) error {
	created, err := c.client().Revert(env.Ctx, c.ID, events.RevertRequest{Name: c.Name, Force: c.Force, DryRun: c.DryRun}, c.IdempotencyKey)
	if err != nil {
		return err
	}
	if c.Detach {
		fmt.Fprintln(env.Out, created.ID)
		return nil
	}
	fmt.Fprintf(env.Err, "revert %s of import %s started\n", created.ID, c.ID)
	return follow(env, c.Server, created.ID, c.JSON)
}

// ResourcesCmd lists the resource registry.
type ResourcesCmd struct {
	Server `embed:""`
	JSON   bool `name:"json" help:"Print the resources (with their schemas) as JSON."`
}

func (c *ResourcesCmd) Run(env *Env) error {
	list, err := c.client().Resources(env.Ctx)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(env.Out, list)
	}
	tw := tabwriter.NewWriter(env.Out, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tKEY\tALTERNATE KEYS\tREFERENCES\tPARENT")
	for _, r := range list {
		var alt, refs []string
		for _, k := range r.AlternateKeys {
			alt = append(alt, strings.Join(k, "+"))
		}
		for field, target := range r.References {
			refs = append(refs, field+"→"+target)
		}
		parent := "-"
		if r.Parent != nil {
			parent = *r.Parent
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, strings.Join(r.Key, "+"), orDash(strings.Join(alt, ", ")),
			orDash(strings.Join(refs, ", ")), parent)
	}
	return tw.Flush()
}

// RecordsCmd lists or finds a resource's stored records.
type RecordsCmd struct {
	Server   `embed:""`
	Resource string `arg:"" help:"The resource."`
	Key      string `name:"key" short:"k" help:"Find the records holding this value of one of the resource's keys."`
	Mode     string `name:"mode" enum:"${modes}" default:"${mode}" help:"Records of mode ${enum}."`
	Limit    int    `name:"limit" short:"n" default:"20" help:"How many records to list."`
}

// Run prints one record per line as JSON (jq-friendly).
func (c *RecordsCmd) Run(env *Env) error {
	cl := c.client()
	f := client.RecordFilters{Mode: events.Mode(c.Mode), Key: c.Key}
	printed := 0
	for printed < c.Limit {
		f.Limit = min(c.Limit-printed, 100)
		page, err := cl.Records(env.Ctx, c.Resource, f)
		if err != nil {
			return err
		}
		for _, r := range page.Data {
			if err := printLine(env.Out, r); err != nil {
				return err
			}
			printed++
		}
		if !page.HasMore || page.NextCursor == nil {
			break
		}
		f.StartingAfter = *page.NextCursor
	}
	return nil
}
