package decode

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/inlet-dev/inlet/internal/resources"
	"github.com/inlet-dev/inlet/internal/textlimit"
)

// xlsxSource streams one worksheet with excelize's row iterator (f.Rows): the
// sheet's XML is read as a stream, never loaded as a grid.
//
// Cell values: text as is; numbers as stored (the raw value, so "12.50" shown
// by a 0.00 format reads 12.5 and 1,000 reads 1000); dates, that is numbers
// whose number format is a date or time format, as ISO 8601 text:
// YYYY-MM-DD for a date format, YYYY-MM-DDThh:mm:ss for a date-and-time
// format, hh:mm:ss for a time format (elapsed-time formats such as [h]:mm are
// shown as formatted); booleans TRUE/FALSE; formulas by their cached value.
type xlsxSource struct {
	spool  string
	f      *excelize.File
	rows   *excelize.Rows
	types  *cellTypes  // which cells are numbers, read beside rows
	styles []cellStyle // by style index: what a number cell's format makes of it
	d1904  bool        // the workbook's date system
	header []string
	cols   []int
	line   int64 // the worksheet row Next is at (1-based)
	num    int64
	det    Detected
	done   bool
}

// maxUnzipped bounds the uncompressed size of an XLSX upload: 4 GiB holds
// several million rows of worksheet XML.
const maxUnzipped = 4 << 30

