package decode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/inlet-dev/inlet/internal/rows"
)

// fakeSource yields n records, then err (io.EOF when nil).
type fakeSource struct {
	n, i int
	err  error
}

func (s *fakeSource) Header() []string   { return nil }
func (s *fakeSource) Detected() Detected { return Detected{} }
func (s *fakeSource) Close() error       { return nil }
func (s *fakeSource) Next() (Record, error) {
	if s.i == s.n {
		if s.err != nil {
			return Record{}, s.err
		}
		return Record{}, io.EOF
	}
	s.i++
	return Record{Num: int64(s.i)}, nil
}

// prepared is one record's result: its row and problems.
type prepared struct {
	row      rows.Row
	problems []rows.Problem
}

func numbered(rec Record) prepared {
	r := rows.Row{Num: rec.Num}
	if rec.Num%7 == 0 {
		return prepared{row: r, problems: []rows.Problem{{Code: "seven", Message: fmt.Sprint(rec.Num)}}}
	}
	return prepared{row: r}
}

// Rows are prepared on every core and still emitted in file order, each once,
// with their own problems.
func TestInParallelKeepsFileOrder(t *testing.T) {
	const n = 10*prepareChunk + 17
	var got []int64
	err := InParallel(context.Background(), &fakeSource{n: n}, numbered, func(p *prepared) error {
		if (p.row.Num%7 == 0) != (len(p.problems) == 1) {
			t.Fatalf("row %d came with problems %v", p.row.Num, p.problems)
		}
		got = append(got, p.row.Num)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d rows emitted, want %d", len(got), n)
	}
	for i, num := range got {
		if num != int64(i+1) {
			t.Fatalf("row %d emitted at position %d", num, i)
		}
	}
}

// A file that cannot be read further fails after every row before it was
// emitted; an emit that fails stops everything and is what is returned.
func TestInParallelErrors(t *testing.T) {
	broken := errors.New("broken file")
	var emitted int
	err := InParallel(context.Background(), &fakeSource{n: 3*prepareChunk + 5, err: broken}, numbered, func(*prepared) error {
		emitted++
		return nil
	})
	if !errors.Is(err, broken) || emitted != 3*prepareChunk+5 {
		t.Fatalf("read error: %v after %d rows, want %v after %d", err, emitted, broken, 3*prepareChunk+5)
	}
	full := errors.New("disk full")
	emitted = 0
	err = InParallel(context.Background(), &fakeSource{n: 50 * prepareChunk}, numbered, func(*prepared) error {
		emitted++
		if emitted == prepareChunk+3 {
			return full
		}
		return nil
	})
	if !errors.Is(err, full) || emitted != prepareChunk+3 {
		t.Fatalf("emit error: %v after %d rows", err, emitted)
	}
}

// Stopped from outside (the process shuts down), reading fails: a file cut
// short is never taken for the whole file.
func TestInParallelStoppedIsNotTheEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var emitted int
	err := InParallel(ctx, &fakeSource{n: 1000 * prepareChunk}, numbered, func(*prepared) error {
		emitted++
		if emitted == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("after %d rows: %v, want context.Canceled", emitted, err)
	}
}
