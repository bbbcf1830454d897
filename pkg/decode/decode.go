// Package decode reads one import file (CSV, JSON array, JSONL) as a stream of
// records and prevalidates them (spec §4, phase 1). Memory is bounded by one
// record: nothing holds the whole file.
package decode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/inlet-dev/inlet/pkg/rows"
)

// Problem codes of rows the decoder could not read.
const (
	CodeParseCSV  = "parse.csv"
	CodeParseJSON = "parse.json"
)

// Formats Open understands.
const (
	FormatCSV   = "csv"
	FormatJSON  = "json"
	FormatJSONL = "jsonl"
)

// Options tune decoding.
type Options struct {
	// Delimiter separates CSV fields; 0 means ','.
	Delimiter rune
	// MaxRecordBytes bounds one JSON element or JSONL line (0 = 64 MiB), so
	// one absurd record cannot exhaust memory.
	MaxRecordBytes int
}

// Source streams the records of one file.
type Source interface {
	// Header is the CSV header row, cells trimmed (nil for JSON formats).
	Header() []string
	// Next returns the next record, io.EOF after the last one, or a
	// *FileError when the rest of the file cannot be read.
	Next() (Record, error)
}

// Record is one data row of the file.
type Record struct {
	// Num is the row number: 1 = first data row. Blank lines are not rows.
	Num int64
	// Line is the physical line the row starts on (1-based, header included),
	// so a user can find a row of a CSV with multi-line cells.
	Line int64
	// Cells holds a CSV row by column header (columns with an empty or
	// "_"-prefixed header are left out).
	Cells map[string]string
	// Values holds a JSON object, numbers as json.Number.
	Values map[string]any
	// Raw is the row as the file had it, always valid JSON: the CSV cells as
	// an object keyed by header in header order, or the original JSON object
	// bytes. For an unreadable row it is whatever could be recovered (for a
	// JSONL line that is not JSON, the line as a JSON string).
	Raw json.RawMessage
	// Err is set when the row could not be read; reading continues.
	Err *RowError
}

// RowError is a row the decoder could not read; the row is rejected and the
// rest of the file is still read.
type RowError struct {
	Row     int64
	Line    int64
	Code    string
	Message string
}

func (e *RowError) Error() string {
	return fmt.Sprintf("row %d (line %d): %s", e.Row, e.Line, e.Message)
}

// Problem is the error as a row rejection.
func (e *RowError) Problem() rows.Problem {
	return rows.Problem{Code: e.Code, Message: e.Error()}
}

// FileError is a problem that makes the rest of the file unreadable or the
// import meaningless; the caller fails the import with its message.
type FileError struct {
	// Row is the data row reached (0 = before the first row).
	Row int64
	// Line is the physical line, when known (0 otherwise).
	Line int64
	// Code is parse.csv or parse.json.
	Code    string
	Message string
}

func (e *FileError) Error() string {
	switch {
	case e.Line > 0 && e.Row > 0:
		return fmt.Sprintf("row %d (line %d): %s", e.Row, e.Line, e.Message)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Message)
	case e.Row > 0:
		return fmt.Sprintf("row %d: %s", e.Row, e.Message)
	}
	return e.Message
}

// Open starts reading r as format (csv, json or jsonl). A byte-order mark is
// handled: UTF-8's is dropped, UTF-16 (what Excel's "Unicode text" writes) is
// rejected with a message saying so. CSV reads its header here, so a file
// without one fails at Open.
func Open(format string, r io.Reader, opts Options) (Source, error) {
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = 64 << 20
	}
	code := CodeParseJSON
	if format == FormatCSV {
		code = CodeParseCSV
	}
	br := bufio.NewReaderSize(r, 64<<10)
	if err := skipBOM(br, code); err != nil {
		return nil, err
	}
	switch format {
	case FormatCSV:
		return openCSV(br, opts)
	case FormatJSON:
		return openJSON(br, opts)
	case FormatJSONL:
		return openJSONL(br, opts), nil
	}
	return nil, fmt.Errorf("decode: unsupported format %q (want csv, json or jsonl)", format)
}

func skipBOM(br *bufio.Reader, code string) error {
	b, _ := br.Peek(3)
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		_, _ = br.Discard(3)
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}), bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		return &FileError{Code: code, Message: "file is UTF-16 encoded; save it as UTF-8"}
	}
	return nil
}

// ImportColumns returns the header columns that carry data on import, in file
// order: all but empty and "_"-prefixed ones (the _row,_phase,… columns an
// errors.csv adds). Record.Cells and Record.Raw hold exactly these, and an
// errors.csv writer should use them as the file's own header.
func ImportColumns(header []string) []string {
	var out []string
	for _, h := range header {
		if importColumn(h) {
			out = append(out, h)
		}
	}
	return out
}

func importColumn(h string) bool { return h != "" && h[0] != '_' }

// appendJSONString appends s as a JSON string literal; s is valid UTF-8.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
