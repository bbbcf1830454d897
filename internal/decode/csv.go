package decode

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/inlet-dev/inlet/internal/textlimit"
)

type csvSource struct {
	r      *csv.Reader
	header []string
	cols   []int // indexes of ImportColumns(header)
	num    int64
	det    *Detected
	// skipped is how many lines came before what the CSV reader reads (an
	// Excel "sep=;" line): its line numbers are off by that many.
	skipped int64
}

func openCSV(r io.Reader, delim rune, skipped int64, det *Detected) (*csvSource, error) {
	cr := csv.NewReader(r)
	cr.Comma = delim
	cr.FieldsPerRecord = -1 // ragged rows are row errors, not the end of the file
	cr.ReuseRecord = true
	s := &csvSource{r: cr, det: det, skipped: skipped}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil, &FileError{Code: CodeParseCSV, Message: "file is empty: a CSV import needs a header row"}
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, &FileError{Code: CodeParseCSV, Line: int64(pe.StartLine) + skipped, Message: "header row: " + pe.Err.Error()}
			}
			if strings.Contains(err.Error(), "invalid field or comment delimiter") {
				return nil, fmt.Errorf("decode: invalid CSV delimiter %s", textlimit.Quote(string(delim)))
			}
			return nil, fmt.Errorf("decode: reading CSV header: %w", err)
		}
		if blank(rec) {
			continue // leading blank lines (",,,," from spreadsheets) are not a header
		}
		line, _ := cr.FieldPos(0)
		line += int(skipped)
		if bad := invalidUTF8(rec); bad >= 0 {
			return nil, &FileError{Code: CodeParseCSV, Line: int64(line), Message: notUTF8}
		}
		var dups string
		s.header, s.cols, dups = parseHeader(rec, func(i int) string { return strconv.Itoa(i + 1) })
		if dups != "" {
			return nil, &FileError{Code: CodeParseCSV, Line: int64(line), Message: dups}
		}
		return s, nil
	}
}

// notUTF8 is a CSV whose text started as UTF-8 (its first non-ASCII
// characters were) and later is not: a file of mixed encodings.
const notUTF8 = "file is not valid UTF-8 here though it is before (mixed encodings?); save it as \"CSV UTF-8\""

func (s *csvSource) Header() []string { return s.header }

func (s *csvSource) Detected() Detected { return *s.det }

func (s *csvSource) Close() error { return nil }

func (s *csvSource) Next() (Record, error) {
	for {
		rec, err := s.r.Read()
		if err == io.EOF {
			return Record{}, io.EOF
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return Record{}, fmt.Errorf("decode: reading CSV: %w", err)
			}
			// encoding/csv resumes after the bad record, so one stray quote
			// costs one row, not the file.
			s.num++
			msg := pe.Err.Error()
			switch {
			case errors.Is(pe.Err, csv.ErrBareQuote):
				msg = fmt.Sprintf("a quote inside an unquoted field (line %d, column %d): quote the whole field and double the quotes inside it", int64(pe.Line)+s.skipped, pe.Column)
			case errors.Is(pe.Err, csv.ErrQuote):
				msg = fmt.Sprintf("a quoted field is not closed properly (line %d, column %d): it must end with a quote followed by the delimiter or the end of the line", int64(pe.Line)+s.skipped, pe.Column)
			}
			start := int64(pe.StartLine) + s.skipped
			re := &RowError{Row: s.num, Line: start, Code: CodeParseCSV, Message: msg}
			return Record{Num: s.num, Line: start, Err: re}, nil
		}
		if blank(rec) {
			continue
		}
		line, _ := s.r.FieldPos(0)
		line += int(s.skipped)
		s.num++
		if invalidUTF8(rec) >= 0 {
			return Record{}, &FileError{Code: CodeParseCSV, Row: s.num, Line: int64(line), Message: notUTF8}
		}
		recNum := Record{Num: s.num, Line: int64(line)}
		if len(rec) > len(s.header) && blank(rec[len(s.header):]) {
			// A trailing delimiter ("a,b,") is what many exporters write;
			// the extra cells are empty, so nothing is lost by dropping them.
			rec = rec[:len(s.header)]
		}
		recNum.Cells, recNum.Raw = s.cells(rec)
		if len(rec) != len(s.header) {
			msg := fmt.Sprintf("has %d fields, the header has %d", len(rec), len(s.header))
			if extra := rec[min(len(rec), len(s.header)):]; len(extra) > 0 {
				// errors.csv has no column for them: keep them in the message
				// so the user can still put the row back together.
				msg += fmt.Sprintf("; cells beyond the header: %s", strings.Join(quoteAll(extra), ","))
			}
			recNum.Cells = nil
			recNum.Err = &RowError{Row: s.num, Line: int64(line), Code: CodeParseCSV, Message: msg}
		}
		return recNum, nil
	}
}

// cells maps the import columns of rec by header; a short (ragged) record
// fills what it has so the rejected row can still be shown to the user.
func (s *csvSource) cells(rec []string) (map[string]string, []byte) {
	cells := make(map[string]string, len(s.cols))
	size := 2
	for _, i := range s.cols {
		if i < len(rec) {
			size += len(s.header[i]) + len(rec[i]) + 6
		}
	}
	raw := make([]byte, 0, size)
	raw = append(raw, '{')
	first := true
	for _, i := range s.cols {
		if i >= len(rec) {
			break
		}
		h := s.header[i]
		cells[h] = rec[i]
		if !first {
			raw = append(raw, ',')
		}
		first = false
		raw = appendJSONString(raw, h)
		raw = append(raw, ':')
		raw = appendJSONString(raw, rec[i])
	}
	raw = append(raw, '}')
	return cells, raw
}

func blank(rec []string) bool {
	for _, c := range rec {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

func invalidUTF8(rec []string) int {
	for i, c := range rec {
		if !utf8.ValidString(c) {
			return i
		}
	}
	return -1
}

func quoteAll(cells []string) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = strconv.Quote(c)
	}
	return out
}

// parseHeader trims the header cells and picks the import columns (named,
// not "_"-prefixed); dups, when not empty, is the error message naming every
// repeated column (col names a column for the user: 3, or C in a sheet).
func parseHeader(cells []string, col func(int) string) (header []string, cols []int, dups string) {
	header = make([]string, len(cells))
	seen := map[string]int{}
	var repeated []string
	for i, h := range cells {
		h = strings.TrimSpace(h)
		header[i] = h
		if h == "" {
			continue
		}
		if j, ok := seen[h]; ok {
			repeated = append(repeated, fmt.Sprintf("%s (columns %s and %s)", textlimit.Quote(h), col(j), col(i)))
			continue
		}
		seen[h] = i
		if importColumn(h) {
			cols = append(cols, i)
		}
	}
	if len(repeated) > 0 {
		dups = "header row: duplicate column name " + strings.Join(repeated, ", ")
	}
	return header, cols, dups
}
