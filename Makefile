# PowerMail. `make run` starts a local three-node cluster; `make test` runs
# the test suite. Both need only Go.

GO       ?= go
BIN      := bin/powermail
PKGS     := ./...
BENCHTIME ?= 2s

.PHONY: all build run stop test test-short bench bench-load fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/powermail
	$(GO) build -o bin/devcluster ./cmd/devcluster

run: build
	bin/devcluster --bin $(BIN) --dir run start

stop:
	@test -x bin/devcluster || $(GO) build -o bin/devcluster ./cmd/devcluster
	bin/devcluster --dir run stop

test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 20m $(PKGS)

test-short:
	$(GO) test -count=1 -short $(PKGS)

# Go benchmarks of the hot paths. Numbers are recorded in BENCHMARKS.md.
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem ./fsm ./node ./storage

# The directory at scale: 1,000,000 mailboxes loaded through the admin API
# into a three-process cluster, then resident memory and lookup latency.
bench-load: build
	$(GO) run ./cmd/dirload --bin $(BIN) --mailboxes $${MAILBOXES:-1000000}

clean:
	rm -rf bin run results
