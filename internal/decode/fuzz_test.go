package decode

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/inlet-dev/inlet/events"
	"github.com/inlet-dev/inlet/internal/resources"
)

// The fuzz targets read whatever bytes as a user's file would be read, then
// map, coerce and validate every record against a resource, and hold the
// decoders to their contract: no panic, every failure a *FileError or a
// *RowError (or a Prepare problem) with a specific, bounded message, and the
// reading ends. make fuzz runs each for a while; a crash they find is stored
// under testdata/fuzz and replayed by every go test.

// maxMessage bounds what an error says about a file: messages quote cells
// shortened (textlimit.Quote), never whole.
const maxMessage = 4096

var fuzzResources = func() *resources.Registry {
	_, file, _, _ := runtime.Caller(0)
	reg, err := resources.LoadDir(filepath.Join(filepath.Dir(file), "..", "..", "resources"))
	if err != nil {
		panic(err)
	}
	return reg
}()

func fuzzRead(t *testing.T, format events.Format, data []byte, opts Options) {
	res, _ := fuzzResources.Get("customers")
	opts.MaxRecordBytes = 1 << 20
	opts.TempDir = t.TempDir()
	src, err := Open(format, bytes.NewReader(data), opts)
	if err != nil {
		checkFileError(t, err)
		return
	}
	defer src.Close()
	m, err := NewMapping(src.Header(), nil, res)
	if err != nil {
		if len(err.Error()) > maxMessage {
			t.Fatalf("mapping error of %d bytes", len(err.Error()))
		}
		m = nil
	}
	for n := 0; n < 100000; n++ {
		rec, err := src.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			var re *RowError
			if errors.As(err, &re) {
				if len(re.Error()) > maxMessage {
					t.Fatalf("row error of %d bytes", len(re.Error()))
				}
				continue
			}
			checkFileError(t, err)
			return
		}
		if m == nil {
			continue
		}
		_, problems := Prepare(res, m, rec)
		for _, p := range problems {
			if p.Code == "" || len(p.Message) > maxMessage {
				t.Fatalf("problem %q of %d bytes", p.Code, len(p.Message))
			}
		}
	}
	t.Fatal("more than 100000 records from a fuzzed input")
}

func checkFileError(t *testing.T, err error) {
	t.Helper()
	var fe *FileError
	if !errors.As(err, &fe) && !strings.HasPrefix(err.Error(), "decode:") {
		t.Fatalf("not a file error: %T %v", err, err)
	}
	if len(err.Error()) > maxMessage {
		t.Fatalf("file error of %d bytes: %.200s", len(err.Error()), err.Error())
	}
}

func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"email,name,age\na@x.io,Ann,30\n",
		"\xEF\xBB\xBFemail;name\r\n\"a@x.io\";\"Smith, \"\"A\"\"\"\r\n",
		"email,email\nx,y\n",
		"email,name\n\"unterminated\n",
		"email\tname\n" + strings.Repeat("a", 1000) + "\tB\n",
		"\xff\xfee\x00m\x00a\x00i\x00l\x00\n\x00",
		"email,age\na@x.io,1e400\n",
		"=cmd|' /C calc'!A0,x\n1,2\n",
		"email,name\na@x.io,\x00\x01\x02\n",
		"",
		"\n\n\n",
		"sep=;\r\nEmail Address;NAME\r\na@x.io;Ann\r\n",
		"\"sep=|\"\remail|name\ra@x.io|Ann\r",
		"sep=\nemail\n",
		string(gzipOf([]byte("sep=;\nemail;name\na@x.io;Ann\n"))),
		string(gzipOf([]byte("email,name\na@x.io,Ann\n")))[:20],
		"PK\x03\x04\x14\x00\x00\x00",
		"%PDF-1.4\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRead(t, FormatCSV, data, Options{}) })
}

func FuzzJSON(f *testing.F) {
	for _, s := range []string{
		`[{"email":"a@x.io","name":"Ann","age":30}]`,
		`{"records":[{"email":"a@x.io"}]}`,
		`[{"email":"a@x.io","age":1e400}]`,
		`[` + strings.Repeat(`[`, 200) + strings.Repeat(`]`, 200) + `]`,
		`[{"email":"a@x.io","name":{"nested":[1,2,{"x":null}]}}]`,
		`[{"email":"a@x.io"},`,
		`null`, `[]`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRead(t, FormatJSON, data, Options{}) })
}

func FuzzJSONL(f *testing.F) {
	for _, s := range []string{
		"{\"email\":\"a@x.io\",\"name\":\"Ann\"}\n{\"email\":\"b@x.io\"}\n",
		"{\"email\":\"a@x.io\"}\nnot json\n{}\n",
		"\n\n{\"age\":\"old\"}",
		"{\"email\":\"\\u0000\"}\n",
		"[1,2]\n\"x\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRead(t, FormatJSONL, data, Options{}) })
}

func FuzzXLSX(f *testing.F) {
	book := excelize.NewFile()
	_ = book.SetSheetRow("Sheet1", "A1", &[]any{"email", "name", "age"})
	_ = book.SetSheetRow("Sheet1", "A2", &[]any{"a@x.io", "Ann", 30})
	_ = book.SetSheetRow("Sheet1", "A3", &[]any{"b@x.io", "=1+1", "x"})
	var b bytes.Buffer
	if err := book.Write(&b); err != nil {
		f.Fatal(err)
	}
	book.Close()
	f.Add(b.Bytes())
	f.Add(b.Bytes()[:len(b.Bytes())/2]) // truncated
	f.Add([]byte("PK\x03\x04not really a zip"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRead(t, FormatXLSX, data, Options{}) })
}

func gzipOf(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return out.Bytes()
}
