# PowerMail. `make run` starts a local three-node cluster; `make test` runs
# the test suite. Both need only Go.

GO       ?= go
BIN      := bin/powermail
PKGS     := ./...
BENCHTIME ?= 2s
LOADTIME  ?= 10s
FUZZTIME  ?=
SOAKTIME  ?= 6m
JEPSEN_TIME   ?= 5m
JEPSEN_FAULTS ?= all
BENCHDIR  := /tmp/powermail-bench
# PORT_OFFSET moves every port of `make run`, for a machine where 8000,
# 2525 or another of them is taken: `make run PORT_OFFSET=10000` (with
# 100, n2's LMTP port would be 2525). run/ remembers it, so later runs on
# the same data need not repeat it.
PORT_OFFSET ?=

.PHONY: all build run stop test test-short test-upgrade bench bench-go bench-smtp bench-soak bench-imap bench-repair bench-load fuzz jepsen jepsen-short clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/powermail
	$(GO) build -o bin/devcluster ./cmd/devcluster
	$(GO) build -o bin/smtpload ./cmd/smtpload
	$(GO) build -o bin/imapload ./cmd/imapload

run: build
	bin/devcluster --bin $(BIN) --dir run $(if $(PORT_OFFSET),--port-offset $(PORT_OFFSET)) start

stop:
	@test -x bin/devcluster || $(GO) build -o bin/devcluster ./cmd/devcluster
	bin/devcluster --dir run stop

# The jepsen plan runs real processes under timed faults, so it runs alone,
# after the other packages, where their load cannot skew its timings.
test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 20m $$($(GO) list $(PKGS) | grep -v '/jepsen$$')
	$(GO) test -count=1 -timeout 20m ./jepsen

test-short:
	$(GO) test -count=1 -short $(PKGS)

# A rolling upgrade with real binaries of two releases: three nodes of
# the last release whose newest command encoding is 9 (commit a0f7c64,
# built from this repository's history, so a shallow clone must
# `git fetch --unshallow` first) restarted one at a time onto this tree
# under mail, then raised to the newest encoding (fsm.NewestEncoding, 17); and each release installing a
# raft snapshot the other streamed (cmd/powermail/upgrade_test.go,
# upgradesnap_test.go).
test-upgrade:
	POWERMAIL_UPGRADE_TEST=1 $(GO) test -count=1 -timeout 15m -run '^TestRollingUpgrade$$' ./cmd/powermail

# Hot-path benchmarks and the load runs; numbers in BENCHMARKS.md.
bench: bench-go bench-repair bench-smtp bench-imap

bench-go:
	$(GO) test -run '^$$' -bench . -skip 'Repair' -benchtime $(BENCHTIME) -benchmem ./fsm ./node ./storage ./frontend

# Repair throughput and delivery during repair: each builds and fills a
# four-node cluster, so each runs once; first with attachment-sized
# bodies, then with 4 KiB ones (per-copy costs). PM_REPAIR_BODIES=2000
# gives the steady rate. The first line also times a healthy round's
# scan of 20,000 body records (PM_SCAN_BODIES), and a skipped one.
bench-repair:
	$(GO) test -run '^$$' -bench 'Repair' -benchtime 1x ./node
	PM_REPAIR_SIZE=4096 $(GO) test -run '^$$' -bench 'RepairThroughput|DuringRepair' -benchtime 1x ./node

# IMAP and POP3 load on a three-process cluster: mixed commands, FETCH and
# SEARCH on a warm mailbox, POP3 RETR (cmd/imapload). The same script
# compares with Dovecot: `bash cmd/imapload/compare/dovecot.sh all`.
bench-imap:
	SESSIONS=$${SESSIONS:-10} DURATION=$${DURATION:-$(LOADTIME)} PREFILL=$${PREFILL:-2000} QUIET_WAIT=$${QUIET_WAIT:-0} \
		bash cmd/imapload/compare/dovecot.sh powermail

