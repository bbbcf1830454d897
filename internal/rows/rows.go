// Package rows is the batch format phases pass to each other through the blob
// store (binary.go; NDJSON is still read), written and read as a stream so
// memory is bounded by one row, not by the batch or the file, and the
// NDJSON of rejected rows.
package rows

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// Row is one data row of the import file on its way through the phases.
type Row struct {
	// Num is the row's number in the original file (1 = first data row).
	Num int64 `json:"n"`
	// Data holds the row's fields, coerced to the schema's types. Fields the
	// file left empty are absent.
	Data map[string]any `json:"d,omitempty"`
	// Raw is the row as the file had it (CSV: cells by header; JSON: the
	// object), kept so a rejected row can be given back verbatim.
	Raw json.RawMessage `json:"raw,omitempty"`
	// ID is the record id injected by transforming.
	ID string `json:"id,omitempty"`
	// Op is what processing will do: create | update | unchanged | delete
	// (revert, in a revert import).
	Op string `json:"op,omitempty"`
	// Record is the full record processing writes (merge of stored and given).
	Record map[string]any `json:"rec,omitempty"`
	// Warnings are notes about a row that is still imported.
	Warnings []Problem `json:"w,omitempty"`
}

// Ops a row can carry.
const (
	OpCreate    = "create"
	OpUpdate    = "update"
	OpUnchanged = "unchanged"
	OpDelete    = "delete"
	// OpRevert is a row of a revert import: put record ID back as it was.
	OpRevert = "revert"
)

// Problem is one error or warning about a row.
type Problem struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// ProblemSeparator joins the messages of one row's problems.
const ProblemSeparator = "; "

// Summary is a row's problems as one: the first names the code and the
// field (it explains the rest: coercion before schema before key), the
// message holds all of them.
func Summary(problems []Problem) Problem {
	if len(problems) == 0 {
		return Problem{}
	}
	sum := problems[0]
	for _, p := range problems[1:] {
		sum.Message += ProblemSeparator + p.Message
	}
	return sum
}

// Reject is a row that left the pipeline, with why. Skipped rows (duplicates,
// deletes of missing records) are rejects with Skipped set: they are reported
// but counted in stats.skipped, not stats.failed.
type Reject struct {
	Row     int64           `json:"row"`
	Phase   string          `json:"phase"`
	Code    string          `json:"code"`
	Field   string          `json:"field"`
	Message string          `json:"message"`
	Skipped bool            `json:"skipped,omitempty"`
	Warning bool            `json:"warning,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Encoder writes values as NDJSON.
type Encoder struct {
	w   *bufio.Writer
	enc *json.Encoder
	n   int64
}

// NewEncoder writes to w; call Flush when done.
func NewEncoder(w io.Writer) *Encoder {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &Encoder{w: bw, enc: enc}
}

// Encode writes one value as one line.
func (e *Encoder) Encode(v any) error {
	e.n++
	return e.enc.Encode(v)
}

// Count is the number of values written.
func (e *Encoder) Count() int64 { return e.n }

// Flush writes buffered data.
func (e *Encoder) Flush() error { return e.w.Flush() }

// Decoder reads the values of a stream one at a time: NDJSON, or the row
// batch format (NewRowWriter), told apart by the stream's first bytes.
type Decoder struct {
	br   *bufio.Reader
	sc   *bufio.Scanner
	bin  *rowReader
	line int
}

// NewDecoder reads from r. NDJSON lines may be up to 64 MiB.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{br: bufio.NewReaderSize(r, 64<<10)}
}

func (d *Decoder) start() {
	if d.sc != nil || d.bin != nil {
		return
	}
	if head, err := d.br.Peek(len(magic)); err == nil && (string(head) == magic || string(head) == magicV1) {
		_, _ = d.br.Discard(len(magic))
		d.bin = &rowReader{r: d.br, v1: string(head) == magicV1}
		return
	}
	d.sc = bufio.NewScanner(d.br)
	d.sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
}

// Only makes the rows read after it carry Num, ID, Op and, of Data and
// Record, only the named fields (none: neither); Raw and Warnings stay
// empty. A scan that needs a row's id or keys then steps over the rest of
// the row without allocating it. NDJSON rows are still read whole.
func (d *Decoder) Only(fields ...string) {
	d.start()
	if d.bin == nil {
		return
	}
	d.bin.only = make(map[string]bool, len(fields))
	for _, f := range fields {
		d.bin.only[f] = true
	}
}

// Decode reads the next value into v; it returns io.EOF at the end. A row
// batch holds rows only: v must be a *Row.
func (d *Decoder) Decode(v any) error {
	d.start()
	if d.bin != nil {
		r, ok := v.(*Row)
		if !ok {
			return fmt.Errorf("a row batch holds rows, not %T", v)
		}
		return d.bin.read(r)
	}
	for d.sc.Scan() {
		d.line++
		b := d.sc.Bytes()
		if len(b) == 0 {
			continue
		}
		// UseNumber: numbers cross phases as written (json.Number), so an
		// integer beyond 2^53 or a long decimal is stored exactly.
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("batch line %d: %w", d.line, err)
		}
		return nil
	}
	if err := d.sc.Err(); err != nil {
		return err
	}
	return io.EOF
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
