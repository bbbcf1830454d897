package phases

import (
	"context"
	"errors"
	"io"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/pkg/decode"
	"github.com/inlet-dev/inlet/pkg/pipeline"
)

// Prevalidation decodes the file, maps columns to fields, coerces cells and
// validates every row against the resource schema.
type Prevalidation struct{}

func (Prevalidation) Name() string { return events.PhasePrevalidation }

func (Prevalidation) Read(ctx context.Context, job *pipeline.Job, src io.Reader, file *events.File, sp *pipeline.Splitter) error {
	opts := decode.Options{Sheet: job.Options.Sheet, TempDir: sp.TempDir()}
	if d := []rune(job.Options.Delimiter); len(d) == 1 {
		opts.Delimiter = d[0]
	}
	dec, err := decode.Open(job.Options.Format, src, opts)
	if err != nil {
		return asFatal(err)
	}
	defer dec.Close() // removes an XLSX spool file
	// What was detected: a CSV's encoding can be settled late (windows-1252
	// after a long ASCII start), so it is read again at the end.
	setFile := func() {
		d := dec.Detected()
		file.Encoding, file.Delimiter, file.HasHeader, file.Sheet = d.Encoding, d.Delimiter, d.HasHeader, job.Options.Sheet
	}
	setFile()
	if h := dec.Header(); h != nil {
		sp.SetHeader(decode.ImportColumns(h))
	}
	mapping, err := decode.NewMapping(dec.Header(), job.Options.ColumnMapping, job.Resource)
	if err != nil {
		return asFatal(err)
	}
	prepare := decode.Prepare
	if job.Options.Action == "delete" {
		prepare = decode.PrepareDelete
	}
	for {
		rec, err := dec.Next()
		if errors.Is(err, io.EOF) {
			setFile()
			return nil
		}
		if err != nil {
			return asFatal(err)
		}
		row, problems := prepare(job.Resource, mapping, rec)
		if len(problems) > 0 {
			err = sp.Reject(ctx, &row, problems...)
		} else {
			err = sp.Emit(ctx, &row)
		}
		if err != nil {
			return err
		}
	}
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
