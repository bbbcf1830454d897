package gateway_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
)

// A sync create answers with the mapping its prevalidation used, read from
// a gzip'd file whatever its name, and refuses a binary file by what it is.
func TestSyncReportsTheMappingAndRefusesBinaries(t *testing.T) {
	e := newEnv(t, 0)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("sep=;\nE-mail;NAME;Âge;Colour\na@x.io;Ann;42;red\n"))
	_ = zw.Close()
	rec, b := e.do(t, multipartReq(t,
		part{name: "resource", body: "customers"}, // closed schema: a stray column fails it
		part{name: "file", file: "c.bin", contentType: "application/octet-stream", body: gz.String()},
		part{name: "upload_mode", body: "sync"},
		part{name: "format", body: "csv"},
	))
	if rec.Code != 422 || errorCode(t, b) != "invalid_file" {
		t.Fatalf("stray column: %d %s", rec.Code, b)
	}
	var refused struct {
		Error struct {
			Details struct {
				Code     string                  `json:"code"`
				Unmapped []events.UnmappedHeader `json:"unmapped_headers"`
			} `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &refused); err != nil {
		t.Fatal(err)
	}
	if d := refused.Error.Details; d.Code != "mapping.invalid" || len(d.Unmapped) != 1 || d.Unmapped[0].Header != "Colour" {
		t.Errorf("refusal details: %s", b)
	}

	var plain bytes.Buffer
	zw = gzip.NewWriter(&plain)
	_, _ = zw.Write([]byte("sep=;\r\nE-mail;NAME;Âge\r\na@x.io;Ann;42\r\n"))
	_ = zw.Close()
	rec, b = e.do(t, multipartReq(t,
		part{name: "resource", body: "customers"},
		part{name: "file", file: "export.csv.gz", contentType: "application/gzip", body: plain.String()},
		part{name: "upload_mode", body: "sync"},
	))
	if rec.Code != 201 {
		t.Fatalf("sync create: %d %s", rec.Code, b)
	}
	var resp syncResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"E-mail": "email", "NAME": "name", "Âge": "age"}
	if resp.Format != events.FormatCSV || !reflect.DeepEqual(resp.File.Columns, want) || len(resp.File.UnmappedHeaders) != 0 ||
		resp.Prevalidation == nil || resp.Prevalidation.Valid != 1 {
		t.Errorf("answer: %s", b)
	}

	rec, b = e.do(t, multipartReq(t,
		part{name: "resource", body: "customers"},
		part{name: "file", file: "customers.csv", contentType: "text/csv", body: "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"},
		part{name: "upload_mode", body: "sync"},
	))
	if rec.Code != 422 || errorCode(t, b) != "invalid_file" || !strings.Contains(string(b), "the file is a PDF document, not CSV/JSON/XLSX") ||
		!strings.Contains(string(b), `"code":"file.type"`) {
		t.Errorf("pdf: %d %s", rec.Code, b)
	}
}
