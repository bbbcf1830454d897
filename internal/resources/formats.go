package resources

// Format checks held to their RFCs. The JSON Schema library's checks let
// through values no receiving system accepts: an email with an empty local
// part, a host whose top label is all digits, "+1.2.3.4" as an IPv4 address,
// "+1:00:00Z" as a time, a URI with spaces or non-ASCII characters. These
// replace them for the formats resources rely on.

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// strictFormats are registered with every resource's schema compiler.
var strictFormats = []*jsonschema.Format{
	{Name: "email", Validate: stringFormat(checkEmail)},
	{Name: "hostname", Validate: stringFormat(checkHostname)},
	{Name: "ipv4", Validate: stringFormat(checkIPv4)},
	{Name: "ipv6", Validate: stringFormat(checkIPv6)},
	{Name: "date", Validate: stringFormat(checkDate)},
	{Name: "time", Validate: stringFormat(checkTime)},
	{Name: "date-time", Validate: stringFormat(checkDateTime)},
	{Name: "uri", Validate: stringFormat(checkURI)},
	{Name: "uuid", Validate: stringFormat(checkUUID)},
}

// stringFormat applies check to strings; a format says nothing of other types.
func stringFormat(check func(string) error) func(any) error {
	return func(v any) error {
		s, ok := v.(string)
		if !ok {
			return nil
		}
		return check(s)
	}
}

// checkEmail: RFC 5321 §4.1.2 and §4.5.3.1 (a dot-atom or quoted local part
// of 1–64 octets; a domain that is a host name or an address literal; 254
// octets in all), without the obsolete forms (comments, folding).
func checkEmail(s string) error {
	if len(s) > 254 {
		return errors.New("longer than 254 characters")
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return errors.New("no @")
	}
	local, domain := s[:at], s[at+1:]
	switch {
	case local == "":
		return errors.New("empty local part")
	case len(local) > 64:
		return errors.New("local part longer than 64 characters")
	case len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"':
		q := local[1 : len(local)-1]
		if q == "" {
			return errors.New("empty quoted local part")
		}
		for i := 0; i < len(q); i++ {
			c := q[i]
			if c == '\\' {
				if i+1 == len(q) || q[i+1] < 0x20 || q[i+1] > 0x7e {
					return errors.New("bad escape in quoted local part")
				}
				i++
				continue
			}
			if c < 0x20 || c > 0x7e || c == '"' {
				return fmt.Errorf("character %q not allowed in a quoted local part", c)
			}
		}
	default:
		for _, atom := range strings.Split(local, ".") {
			if atom == "" {
				return errors.New("local part with an empty dot-separated atom (leading, trailing or double dot)")
			}
			for _, c := range []byte(atom) {
				if !isAtext(c) {
					return fmt.Errorf("character %q not allowed in a local part", c)
				}
			}
		}
	}
	if strings.HasPrefix(domain, "[") && strings.HasSuffix(domain, "]") {
		lit := domain[1 : len(domain)-1]
		if v6, ok := strings.CutPrefix(lit, "IPv6:"); ok {
			return checkIPv6(v6)
		}
		return checkIPv4(lit)
	}
	if err := checkHostname(domain); err != nil {
		return fmt.Errorf("domain: %v", err)
	}
	if !strings.Contains(strings.TrimSuffix(domain, "."), ".") {
		return errors.New("domain has a single label (no mail system delivers to a bare host name)")
	}
	return nil
}

// isAtext: RFC 5322 §3.2.3.
func isAtext(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// checkHostname: RFC 1123 §2.1 (labels of letters, digits and inner hyphens,
// 1–63 octets, 253 in all; the top label not all digits, which would read
// as an IPv4 address).
func checkHostname(s string) error {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 253 {
		return errors.New("longer than 253 characters")
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return errors.New("a label must be 1 to 63 characters long")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return errors.New("a label starts or ends with a hyphen")
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("character %q not allowed in a host name", c)
			}
		}
	}
	if allDigits(labels[len(labels)-1]) {
		return errors.New("the top-level label is all digits")
	}
	return nil
}

func allDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// checkIPv4: RFC 2673 §3.2 dotted-quad, decimal octets without leading zeros.
func checkIPv4(s string) error {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return errors.New("not four dot-separated numbers")
	}
	for _, p := range parts {
		if !allDigits(p) || len(p) > 3 || len(p) > 1 && p[0] == '0' {
			return fmt.Errorf("%q is not a decimal octet", p)
		}
		n := 0
		for _, c := range []byte(p) {
			n = n*10 + int(c-'0')
		}
		if n > 255 {
			return fmt.Errorf("%s is above 255", p)
		}
	}
	return nil
}

