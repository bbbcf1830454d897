package rows

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/inlet-dev/inlet/internal/jsonenc"
)

// Raw is one row of a batch as it was read: its head (Num, ID, Op) decoded,
// the rest kept as the batch's bytes and decoded only on demand. Profiled,
// decoding every row into maps and encoding it again was the largest part of
// the phases that change only a row's head (transforming's id, parsing's
// creates) or write its record as JSON (processing): with Raw they read the
// fields they need, copy the rest (RowWriter.WriteRaw) and transcode the
// record straight to JSON (AppendRecordJSON).
type Raw struct {
	Num int64
	ID  string
	Op  string

	// row is the row decoded, for a batch in an earlier format (NDJSON, the
	// first binary version): every method then works on it.
	row *Row

	from  *rowReader // the reader whose names the bytes refer to
	names []string   // that reader's names as of this row
	src   string     // the row's body
	// where Data, Raw, the record flag and Warnings start in src
	dataAt, rawAt, recAt, warnAt int
}

// RecordAs says what WriteRaw writes as a row's Record.
type RecordAs uint8

const (
	RecordKept   RecordAs = iota // the row's Record as read
	RecordIsData                 // Data is the record (parsing's creates and unchanged rows)
	RecordNone                   // no record
)

// DecodeRaw reads the next row as a Raw; it returns io.EOF at the end. Only
// does not apply: a Raw's fields are read on demand.
func (d *Decoder) DecodeRaw(r *Raw) error {
	d.start()
	if d.bin == nil || d.bin.v1 {
		var only map[string]bool
		if d.bin != nil {
			only, d.bin.only = d.bin.only, nil
			defer func() { d.bin.only = only }()
		}
		var row Row
		if err := d.Decode(&row); err != nil {
			return err
		}
		*r = Raw{Num: row.Num, ID: row.ID, Op: row.Op, row: &row}
		return nil
	}
	return d.bin.readRaw(r)
}

func (d *rowReader) readRaw(r *Raw) error {
	var p parser
	if err := d.body(&p); err != nil {
		return err
	}
	*r = Raw{from: d, names: p.names, src: p.src}
	r.Num, r.ID, r.Op = p.head()
	// The rest is stepped over, not decoded: to know where each part starts
	// and that the row is whole before its bytes are copied anywhere.
	r.dataAt = p.off()
	p.skipObject()
	r.rawAt = p.off()
	p.skip()
	r.recAt = p.off()
	switch p.byte() {
	case recordNone, recordIsData:
	case recordOwn:
		p.skipObject()
	default:
		p.fail()
	}
	r.warnAt = p.off()
	p.skipWarnings()
	if p.err == nil && len(p.b) != 0 {
		p.fail()
	}
	if p.err != nil {
		return fmt.Errorf("batch row %d: %w", d.row, p.err)
	}
	return nil
}

// at is a parser of r's body from offset off. The body is a string, never
// written: the parser reads its bytes in place.
func (r *Raw) at(off int) parser {
	return parser{b: bytesAt(r.src, off), src: r.src, names: r.names}
}

// Row decodes the whole row.
func (r *Raw) Row() (Row, error) {
	if r.row != nil {
		return *r.row, nil
	}
	row := Row{Num: r.Num, ID: r.ID, Op: r.Op}
	p := r.at(r.dataAt)
	p.tail(&row, nil)
	if p.err != nil {
		return Row{}, fmt.Errorf("row %d: %w", r.Num, p.err)
	}
	return row, nil
}

// Fields decodes the named fields of Data (nil when it has none of them).
func (r *Raw) Fields(only map[string]bool) map[string]any {
	if r.row != nil {
		return pick(r.row.Data, only)
	}
	p := r.at(r.dataAt)
	return p.objectOnly(only)
}

// RecordFields decodes the named fields of Record.
func (r *Raw) RecordFields(only map[string]bool) map[string]any {
	if r.row != nil {
		return pick(r.row.Record, only)
	}
	switch r.src[r.recAt] {
	case recordIsData:
		return r.Fields(only)
	case recordOwn:
		p := r.at(r.recAt + 1)
		return p.objectOnly(only)
	}
	return nil
}

