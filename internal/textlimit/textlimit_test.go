package textlimit_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/inlet-dev/inlet/internal/textlimit"
)

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int
		want     string
	}{
		{"short", "fine", 10, "fine"},
		{"binary", "a\x00b\xffc", 100, `a\x00b\xffc`},
		{"controls", "tab\tnl\nbell\a", 100, "tab\tnl\nbell\\a"},
		{"cut", strings.Repeat("x", 100), 40, strings.Repeat("x", 18) + "… (100 bytes in all)"},
	} {
		if got := textlimit.Clip(tc.in, tc.max); got != tc.want {
			t.Errorf("%s: Clip = %q, want %q", tc.name, got, tc.want)
		}
	}
	// A cut never splits a rune and never exceeds the bound.
	long := strings.Repeat("é", 5000)
	got := textlimit.Clip(long, 301)
	if len(got) > 301 || !utf8.ValidString(got) || !strings.HasSuffix(got, "(10000 bytes in all)") {
		t.Fatalf("Clip of a long UTF-8 text: %d bytes, valid %v: %q", len(got), utf8.ValidString(got), got[len(got)-40:])
	}
}

func TestQuote(t *testing.T) {
	if got := textlimit.Quote("a\"b\x00"); got != `"a\"b\x00"` {
		t.Errorf("Quote = %s", got)
	}
	huge := strings.Repeat("h", 50<<20)
	got := textlimit.Quote(huge)
	if want := `"` + strings.Repeat("h", textlimit.Quoted) + `"… (52428800 bytes)`; got != want {
		t.Errorf("Quote of 50 MB = %.120s…, want %s", got, want)
	}
}
