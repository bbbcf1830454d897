package resources

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// decimal is a parsed number: value = (-1 if neg) × digits × 10^exp, with
// digits free of leading and trailing zeros ("" for zero).
type decimal struct {
	neg    bool
	digits string
	exp    int
}

// maxExp bounds exponents so "1e999999999" cannot make us render a gigabyte
// of zeros; no real import value is near it.
const maxExp = 400

// parseDecimal accepts what people type and spreadsheets export: an optional
// sign, digits with an optional fraction (".5" and "5." too) and an optional
// exponent. It rejects thousands separators, hex, inf and nan: those are
// ambiguous or not JSON numbers.
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		d.neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intPart := s[start:i]
	var frac string
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		frac = s[fs:i]
	}
	if intPart == "" && frac == "" {
		return d, false
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		es := i
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		ds := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == ds || i-ds > 6 {
			return d, false
		}
		e, err := strconv.Atoi(s[es:i])
		if err != nil {
			return d, false
		}
		exp = e
	}
	if i != len(s) {
		return d, false
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	exp -= len(frac)
	trimmed := strings.TrimRight(digits, "0")
	exp += len(digits) - len(trimmed)
	d.digits = trimmed
	d.exp = exp
	if d.digits == "" {
		d.neg, d.exp = false, 0
	}
	if mag := len(d.digits) + d.exp; mag > maxExp || mag < -maxExp {
		return d, false
	}
	return d, d.fitsDouble()
}

// fitsDouble reports whether a double holds d's magnitude: whoever reads
// the stored record as JSON (JavaScript, most JSON libraries) reads numbers
// as doubles, and would read 1e400 as infinity and 1e-400 as zero. Within
// that range the digits are kept exactly as given.
func (d decimal) fitsDouble() bool {
	if d.digits == "" {
		return true
	}
	f, err := strconv.ParseFloat(d.String(), 64)
	return err == nil && f != 0
}

// outOfRange is the first number in v (a JSON value: nested objects and
// arrays searched) that no double can hold.
func outOfRange(v any) (string, bool) {
	switch v := v.(type) {
	case json.Number:
		if _, ok := parseDecimal(string(v)); !ok {
			return string(v), true
		}
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return strconv.FormatFloat(v, 'g', -1, 64), true
		}
	case map[string]any:
		for _, x := range v {
			if n, bad := outOfRange(x); bad {
				return n, true
			}
		}
	case []any:
		for _, x := range v {
			if n, bad := outOfRange(x); bad {
				return n, true
			}
		}
	}
	return "", false
}

// whyOutOfRange is the reason given for such a number.
const whyOutOfRange = "beyond the range of a double"

func (d decimal) integral() bool { return d.exp >= 0 }

// String renders the canonical form: valid JSON, exact, plain notation for
// ordinary magnitudes and scientific beyond them (like JavaScript does).
func (d decimal) String() string {
	if d.digits == "" {
		return "0"
	}
	var b strings.Builder
	if d.neg {
		b.WriteByte('-')
	}
	n := len(d.digits)
	p := n + d.exp // digits before the decimal point
	switch {
	case d.exp >= 0 && p <= 21:
		b.WriteString(d.digits)
		b.WriteString(strings.Repeat("0", d.exp))
	case d.exp < 0 && p > 0:
		b.WriteString(d.digits[:p])
		b.WriteByte('.')
		b.WriteString(d.digits[p:])
	case d.exp < 0 && p > -6:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -p))
		b.WriteString(d.digits)
	default:
		b.WriteByte(d.digits[0])
		if n > 1 {
			b.WriteByte('.')
			b.WriteString(d.digits[1:])
		}
		b.WriteByte('e')
		b.WriteString(strconv.Itoa(p - 1))
	}
	return b.String()
}

// CanonicalNumber returns the canonical form of a decimal number string
// ("007" → "7", "1.50" → "1.5", "1e3" → "1000"), reporting false when s is
// not a number.
func CanonicalNumber(s string) (string, bool) {
	d, ok := parseDecimal(strings.TrimSpace(s))
	if !ok {
		return "", false
	}
	return d.String(), true
}
