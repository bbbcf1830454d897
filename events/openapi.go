package events

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// OpenAPIPath is where every Inlet HTTP server serves OpenAPI().
const OpenAPIPath = "/v1/openapi.json"

// ImportEventsRoute is the route of an import's server-sent events (the
// projector serves it; internal/auth lets a browser's EventSource, which
// cannot send headers, give its key in the query on this route alone).
const ImportEventsRoute = "GET /v1/imports/{id}/events"

// openAPISkeleton is the HTTP API description without the shapes the event
// schemas already say: it $refs them under #/components/schemas/ and
// OpenAPI fills them in.
//
//go:embed openapi.json
var openAPISkeleton []byte

// openAPISchemas are the event schemas the HTTP API uses, by component name.
var openAPISchemas = map[string]string{
	"Import":          SchemaImportFile,
	"ImportRequested": schemaFiles[EventRequested],
}

// notHTTPOptions are the members of the import-requested event a create over
// HTTP does not take: what the server assigns (id, created_by; expires_at and
// upload_url of an import waiting for its file) and source, a file already in
// the blob store, which only a NATS publisher can name.
var notHTTPOptions = []string{"id", "created_by", "expires_at", "upload_url", "source"}

// OpenAPI returns the OpenAPI 3.1 document of the HTTP API (spec §6), whole:
// the event schemas it uses are copied into components.schemas (their $defs
// lifted beside them, under CamelCase names, and every $ref rewritten to
// point there), so it resolves without the network. The create bodies are
// derived from the import-requested event (less notHTTPOptions), and the
// create answer from the import object (plus prevalidation).
func OpenAPI() ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(openAPISkeleton, &doc); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	names := map[string]string{} // schema file → component name
	for name, file := range openAPISchemas {
		names[file] = name
	}
	add := func(name string, s any) error {
		if _, taken := schemas[name]; taken {
			return fmt.Errorf("components.schemas.%s is defined twice", name)
		}
		schemas[name] = s
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(openAPISchemas)) {
		file := openAPISchemas[name]
		b, err := schemaFS.ReadFile("schemas/" + file)
		if err != nil {
			return nil, err
		}
		var s map[string]any
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if err := rewriteRefs(s, file, names); err != nil {
			return nil, err
		}
		defs, _ := s["$defs"].(map[string]any)
		for def, d := range defs {
			if err := add(defName(def), d); err != nil {
				return nil, fmt.Errorf("%s#/$defs/%s: %w", file, def, err)
			}
		}
		delete(s, "$defs")
		delete(s, "$id")
		delete(s, "$schema")
		if err := add(name, s); err != nil {
			return nil, err
		}
	}
	if err := deriveHTTPShapes(schemas); err != nil {
		return nil, err
	}
	delete(schemas, "ImportRequested") // the API takes its options only
	return json.MarshalIndent(doc, "", "  ")
}

// deriveHTTPShapes fills the create bodies with the event's options and
// writes ImportCreated, the import object with the prevalidation of an
// upload_mode sync create.
func deriveHTTPShapes(schemas map[string]any) error {
	requested := schemas["ImportRequested"].(map[string]any)
	options := maps.Clone(requested["properties"].(map[string]any))
	for _, name := range notHTTPOptions {
		if _, ok := options[name]; !ok {
			return fmt.Errorf("import-requested has no %q: notHTTPOptions is out of date", name)
		}
		delete(options, name)
	}
	jsonBody := schemas["CreateImport"].(map[string]any)
	jsonBody["properties"] = options
	form := schemas["CreateImportForm"].(map[string]any)
	formProps := form["properties"].(map[string]any)
	for name, p := range options {
		if name != "inputs" { // a form carries its file as a part
			formProps[name] = p
		}
	}

	created := deepCopy(schemas["Import"]).(map[string]any)
	created["title"] = "ImportCreated"
	created["description"] = "The import object; the answer of an upload_mode sync create also holds prevalidation."
	created["properties"].(map[string]any)["prevalidation"] = map[string]any{"$ref": "#/components/schemas/Prevalidation"}
	schemas["ImportCreated"] = created
	return nil
}

// defName is the component name of a lifted $defs entry: "phase_name" is
// "PhaseName".
func defName(def string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(def, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// rewriteRefs points every $ref of the schema of file (the file itself
// "#/$defs/x", another "other.json#/$defs/x", or a whole "other.json") at
// components.schemas; a schema it cannot point there is an error.
func rewriteRefs(v any, file string, names map[string]string) error {
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			if ref, ok := child.(string); ok && k == "$ref" {
				target, frag, _ := strings.Cut(ref, "#")
				if target == "" {
					target = file
				}
				var name string
				switch {
				case frag == "" && names[target] != "":
					name = names[target]
				case strings.HasPrefix(frag, "/$defs/") && names[target] != "":
					name = defName(strings.TrimPrefix(frag, "/$defs/"))
				default:
					return fmt.Errorf("%s: $ref %q is not in the OpenAPI document (add its file to openAPISchemas)", file, ref)
				}
				x[k] = "#/components/schemas/" + name
				continue
			}
			if err := rewriteRefs(child, file, names); err != nil {
				return err
			}
		}
	case []any:
		for _, child := range x {
			if err := rewriteRefs(child, file, names); err != nil {
				return err
			}
		}
	}
	return nil
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, c := range x {
			out[k] = deepCopy(c)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, c := range x {
			out[i] = deepCopy(c)
		}
		return out
	}
	return v
}
