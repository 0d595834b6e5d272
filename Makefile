# registry: the two commands a fresh machine needs are `make run` and
# `make test`. See README.md.

GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build run test bench lint vuln fmt clean

all: build

## build: compile bin/registry
build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/registry ./cmd/registry

## run: serve on 127.0.0.1:8080 with SQLite in ./data and DEMO keys
run: build
	./bin/registry serve --demo --public-sites rathaus

## test: every test, PostgreSQL and LibreOffice included (installs them if missing and root)
test:
	scripts/test

## bench: benchmarks, each next to a baseline measured in the same run
bench:
	scripts/test-deps
	scripts/pg-test-server run $(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 30m ./...

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
	rm -rf bin
