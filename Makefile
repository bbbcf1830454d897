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
SERVICES := prevalidation preparsing transforming parsing validation processing cleanup projector gateway inlet

.PHONY: run test test-unit deps build bench chaos fuzz lint fmt clean

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

# PostgreSQL, and tmux for the terminal test of the command line, come from
# apt when the machine lacks them.
deps: $(BIN)/minio
	@missing=""; \
	if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then missing="$$missing postgresql"; fi; \
	command -v tmux >/dev/null || missing="$$missing tmux"; \
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

lint:
	@out=$$(gofmt -l events pkg internal services); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(MODULES)

clean:
	rm -rf $(BIN)/inlet $(addprefix $(BIN)/,$(SERVICES)) data
