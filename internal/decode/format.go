package decode

import (
	"mime"
	"path"
	"strings"

	"github.com/inlet-dev/inlet/events"
)

// Formats by file extension and by content type: how a file that does not
// name its format is read (the gateway's uploads, a request's source).
var (
	formatByExt = map[string]events.Format{
		".csv": FormatCSV, ".txt": FormatCSV, ".tsv": FormatCSV,
		".json":  FormatJSON,
		".jsonl": FormatJSONL, ".ndjson": FormatJSONL,
		".xlsx": FormatXLSX,
	}
	formatByContentType = map[string]events.Format{
		"text/csv": FormatCSV, "application/csv": FormatCSV, "text/tab-separated-values": FormatCSV,
		"application/json":     FormatJSON,
		"application/x-ndjson": FormatJSONL, "application/ndjson": FormatJSONL, "application/jsonl": FormatJSONL,
		"application/x-jsonlines": FormatJSONL, "application/jsonlines": FormatJSONL,
		"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": FormatXLSX,
	}
)

// InferFormat is the format of a file by the extension of the first of
// names that has a known one, else by its content type; "" when neither
// tells. A compressed file is named by what it holds ("data.csv.gz" is
// CSV): Open decompresses it by its content.
func InferFormat(contentType string, names ...string) events.Format {
	for _, n := range names {
		n = strings.ToLower(n)
		for _, z := range []string{".gz", ".gzip"} {
			n = strings.TrimSuffix(n, z)
		}
		if f, ok := formatByExt[path.Ext(n)]; ok {
			return f
		}
	}
	if ct, _, err := mime.ParseMediaType(contentType); err == nil {
		return formatByContentType[ct]
	}
	return ""
}
