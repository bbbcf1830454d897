package decode

import (
	"testing"

	"github.com/inlet-dev/inlet/events"
)

// One table decides a file's format wherever it is inferred (the gateway's
// uploads and a request's source): .txt and .tsv read as CSV in both.
func TestInferFormat(t *testing.T) {
	for _, c := range []struct {
		contentType string
		names       []string
		want        events.Format
	}{
		{"", []string{"a.csv"}, FormatCSV},
		{"", []string{"A.CSV"}, FormatCSV},
		{"", []string{"a.txt"}, FormatCSV},
		{"", []string{"a.tsv"}, FormatCSV},
		{"", []string{"a.json"}, FormatJSON},
		{"", []string{"a.jsonl"}, FormatJSONL},
		{"", []string{"a.ndjson"}, FormatJSONL},
		{"", []string{"a.xlsx"}, FormatXLSX},
		{"", []string{"", "imports/x/source/upload.xlsx"}, FormatXLSX},
		{"", []string{"notes", "data.json"}, FormatJSON},
		{"application/json", []string{"a.csv"}, FormatCSV}, // the name wins
		{"text/csv; charset=utf-8", []string{"a"}, FormatCSV},
		{"application/x-ndjson", nil, FormatJSONL},
		{"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", []string{"a.bin"}, FormatXLSX},
		{"application/octet-stream", []string{"a.bin"}, ""},
		{"", []string{"a.xls"}, ""},
		{"not a type", nil, ""},
		{"application/gzip", []string{"export.csv.gz"}, FormatCSV}, // named by what it holds
		{"", []string{"data.JSONL.GZ"}, FormatJSONL},
		{"", []string{"book.xlsx.gzip"}, FormatXLSX},
		{"application/gzip", []string{"data.gz"}, ""},
	} {
		if got := InferFormat(c.contentType, c.names...); got != c.want {
			t.Errorf("InferFormat(%q, %q) = %q, want %q", c.contentType, c.names, got, c.want)
		}
	}
}