func openXLSX(r io.Reader, opts Options, det *Detected) (_ *xlsxSource, err error) {
	tmp, err := os.CreateTemp(opts.TempDir, "inlet-upload-*.xlsx")
	if err != nil {
		return nil, fmt.Errorf("decode: spooling XLSX: %w", err)
	}
	s := &xlsxSource{spool: tmp.Name(), det: Detected{HasHeader: true, Compression: det.Compression}}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	// A gzip'd upload decompresses to what its sender chose: the spool is
	// bounded like the workbook's unzipped size.
	n, err := io.Copy(tmp, io.LimitReader(r, maxUnzipped+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("decode: spooling XLSX: %w", err)
	}
	if n > maxUnzipped {
		return nil, &FileError{Code: CodeParseXLSX, Message: fmt.Sprintf("the workbook is larger than %d GiB once decompressed", maxUnzipped>>30)}
	}
	if what := notAWorkbook(s.spool); what != "" {
		return nil, &FileError{Code: CodeFileType, Message: "the file is " + what + ", not CSV/JSON/XLSX"}
	}
	// The unzipped size is bounded (a zip bomb would fill TempDir); parts
	// over excelize's 16 MiB default are extracted to TempDir, not memory.
	s.f, err = excelize.OpenFile(s.spool, excelize.Options{TmpDir: opts.TempDir, UnzipSizeLimit: maxUnzipped})
	if err != nil {
		s.f = nil
		return nil, &FileError{Code: CodeParseXLSX, Message: "file is not a readable XLSX workbook: " + err.Error()}
	}
	sheet, err := pickSheet(s.f.GetSheetList(), opts.Sheet, func(name string) bool {
		visible, err := s.f.GetSheetVisible(name)
		return err == nil && visible
	})
	if err != nil {
		return nil, err
	}
	if s.styles, err = isoDateStyles(s.f); err != nil {
		return nil, &FileError{Code: CodeParseXLSX, Message: "reading the workbook's styles: " + err.Error()}
	}
	if props, err := s.f.GetWorkbookProps(); err == nil && props.Date1904 != nil {
		s.d1904 = *props.Date1904
	}
	if s.rows, err = s.f.Rows(sheet); err != nil {
		return nil, &FileError{Code: CodeParseXLSX, Message: fmt.Sprintf("sheet %s: %v", textlimit.Quote(sheet), err)}
	}
	if s.types, err = openCellTypes(s.spool, sheet); err != nil {
		return nil, &FileError{Code: CodeParseXLSX, Message: fmt.Sprintf("sheet %s: %v", textlimit.Quote(sheet), err)}
	}
	for {
		cells, err := s.row()
		if err == io.EOF {
			return nil, &FileError{Code: CodeParseXLSX,
				Message: fmt.Sprintf("sheet %s is empty: an XLSX import needs a header row", textlimit.Quote(sheet))}
		}
		if err != nil {
			return nil, err
		}
		if blank(cells) {
			continue
		}
		if invalidUTF8(cells) >= 0 {
			return nil, &FileError{Code: CodeParseXLSX, Line: s.line, Message: "header row: a cell is not valid UTF-8"}
		}
		var dups string
		s.header, s.cols, dups = parseHeader(cells, columnName)
		if dups != "" {
			return nil, &FileError{Code: CodeParseXLSX, Line: s.line, Message: dups}
		}
		return s, nil
	}
}

// pickSheet returns the sheet to read: want by exact name, else by a unique
// case-insensitive match, hidden or not; when want is "", the first sheet
// visible says is shown (a hidden or very hidden sheet holds lookups and
// leftovers, not what the user sees as the workbook's data).
func pickSheet(sheets []string, want string, visible func(string) bool) (string, error) {
	if len(sheets) == 0 {
		return "", &FileError{Code: CodeParseXLSX, Message: "the workbook has no sheets"}
	}
	want = strings.TrimSpace(want)
	if want == "" {
		for _, s := range sheets {
			if visible(s) {
				return s, nil
			}
		}
		return "", &FileError{Code: CodeParseXLSX, Message: "every sheet of the workbook is hidden: name the one to read with the sheet option"}
	}
	var ci []string
	for _, s := range sheets {
		if s == want {
			return s, nil
		}
		if strings.EqualFold(s, want) {
			ci = append(ci, s)
		}
	}
	if len(ci) == 1 {
		return ci[0], nil
	}
	q := make([]string, len(sheets))
	for i, s := range sheets {
		q[i] = textlimit.Quote(s)
	}
	return "", &FileError{Code: CodeParseXLSX,
		Message: fmt.Sprintf("sheet %s is not in the workbook (sheets: %s)", textlimit.Quote(want), strings.Join(q, ", "))}
}

// columnName is the spreadsheet name of a 0-based column index (0 → A).
func columnName(i int) string {
	n, err := excelize.ColumnNumberToName(i + 1)
	if err != nil {
		return fmt.Sprint(i + 1)
	}
	return n
}

// row reads the next worksheet row (every row number, empty ones included).
// excelize panics on some malformed worksheet XML: that is a *FileError, an
// upload must not take the phase down.
func (s *xlsxSource) row() (cells []string, err error) {
	defer func() {
		if p := recover(); p != nil {
			cells, err = nil, &FileError{Code: CodeParseXLSX, Row: s.num, Line: s.line,
				Message: fmt.Sprintf("unreadable worksheet: %v", p)}
		}
	}()
	if !s.rows.Next() {
		if err := s.rows.Error(); err != nil {
			return nil, &FileError{Code: CodeParseXLSX, Row: s.num, Line: s.line + 1, Message: err.Error()}
		}
		return nil, io.EOF
	}
	s.line++
	cells, err = s.rows.Columns()
	if err != nil {
		return nil, &FileError{Code: CodeParseXLSX, Row: s.num, Line: s.line, Message: err.Error()}
	}
	return cells, nil
}

func (s *xlsxSource) Header() []string { return s.header }

func (s *xlsxSource) Detected() Detected { return s.det }

// Next returns the next non-blank row. Record.Line is the worksheet row
// number. Cells past the header's last column are ignored, like the cells
// of a CSV column without a header; a short row is padded with "".
func (s *xlsxSource) Next() (Record, error) {
	if s.done {
		return Record{}, io.EOF
	}
	for {
		cells, err := s.row()
		if err != nil {
			_ = s.Close()
			return Record{}, err
		}
		if blank(cells) {
			continue
		}
		s.num++
		if invalidUTF8(cells) >= 0 {
			_ = s.Close()
			return Record{}, &FileError{Code: CodeParseXLSX, Row: s.num, Line: s.line, Message: "a cell is not valid UTF-8"}
		}
		rec := Record{Num: s.num, Line: s.line}
		numbers, err := s.types.row(int(s.line))
		if err != nil {
			_ = s.Close()
			return Record{}, &FileError{Code: CodeParseXLSX, Row: s.num, Line: s.line, Message: "unreadable worksheet: " + err.Error()}
		}
		rec.Cells, rec.Numbers, rec.Raw = s.cells(cells, numbers)
		return rec, nil
	}
}

// cells maps a row's import columns by header. A number cell goes to
// Numbers too, and its text is resources.SheetNumber.Text, the one rule for
// a spreadsheet number read as text.
func (s *xlsxSource) cells(rec []string, numbers map[int]numberCell) (map[string]string, map[string]resources.SheetNumber, []byte) {
	header, cols := s.header, s.cols
	cells := make(map[string]string, len(cols))
	var nums map[string]resources.SheetNumber
	raw := make([]byte, 0, 64)
	raw = append(raw, '{')
	for n, i := range cols {
		v := ""
		if i < len(rec) {
			v = rec[i]
		}
		if nc, ok := numbers[i]; ok {
			sn := resources.SheetNumber{Value: nc.value, Date1904: s.d1904}
			if nc.style >= 0 && nc.style < len(s.styles) {
				sn.Kind = s.styles[nc.style].kind
				if s.styles[nc.style].shown {
					sn.Shown = v
				}
			}
			if nums == nil {
				nums = map[string]resources.SheetNumber{}
			}
			nums[header[i]] = sn
			v = sn.Text()
		}
		cells[header[i]] = v
		if n > 0 {
			raw = append(raw, ',')
		}
		raw = appendJSONString(raw, header[i])
		raw = append(raw, ':')
		raw = appendJSONString(raw, v)
	}
	return cells, nums, append(raw, '}')
}

// Close closes the workbook and removes the spooled upload and excelize's
// temporary files.
func (s *xlsxSource) Close() error {
	if s.done {
		return nil
	}
	s.done = true
	var errs []error
	if s.rows != nil {
		errs = append(errs, s.rows.Close())
	}
	if s.types != nil {
		errs = append(errs, s.types.Close())
	}
	if s.f != nil {
		errs = append(errs, s.f.Close())
	}
	if err := os.Remove(s.spool); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Kinds of number formats.
const (
	fmtOther    = iota
	fmtDate     // YYYY-MM-DD
	fmtDateTime // YYYY-MM-DDThh:mm:ss
	fmtTime     // hh:mm:ss
	fmtElapsed  // [h]:mm:ss and the like: left as formatted
)

// noNumFmt is a number format id no workbook defines: a cell style pointing
// at it shows the cell's raw value.
const noNumFmt = 1 << 30

// isoDateStyles rewrites the workbook's cell styles in memory (the file is
// never saved) so that the row iterator's formatted values are what Inlet
// wants: date and time formats become ISO 8601 ones, every other number
// format none at all (the raw value). The iterator does not expose a cell's
// style, so the styles themselves carry the decision.
//
// A workbook without cell styles has nothing to rewrite: its numbers show
// raw. excelize panics on some malformed style sheets; that is an error here.
func isoDateStyles(f *excelize.File) (styles []cellStyle, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed styles: %v", p)
		}
	}()
	_, _ = f.GetStyle(-1) // loads styles.xml; the index is invalid on purpose
	if f.Styles == nil || f.Styles.CellXfs == nil || len(f.Styles.CellXfs.Xf) == 0 {
		return nil, nil
	}
	styles = make([]cellStyle, len(f.Styles.CellXfs.Xf))
	iso := map[int]int{}
	for kind, code := range map[int]string{
		fmtDate:     "yyyy-mm-dd",
		fmtDateTime: `yyyy-mm-dd"T"hh:mm:ss`,
		fmtTime:     "hh:mm:ss",
	} {
		c := code
		style, err := f.NewStyle(&excelize.Style{CustomNumFmt: &c})
		if err != nil {
			return nil, err
		}
		if id := f.Styles.CellXfs.Xf[style].NumFmtID; id != nil {
			iso[kind] = *id
		}
	}
	custom := map[int]string{}
	if f.Styles.NumFmts != nil {
		for _, nf := range f.Styles.NumFmts.NumFmt {
			if nf == nil {
				continue
			}
			code := nf.FormatCode
			if nf.FormatCode16 != "" {
				code = nf.FormatCode16
			}
			custom[nf.NumFmtID] = code
		}
	}
	for i := range styles {
		xf := &f.Styles.CellXfs.Xf[i]
		id := 0
		if xf.NumFmtID != nil {
			id = *xf.NumFmtID
		}
		kind := builtinFormatKind(id)
		code, isCustom := custom[id]
		if isCustom {
			kind = formatKind(code)
		}
		styles[i].kind = sheetKinds[kind]
		switch {
		case kind == fmtElapsed, isCustom && kind == fmtOther && digitLayout(code):
			styles[i].shown = true // excelize lays the digits out as the sheet shows them
			continue
		case kind == fmtDate, kind == fmtDateTime, kind == fmtTime:
			if to, ok := iso[kind]; ok {
				xf.NumFmtID = &to
				continue
			}
		}
		none := noNumFmt
		xf.NumFmtID = &none
	}
	return styles, nil
}

