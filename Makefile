# octavia-vpp-health build entry points. See README.md.
#
#   make run     build and start the main job
#   make test    install what the tests need, then vet and run every test with -race
#   make bench   run the benchmarks
#   make bench-octavia  Octavia 11's own health path on the same workload
#   make fuzz    run every fuzz target for FUZZTIME each
#   make lint    gofmt, go vet and staticcheck (installed into ./bin)
#   make interop run Octavia 11's own code next to ours (test/interop/README.md);
#                make test runs it too when CI=true

GO          ?= go
BIN         := $(CURDIR)/bin
CONFIG      ?= etc/octavia.conf
FUZZTIME    ?= 60s
BENCHTIME   ?= 1s
BENCH       ?= .
STATICCHECK_VERSION := v0.8.2

export GOFLAGS := -buildvcs=false

.PHONY: all build run test deps vet bench bench-octavia fuzz lint fmt clean interop interop-deps

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# The health manager on a private PostgreSQL under .run/, fed by simulated
# amphorae; Ctrl-C stops everything.
run: build
	./test/demo/run.sh

# Modules and system packages (PostgreSQL) the suite needs on a fresh machine.
deps:
	$(GO) mod download
	./test/install-deps.sh

vet:
	$(GO) vet ./...

test: deps vet
	$(GO) test -race -count=1 ./...
	@if [ "$(CI)" = "true" ]; then $(MAKE) --no-print-directory interop; fi

# Debian's Octavia 11.0.0 and psycopg2, for /usr/bin/python3.
interop-deps: deps
	./test/interop/install-deps.sh

# INTEROP_SEEDS=a,b replays given scenarios; INTEROP_TRACE=1 writes the
# per-packet trace; see test/interop/README.md.
interop: interop-deps
	$(GO) vet -tags interop ./test/interop/
	$(GO) test -tags interop -count=1 -timeout 20m -v ./test/interop/

# The Go benchmarks, then a 60-second loadgen scenario against serve on a
# throwaway PostgreSQL (test/bench/loadgen.sh; AMPHORAE, RATE, DURATION,
# TOPOLOGY_CACHE_SECONDS).
bench: build deps
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) ./...
	./test/bench/loadgen.sh

# Octavia 11's unwrap_envelope, update_health and update_stats on the same
# workload and PostgreSQL, one process (test/bench/octavia.sh; AMPHORAE,
# DURATION in seconds).
bench-octavia: build deps
	./test/bench/octavia.sh

# go test -fuzz takes one target per run, so every func Fuzz* in the tree is
# found and run in turn.
fuzz:
	@set -e; \
	for file in $$(grep -rl --include='*_test.go' '^func Fuzz' . ); do \
	  pkg=./$$(dirname $${file#./}); \
	  for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
	    echo "== $$pkg $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(BIN)/staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go') ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) .run
