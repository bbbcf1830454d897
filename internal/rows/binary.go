package rows

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
)

// The row batch format. Batches cross every phase, so their encoding is on
// the hot path of an import: profiled, encoding/json over map[string]any was
// two thirds of the pipeline's CPU. A batch is
//
//	magic, then per row: uvarint(len(body)), body
//
// and a body is the names the row uses first (a count, then each name),
// then the row's fields in a fixed order, values tagged by type, field names
// referred to by number. Names lead the row, rather than sitting where they
// are first used, so a phase can copy a row's bytes into its own batch (Raw,
// WriteRaw) and give the names it lacks in front of them.
// A reader tells the format by its first bytes, so batches written as NDJSON
// or in the first binary version (names inline at first use) by an earlier
// version, or a test, are read as before.
const (
	magic   = "\x00IRB2\n"
	magicV1 = "\x00IRB1\n"
)

// MaxRowBytes bounds one encoded row (like the NDJSON reader's line limit):
// a corrupt length can never make the reader allocate more.
const MaxRowBytes = 64 << 20

// Value tags.
const (
	tagNil byte = iota
	tagFalse
	tagTrue
	tagString
	tagNumber // json.Number, kept as written
	tagArray
	tagObject
	tagJSON // any other Go value, as its JSON
)

// Record field presence.
const (
	recordNone byte = iota
	recordOwn
	recordIsData // Record is the same map as Data (parsing's creates): written once
)

// RowWriter writes rows in the batch format.
type RowWriter struct {
	w     *bufio.Writer
	buf   []byte
	pre   []byte
	names map[string]uint64
	list  []string
	fresh int // names defined by the row being written: list[fresh:]
	// mirror, when set, is the reader whose names this batch's are a
	// prefix of: its rows' bytes can be copied as they are.
	mirror *rowReader
	n      int64
	began  bool
}

// NewRowWriter writes to w; call Flush when done.
func NewRowWriter(w io.Writer) *RowWriter {
	return &RowWriter{w: bufio.NewWriterSize(w, 64<<10), names: map[string]uint64{}}
}

// Write appends one row.
func (e *RowWriter) Write(r *Row) error {
	e.fresh = len(e.list)
	b := e.buf[:0]
	b = appendHead(b, r.Num, r.ID, r.Op)
	var err error
	if b, err = e.appendMap(b, r.Data); err != nil {
		return fmt.Errorf("row %d: %w", r.Num, err)
	}
	b = appendBytes(b, r.Raw)
	switch {
	case len(r.Record) == 0:
		b = append(b, recordNone)
	case len(r.Data) > 0 && sameMap(r.Record, r.Data):
		b = append(b, recordIsData)
	default:
		b = append(b, recordOwn)
		if b, err = e.appendMap(b, r.Record); err != nil {
			return fmt.Errorf("row %d: %w", r.Num, err)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(r.Warnings)))
	for _, p := range r.Warnings {
		b = appendString(b, p.Code)
		b = appendString(b, p.Field)
		b = appendString(b, p.Message)
	}
	e.buf = b
	return e.frame(r.Num, b)
}

func appendHead(b []byte, num int64, id, op string) []byte {
	b = binary.AppendVarint(b, num)
	b = appendString(b, id)
	return appendString(b, op)
}

// frame writes a row: its length, the names it defined, its body.
func (e *RowWriter) frame(num int64, body []byte) error {
	pre := binary.AppendUvarint(e.pre[:0], uint64(len(e.list)-e.fresh))
	for _, name := range e.list[e.fresh:] {
		pre = appendString(pre, name)
	}
	e.pre = pre
	size := len(pre) + len(body)
	if size > MaxRowBytes {
		return fmt.Errorf("row %d: %d bytes encoded, more than %d", num, size, MaxRowBytes)
	}
	if !e.began {
		e.began = true
		if _, err := e.w.WriteString(magic); err != nil {
			return err
		}
	}
	var head [binary.MaxVarintLen64]byte
	if _, err := e.w.Write(head[:binary.PutUvarint(head[:], uint64(size))]); err != nil {
		return err
	}
	if _, err := e.w.Write(pre); err != nil {
		return err
	}
	if _, err := e.w.Write(body); err != nil {
		return err
	}
	e.n++
	return nil
}

// Count is the number of rows written.
func (e *RowWriter) Count() int64 { return e.n }

// Flush writes buffered data.
func (e *RowWriter) Flush() error { return e.w.Flush() }

func sameMap(a, b map[string]any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendName writes a field name by its number; a name the batch has not
// had yet takes the next number and is given in the row's prelude.
func (e *RowWriter) appendName(b []byte, name string) []byte {
	if i, ok := e.names[name]; ok {
		return binary.AppendUvarint(b, i+1)
	}
	i := uint64(len(e.list))
	e.names[name] = i
	e.list = append(e.list, name)
	e.mirror = nil // the names now differ from any reader's
	return binary.AppendUvarint(b, i+1)
}

// appendMap writes an object; nil and empty are both written as 0 fields and
// read back as nil (as the NDJSON format's omitempty did).
func (e *RowWriter) appendMap(b []byte, m map[string]any) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(m)))
	var err error
	for k, v := range m {
		b = e.appendName(b, k)
		if b, err = e.appendValue(b, v); err != nil {
			return b, err
		}
	}
	return b, nil
}