// cellStyle is what a style's number format makes of a number cell.
type cellStyle struct {
	kind  resources.SheetKind
	shown bool // its text is the formatted value (leading zeros, elapsed time)
}

var sheetKinds = map[int]resources.SheetKind{
	fmtDate: resources.SheetNumberDate, fmtDateTime: resources.SheetNumberDateTime, fmtTime: resources.SheetNumberTime,
}

// digitLayout reports whether a number format only lays out the digits of
// a whole number: zeros that pad it ("00000" for zip codes, "000-00-0000"),
// with literal text around them, and no decimals, grouping, percent,
// exponent or rounding a text field would not want. Such a cell is text
// typed as digits, and its text is what the sheet shows.
func digitLayout(code string) bool {
	if i := strings.IndexByte(code, ';'); i >= 0 {
		code = code[:i]
	}
	zeros := 0
	for i := 0; i < len(code); i++ {
		switch c := code[i]; c {
		case '0':
			zeros++
		case '"':
			j := strings.IndexByte(code[i+1:], '"')
			if j < 0 {
				return false
			}
			i += j + 1
		case '\\':
			i++
		case '-', ' ', '(', ')', '/', '+', ':':
		default:
			return false
		}
	}
	return zeros >= 2
}

// builtinFormatKind classifies the number formats ECMA-376 predefines
// (ids 0-163), including the East Asian and Thai locale ones.
func builtinFormatKind(id int) int {
	switch id {
	case 14, 15, 16, 17, 27, 28, 29, 30, 31, 36, 50, 51, 54, 57, 58, 71, 72, 73, 74, 81:
		return fmtDate
	case 22, 77:
		return fmtDateTime
	case 18, 19, 20, 21, 32, 33, 34, 35, 45, 47, 52, 53, 55, 56, 75, 76, 78, 80:
		return fmtTime
	case 46, 79:
		return fmtElapsed
	}
	return fmtOther
}

