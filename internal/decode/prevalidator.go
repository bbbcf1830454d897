package decode

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/rows"
)

// Prevalidator reads a file the way an import with given options does
// (format, sheet, delimiter, column mapping, action) and prevalidates each
// record: the pipeline's first phase and a sync create both use it.
type Prevalidator struct {
	Source
	// Mapping places the file's columns on the resource's fields.
	Mapping *Mapping
	res     *resources.Resource
	delete  bool
}

// NewPrevalidator opens src as an import with opts reads it. tempDir holds
// a spooled XLSX file ("" for the system's). The caller closes it.
func NewPrevalidator(src io.Reader, opts events.Options, res *resources.Resource, tempDir string) (*Prevalidator, error) {
	dopts := Options{Sheet: opts.Sheet, TempDir: tempDir}
	if d := []rune(opts.Delimiter); len(d) == 1 {
		dopts.Delimiter = d[0]
	}
	dec, err := Open(opts.Format, src, dopts)
	if err != nil {
		return nil, err
	}
	m, err := NewMapping(dec.Header(), opts.ColumnMapping, res)
	if err != nil {
		dec.Close()
		return nil, err
	}
	return &Prevalidator{Source: dec, Mapping: m, res: res, delete: opts.Action == events.ActionDelete}, nil
}

// Report is the mapping's Report: what the import object's file says of
// the columns.
func (p *Prevalidator) Report() (columns map[string]string, unmapped []UnmappedHeader) {
	return p.Mapping.Report()
}

// Prepare prevalidates one record (Prepare, or PrepareDelete for a delete
// import).
func (p *Prevalidator) Prepare(rec Record) (rows.Row, []rows.Problem) {
	return prepare(p.res, p.Mapping, rec, p.delete)
}

// prepareChunk is how many records travel together between the reader, the
// workers and the writer: enough to make the hand-offs cheap, few enough to
// keep memory at a few chunks per core.
const prepareChunk = 256

type chunk[T any] struct {
	recs []Record
	out  []T
	done chan struct{}
}

// InParallel reads dec on one goroutine (decoding is sequential), runs work
// on each record (coercion, schema validation: most of prevalidation) on
// every core, and hands the results to emit in file order. A decoding error
// is returned after every record before it was emitted, as a sequential
// loop would.
func InParallel[T any](ctx context.Context, dec Source, work func(Record) T, emit func(*T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan *chunk[T], workers)
	order := make(chan *chunk[T], 2*workers)
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
			c := &chunk[T]{done: make(chan struct{})}
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
				c.out = make([]T, len(c.recs))
				for i, rec := range c.recs {
					c.out[i] = work(rec)
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