func (e *RowWriter) appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, tagNil), nil
	case bool:
		if x {
			return append(b, tagTrue), nil
		}
		return append(b, tagFalse), nil
	case string:
		return appendString(append(b, tagString), x), nil
	case json.Number:
		return appendString(append(b, tagNumber), string(x)), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return b, fmt.Errorf("unsupported number %v", x)
		}
		return appendString(append(b, tagNumber), strconv.FormatFloat(x, 'g', -1, 64)), nil
	case int:
		return appendString(append(b, tagNumber), strconv.Itoa(x)), nil
	case int64:
		return appendString(append(b, tagNumber), strconv.FormatInt(x, 10)), nil
	case []any:
		b = binary.AppendUvarint(append(b, tagArray), uint64(len(x)))
		var err error
		for _, el := range x {
			if b, err = e.appendValue(b, el); err != nil {
				return b, err
			}
		}
		return b, nil
	case map[string]any:
		return e.appendMap(append(b, tagObject), x)
	default:
		// Whatever else a phase put in a row travels as its JSON, and is read
		// back as encoding/json would have read it.
		j, err := json.Marshal(x)
		if err != nil {
			return b, err
		}
		return appendBytes(append(b, tagJSON), j), nil
	}
}

// rowReader reads the batch format; Decoder uses it once it saw the magic.
type rowReader struct {
	r     *bufio.Reader
	v1    bool // names inline at first use, no prelude
	buf   []byte
	names []string
	row   int
	// only, when not nil, limits what is decoded: Num, ID, Op and these
	// fields of Data; the rest of each row is stepped over (no allocation).
	only map[string]bool
}

var errCorrupt = errors.New("corrupt row batch")

// body reads the next row's bytes; p parses them (its prelude read).
func (d *rowReader) body(p *parser) error {
	size, err := binary.ReadUvarint(d.r)
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	d.row++
	if err != nil {
		return fmt.Errorf("batch row %d: %w", d.row, err)
	}
	if size > MaxRowBytes {
		return fmt.Errorf("batch row %d: %w: %d bytes", d.row, errCorrupt, size)
	}
	if cap(d.buf) < int(size) {
		d.buf = make([]byte, size)
	}
	body := d.buf[:size]
	if _, err := io.ReadFull(d.r, body); err != nil {
		return fmt.Errorf("batch row %d: %w", d.row, err)
	}
	// One string holds the row's text: every string of the row is a part of
	// it, one allocation a row instead of one a value.
	*p = parser{b: body, src: string(body), names: d.names, v1: d.v1}
	if !d.v1 {
		n := p.uvarint()
		if n > uint64(len(p.b)) {
			p.fail()
		}
		for i := uint64(0); i < n && p.err == nil; i++ {
			p.names = append(p.names, p.string())
		}
		d.names = p.names
	}
	if p.err != nil {
		return fmt.Errorf("batch row %d: %w", d.row, p.err)
	}
	return nil
}

func (d *rowReader) read(r *Row) error {
	var p parser
	if err := d.body(&p); err != nil {
		return err
	}
	*r = Row{}
	r.Num, r.ID, r.Op = p.head()
	p.tail(r, d.only)
	d.names = p.names
	if p.err != nil {
		return fmt.Errorf("batch row %d: %w", d.row, p.err)
	}
	return nil
}

// head reads a row's number, id and op.
func (p *parser) head() (num int64, id, op string) { return p.varint(), p.string(), p.string() }

// tail reads a row's parts after its head, to the end of the body.
func (p *parser) tail(r *Row, only map[string]bool) {
	r.Data = p.objectOf(only)
	if only != nil {
		p.skip()
	} else if raw := p.bytes(); len(raw) > 0 {
		r.Raw = json.RawMessage(raw)
	}
	switch p.byte() {
	case recordNone:
	case recordIsData:
		r.Record = r.Data
	case recordOwn:
		r.Record = p.objectOf(only)
	default:
		p.fail()
	}
	if only != nil {
		p.skipWarnings()
	} else if n := p.uvarint(); n > 0 && p.err == nil {
		if n > uint64(len(p.b)) {
			p.fail()
		} else {
			r.Warnings = make([]Problem, n)
			for i := range r.Warnings {
				r.Warnings[i] = Problem{Code: p.string(), Field: p.string(), Message: p.string()}
			}
		}
	}
	if p.err == nil && len(p.b) != 0 {
		p.fail()
	}
}

// parser reads one row body; the first error sticks and every later read
// returns a zero value.
type parser struct {
	b     []byte
	src   string // b as it was at the start: strings are cut from it
	names []string
	v1    bool
	err   error
}

