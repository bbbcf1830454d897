package decode

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gabriel-vasile/mimetype"

	"github.com/inlet-dev/inlet/events"
)

// CodeFileType is the code of a file refused for what it is: a ZIP archive,
// a PDF, an image, any binary file that is not an XLSX workbook.
const CodeFileType = "file.type"

// CompressionGzip is Detected.Compression of a gzip-compressed upload.
const CompressionGzip = "gzip"

// sniffLen is how much of a file's start decides what it is.
const sniffLen = 3072

// unwrap reads what a file is by its first bytes, whatever its name or
// content type said: a gzip-compressed file is decompressed as it is read
// (det.Compression) and judged by its content; the format is then format,
// or XLSX for a ZIP that holds a workbook (zipped reports whether it is a
// ZIP: openXLSX tells a workbook from another archive). Binary content that
// is not a ZIP is refused with a *FileError that says what it is.
func unwrap(r io.Reader, format events.Format, det *Detected) (_ *bufio.Reader, zipped bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(sniffLen)
	if bytes.HasPrefix(head, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, false, &FileError{Code: parseCode(format), Message: "the file starts like a gzip file but cannot be decompressed: " + err.Error()}
		}
		det.Compression = CompressionGzip
		br = bufio.NewReaderSize(&gzipErrors{r: gz, format: format, left: maxDecompressed}, 64<<10)
		head, _ = br.Peek(sniffLen)
	}
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return br, true, nil
	case bytes.HasPrefix(head, []byte("%PDF-")), looksBinary(head):
		return nil, false, &FileError{Code: CodeFileType, Message: "the file is " + whatIs(head) + ", not CSV/JSON/XLSX"}
	}
	if format == FormatXLSX {
		return nil, false, &FileError{Code: CodeParseXLSX,
			Message: "the file is text, not an XLSX workbook: import it as CSV or JSON (format option), or save it as .xlsx"}
	}
	return br, false, nil
}

// maxDecompressed bounds what a gzip-compressed upload may expand to: the
// upload limit bounds only its compressed bytes, and a few megabytes of one
// repeated line can expand a thousandfold.
var maxDecompressed int64 = 16 << 30

// gzipErrors makes a corrupt or cut gzip stream a *FileError of the file
// (the import fails with it), and one that expands past maxDecompressed;
// an error of the reader underneath (the blob store) stays what it is, so
// it is retried.
type gzipErrors struct {
	r      io.Reader
	format events.Format
	left   int64
}

func (g *gzipErrors) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if g.left -= int64(n); g.left < 0 {
		return 0, &FileError{Code: parseCode(g.format), Message: fmt.Sprintf("the gzip-compressed file expands to more than %d bytes", maxDecompressed)}
	}
	var corrupt flate.CorruptInputError
	if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.As(err, &corrupt) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = &FileError{Code: parseCode(g.format), Message: "the gzip-compressed file is corrupt or cut short: " + err.Error()}
	}
	return n, err
}

func parseCode(format events.Format) string {
	switch format {
	case FormatJSON, FormatJSONL:
		return CodeParseJSON
	case FormatXLSX:
		return CodeParseXLSX
	}
	return CodeParseCSV
}

// looksBinary: the file's start is a kind of binary file mimetype knows by
// its magic bytes (a PNG, an XLS…) and has control characters no text has,
// or it is mostly such characters (at least 4, more than 1 byte in 32). A
// text file with a stray NUL in a cell is still text: its row fails or
// imports on its own. UTF-16 text with a byte-order mark is text
// (decodeText reads it).
func looksBinary(head []byte) bool {
	if bytes.HasPrefix(head, []byte{0xFF, 0xFE}) || bytes.HasPrefix(head, []byte{0xFE, 0xFF}) {
		return false
	}
	n := controlBytes(head)
	if n == 0 {
		return false
	}
	if _, known := kindOf(mimetype.Detect(head)); known {
		return true
	}
	return n >= 4 && n*32 > len(head)
}

// controlBytes counts the control characters no text file has: those below
// space other than tab, LF, VT, FF, CR, ESC and DOS's end-of-file mark
// Ctrl-Z.
func controlBytes(head []byte) int {
	n := 0
	for _, c := range head {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\v' && c != '\f' && c != '\r' && c != 0x1b && c != 0x1a {
			n++
		}
	}
	return n
}

// fileKinds names what users send by mistake, by MIME type (mimetype's).
var fileKinds = map[string]string{
	"application/pdf":                "a PDF document",
	"image/png":                      "a PNG image",
	"image/jpeg":                     "a JPEG image",
	"image/gif":                      "a GIF image",
	"image/webp":                     "a WebP image",
	"image/tiff":                     "a TIFF image",
	"image/bmp":                      "a BMP image",
	"image/heic":                     "a HEIC image",
	"application/x-ole-storage":      "an old Office file (XLS/DOC, Excel 97-2003): save it as XLSX or CSV",
	"application/vnd.ms-excel":       "an Excel 97-2003 workbook (XLS): save it as XLSX or CSV",
	"application/msword":             "a Word 97-2003 document (DOC)",
	"application/x-7z-compressed":    "a 7-Zip archive",
	"application/x-rar-compressed":   "a RAR archive",
	"application/x-bzip2":            "a bzip2-compressed file",
	"application/x-xz":               "an xz-compressed file",
	"application/zstd":               "a zstd-compressed file",
	"application/x-tar":              "a tar archive",
	"application/vnd.sqlite3":        "an SQLite database",
	"application/x-msdownload":       "a Windows program",
	"application/x-executable":       "a program (ELF)",
	"application/x-mach-binary":      "a program (Mach-O)",
	"application/vnd.apache.parquet": "a Parquet file",
	"application/x-parquet":          "a Parquet file",
}

// whatIs names binary content for a refusal: "a PDF document", "a PNG
// image", else its MIME type.
func whatIs(head []byte) string {
	m := mimetype.Detect(head)
	if name, ok := kindOf(m); ok {
		return name
	}
	if m.Is("application/octet-stream") {
		return "binary data"
	}
	if ext := m.Extension(); ext != "" {
		return fmt.Sprintf("binary data (%s, %s)", m.String(), ext)
	}
	return fmt.Sprintf("binary data (%s)", m.String())
}

// kindOf names m, or one of its parents, from fileKinds.
func kindOf(m *mimetype.MIME) (string, bool) {
	for t := m; t != nil; t = t.Parent() {
		if name, ok := fileKinds[t.String()]; ok {
			return name, true
		}
	}
	return "", false
}

// zipKinds names the ZIP-based documents that are not XLSX workbooks, by a
// part they always have.
var zipKinds = []struct{ part, name string }{
	{"word/document.xml", "a Word document (DOCX)"},
	{"ppt/presentation.xml", "a PowerPoint presentation (PPTX)"},
	{"content.xml", "an OpenDocument file (ODS/ODT): save it as XLSX or CSV"},
}

// workbookPart is the part every XLSX workbook has.
const workbookPart = "xl/workbook.xml"

// notAWorkbook says what a ZIP file that holds no workbook is, or "" when
// it holds one (or cannot be read as a ZIP at all: excelize says why).
func notAWorkbook(path string) string {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return ""
	}
	defer zr.Close()
	parts := map[string]bool{}
	for _, f := range zr.File {
		parts[strings.TrimPrefix(f.Name, "/")] = true
	}
	if parts[workbookPart] {
		return ""
	}
	for _, k := range zipKinds {
		if parts[k.part] {
			return k.name
		}
	}
	return "a ZIP archive"
}
