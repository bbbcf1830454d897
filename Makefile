# Inlet. `make run` starts the all-in-one server on the embedded default and
# imports a bundled sample; `make test` installs what the tests need and runs them.
SHELL := /bin/bash
GO ?= go
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
BIN := $(CURDIR)/bin
# Every module of the workspace (go.work): the public contract (events), the
# client outside programs import (pkg/client), the server's packages
# (internal) and its commands (services).
MODULES := ./events/... ./pkg/client/... ./internal/... ./services/...
SERVICES := prevalidation preparsing transforming parsing validation processing cleanup projector gateway webhooks inlet

.PHONY: run test test-unit deps build bench chaos fuzz lint fmt clean deploy-check

run: build
	INLET_DATA_DIR=$${INLET_DATA_DIR:-$(CURDIR)/data} INLET_RESOURCES_DIR=$${INLET_RESOURCES_DIR:-$(CURDIR)/resources} \
		$(BIN)/inlet --demo $(CURDIR)/deploy/samples/companies.csv,$(CURDIR)/deploy/samples/customers.csv

build:
	@mkdir -p $(BIN)
	cd services && $(GO) build -o $(BIN)/ $(addprefix ./,$(SERVICES))

# MinIO is a separate AGPL program: built once into bin/ (about 6 minutes), never linked.
$(BIN)/minio:
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install github.com/minio/minio@$(MINIO_VERSION)

# PostgreSQL, tmux (the terminal test of the command line), curl (the
# README tour) and chromium (the dashboard's browser test) come from apt when
# the machine lacks them.
deps: $(BIN)/minio
	@missing=""; \
	if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then missing="$$missing postgresql"; fi; \
	for tool in tmux curl chromium; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing from apt:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

test: deps build
	INLET_MINIO_BIN=$(BIN)/minio INLET_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout 40m -p 1 $(MODULES)

test-unit:
	$(GO) test -count=1 -short $(MODULES)

bench: deps build
	INLET_MINIO_BIN=$(BIN)/minio INLET_BIN_DIR=$(BIN) $(GO) test -run '^$$' -bench BenchmarkImport -benchtime 1x -timeout 120m ./services/e2e/

# The chaos suite: RUNS seeds (odd ones at 100-row batches, even ones at the
# default), ROWS rows in the big import; one line per run. make test runs two
# short seeds.
RUNS ?= 20
ROWS ?= 200000
SEED ?= 1
chaos: deps build
	INLET_MINIO_BIN=$(BIN)/minio INLET_BIN_DIR=$(BIN) INLET_CHAOS_SEEDS=$$(seq -s, $(SEED) $$(($(SEED)+$(RUNS)-1))) INLET_CHAOS_ROWS=$(ROWS) \
		$(GO) test -count=1 -timeout 0 -run '^TestChaos$$' -v ./services/e2e/ | grep --line-buffered -E '^CHAOS|^(---|    ---) FAIL|chaos_test.go'

# Fuzz the decoders and coercion, FUZZTIME each; a crash is saved under
# testdata/fuzz/<target>/ and replayed by every later go test: commit it.
FUZZTIME ?= 30s
fuzz:
	@set -e; for t in FuzzCSV FuzzJSON FuzzJSONL FuzzXLSX FuzzCSVRowNumbers; do \
		echo "== internal/decode $$t"; (cd internal && $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) ./decode); done
	@echo "== internal/resources FuzzCoerce"; cd internal && $(GO) test -run '^$$' -fuzz '^FuzzCoerce$$' -fuzztime $(FUZZTIME) ./resources

lint: deploy-check
	@out=$$(gofmt -l events pkg internal services deploy/tools); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(MODULES)
	cd deploy/tools && GOWORK=off $(GO) vet ./...

# deploy/ and docker-compose.yml without a cluster, a Docker daemon or any
# download but Go modules: the compose file loads as `docker compose config`
# loads it (compose-spec), the images' Go and NATS versions match go.work and
# the embedded nats-server, the NATS Helm values parse, and the kustomize
# output validates strictly (kubeconform) against Kubernetes' OpenAPI schemas
# and KEDA's CRDs, both taken from their Go modules. Tools are cached in bin/.
KUBECONFORM_VERSION := v0.8.0
KUSTOMIZE_VERSION := v5.8.2
K8S_SCHEMA_VERSION := v1.37.2
KEDA_VERSION := v2.21.0
SCHEMAS := $(BIN)/k8s-schemas/$(K8S_SCHEMA_VERSION)-keda-$(KEDA_VERSION)

$(BIN)/kubeconform-$(KUBECONFORM_VERSION) $(BIN)/kustomize-$(KUSTOMIZE_VERSION):
	@mkdir -p $(BIN)/.install
	tool=$(notdir $@); name=$${tool%-*}; \
	case $$name in kubeconform) pkg=github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION);; \
	  kustomize) pkg=sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION);; esac; \
	GOBIN=$(BIN)/.install $(GO) install $$pkg && mv $(BIN)/.install/$$name $@

deploy-check: $(BIN)/kubeconform-$(KUBECONFORM_VERSION) $(BIN)/kustomize-$(KUSTOMIZE_VERSION)
	@mkdir -p $(BIN)
	cd deploy/tools && GOWORK=off $(GO) build -o $(BIN)/deploycheck ./deploycheck
	$(BIN)/deploycheck versions .
	$(BIN)/deploycheck compose docker-compose.yml
	$(BIN)/deploycheck yaml deploy/k8s/nats/values.yaml
	@test -f $(SCHEMAS)/.done || { $(BIN)/deploycheck schemas -out $(SCHEMAS) -k8s $(K8S_SCHEMA_VERSION) -keda $(KEDA_VERSION) && touch $(SCHEMAS)/.done; }
	$(BIN)/kustomize-$(KUSTOMIZE_VERSION) build deploy/k8s > $(BIN)/k8s-rendered.yaml
	$(BIN)/kubeconform-$(KUBECONFORM_VERSION) -strict -summary \
		-schema-location '$(SCHEMAS)/{{ .ResourceKind }}{{ .KindSuffix }}.json' \
		-schema-location '$(SCHEMAS)/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json' \
		$(BIN)/k8s-rendered.yaml

clean:
	rm -rf $(BIN)/inlet $(addprefix $(BIN)/,$(SERVICES)) data
