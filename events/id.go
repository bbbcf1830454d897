package events

import (
	"crypto/rand"
	"strings"
	"time"
)

// IDPrefix starts every import id Inlet makes: imp_ + a ULID (26 characters
// of Crockford base32: 48 bits of creation time in Unix milliseconds, then 80
// random bits), so ids sort by creation time. A client choosing the id of a
// request over NATS should follow the same form: whoever waits for the import
// then knows from the id alone how far back to look for its events.
const IDPrefix = "imp_"

// ulidLen is the text length of a ULID.
const ulidLen = 26

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns a fresh import id made at t.
func NewID(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := 0; i < 6; i++ {
		b[i] = byte(ms >> (40 - 8*i))
	}
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails (Go 1.24+)
	return IDPrefix + encodeULID(b)
}

// IDTime is the creation time inside an imp_<ULID> id; ok is false when the
// id (with or without the prefix) is not a ULID: ids chosen by clients may be
// any token.
func IDTime(id string) (t time.Time, ok bool) {
	hi, ok := decodeULID(strings.TrimPrefix(id, IDPrefix))
	if !ok {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(hi >> 16)).UTC(), true
}

// encodeULID writes 128 bits as 26 base32 digits, the first holding the top 3.
func encodeULID(b [16]byte) string {
	var hi, lo uint64
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[8+i])
	}
	var out [ulidLen]byte
	for i := ulidLen - 1; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// decodeULID parses a ULID strictly: 26 digits of Crockford's alphabet in
// either case, the first at most 7 (more would overflow 128 bits). It
// returns the high 64 bits, whose top 48 are the time.
func decodeULID(s string) (hi uint64, ok bool) {
	if len(s) != ulidLen {
		return 0, false
	}
	var lo uint64
	for i := 0; i < ulidLen; i++ {
		v := strings.IndexByte(crockford, upper(s[i]))
		if v < 0 || (i == 0 && v > 7) {
			return 0, false
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	return hi, true
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}
