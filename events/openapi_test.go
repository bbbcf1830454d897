package events_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/events"
)

// The document stands alone: every $ref points inside it, and no schema keeps
// an $id or $schema that would send a validator to the network. (Its
// validity as OpenAPI 3.1 is tested in internal/openapi, which may import
// an OpenAPI library; this module may not.)
func TestOpenAPIResolvesWithinItself(t *testing.T) {
	b, err := events.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				switch k {
				case "$id", "$schema", "$defs":
					t.Errorf("%s has %s", at, k)
				case "$ref":
					ref, _ := c.(string)
					if !strings.HasPrefix(ref, "#/") || resolve(doc, ref) == nil {
						t.Errorf("%s: $ref %q does not resolve in the document", at, ref)
					}
				}
				walk(c, at+"/"+k)
			}
		case []any:
			for _, c := range x {
				walk(c, at+"/[]")
			}
		}
	}
	walk(doc, "#")

	schemas := resolve(doc, "#/components/schemas").(map[string]any)
	for _, name := range []string{"Import", "ImportCreated", "CreateImport", "CreateImportForm", "Status", "Token", "PhaseName"} {
		if schemas[name] == nil {
			t.Errorf("components.schemas has no %s", name)
		}
	}
	props := func(name string) map[string]any {
		return schemas[name].(map[string]any)["properties"].(map[string]any)
	}
	for _, opt := range []string{"resource", "mode", "column_mapping", "deadline"} {
		if props("CreateImport")[opt] == nil || props("CreateImportForm")[opt] == nil {
			t.Errorf("the create bodies lack the option %s", opt)
		}
	}
	if props("CreateImport")["inputs"] == nil || props("CreateImportForm")["inputs"] != nil || props("CreateImportForm")["file"] == nil {
		t.Error("JSON creates carry inputs, forms a file part")
	}
	if props("CreateImport")["id"] != nil || props("CreateImport")["source"] != nil {
		t.Error("the create body takes what the server assigns")
	}
	if props("ImportCreated")["prevalidation"] == nil || props("Import")["prevalidation"] != nil {
		t.Error("prevalidation belongs to the create answer only")
	}
}

// resolve follows a local JSON pointer ("#/a/b"), nil when it leads nowhere.
func resolve(doc any, ref string) any {
	v := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[tok]
	}
	return v
}