// checkIPv6: RFC 4291 §2.2 text forms, without a zone.
func checkIPv6(s string) error {
	if !strings.Contains(s, ":") {
		return errors.New("no colon")
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return err
	}
	if !a.Is6() || a.Zone() != "" {
		return errors.New("not an IPv6 address without zone")
	}
	return nil
}

// checkDate: RFC 3339 full-date.
func checkDate(s string) error {
	if len(s) != 10 || !allDigits(s[:4]) || s[4] != '-' || !allDigits(s[5:7]) || s[7] != '-' || !allDigits(s[8:]) {
		return errors.New("not YYYY-MM-DD")
	}
	_, err := time.Parse("2006-01-02", s)
	return err
}

// checkTime: RFC 3339 full-time (a leap second only at 23:59:60 UTC).
func checkTime(s string) error {
	if len(s) < 9 || !allDigits(s[0:2]) || s[2] != ':' || !allDigits(s[3:5]) || s[5] != ':' || !allDigits(s[6:8]) {
		return errors.New("not hh:mm:ss")
	}
	h, m, sec := num(s[0:2]), num(s[3:5]), num(s[6:8])
	if h > 23 || m > 59 || sec > 60 {
		return errors.New("hour, minute or second out of range")
	}
	rest := s[8:]
	if frac, ok := strings.CutPrefix(rest, "."); ok {
		n := 0
		for n < len(frac) && frac[n] >= '0' && frac[n] <= '9' {
			n++
		}
		if n == 0 {
			return errors.New("no digits after the decimal point")
		}
		rest = frac[n:]
	}
	offset := 0
	switch {
	case rest == "Z" || rest == "z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && allDigits(rest[1:3]) && rest[3] == ':' && allDigits(rest[4:6]):
		oh, om := num(rest[1:3]), num(rest[4:6])
		if oh > 23 || om > 59 {
			return errors.New("offset out of range")
		}
		offset = oh*60 + om
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return errors.New("no Z or ±hh:mm offset")
	}
	if sec == 60 {
		utc := ((h*60+m-offset)%(24*60) + 24*60) % (24 * 60)
		if utc != 23*60+59 {
			return errors.New("a leap second only at 23:59:60 UTC")
		}
	}
	return nil
}

func num(s string) int {
	n := 0
	for _, c := range []byte(s) {
		n = n*10 + int(c-'0')
	}
	return n
}

// checkDateTime: RFC 3339 date-time.
func checkDateTime(s string) error {
	if len(s) < 20 || s[10] != 'T' && s[10] != 't' {
		return errors.New("not YYYY-MM-DDThh:mm:ss with an offset")
	}
	if err := checkDate(s[:10]); err != nil {
		return err
	}
	return checkTime(s[11:])
}

// checkURI: RFC 3986 absolute URI: a scheme (a letter, then letters, digits,
// "+", "-", "."), then only unreserved, reserved and %-encoded octets.
func checkURI(s string) error {
	colon := strings.IndexByte(s, ':')
	if colon <= 0 {
		return errors.New("no scheme")
	}
	scheme := s[:colon]
	for i, c := range []byte(scheme) {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return errors.New("not a valid scheme")
		}
	}
	for i := colon + 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return errors.New("a % not followed by two hex digits")
			}
			i += 2
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~:/?#[]@!$&'()*+,;=", c) >= 0:
		default:
			return fmt.Errorf("character %q not allowed in a URI", c)
		}
	}
	rest := s[colon+1:]
	brackets := strings.Count(rest, "[") + strings.Count(rest, "]")
	if auth, ok := strings.CutPrefix(rest, "//"); ok {
		if end := strings.IndexAny(auth, "/?#"); end >= 0 {
			auth = auth[:end]
		}
		host := auth[strings.LastIndexByte(auth, '@')+1:]
		port := host
		if strings.HasPrefix(host, "[") {
			end := strings.IndexByte(host, ']')
			if end < 0 {
				return errors.New("an IP literal without its closing bracket")
			}
			if err := checkIPv6(host[1:end]); err != nil {
				return fmt.Errorf("host: %v", err)
			}
			brackets -= 2
			port = host[end+1:]
		}
		if i := strings.LastIndexByte(port, ':'); i >= 0 && port[i+1:] != "" && !allDigits(port[i+1:]) {
			return errors.New("bad port")
		}
	}
	if brackets != 0 {
		return errors.New("brackets outside an IP literal")
	}
	return nil
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// checkUUID: RFC 9562 §4 text form (8-4-4-4-12 hex digits).
func checkUUID(s string) error {
	if len(s) != 36 {
		return errors.New("not 36 characters")
	}
	for i, c := range []byte(s) {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return errors.New("hyphens not at 8-4-4-4-12")
			}
		} else if !isHex(c) {
			return fmt.Errorf("%q is not a hex digit", c)
		}
	}
	return nil
}
