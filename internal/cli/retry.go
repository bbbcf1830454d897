package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/client"
)

// RetryCmd runs a finished import's failed rows again, as a child import,
// and follows it like import.
type RetryCmd struct {
	Server `embed:""`
	ID     string `arg:"" help:"The import whose failed rows to run again."`
	File   string `arg:"" optional:"" type:"existingfile" help:"The rows to run instead, typically the import's errors.csv corrected (its _row, _phase… columns are ignored). Without it the failed rows run again as they were."`

	Name           string        `name:"name" help:"A name for the retry."`
	Format         string        `name:"format" enum:",${formats}" default:"" help:"File format: ${formats} (default: from the file's name)."`
	UploadMode     string        `name:"upload-mode" enum:"${upload_modes}" default:"${upload_mode}" help:"${enum}; sync prevalidates the file inside the request (with a file only)."`
	ErrorThreshold *float64      `name:"error-threshold" help:"Share of rows that may fail before the retry fails (0 to 1; default 0.1)."`
	SkipErrors     bool          `name:"skip-errors" help:"Import the valid rows whatever share fails."`
	DryRun         bool          `name:"dry-run" help:"Run every phase but change no record."`
	Reference      string        `name:"reference" help:"Your own reference for the retry."`
	Metadata       string        `name:"metadata" help:"A JSON object kept with the retry."`
	Sheet          string        `name:"sheet" help:"XLSX: the sheet to read (default: the first)."`
	Delimiter      string        `name:"delimiter" help:"CSV: the delimiter (default: detected)."`
	Deadline       time.Duration `name:"deadline" help:"Time the retry may take before it is timed out (e.g. 30m)."`
	IdempotencyKey string        `name:"idempotency-key" help:"Repeat the command with the same key to follow the same retry instead of creating another."`

	Detach bool `name:"detach" short:"d" help:"Print the retry's id once it is created, and do not follow it."`
	JSON   bool `name:"json" help:"Print the finished import object as JSON instead of the summary."`
}

// Run creates the retry, then follows it like watch.
func (c *RetryCmd) Run(env *Env) error {
	o := events.Options{
		OrganizationID: c.Org, Name: c.Name, Format: events.Format(c.Format),
		ErrorThreshold: c.ErrorThreshold, SkipErrors: c.SkipErrors, DryRun: c.DryRun,
		Reference: c.Reference, Sheet: c.Sheet, Delimiter: c.Delimiter,
	}
	if c.File != "" {
		o.UploadMode = events.UploadMode(c.UploadMode)
	}
	if c.Metadata != "" {
		if err := json.Unmarshal([]byte(c.Metadata), &o.Metadata); err != nil {
			return fmt.Errorf("--metadata: want a JSON object: %w", err)
		}
	}
	if c.Deadline > 0 {
		d := time.Now().Add(c.Deadline).UTC()
		o.Deadline = &d
	}
	req := client.CreateRequest{Options: o, IdempotencyKey: c.IdempotencyKey}
	if c.File != "" {
		f, err := os.Open(c.File)
		if err != nil {
			return err
		}
		defer f.Close()
		req.File = &client.File{Name: filepath.Base(c.File), Body: f}
	}
	created, err := c.client().Retry(env.Ctx, c.ID, req)
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
	switch {
	case created.Repeated:
		fmt.Fprintf(env.Err, "retry %s was created before under this idempotency key: following it\n", created.ID)
	case c.JSON:
	case c.File != "":
		fmt.Fprintf(env.Err, "retry %s of %s created: %s of %s into %s\n", created.ID, c.ID, created.File.Name, byteCount(created.File.Size), created.Resource)
	default:
		fmt.Fprintf(env.Err, "retry %s of %s created: its failed rows again, into %s\n", created.ID, c.ID, created.Resource)
	}
	return follow(env, c.Server, created.ID, c.JSON)
}
