# Latchkey: the two set-up commands are `make run` and `make test`.
GO        ?= go
BIN       := bin/latchkey
CONFIG    ?= deploy/examples/quickstart.yaml
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# Packages whose tests exercise concurrency get the race detector.
RACE_PKGS := ./storage/... ./broker/keys/...

SHELL     := /bin/bash

.PHONY: run build test test-go test-race test-conformance vet fuzz bench clean

## run: serve Latchkey on http://localhost:5556 (SQLite under ./data) and the
## demo app on http://localhost:5555; Ctrl-C stops both.
run: build
	@echo "Latchkey: http://localhost:5556   demo app: open http://localhost:5555"
	@$(BIN) demo-app --config $(CONFIG) & demo=$$!; \
	trap 'kill $$demo 2>/dev/null; wait $$demo 2>/dev/null' EXIT INT TERM; \
	$(BIN) serve --config $(CONFIG)

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/latchkey

## test: vet, every Go test (PostgreSQL/Redis/peers when configured), race on the concurrent parts
test: vet test-go test-race test-conformance

vet:
	$(GO) vet ./...

test-go:
	$(GO) test -count=1 -timeout 20m ./...

test-race:
	$(GO) test -race -count=1 -timeout 15m $(RACE_PKGS)

## test-conformance: the storage suites once more, listing each backend they ran on
test-conformance:
	@set -o pipefail; $(GO) test -count=1 -v -run '^(TestDurable|TestEphemeral|TestEphemeralCluster)$$' ./storage/... \
	  | grep -E '^(--- |    --- )(PASS|FAIL|SKIP): Test(Durable|Ephemeral|EphemeralCluster)(/[^/ ]+)? |^(ok|FAIL)'

## fuzz: run each fuzz target briefly (FUZZTIME per target)
FUZZTIME ?= 15s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; done

## bench: the benchmark suite end to end: load driver against `latchkey serve`
## (SQLite, and PostgreSQL/Redis when LATCHKEY_TEST_POSTGRES/_REDIS are set)
## and the Go benchmarks; prints the table (docs/performance.md)
bench:
	GO=$(GO) bench/run.sh

clean:
	rm -rf bin
