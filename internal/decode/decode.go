package decode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/rows"
)

// Problem codes of rows the decoder could not read.
const (
	CodeParseCSV  = "parse.csv"
	CodeParseJSON = "parse.json"
	CodeParseXLSX = "parse.xlsx"
)

// Formats Open understands.
const (
	FormatCSV   = events.FormatCSV
	FormatJSON  = events.FormatJSON
	FormatJSONL = events.FormatJSONL
	FormatXLSX  = events.FormatXLSX
)

// Options tune decoding.
type Options struct {
	// Delimiter separates CSV fields; 0 means detect it (one of , ; tab | :,
	// see Detected).
	Delimiter rune
	// Sheet names the XLSX worksheet to read (exact name, or a unique
	// case-insensitive match); "" reads the first sheet.
	Sheet string
	// TempDir is where an XLSX upload is spooled (it needs random access)
	// and where the XLSX reader extracts large parts; "" is os.TempDir().
	TempDir string
	// MaxRecordBytes bounds one JSON element or JSONL line (0 = 64 MiB), so
	// one absurd record cannot exhaust memory.
	MaxRecordBytes int
}

// Source streams the records of one file. Close it when done (an XLSX
// source holds a temporary file; it also cleans up by itself once Next has
// returned io.EOF or a *FileError).
type Source interface {
	// Header is the CSV/XLSX header row, cells trimmed (nil for JSON formats).
	Header() []string
	// Next returns the next record, io.EOF after the last one, or a
	// *FileError when the rest of the file cannot be read.
	Next() (Record, error)
	// Detected says how the file was read. For CSV the encoding can change
	// from "utf-8" to "windows-1252" while reading, when the first
	// non-ASCII byte comes late in the file: it is final once Next has
	// returned io.EOF.
	Detected() Detected
	// Close releases what the source holds. It does not close the reader
	// given to Open. It may be called more than once.
	Close() error
}

// Detected is what Open found out about a file: the import's `file` object
// (spec §1) reports it.
type Detected struct {
	// Encoding: "utf-8", "utf-8-bom", "utf-16le", "utf-16be" or
	// "windows-1252" (CSV, JSON, JSONL); "" for XLSX, which is a zip of XML.
	Encoding string
	// Delimiter is the CSV field delimiter ("," ";" "\t" "|" ":" or
	// Options.Delimiter); "" for other formats.
	Delimiter string
	// HasHeader: CSV and XLSX read their first non-blank row as the header.
	HasHeader bool
	// Compression is "gzip" for a gzip-compressed file, read decompressed.
	Compression string
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
	// Numbers holds the cells of an XLSX row that are numbers, by column
	// header (Cells has their text too): the field they land on decides
	// whether a number was a date, a number or digits of a text.
	Numbers map[string]resources.SheetNumber
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
	// Columns and Unmapped are, for a mapping.invalid error of a file with
	// a header, what Mapping.Report says: the columns placed and those no
	// field took, with suggestions. The import object reports them.
	Columns  map[string]string
	Unmapped []UnmappedHeader
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

// Open starts reading r as format (csv, json, jsonl or xlsx).
//
// What the file is comes from its first bytes, whatever its name said: a
// gzip-compressed file is decompressed as it is read (Detected.Compression);
// a ZIP that holds a workbook is read as XLSX whatever format says; any
// other ZIP, a PDF, an image or other binary content is refused with a
// *FileError (CodeFileType) that says what it is.
//
// Text formats are decoded to UTF-8 first (see Detected.Encoding): a UTF-8
// byte-order mark is dropped, UTF-16 LE/BE with a byte-order mark is
// transcoded, and a CSV whose bytes are not valid UTF-8 is read as
// Windows-1252. A CSV's delimiter is set by Excel's "sep=;" first line when
// it has one, else detected, unless opts.Delimiter is set; lines may end
// with CR LF, LF or a bare CR (classic Mac). CSV and XLSX read their header
// here, so a file without one fails at Open. An XLSX upload is spooled to a
// temporary file in opts.TempDir (the format needs random access); Close
// removes it.
func Open(format events.Format, r io.Reader, opts Options) (Source, error) {
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = 64 << 20
	}
	switch format {
	case FormatCSV, FormatJSON, FormatJSONL, FormatXLSX:
	default:
		return nil, fmt.Errorf("decode: unsupported format %q (want csv, json, jsonl or xlsx)", format)
	}
	det := &Detected{}
	in, zipped, err := unwrap(r, format, det)
	if err != nil {
		return nil, err
	}
	if zipped {
		return openXLSX(in, opts, det)
	}
	switch format {
	case FormatCSV:
		br := bufio.NewReaderSize(decodeText(in, true, det), 64<<10)
		if head, _ := br.Peek(64 << 10); bytes.IndexByte(head, '\n') < 0 && bytes.IndexByte(head, '\r') >= 0 {
			// Lines end with a bare CR (classic Mac exports): read CR as LF.
			br = bufio.NewReaderSize(crAsLF{br}, 64<<10)
		}
		delim, skipped := excelSep(br)
		if opts.Delimiter != 0 {
			delim = opts.Delimiter
		}
		if delim == 0 {
			delim = sniffDelimiter(br)
		}
		det.Delimiter, det.HasHeader = string(delim), true
		return openCSV(br, delim, skipped, det)
	case FormatJSON:
		return openJSON(decodeText(in, false, det), det)
	case FormatJSONL:
		return openJSONL(decodeText(in, false, det), opts, det), nil
	}
	return nil, &FileError{Code: CodeParseXLSX, Message: "the file is empty: an XLSX import needs a workbook"}
}

// excelSep reads Excel's delimiter line ("sep=;", the whole first line,
// optionally quoted) off br: the delimiter it names and the number of lines
// it took (0 when there is none; then nothing is consumed).
func excelSep(br *bufio.Reader) (rune, int64) {
	head, _ := br.Peek(16)
	line := head
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	} else if len(head) == 16 {
		return 0, 0
	}
	text := strings.TrimSuffix(string(line), "\r")
	if unq := strings.Trim(text, `"`); len(unq) == len(text)-2 {
		text = unq
	}
	if len(text) < 5 || !strings.EqualFold(text[:4], "sep=") {
		return 0, 0
	}
	d, size := utf8.DecodeRuneInString(text[4:])
	if 4+size != len(text) || d == utf8.RuneError || d == '"' || d == '\r' || d == '\n' {
		return 0, 0
	}
	_, _ = br.Discard(len(line) + min(1, len(head)-len(line)))
	return d, 1
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

// crAsLF reads a text whose lines end with a bare CR as if they ended with LF.
type crAsLF struct{ r io.Reader }

func (c crAsLF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i, b := range p[:n] {
		if b == '\r' {
			p[i] = '\n'
		}
	}
	return n, err
}
