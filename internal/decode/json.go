package decode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// lineCounter maps byte offsets of a stream to line:column for messages. It
// remembers only the newlines the consumer has not yet asked past, so memory
// stays bounded by the decoder's read-ahead, not by the file.
type lineCounter struct {
	r      io.Reader
	off    int64
	keep   []byte // bytes from keepAt on: the current element and read-ahead
	keepAt int64
	nl     []int64 // offsets of newlines at or after the last query
	base   int64   // newlines before them
	lastNL int64   // offset of the newline before them, -1 if none
}

func (c *lineCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	b := p[:n]
	c.keep = append(c.keep, b...)
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			break
		}
		c.nl = append(c.nl, c.off+int64(i+j))
		i += j + 1
	}
	c.off += int64(n)
	return n, err
}

// mark forgets the bytes before offset x: no later error can point there.
func (c *lineCounter) mark(x int64) {
	if d := x - c.keepAt; d > 0 && d <= int64(len(c.keep)) {
		c.keep = c.keep[d:]
		c.keepAt = x
	}
}

// pos returns the 1-based line and column of offset x. Queries must not go
// backwards past an earlier query.
func (c *lineCounter) pos(x int64) (line, col int64) {
	i := 0
	for i < len(c.nl) && c.nl[i] < x {
		i++
	}
	if i > 0 {
		c.base += int64(i)
		c.lastNL = c.nl[i-1]
		c.nl = append(c.nl[:0], c.nl[i:]...)
	}
	return c.base + 1, x - c.lastNL
}

type jsonSource struct {
	lc  *lineCounter
	dec *json.Decoder
	num int64
	eof bool
	det *Detected
}

func openJSON(r io.Reader, det *Detected) (*jsonSource, error) {
	lc := &lineCounter{r: r, lastNL: -1}
	s := &jsonSource{lc: lc, dec: json.NewDecoder(lc), det: det}
	tok, err := s.dec.Token()
	if err == io.EOF {
		return nil, &FileError{Code: CodeParseJSON, Message: "file is empty: a JSON import is an array of objects"}
	}
	if err != nil {
		return nil, s.syntaxError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, &FileError{Code: CodeParseJSON, Line: 1,
			Message: fmt.Sprintf("the file must be a JSON array of objects, it starts with %s", describeToken(tok))}
	}
	return s, nil
}

func describeToken(tok any) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return "an object (wrap the records in [ ])"
		}
		return fmt.Sprintf("%q", string(t))
	case string:
		return "a string"
	case nil:
		return "null"
	case bool:
		return "a boolean"
	}
	return "a number"
}

func (s *jsonSource) Header() []string { return nil }

func (s *jsonSource) Detected() Detected { return *s.det }

func (s *jsonSource) Close() error { return nil }

func (s *jsonSource) Next() (Record, error) {
	if s.eof {
		return Record{}, io.EOF
	}
	if !s.dec.More() {
		if _, err := s.dec.Token(); err != nil { // the closing ]
			return Record{}, s.syntaxError(err)
		}
		if _, err := s.dec.Token(); err != io.EOF {
			line, col := s.lc.pos(s.dec.InputOffset())
			return Record{}, &FileError{Code: CodeParseJSON, Row: s.num, Line: line,
				Message: fmt.Sprintf("column %d: unexpected data after the closing ] of the array", col)}
		}
		s.eof = true
		return Record{}, io.EOF
	}
	start := s.dec.InputOffset()
	s.lc.mark(start)
	var raw json.RawMessage
	if err := s.dec.Decode(&raw); err != nil {
		return Record{}, s.elementError(start, err)
	}
	s.num++
	line, _ := s.lc.pos(s.dec.InputOffset() - int64(len(raw)))
	if !utf8.Valid(raw) {
		return Record{}, &FileError{Code: CodeParseJSON, Row: s.num, Line: line, Message: "file is not valid UTF-8"}
	}
	rec := Record{Num: s.num, Line: line, Raw: raw}
	vals, kindErr := decodeObject(raw)
	if kindErr != "" {
		rec.Err = &RowError{Row: s.num, Line: line, Code: CodeParseJSON,
			Message: "array element is " + kindErr + ", not an object"}
		return rec, nil
	}
	rec.Values = vals
	return rec, nil
}

