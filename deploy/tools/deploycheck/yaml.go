package main

import (
	"errors"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// yamlCmd checks that every file parses as YAML (the Helm values, which
// cannot be rendered without the chart).
func yamlCmd(args []string) error {
	if len(args) == 0 {
		return errors.New("yaml: want files")
	}
	for _, f := range args {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var v map[string]any
		if err := yaml.UnmarshalStrict(b, &v); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	fmt.Printf("deploycheck: %d YAML files parse\n", len(args))
	return nil
}
