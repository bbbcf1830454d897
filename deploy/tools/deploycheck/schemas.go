package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

func schemasCmd(args []string) error {
	fs := flag.NewFlagSet("schemas", flag.ContinueOnError)
	out := fs.String("out", "", "directory for the schemas")
	k8s := fs.String("k8s", "", "version of module k8s.io/kubernetes (its api/openapi-spec/swagger.json)")
	keda := fs.String("keda", "", "version of module github.com/kedacore/keda/v2 (its config/crd/bases)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *k8s == "" || *keda == "" {
		return errors.New("schemas: -out, -k8s and -keda are required")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	dir, err := moduleDir("k8s.io/kubernetes@" + *k8s)
	if err != nil {
		return err
	}
	n, err := kubernetesSchemas(filepath.Join(dir, "api", "openapi-spec", "swagger.json"), *out)
	if err != nil {
		return err
	}
	if dir, err = moduleDir("github.com/kedacore/keda/v2@" + *keda); err != nil {
		return err
	}
	crds, _ := filepath.Glob(filepath.Join(dir, "config", "crd", "bases", "*.yaml"))
	if len(crds) == 0 {
		return fmt.Errorf("no CRDs under %s/config/crd/bases", dir)
	}
	for _, f := range crds {
		m, err := crdSchemas(f, *out)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		n += m
	}
	fmt.Printf("deploycheck: %d schemas in %s (Kubernetes %s, KEDA %s)\n", n, *out, *k8s, *keda)
	return nil
}

// moduleDir downloads a module through the Go module proxy (or finds it in
// the module cache) and returns its directory.
func moduleDir(modVersion string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", modVersion)
	cmd.Dir = os.TempDir() // outside any module or workspace
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %v\n%s%s", modVersion, err, outb, stderr.Bytes())
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(outb, &info); err != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s %v", modVersion, info.Error, err)
	}
	return info.Dir, nil
}

// kubernetesSchemas writes the definitions of the OpenAPI v2 spec to
// _definitions.json and one schema per kind referring to it, named as
// kubeconform looks them up: <kind>-<group>-<version>.json (the group's first
// label; none for the core group), lower case.
func kubernetesSchemas(swagger, out string) (int, error) {
	data, err := os.ReadFile(swagger)
	if err != nil {
		return 0, err
	}
	var spec struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return 0, fmt.Errorf("%s: %w", swagger, err)
	}
	defs := map[string]any{}
	for name, d := range spec.Definitions {
		defs[name] = strict(d)
	}
	// Kubernetes' own special strings, as the API server takes them.
	defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = map[string]any{"oneOf": []any{
		map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = map[string]any{"oneOf": []any{
		map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
	if err := writeJSON(filepath.Join(out, "_definitions.json"), map[string]any{"definitions": defs}); err != nil {
		return 0, err
	}
	n := 0
	for name, d := range spec.Definitions {
		gvks, _ := d["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			gvk, _ := g.(map[string]any)
			group, _ := gvk["group"].(string)
			version, _ := gvk["version"].(string)
			kind, _ := gvk["kind"].(string)
			file := strings.ToLower(kind)
			if group != "" {
				file += "-" + strings.ToLower(strings.Split(group, ".")[0])
			}
			file += "-" + strings.ToLower(version) + ".json"
			if err := writeJSON(filepath.Join(out, file), map[string]any{"$ref": "_definitions.json#/definitions/" + name}); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// crdSchemas writes the schema of every version of a CRD, named
// <kind>_<version>.json as kubeconform's CRD schemas are.
func crdSchemas(file, out string) (int, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	var crd struct {
		Spec struct {
			Names    struct{ Kind string }
			Versions []struct {
				Name   string
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				}
			}
		}
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		return 0, err
	}
	n := 0
	for _, v := range crd.Spec.Versions {
		if v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		name := strings.ToLower(crd.Spec.Names.Kind) + "_" + strings.ToLower(v.Name) + ".json"
		if err := writeJSON(filepath.Join(out, name), strict(v.Schema.OpenAPIV3Schema)); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// strict rewrites an OpenAPI schema into JSON Schema for validation:
// references point into the file's definitions, an object with properties
// takes no others (a misspelt field fails), "format" and the x- extensions go
// (they are not assertions here), and a field may be null where the API
// server drops nulls.
func strict(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			switch {
			case k == "$ref":
				out[k] = val
			case k == "format" || k == "description" || strings.HasPrefix(k, "x-kubernetes-") && k != "x-kubernetes-preserve-unknown-fields" && k != "x-kubernetes-int-or-string":
			case k == "properties":
				props := map[string]any{}
				if m, ok := val.(map[string]any); ok {
					for pk, pv := range m {
						props[pk] = strict(pv)
					}
				}
				out[k] = props
			default:
				out[k] = strict(val)
			}
		}
		if x["x-kubernetes-int-or-string"] == true {
			delete(out, "type")
			delete(out, "x-kubernetes-int-or-string")
			out["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
		}
		if _, ok := x["properties"]; ok && x["additionalProperties"] == nil && x["x-kubernetes-preserve-unknown-fields"] != true {
			out["additionalProperties"] = false
		}
		delete(out, "x-kubernetes-preserve-unknown-fields")
		if t, ok := out["type"].(string); ok {
			out["type"] = []any{t, "null"}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = strict(e)
		}
		return out
	}
	return v
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