// elementError locates a syntax error inside an array element.
// json.Decoder's SyntaxError.Offset is not reliable after tokens have been
// read (it is off by the buffer position), so the kept bytes of the element
// are re-checked with json.Unmarshal, whose offsets are exact.
func (s *jsonSource) elementError(start int64, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return s.syntaxError(err)
	}
	b := s.lc.keep
	at := s.lc.keepAt
	for len(b) > 0 && (b[0] == ',' || b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b, at = b[1:], at+1
	}
	var v any
	if err2 := json.Unmarshal(b, &v); errors.As(err2, &se) && se.Offset > 0 {
		off := at + se.Offset - 1
		line, col := s.lc.pos(off)
		return &FileError{Code: CodeParseJSON, Row: s.num + 1, Line: line,
			Message: fmt.Sprintf("invalid JSON at line %d, column %d (byte offset %d): %s", line, col, off, se.Error())}
	}
	return s.syntaxError(err)
}

// syntaxError turns a decoder error into a *FileError with the position a
// user can go to: after a syntax error json.Decoder cannot resynchronize, so
// the rest of the array is unreadable.
func (s *jsonSource) syntaxError(err error) error {
	var se *json.SyntaxError
	off := s.lc.off
	msg := err.Error()
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF:
		msg = "the file ends inside the array (truncated upload?)"
	default:
		var ute *json.UnmarshalTypeError
		if !errors.As(err, &ute) {
			return fmt.Errorf("decode: reading JSON: %w", err)
		}
	}
	line, col := s.lc.pos(off)
	return &FileError{Code: CodeParseJSON, Row: s.num, Line: line,
		Message: fmt.Sprintf("invalid JSON at line %d, column %d (byte %d): %s", line, col, off, msg)}
}

// decodeObject decodes a JSON object keeping numbers as json.Number. For any
// other JSON value it returns what that value is instead.
func decodeObject(b []byte) (map[string]any, string) {
	switch b[0] {
	case '{':
	case '[':
		return nil, "an array"
	case '"':
		return nil, "a string"
	case 'n':
		return nil, "null"
	case 't', 'f':
		return nil, "a boolean"
	default:
		return nil, "a number"
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, "invalid: " + err.Error()
	}
	return m, ""
}

type jsonlSource struct {
	sc   *bufio.Scanner
	max  int
	line int64
	num  int64
	det  *Detected
}

func openJSONL(r io.Reader, opts Options, det *Detected) *jsonlSource {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(64<<10, opts.MaxRecordBytes)), opts.MaxRecordBytes)
	return &jsonlSource{sc: sc, max: opts.MaxRecordBytes, det: det}
}

func (s *jsonlSource) Header() []string { return nil }

func (s *jsonlSource) Detected() Detected { return *s.det }

func (s *jsonlSource) Close() error { return nil }

func (s *jsonlSource) Next() (Record, error) {
	for s.sc.Scan() {
		s.line++
		b := bytes.TrimSpace(s.sc.Bytes())
		if len(b) == 0 {
			continue
		}
		s.num++
		if !utf8.Valid(b) {
			return Record{}, &FileError{Code: CodeParseJSON, Row: s.num, Line: s.line, Message: "file is not valid UTF-8"}
		}
		rec := Record{Num: s.num, Line: s.line}
		fail := func(msg string) (Record, error) {
			rec.Err = &RowError{Row: s.num, Line: s.line, Code: CodeParseJSON, Message: msg}
			return rec, nil
		}
		if !json.Valid(b) {
			var v any
			err := json.Unmarshal(b, &v)
			rec.Raw, _ = json.Marshal(string(b))
			if err == nil {
				err = errors.New("invalid JSON")
			}
			return fail("not a JSON value: " + err.Error())
		}
		rec.Raw = append(json.RawMessage(nil), b...)
		vals, kind := decodeObject(rec.Raw)
		if kind != "" {
			return fail("line is " + kind + ", not a JSON object")
		}
		rec.Values = vals
		return rec, nil
	}
	if err := s.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Record{}, &FileError{Code: CodeParseJSON, Row: s.num + 1, Line: s.line + 1,
				Message: fmt.Sprintf("line is longer than %d bytes", s.max)}
		}
		return Record{}, fmt.Errorf("decode: reading JSONL: %w", err)
	}
	return Record{}, io.EOF
}
