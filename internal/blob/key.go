package blob

import (
	"fmt"
	"strings"
)

// MaxKeyLen is S3's key length limit; MinIO and AWS reject longer keys, so the
// local adapter refuses them too rather than accept keys that break in prod.
const MaxKeyLen = 1024

// ValidateKey reports whether key is acceptable to every adapter. The rules are
// the intersection of what a filesystem and S3 store without surprises: the
// local adapter maps keys to paths, so anything that could escape its root or
// name one file two ways ("a//b", "a/./b", "a/") is refused by every adapter,
// so that a key that works in development also works against S3.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("blob: invalid key %q: empty", key)
	}
	if why := checkChars(key); why != "" {
		return fmt.Errorf("blob: invalid key %q: %s", key, why)
	}
	if strings.HasSuffix(key, "/") {
		return fmt.Errorf("blob: invalid key %q: ends with a slash", key)
	}
	if why := checkSegments(strings.Split(key, "/")); why != "" {
		return fmt.Errorf("blob: invalid key %q: %s", key, why)
	}
	return nil
}

// ValidatePrefix checks a List prefix. A prefix is a plain string prefix, so
// its last segment may be partial or empty ("imports/imp_01" matches
// "imports/imp_0123/…", "imports/" matches everything below imports); only
// the complete segments before the last slash must be valid key segments.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if why := checkChars(prefix); why != "" {
		return fmt.Errorf("blob: invalid prefix %q: %s", prefix, why)
	}
	segs := strings.Split(prefix, "/")
	if why := checkSegments(segs[:len(segs)-1]); why != "" {
		return fmt.Errorf("blob: invalid prefix %q: %s", prefix, why)
	}
	return nil
}

func checkChars(p string) string {
	switch {
	case len(p) > MaxKeyLen:
		return fmt.Sprintf("longer than %d bytes", MaxKeyLen)
	case strings.HasPrefix(p, "/"):
		return "absolute (starts with a slash)"
	case strings.ContainsRune(p, '\\'):
		return "contains a backslash"
	case strings.ContainsRune(p, 0):
		return "contains a NUL byte"
	}
	return ""
}

func checkSegments(segs []string) string {
	for _, s := range segs {
		switch s {
		case "":
			return `contains an empty segment ("//")`
		case ".", "..":
			return fmt.Sprintf("contains a %q segment", s)
		}
	}
	return ""
}