// off is where p is in the body.
func (p *parser) off() int { return len(p.src) - len(p.b) }

func (p *parser) fail() {
	if p.err == nil {
		p.err = errCorrupt
	}
	p.b = nil
}

func (p *parser) byte() byte {
	if len(p.b) == 0 {
		p.fail()
		return 0
	}
	c := p.b[0]
	p.b = p.b[1:]
	return c
}

func (p *parser) uvarint() uint64 {
	v, n := binary.Uvarint(p.b)
	if n <= 0 {
		p.fail()
		return 0
	}
	p.b = p.b[n:]
	return v
}

func (p *parser) varint() int64 {
	v, n := binary.Varint(p.b)
	if n <= 0 {
		p.fail()
		return 0
	}
	p.b = p.b[n:]
	return v
}

func (p *parser) bytes() []byte {
	n := p.uvarint()
	if n > uint64(len(p.b)) {
		p.fail()
		return nil
	}
	s := p.b[:n:n]
	p.b = p.b[n:]
	// The body buffer is reused for the next row: hand out a copy.
	return append([]byte(nil), s...)
}

func (p *parser) string() string {
	n := p.uvarint()
	if n > uint64(len(p.b)) {
		p.fail()
		return ""
	}
	off := len(p.src) - len(p.b)
	s := p.src[off : off+int(n)]
	p.b = p.b[n:]
	return s
}

func (p *parser) name() string {
	i := p.uvarint()
	if p.err != nil {
		return ""
	}
	if i == 0 && p.v1 {
		s := p.string()
		p.names = append(p.names, s)
		return s
	}
	if i == 0 || i > uint64(len(p.names)) {
		p.fail()
		return ""
	}
	return p.names[i-1]
}

func (p *parser) object() map[string]any {
	n := p.uvarint()
	if n == 0 || p.err != nil {
		return nil
	}
	if n > uint64(len(p.b)) {
		p.fail()
		return nil
	}
	m := make(map[string]any, n)
	for i := uint64(0); i < n && p.err == nil; i++ {
		k := p.name()
		m[k] = p.value()
	}
	return m
}

// objectOf reads an object whole (only nil) or as objectOnly.
func (p *parser) objectOf(only map[string]bool) map[string]any {
	if only == nil {
		return p.object()
	}
	return p.objectOnly(only)
}

// objectOnly reads an object keeping only the fields in only (nil when none
// of them is there); the names of the others still enter the dictionary.
func (p *parser) objectOnly(only map[string]bool) map[string]any {
	n := p.uvarint()
	if n == 0 || p.err != nil {
		return nil
	}
	if n > uint64(len(p.b)) {
		p.fail()
		return nil
	}
	var m map[string]any
	for i := uint64(0); i < n && p.err == nil; i++ {
		k := p.name()
		if !only[k] {
			p.skipValue()
			continue
		}
		if m == nil {
			m = make(map[string]any, len(only))
		}
		m[k] = p.value()
	}
	return m
}

// skipWarnings steps over a row's warnings, its last part.
func (p *parser) skipWarnings() {
	n := p.uvarint()
	if n > uint64(len(p.b)) {
		p.fail()
		return
	}
	for i := uint64(0); i < 3*n && p.err == nil; i++ {
		p.skip()
	}
}

// skip steps over a length-prefixed string or byte run.
func (p *parser) skip() {
	n := p.uvarint()
	if n > uint64(len(p.b)) {
		p.fail()
		return
	}
	p.b = p.b[n:]
}

func (p *parser) skipObject() {
	n := p.uvarint()
	if n > uint64(len(p.b)) {
		p.fail()
		return
	}
	for i := uint64(0); i < n && p.err == nil; i++ {
		p.name()
		p.skipValue()
	}
}

func (p *parser) skipValue() {
	switch p.byte() {
	case tagNil, tagFalse, tagTrue:
	case tagString, tagNumber, tagJSON:
		p.skip()
	case tagArray:
		n := p.uvarint()
		if n > uint64(len(p.b)) {
			p.fail()
			return
		}
		for i := uint64(0); i < n && p.err == nil; i++ {
			p.skipValue()
		}
	case tagObject:
		p.skipObject()
	default:
		p.fail()
	}
}

func (p *parser) value() any {
	switch p.byte() {
	case tagNil:
		return nil
	case tagFalse:
		return false
	case tagTrue:
		return true
	case tagString:
		return p.string()
	case tagNumber:
		return json.Number(p.string())
	case tagArray:
		n := p.uvarint()
		if n > uint64(len(p.b)) {
			p.fail()
			return nil
		}
		a := make([]any, n)
		for i := range a {
			a[i] = p.value()
		}
		return a
	case tagObject:
		m := p.object()
		if m == nil && p.err == nil {
			m = map[string]any{}
		}
		return m
	case tagJSON:
		var v any
		dec := json.NewDecoder(bytesReader(p.bytes()))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil && p.err == nil {
			p.err = err
		}
		return v
	default:
		p.fail()
		return nil
	}
}
