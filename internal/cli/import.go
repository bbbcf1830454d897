package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// ImportCmd creates an import of a file and follows it.
type ImportCmd struct {
	Server `embed:""`
	File   string `arg:"" type:"existingfile" help:"The file to import (.csv, .json, .jsonl, .xlsx; --format says when its name does not)."`

	Resource          string            `name:"resource" short:"r" help:"Resource to import into (default: the file's name without its extension)."`
	Name              string            `name:"name" help:"A name for the import."`
	Mode              string            `name:"mode" enum:"${modes}" default:"${mode}" help:"Records to import into: ${enum}."`
	Format            string            `name:"format" enum:",${formats}" default:"" help:"File format: ${formats} (default: from the file's name)."`
	Action            string            `name:"action" enum:"${actions}" default:"${action}" help:"What rows do: ${enum}."`
	DuplicateHandling string            `name:"duplicate-handling" enum:"${duplicate_handlings}" default:"${duplicate_handling}" help:"Rows sharing a key: ${enum}."`
	UploadMode        string            `name:"upload-mode" enum:"${upload_modes}" default:"${upload_mode}" help:"${enum}; sync prevalidates the file inside the create and prints the first failed rows."`
	ColumnMapping     map[string]string `name:"map" help:"Header of the file → field of the resource (repeat, or header=field;header2=field2)." mapsep:";"`
	ParentResourceID  string            `name:"parent-resource-id" help:"Parent record of every row (resources with a parent)."`
	ErrorThreshold    *float64          `name:"error-threshold" help:"Share of rows that may fail before the import fails (0 to 1; default 0.1)."`
	SkipErrors        bool              `name:"skip-errors" help:"Import the valid rows whatever share fails."`
	DryRun            bool              `name:"dry-run" help:"Run every phase but change no record."`
	Reference         string            `name:"reference" help:"Your own reference for the import."`
	Metadata          string            `name:"metadata" help:"A JSON object kept with the import."`
	Sheet             string            `name:"sheet" help:"XLSX: the sheet to read (default: the first)."`
	Delimiter         string            `name:"delimiter" help:"CSV: the delimiter (default: detected)."`
	Deadline          time.Duration     `name:"deadline" help:"Time the import may take before it is timed out (e.g. 30m)."`
	IdempotencyKey    string            `name:"idempotency-key" help:"Repeat the command with the same key to follow the same import instead of creating another."`

	Detach bool `name:"detach" short:"d" help:"Print the import's id once it is created, and do not follow it."`
	JSON   bool `name:"json" help:"Print the finished import object as JSON instead of the summary."`
}

// Run creates the import, then follows it like watch.
func (c *ImportCmd) Run(env *Env) error {
	opts, err := c.options()
	if err != nil {
		return err
	}
	f, err := os.Open(c.File)
	if err != nil {
		return err
	}
	defer f.Close()
	cl := c.client()
	created, err := cl.Create(env.Ctx, client.CreateRequest{
		Options: opts, IdempotencyKey: c.IdempotencyKey,
		File: &client.File{Name: filepath.Base(c.File), Body: f},
	})
	if err != nil {
		return err
	}
	if created.Prevalidation != nil {
		printPrevalidation(env.Out, created.Prevalidation)
	}
	if c.Detach {
		fmt.Fprintln(env.Out, created.ID)
		return nil
	}
	if created.Repeated {
		fmt.Fprintf(env.Err, "import %s was created before under this idempotency key: following it\n", created.ID)
	} else if !c.JSON {
		fmt.Fprintf(env.Err, "import %s created: %s of %s into %s\n", created.ID, created.File.Name, byteCount(created.File.Size), created.Resource)
	}
	return follow(env, c.Server, created.ID, c.JSON)
}

func (c *ImportCmd) options() (events.Options, error) {
	o := events.Options{
		OrganizationID: c.Org, Resource: c.Resource, Name: c.Name, Mode: events.Mode(c.Mode),
		Format: events.Format(c.Format), Action: events.Action(c.Action),
		DuplicateHandling: events.DuplicateHandling(c.DuplicateHandling), UploadMode: events.UploadMode(c.UploadMode),
		ColumnMapping: c.ColumnMapping, ErrorThreshold: c.ErrorThreshold, SkipErrors: c.SkipErrors, DryRun: c.DryRun,
		Reference: c.Reference, Sheet: c.Sheet, Delimiter: c.Delimiter,
	}
	if o.Resource == "" {
		name := filepath.Base(c.File)
		o.Resource = strings.TrimSuffix(name, filepath.Ext(name))
	}
	if c.ParentResourceID != "" {
		o.ParentResourceID = &c.ParentResourceID
	}
	if c.Metadata != "" {
		if err := json.Unmarshal([]byte(c.Metadata), &o.Metadata); err != nil {
			return o, fmt.Errorf("--metadata: want a JSON object: %w", err)
		}
	}
	if c.Deadline > 0 {
		d := time.Now().Add(c.Deadline).UTC()
		o.Deadline = &d
	}
	return o, nil
}

func printPrevalidation(w interface{ Write([]byte) (int, error) }, p *events.Prevalidation) {
	fmt.Fprintf(w, "prevalidated %d rows: %d valid, %d failed\n", p.Total, p.Valid, p.Failed)
	for _, e := range p.Errors {
		fmt.Fprintf(w, "  row %d  %-20s %-16s %s\n", e.Row, e.Code, e.Field, e.Message)
	}
	if p.Truncated {
		fmt.Fprintln(w, "  … more rows failed: the import's errors list them all")
	}
}

func byteCount(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
