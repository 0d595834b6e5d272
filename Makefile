# registry: the two commands a fresh machine needs are `make run` and
# `make test`. See README.md.

GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
LISTEN  ?= 127.0.0.1:8080

.PHONY: all build run test bench bench-large package lint vuln fmt clean

all: build

## build: compile bin/registry
build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/registry ./cmd/registry

## run: serve on $(LISTEN) (default 127.0.0.1:8080) with SQLite in ./data and DEMO keys
run: build
	./bin/registry serve --demo --listen $(LISTEN)

## test: every test, PostgreSQL and LibreOffice included (installs them if missing and root)
test:
	scripts/test

## package: the release files in dist/: Debian packages (amd64, arm64), the OCI image,
## the SBOM, SHA256SUMS; reproducible (two runs on one commit are byte-identical)
package:
	scripts/package

## bench: benchmarks, each beside a baseline measured in the same run (PostgreSQL: the
## test cluster and, where durability is the point, a cluster with fsync on)
bench:
	scripts/test-deps
	REGISTRY_BENCH_RECORDS=$${REGISTRY_BENCH_RECORDS:-100000} scripts/pg-test-server run \
		$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 90m ./...

## bench-large: the 1,000,000-row cases: purge stall, large purges, export and decrypt memory
bench-large:
	scripts/test-deps
	REGISTRY_BENCH_KEPT=1000000 REGISTRY_BENCH_PURGE_ROWS=1000000 REGISTRY_BENCH_RECORDS=1000000 \
		scripts/pg-test-server run $(GO) test -run '^$$' -bench 'PurgeStall|PurgeExpired|Streaming' \
		-benchtime 1x -count=1 -timeout 180m ./...

## lint: go vet and staticcheck
lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

## vuln: known vulnerabilities in the dependencies
vuln:
	$(GO) run golang.org/x/vuln/cmd/govulncheck@v1.9.0 ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin dist
