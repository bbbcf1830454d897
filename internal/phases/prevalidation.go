package phases

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"

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
	err = prepareInParallel(ctx, dec, func(rec decode.Record) prepared {
		var p prepared
		p.row, p.problems = prepare(job.Resource, mapping, rec)
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

// prepareChunk is how many records travel together between the reader, the
// workers and the writer: enough to make the hand-offs cheap, few enough to
// keep memory at a few chunks per core.
const prepareChunk = 256

// prepared is one record made a row: its problems, or the summary of its keys.
type prepared struct {
	row      rows.Row
	problems []rows.Problem
	keys     pipeline.KeySummary
}

type preparedChunk struct {
	recs []decode.Record
	out  []prepared
	done chan struct{}
}

// prepareInParallel reads the file on one goroutine (decoding is
// sequential), prepares rows (coercion, schema validation: most of the
// phase's work) on every core, and hands them to emit in file order. A
// decoding error is returned after every row before it was emitted, as a
// sequential loop would.
func prepareInParallel(ctx context.Context, dec decode.Source, prepare func(decode.Record) prepared, emit func(*prepared) error) error {
	ctx, cancel := context.WithCancel(ctx)
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan *preparedChunk, workers)
	order := make(chan *preparedChunk, 2*workers)
	var readErr error
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait() // the decoder is closed by the caller: nobody may be reading it then
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(order)
		defer close(jobs)
		for {
			c := &preparedChunk{done: make(chan struct{})}
			for len(c.recs) < prepareChunk {
				rec, err := dec.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					readErr = err
					break
				}
				c.recs = append(c.recs, rec)
			}
			if len(c.recs) > 0 {
				select {
				case order <- c:
				case <-ctx.Done():
					return
				}
				select {
				case jobs <- c:
				case <-ctx.Done():
					return
				}
			}
			if len(c.recs) < prepareChunk {
				return
			}
		}
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				c.out = make([]prepared, len(c.recs))
				for i, rec := range c.recs {
					c.out[i] = prepare(rec)
				}
				close(c.done)
			}
		}()
	}
	for c := range order {
		select {
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		for i := range c.out {
			if err := emit(&c.out[i]); err != nil {
				return err
			}
		}
	}
	// order is closed: the reader is done and readErr is settled. A reader
	// stopped by the caller's context did not reach the end of the file.
	if readErr == nil {
		readErr = ctx.Err()
	}
	return readErr
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