// formatKind classifies a custom number format code by its first section:
// quoted text, escaped characters, fill and padding characters and
// bracketed parts (colours, conditions, locales) are not date tokens;
// y and d and a lone m are date parts, h and s time parts, [h],
// [m] and [s] elapsed time.
func formatKind(code string) int {
	var date, time, month, elapsed bool
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch c {
		case ';':
			i = len(code)
			continue
		case '"':
			j := strings.IndexByte(code[i+1:], '"')
			if j < 0 {
				i = len(code)
			} else {
				i += j + 1
			}
			continue
		case '\\', '_', '*':
			i++
			continue
		case '[':
			j := strings.IndexByte(code[i:], ']')
			if j < 0 {
				i = len(code)
				continue
			}
			inner := strings.ToLower(code[i+1 : i+j])
			if inner != "" && strings.Trim(inner, "hms") == "" {
				elapsed = true
			}
			i += j
			continue
		}
		switch c | 0x20 { // ASCII lower case
		case 'y', 'd':
			date = true
		case 'h', 's':
			time = true
		case 'm':
			month = true
		}
	}
	switch {
	case elapsed:
		return fmtElapsed
	case date && time:
		return fmtDateTime
	case date:
		return fmtDate
	case time:
		return fmtTime
	case month:
		return fmtDate // "mmm", "mmmm": a month of a date
	}
	return fmtOther
}