func pick(m map[string]any, only map[string]bool) map[string]any {
	var out map[string]any
	for k := range only {
		if v, ok := m[k]; ok {
			if out == nil {
				out = make(map[string]any, len(only))
			}
			out[k] = v
		}
	}
	return out
}

// RecordIsData reports whether the row's record is its data (written with
// RecordIsData, or decoded with Record and Data one map).
func (r *Raw) RecordIsData() bool {
	if r.row != nil {
		return len(r.row.Record) > 0 && sameMap(r.row.Record, r.row.Data)
	}
	return r.src[r.recAt] == recordIsData
}

// HasWarnings reports whether the row carries warnings.
func (r *Raw) HasWarnings() bool {
	if r.row != nil {
		return len(r.row.Warnings) > 0
	}
	return r.src[r.warnAt] != 0
}

// AppendDataJSON appends the JSON of Data exactly as jsonenc.Append writes
// the decoded map.
func (r *Raw) AppendDataJSON(dst []byte) ([]byte, error) {
	if r.row != nil {
		return jsonenc.Append(dst, r.row.Data)
	}
	return r.appendJSON(dst, r.dataAt, func(row *Row) map[string]any { return row.Data })
}

// AppendRecordJSON appends the JSON of Record exactly as jsonenc.Append
// writes the decoded map.
func (r *Raw) AppendRecordJSON(dst []byte) ([]byte, error) {
	if r.row != nil {
		return jsonenc.Append(dst, r.row.Record)
	}
	record := func(row *Row) map[string]any { return row.Record }
	switch r.src[r.recAt] {
	case recordIsData:
		return r.appendJSON(dst, r.dataAt, record)
	case recordOwn:
		return r.appendJSON(dst, r.recAt+1, record)
	}
	return append(dst, "null"...), nil
}

// appendJSON transcodes the object at off; a value only encoding/json can
// write (a tagJSON value, an invalid number) sends the row the long way:
// decoded, then written by jsonenc, errors included.
func (r *Raw) appendJSON(dst []byte, off int, part func(*Row) map[string]any) ([]byte, error) {
	p := r.at(off)
	if out, ok := appendObjectJSON(dst, &p, true); ok && p.err == nil {
		return out, nil
	}
	row, err := r.Row()
	if err != nil {
		return dst, err
	}
	return jsonenc.Append(dst, part(&row))
}

type jsonField struct {
	name string
	at   int
}

// appendObjectJSON writes the object p is at with its keys sorted, as
// jsonenc writes the map it decodes to: at the top an empty object is a nil
// map ("null"), inside a value an empty map ("{}").
func appendObjectJSON(dst []byte, p *parser, top bool) ([]byte, bool) {
	n := p.uvarint()
	if p.err != nil || n > uint64(len(p.b)) {
		return dst, false
	}
	if n == 0 {
		if top {
			return append(dst, "null"...), true
		}
		return append(dst, "{}"...), true
	}
	var buf [32]jsonField
	fields := buf[:0]
	for i := uint64(0); i < n && p.err == nil; i++ {
		name := p.name()
		fields = append(fields, jsonField{name: name, at: p.off()})
		p.skipValue()
	}
	if p.err != nil {
		return dst, false
	}
	end := p.b
	sortFields(fields)
	dst = append(dst, '{')
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonenc.AppendString(dst, f.name)
		dst = append(dst, ':')
		p.b = bytesAt(p.src, f.at)
		var ok bool
		if dst, ok = appendValueJSON(dst, p); !ok {
			return dst, false
		}
	}
	p.b = end
	return append(dst, '}'), true
}

// sortFields sorts by name: an insertion sort, as a record has few fields
// (and a generic sort would move them to the heap).
func sortFields(f []jsonField) {
	for i := 1; i < len(f); i++ {
		for j := i; j > 0 && f[j].name < f[j-1].name; j-- {
			f[j], f[j-1] = f[j-1], f[j]
		}
	}
}

// bytesAt is s from off as bytes, in place: only ever read.
func bytesAt(s string, off int) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))[off:]
}

