package decode

import (
	"bufio"
	"bytes"
	"io"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// Encodings Detected.Encoding reports.
const (
	EncodingUTF8        = "utf-8"
	EncodingUTF8BOM     = "utf-8-bom"
	EncodingUTF16LE     = "utf-16le"
	EncodingUTF16BE     = "utf-16be"
	EncodingWindows1252 = "windows-1252"
)

// decodeText returns r as UTF-8 text and records the encoding in det.
//
// A byte-order mark decides: UTF-8's is dropped, UTF-16 LE/BE (what Excel's
// "Unicode text" writes) is transcoded. Without one the text is UTF-8 unless
// its bytes are not valid UTF-8: then, when fallback is set (CSV), it is read
// as Windows-1252 (the "CSV" of Excel on Windows). The choice is made at the
// first non-ASCII byte, from the 16 KiB that follow it; the ASCII before it
// reads the same in both encodings, so nothing is held back and nothing read
// earlier changes meaning. Without fallback (JSON: RFC 8259 says UTF-8) the
// bytes pass through and the JSON reader rejects invalid UTF-8.
func decodeText(r io.Reader, fallback bool, det *Detected) io.Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	det.Encoding = EncodingUTF8
	b, _ := br.Peek(3)
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		_, _ = br.Discard(3)
		det.Encoding = EncodingUTF8BOM
		return br
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}):
		_, _ = br.Discard(2)
		det.Encoding = EncodingUTF16LE
		return transform.NewReader(br, unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewDecoder())
	case bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		_, _ = br.Discard(2)
		det.Encoding = EncodingUTF16BE
		return transform.NewReader(br, unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM).NewDecoder())
	}
	if !fallback {
		return br
	}
	return &charsetSniffer{br: br, det: det}
}

// charsetSniffer passes ASCII through until the first non-ASCII byte, then
// commits to UTF-8 or Windows-1252 for the rest of the stream.
type charsetSniffer struct {
	br  *bufio.Reader
	out io.Reader // set once decided
	det *Detected
}

// sniffWindow is how much text after the first non-ASCII byte decides the
// encoding.
const sniffWindow = 16 << 10

func (s *charsetSniffer) Read(p []byte) (int, error) {
	if s.out != nil {
		return s.out.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if _, err := s.br.Peek(1); err != nil {
		return 0, err
	}
	buf, _ := s.br.Peek(s.br.Buffered())
	i := 0
	for i < len(buf) && buf[i] < utf8.RuneSelf {
		i++
	}
	if i > 0 {
		return s.br.Read(p[:min(len(p), i)])
	}
	w, err := s.br.Peek(sniffWindow)
	if looksUTF8(w, err != nil) {
		s.out = s.br
	} else {
		s.det.Encoding = EncodingWindows1252
		s.out = transform.NewReader(s.br, charmap.Windows1252.NewDecoder())
	}
	return s.out.Read(p)
}

// looksUTF8 decides the encoding of text from its first non-ASCII byte on:
// UTF-8 when b is valid UTF-8 (a rune cut at the end of b does not count
// unless b is the end of the stream), or when it holds at least as many
// valid multi-byte UTF-8 characters as invalid bytes. The latter is a file of
// mixed encodings: read as UTF-8, its bad rows fail with a message, where
// Windows-1252 would silently turn its UTF-8 text into mojibake ("Ã©").
func looksUTF8(b []byte, atEOF bool) bool {
	if !atEOF {
		j := len(b) - 1
		for j > 0 && j > len(b)-utf8.UTFMax && !utf8.RuneStart(b[j]) {
			j--
		}
		if j >= 0 && !utf8.FullRune(b[j:]) {
			b = b[:j]
		}
	}
	if utf8.Valid(b) {
		return true
	}
	valid, invalid := 0, 0
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n == 1:
			invalid++
		case n > 1:
			valid++
		}
		b = b[n:]
	}
	return valid >= invalid
}

// Delimiters the CSV sniffer considers, in order of preference on a tie.
var sniffDelimiters = []byte{',', ';', '\t', '|', ':'}

// sniffDelimiter picks the CSV delimiter from the first 16 KiB of br
// (peeked, not consumed): the candidate whose header has more than one
// field and whose following records (up to 20, quotes respected, blank
// lines skipped) most often have the header's field count. Ties go to the
// earlier candidate in , ; tab | : order. A file where no candidate splits
// the header (one column) gets ','.
func sniffDelimiter(br *bufio.Reader) rune {
	sample, err := br.Peek(sniffWindow)
	atEOF := err != nil
	best, bestScore := byte(','), -1.0
	for _, d := range sniffDelimiters {
		counts := fieldCounts(sample, d, atEOF, 21)
		if len(counts) == 0 || counts[0] < 2 {
			continue
		}
		score := 1.0
		if data := counts[1:]; len(data) > 0 {
			same := 0
			for _, c := range data {
				if c == counts[0] {
					same++
				}
			}
			score = float64(same) / float64(len(data))
		}
		if score > bestScore {
			best, bestScore = d, score
		}
	}
	return rune(best)
}

// fieldCounts splits sample into CSV records with delimiter d the way
// encoding/csv does (a quote opens a quoted field only at the start of a
// field; "" inside one is a quote) and returns the field count of up to max
// non-blank records. A record cut by the end of the sample is left out
// unless the sample is the whole file.
func fieldCounts(sample []byte, d byte, atEOF bool, max int) []int {
	var counts []int
	fields, nonBlank, inQuotes, fieldStart := 1, false, false, true
	for i := 0; i < len(sample); i++ {
		c := sample[i]
		if inQuotes {
			if c == '"' {
				if i+1 < len(sample) && sample[i+1] == '"' {
					i++
					continue
				}
				inQuotes = false
			}
			continue
		}
		switch {
		case c == d:
			fields++
			fieldStart = true
		case c == '\n':
			if nonBlank {
				if counts = append(counts, fields); len(counts) == max {
					return counts
				}
			}
			fields, nonBlank, fieldStart = 1, false, true
		case c == '"' && fieldStart:
			inQuotes, nonBlank, fieldStart = true, true, false
		case c == ' ' || c == '\t' || c == '\r':
			fieldStart = false
		default:
			nonBlank, fieldStart = true, false
		}
	}
	if atEOF && nonBlank && !inQuotes {
		counts = append(counts, fields)
	}
	return counts
}
