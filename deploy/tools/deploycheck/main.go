// Command deploycheck checks what deploy/ and docker-compose.yml promise
// without a cluster, a Docker daemon or the network beyond the Go module
// proxy (make deploy-check):
//
//	deploycheck schemas -out DIR -k8s VERSION -keda VERSION
//	    writes JSON schemas for kubeconform: every kind of Kubernetes VERSION
//	    (from the OpenAPI spec in the k8s.io/kubernetes module) and KEDA's CRDs
//	    (from the github.com/kedacore/keda/v2 module), strict: unknown fields fail
//	deploycheck compose FILE
//	    loads a compose file as `docker compose config` does (compose-spec)
//	deploycheck versions ROOT
//	    the Go and NATS versions of the images match go.work and internal/go.mod
//	deploycheck yaml FILE...
//	    each file parses as YAML
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: deploycheck schemas|compose|versions|yaml ...")
		os.Exit(2)
	}
	var err error
	switch args := os.Args[2:]; os.Args[1] {
	case "schemas":
		err = schemasCmd(args)
	case "compose":
		err = composeCmd(args)
	case "versions":
		err = versionsCmd(args)
	case "yaml":
		err = yamlCmd(args)
	default:
		err = fmt.Errorf("no command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploycheck:", err)
		os.Exit(1)
	}
}