# Delivery load: a three-process cluster on loopback (R=2), 4 KiB
# messages over 1, 5, 20 and 50 SMTP connections spread over the nodes.
bench-smtp: build
	@rm -rf $(BENCHDIR)
	bin/devcluster --bin $(BIN) --dir $(BENCHDIR) --port-offset 400 --quiet start
	bin/smtpload --addrs 127.0.0.1:2925,127.0.0.1:2926,127.0.0.1:2927 --concurrency 1,5,20,50 \
		--duration $(LOADTIME) --size 4096 --to demo@example.com; \
	rc=$$?; bin/devcluster --dir $(BENCHDIR) --port-offset 400 stop; rm -rf $(BENCHDIR); exit $$rc

# A long delivery soak (not part of `make bench`): 20 connections for
# SOAKTIME, well past the FSM's 200,000-entry delivery-ID window, failing
# if the last fifth of the run is below 0.7 of the first.
bench-soak: build
	@rm -rf $(BENCHDIR)
	bin/devcluster --bin $(BIN) --dir $(BENCHDIR) --port-offset 400 --quiet start
	bin/smtpload --addrs 127.0.0.1:2925,127.0.0.1:2926,127.0.0.1:2927 --concurrency 20 \
		--duration $(SOAKTIME) --size 4096 --to demo@example.com --hold 0.7 \
		--pop3 127.0.0.1:1510,127.0.0.1:1511,127.0.0.1:1512; \
	rc=$$?; bin/devcluster --dir $(BENCHDIR) --port-offset 400 stop; rm -rf $(BENCHDIR); exit $$rc

# The directory at scale: 1,000,000 mailboxes loaded through the admin API
# into a three-process cluster, then resident memory and lookup latency.
bench-load: build
	$(GO) run ./cmd/dirload --bin $(BIN) --mailboxes $${MAILBOXES:-1000000}

# Protocol fuzzing. By default each target runs a fixed number of inputs,
# about ten seconds here: Go 1.26's coordinator can fail a duration-bounded
# run with a bare "context deadline exceeded" at the deadline (golang/go
# issue 75804), and a count has no deadline. FUZZTIME overrides every
# target, e.g. `make fuzz FUZZTIME=10m` for a long run (which may end in
# that spurious failure). FuzzIMAPSectionDiff (streamed sections against
# go-imap's in-memory helpers) takes milliseconds per input, so Go's
# default of 60 s minimizing each new-coverage input would have it
# spend nearly all its time there, execs standing still: 5 s is enough
# to shorten an input without stalling the run (5000 inputs took about
# 25 s on one core, most of it minimizing).
fuzzfor = $(if $(FUZZTIME),$(FUZZTIME),$(1))
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzSMTPSession -fuzztime $(call fuzzfor,5000x) ./frontend
	$(GO) test -run '^$$' -fuzz FuzzIMAPSession -fuzztime $(call fuzzfor,600x) ./frontend
	$(GO) test -run '^$$' -fuzz FuzzPOP3Session -fuzztime $(call fuzzfor,15000x) ./frontend
	$(GO) test -run '^$$' -fuzz FuzzIMAPInput -fuzztime $(call fuzzfor,40000x) ./frontend
	$(GO) test -run '^$$' -fuzz FuzzIMAPConnOutput -fuzztime $(call fuzzfor,60000x) ./frontend
	$(GO) test -run '^$$' -fuzz FuzzIMAPSectionDiff -fuzztime $(call fuzzfor,5000x) -fuzzminimizetime 5s ./frontend
	$(GO) test -run '^$$' -fuzz FuzzCRLFReader -fuzztime $(call fuzzfor,200000x) ./frontend

# Fault injection against real processes (see jepsen/README.md). The short
# plan (TestShortPlan, about a minute) is part of `make test`.
jepsen: build
	JEPSEN_TIME=$(JEPSEN_TIME) JEPSEN_FAULTS=$(JEPSEN_FAULTS) $(GO) run ./cmd/jepsen --bin $(BIN)

jepsen-short:
	$(GO) test -count=1 -run TestShortPlan -v ./jepsen/

# A running local cluster is stopped first: its pid files live in run/.
clean:
	-@if [ -x bin/devcluster ] && [ -d run ]; then bin/devcluster --dir run stop; fi
	rm -rf bin run results
