package s3

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/inlet-dev/inlet/internal/faults"
)

// A body that ends before its object's size is a transient fault (the
// transport cut it), whatever error the transport gave; a whole body ends
// with a plain io.EOF.
func TestACutBodyIsTransient(t *testing.T) {
	read := func(r io.Reader, size int64) error {
		_, err := io.ReadAll(&wholeBody{ReadCloser: io.NopCloser(r), key: "k", size: size})
		return err
	}
	if err := read(strings.NewReader("0123456789"), 10); err != nil {
		t.Errorf("a whole body: %v", err)
	}
	for name, r := range map[string]io.Reader{
		"early EOF":      strings.NewReader("01234"),
		"unexpected EOF": io.MultiReader(strings.NewReader("01234"), iotest.ErrReader(io.ErrUnexpectedEOF)),
		"reset":          io.MultiReader(strings.NewReader("01234"), iotest.ErrReader(errors.New("connection reset by peer"))),
	} {
		err := read(r, 10)
		if err == nil || !faults.Transient(err) || !strings.Contains(err.Error(), "after 5 of 10 bytes") {
			t.Errorf("%s: %v, want a transient fault naming the bytes read", name, err)
		}
	}
}
