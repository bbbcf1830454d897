// Package textlimit bounds the text Inlet writes about user input: a reason,
// a row's message, an option. A 50 MB header line quoted whole made a
// terminal event no broker would carry; binary quoted raw made errors files
// no reader could open. What users send is quoted short and escaped.
package textlimit

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of what Inlet writes about an import.
const (
	// Reason bounds an import's reason.
	Reason = 2048
	// Message bounds a row's message and Field its field name.
	Message = 1024
	Field   = 256
	// Quoted bounds a value quoted inside a message.
	Quoted = 80
)

// Clip returns s as valid UTF-8 with control characters escaped, cut to at
// most max bytes; a cut says how long s was.
func Clip(s string, max int) string {
	s = escape(s)
	if len(s) <= max {
		return s
	}
	tail := fmt.Sprintf("… (%d bytes in all)", len(s))
	cut := max - len(tail)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + tail
}

// Quote quotes a value a user sent for a message: Go-quoted (binary and
// control characters escaped), at most Quoted runes of it, and its length
// when it was longer.
func Quote(v string) string {
	if utf8.RuneCountInString(v) <= Quoted {
		return strconv.Quote(v)
	}
	n, i := 0, 0
	for i = range v {
		if n == Quoted {
			break
		}
		n++
	}
	return strconv.Quote(v[:i]) + fmt.Sprintf("… (%d bytes)", len(v))
}

// escape makes s valid UTF-8 and escapes its control characters (but tab
// and newline) the way strconv does.
func escape(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 && r != '\t' && r != '\n' || r == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 && r != '\t' && r != '\n' || r == 0x7f:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
