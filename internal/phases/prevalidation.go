package phases

import (
	"context"
	"errors"
	"io"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/decode"
	"github.com/inlet-dev/inlet/internal/pipeline"
	"github.com/inlet-dev/inlet/internal/rows"
)

// Prevalidation decodes the file, maps columns to fields, coerces cells and
// validates every row against the resource schema.
type Prevalidation struct{}

func (Prevalidation) Name() string { return events.PhasePrevalidation }

func (Prevalidation) Read(ctx context.Context, job *pipeline.Job, src io.Reader, file *events.File, sp *pipeline.Splitter) error {
	if job.Options.Action == events.ActionRevert {
		return readRevert(ctx, src, sp)
	}
	pv, err := decode.NewPrevalidator(src, job.Options, job.Resource, sp.TempDir())
	if err != nil {
		var fe *decode.FileError
		if errors.As(err, &fe) {
			file.Columns, file.UnmappedHeaders = fe.Columns, fe.Unmapped
		}
		return asFatal(err)
	}
	defer pv.Close() // removes an XLSX spool file
	// What was detected: a CSV's encoding can be settled late (windows-1252
	// after a long ASCII start), so it is read again at the end.
	setFile := func() {
		d := pv.Detected()
		file.Encoding, file.Delimiter, file.HasHeader, file.Sheet = d.Encoding, d.Delimiter, d.HasHeader, job.Options.Sheet
		file.Compression = d.Compression
		file.Columns, file.UnmappedHeaders = pv.Report()
	}
	setFile()
	if h := pv.Header(); h != nil {
		sp.SetHeader(decode.ImportColumns(h))
	}
	err = decode.InParallel(ctx, pv, func(rec decode.Record) prepared {
		var p prepared
		p.row, p.problems = pv.Prepare(rec)
		if len(p.problems) == 0 {
			// The key values preparsing counts across the file, hashed here,
			// on every core, rather than where rows are written, on one.
			fileKeys(job.Resource, p.row.Data, func(name, value string) { p.keys.Add(name, value, rec.Num) })
		}
		return p
	}, func(p *prepared) error {
		if len(p.problems) > 0 {
			return sp.Reject(ctx, &p.row, p.problems...)
		}
		if err := sp.Emit(ctx, &p.row); err != nil {
			return err
		}
		sp.Summarize(p.keys)
		return nil
	})
	if err != nil {
		return asFatal(err)
	}
	setFile()
	return nil
}

// prepared is one record made a row: its problems, or the summary of its keys.
type prepared struct {
	row      rows.Row
	problems []rows.Problem
	keys     pipeline.KeySummary
}

// asFatal fails the import for a problem with the file itself; other errors
// (reading the blob store) are retried.
func asFatal(err error) error {
	var fe *decode.FileError
	if errors.As(err, &fe) {
		return pipeline.Fatal("%s: %s", fe.Code, fe.Error())
	}
	return err
}
