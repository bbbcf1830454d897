package blob_test

import (
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/blob"
)

func TestValidateKey(t *testing.T) {
	valid := []string{"a", "a/b/c.csv", "imports/imp_01/batches/0001.jsonl", ".hidden", "a/..b", "a/b..", "sp ace/ü", strings.Repeat("k", 1024)}
	for _, k := range valid {
		if err := blob.ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", k, err)
		}
	}
	invalid := map[string]string{
		"":                        "empty",
		"/a":                      "absolute",
		"a/":                      "ends with a slash",
		"a//b":                    "empty segment",
		".":                       `"." segment`,
		"..":                      `".." segment`,
		"a/../b":                  `".." segment`,
		"a/./b":                   `"." segment`,
		"a/..":                    `".." segment`,
		`a\b`:                     "backslash",
		"a\x00b":                  "NUL",
		strings.Repeat("k", 1025): "longer than 1024",
	}
	for k, why := range invalid {
		err := blob.ValidateKey(k)
		if err == nil {
			t.Errorf("ValidateKey(%q) = nil, want an error about %s", k, why)
			continue
		}
		if !strings.Contains(err.Error(), why) {
			t.Errorf("ValidateKey(%q) = %q, want it to mention %q", k, err, why)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, p := range []string{"", "a", "a/", "imports/imp_0", "a/b/.", "a/.."} {
		// A partial last segment is only a string prefix ("a/.." matches
		// "a/..b"), so it cannot climb out of anything.
		if err := blob.ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"/a", "../", "a/../", "a//", `a\`, "a/./b"} {
		if err := blob.ValidatePrefix(p); err == nil {
			t.Errorf("ValidatePrefix(%q) = nil, want an error", p)
		}
	}
}
