package resources

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Registry holds the resource types loaded at start-up. It is read-only after
// LoadDir returns, so phases may share one Registry across goroutines.
type Registry struct {
	byName map[string]*Resource
	list   []*Resource
}

// Get returns the resource called name.
func (r *Registry) Get(name string) (*Resource, bool) {
	res, ok := r.byName[name]
	return res, ok
}

// List returns every resource, sorted by name. The slice is a copy.
func (r *Registry) List() []*Resource {
	return append([]*Resource(nil), r.list...)
}

// LoadDir loads every *.json file of dir as one resource definition. All
// definitions are checked before anything is returned, and the error lists
// every problem found (one per line, each naming its file and field), so an
// operator fixes a broken resources directory in one pass, not one per start.
func LoadDir(dir string) (*Registry, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("resources: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("resources: no *.json definitions in %s", dir)
	}
	sort.Strings(paths)
	files := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("resources: %w", err)
		}
		files[filepath.Base(p)] = b
	}
	return Load(files)
}

// Load builds a registry from definitions given as file name → JSON content
// (LoadDir reads them from a directory; tests and embedders pass them inline).
func Load(files map[string][]byte) (*Registry, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)

	var errs []error
	reg := &Registry{byName: map[string]*Resource{}}
	fileOf := map[string]string{}
	for _, file := range names {
		res, ferrs := compileDefinition(file, files[file])
		errs = append(errs, ferrs...)
		if res == nil {
			continue
		}
		if prev, dup := fileOf[res.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: name: resource %q is already defined by %s", file, res.Name, prev))
			continue
		}
		fileOf[res.Name] = file
		reg.byName[res.Name] = res
		reg.list = append(reg.list, res)
	}
	// Cross-resource checks need every definition loaded first.
	for _, res := range reg.list {
		errs = append(errs, res.linkReferences(reg)...)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("resources: invalid definitions:\n%w", errors.Join(errs...))
	}
	sort.Slice(reg.list, func(i, j int) bool { return reg.list[i].Name < reg.list[j].Name })
	return reg, nil
}

func compileDefinition(file string, b []byte) (*Resource, []error) {
	var def Definition
	dec := json.NewDecoder(bytes.NewReader(b))
	// A misspelt option ("alternate_key") must not be silently ignored: it
	// would quietly drop a uniqueness guarantee.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&def); err != nil {
		return nil, []error{fmt.Errorf("%s: not a resource definition: %v", file, err)}
	}
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", file, field, fmt.Sprintf(format, args...)))
	}
	if !tokenRE.MatchString(def.Name) {
		fail("name", "%q is not a token of 1-64 characters [A-Za-z0-9_-]", def.Name)
	}
	if def.Parent != "" && !tokenRE.MatchString(def.Parent) {
		fail("parent", "%q is not a resource name", def.Parent)
	}
	if len(bytes.TrimSpace(def.Schema)) == 0 {
		fail("schema", "missing")
		return nil, errs
	}

	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(def.Schema))
	if err != nil {
		fail("schema", "invalid JSON: %v", err)
		return nil, errs
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		fail("schema", "must be a JSON object")
		return nil, errs
	}
	if t, ok := obj["type"]; ok && t != "object" {
		fail("schema.type", "must be \"object\": a schema describes one record, got %v", t)
	}
	props, _ := obj["properties"].(map[string]any)
	if len(props) == 0 {
		fail("schema.properties", "must list the record's fields")
	}

	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	for _, f := range strictFormats {
		c.RegisterFormat(f)
	}
	loc := "inlet:///resources/" + file
	if err := c.AddResource(loc, doc); err != nil {
		fail("schema", "%v", err)
		return nil, errs
	}
	sch, err := c.Compile(loc)
	if err != nil {
		fail("schema", "does not compile as JSON Schema 2020-12: %v", err)
		return nil, errs
	}

	res := &Resource{Definition: def, schema: sch, fast: compileFast(sch), props: map[string]*jsonschema.Schema{}, types: map[string][]string{}, formats: map[string]string{}}
	for name := range props {
		res.fields = append(res.fields, name)
		res.props[name] = sch.Properties[name]
		res.types[name] = resolveTypes(sch.Properties[name])
		if f := resolveFormat(sch.Properties[name]); f != "" {
			res.formats[name] = f
		}
	}
	sort.Strings(res.fields)
	res.indexHeaders(fail)
	res.allowUnknown = sch.AdditionalProperties == nil || sch.AdditionalProperties != false

	checkKey := func(field string, key []string) {
		if len(key) == 0 {
			fail(field, "must name at least one field")
		}
		seen := map[string]bool{}
		for _, f := range key {
			if seen[f] {
				fail(field, "field %q is listed twice", f)
			}
			seen[f] = true
			if !res.HasField(f) {
				fail(field, "field %q is not a property of the schema", f)
				continue
			}
			for _, t := range res.FieldTypes(f) {
				if t == "object" || t == "array" {
					fail(field, "field %q is of type %s; a key must be a scalar", f, t)
				}
			}
		}
	}
	checkKey("key", def.Key)
	for i, ak := range def.AlternateKeys {
		checkKey(fmt.Sprintf("alternate_keys[%d]", i), ak)
	}
	refFields := make([]string, 0, len(def.References))
	for f := range def.References {
		refFields = append(refFields, f)
	}
	sort.Strings(refFields)
	for _, f := range refFields {
		target := def.References[f]
		if !res.HasField(f) {
			fail("references."+f, "field %q is not a property of the schema", f)
		}
		r, k, ok := strings.Cut(target, ".")
		if !ok || !tokenRE.MatchString(r) || k == "" {
			fail("references."+f, "target %q is not of the form \"resource.field\"", target)
			continue
		}
		res.refs = append(res.refs, Reference{Field: f, Resource: r, Key: k})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	res.file = file
	return res, nil
}

// linkReferences checks that every reference and the parent name a loaded
// resource, and that a reference points at a single-field key of its target:
// the validation phase finds the target record by key, so any other field
// could not be looked up.
func (res *Resource) linkReferences(reg *Registry) []error {
	var errs []error
	for _, ref := range res.refs {
		t, ok := reg.byName[ref.Resource]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: references.%s: resource %q is not defined", res.file, ref.Field, ref.Resource))
			continue
		}
		if !t.HasField(ref.Key) {
			errs = append(errs, fmt.Errorf("%s: references.%s: %q is not a field of %s", res.file, ref.Field, ref.Key, t.Name))
			continue
		}
		if !t.isSingleFieldKey(ref.Key) {
			errs = append(errs, fmt.Errorf("%s: references.%s: %s.%s is not a key of %s (key or single-field alternate key)", res.file, ref.Field, t.Name, ref.Key, t.Name))
		}
	}
	if res.Parent != "" {
		if _, ok := reg.byName[res.Parent]; !ok {
			errs = append(errs, fmt.Errorf("%s: parent: resource %q is not defined", res.file, res.Parent))
		}
	}
	return errs
}

func (res *Resource) isSingleFieldKey(field string) bool {
	if len(res.Key) == 1 && res.Key[0] == field {
		return true
	}
	for _, ak := range res.AlternateKeys {
		if len(ak) == 1 && ak[0] == field {
			return true
		}
	}
	return false
}