func appendValueJSON(dst []byte, p *parser) ([]byte, bool) {
	switch p.byte() {
	case tagNil:
		return append(dst, "null"...), true
	case tagFalse:
		return append(dst, "false"...), true
	case tagTrue:
		return append(dst, "true"...), true
	case tagString:
		return jsonenc.AppendString(dst, p.string()), p.err == nil
	case tagNumber:
		s := p.string()
		if p.err != nil {
			return dst, false
		}
		return jsonenc.AppendNumber(dst, s)
	case tagArray:
		n := p.uvarint()
		if p.err != nil || n > uint64(len(p.b)) {
			return dst, false
		}
		dst = append(dst, '[')
		for i := uint64(0); i < n; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendValueJSON(dst, p); !ok {
				return dst, false
			}
		}
		return append(dst, ']'), true
	case tagObject:
		return appendObjectJSON(dst, p, false)
	}
	return dst, false // tagJSON, or corrupt
}

// WriteRaw appends r with a new id and op and its record as rec says. The
// rest of the row is copied as it was read: byte for byte when this batch's
// names are a prefix of r's batch's (the names it lacks lead the row), else
// with every name translated.
func (e *RowWriter) WriteRaw(r *Raw, id, op string, rec RecordAs) error {
	if r.row != nil {
		row := *r.row
		row.ID, row.Op = id, op
		switch rec {
		case RecordIsData:
			row.Record = row.Data
		case RecordNone:
			row.Record = nil
		}
		return e.Write(&row)
	}
	e.fresh = len(e.list)
	b := appendHead(e.buf[:0], r.Num, id, op)
	if e.mirror == nil && len(e.list) == 0 {
		e.mirror = r.from
	}
	if e.mirror == r.from {
		for _, name := range r.names[min(len(e.list), len(r.names)):] {
			e.names[name] = uint64(len(e.list))
			e.list = append(e.list, name)
		}
		b = append(b, r.src[r.dataAt:r.recAt]...)
		b = r.appendRecord(b, rec, func(b []byte, p *parser) []byte { return append(b, r.src[r.recAt:r.warnAt]...) })
	} else {
		p := r.at(r.dataAt)
		b = e.copyObject(b, &p)
		b = append(b, r.src[r.rawAt:r.recAt]...)
		b = r.appendRecord(b, rec, func(b []byte, q *parser) []byte {
			q.byte()
			b = e.copyObject(append(b, recordOwn), q)
			if q.err != nil {
				p.err = q.err
			}
			return b
		})
		if p.err != nil {
			return fmt.Errorf("row %d: %w", r.Num, p.err)
		}
	}
	b = append(b, r.src[r.warnAt:]...)
	e.buf = b
	return e.frame(r.Num, b)
}

// appendRecord writes the record part as rec says; kept copies it with own
// when the row has a record of its own.
func (r *Raw) appendRecord(b []byte, rec RecordAs, own func([]byte, *parser) []byte) []byte {
	switch {
	case rec == RecordIsData:
		return append(b, recordIsData)
	case rec == RecordNone:
		return append(b, recordNone)
	case r.src[r.recAt] == recordOwn:
		p := r.at(r.recAt)
		return own(b, &p)
	default:
		return append(b, r.src[r.recAt])
	}
}

// copyObject copies the object p is at, its names in this batch's numbers.
func (e *RowWriter) copyObject(b []byte, p *parser) []byte {
	n := p.uvarint()
	b = binary.AppendUvarint(b, n)
	for i := uint64(0); i < n && p.err == nil; i++ {
		b = e.appendName(b, p.name())
		b = e.copyValue(b, p)
	}
	return b
}

func (e *RowWriter) copyValue(b []byte, p *parser) []byte {
	if len(p.b) == 0 {
		p.fail()
		return b
	}
	switch p.b[0] {
	case tagObject:
		p.byte()
		return e.copyObject(append(b, tagObject), p)
	case tagArray:
		p.byte()
		n := p.uvarint()
		b = binary.AppendUvarint(append(b, tagArray), n)
		for i := uint64(0); i < n && p.err == nil; i++ {
			b = e.copyValue(b, p)
		}
		return b
	}
	start := p.off()
	p.skipValue()
	return append(b, p.src[start:p.off()]...)
}
