# octavia-vpp-health build entry points. See README.md.
#
#   make run     build and start the main job
#   make test    install what the tests need, then vet and run every test with -race
#   make bench   run the benchmarks
#   make fuzz    run every fuzz target for FUZZTIME each
#   make lint    gofmt, go vet and staticcheck (installed into ./bin)
#   make interop run Octavia 11's own code next to ours (test/interop/README.md);
#                make test runs it too when CI=true
#   make faults  the fault suite: database outage, slow database, crash, three
#                managers, mass silence, garbage flood (test/faults/);
#                make test runs it too when CI=true

GO          ?= go
BIN         := $(CURDIR)/bin
CONFIG      ?= etc/octavia.conf
FUZZTIME    ?= 60s
BENCHTIME   ?= 1s
BENCH       ?= .
STATICCHECK_VERSION := v0.8.2

export GOFLAGS := -buildvcs=false

.PHONY: all build run test deps vet bench fuzz lint fmt clean interop interop-deps faults

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
	@if [ "$(CI)" = "true" ]; then $(MAKE) --no-print-directory faults; fi

# Debian's Octavia 11.0.0 and psycopg2, for /usr/bin/python3.
interop-deps: deps
	./test/interop/install-deps.sh

# INTEROP_SEEDS=a,b replays given scenarios; INTEROP_TRACE=1 writes the
# per-packet trace; see test/interop/README.md.
interop: interop-deps
	$(GO) vet -tags interop ./test/interop/
	$(GO) test -tags interop -count=1 -timeout 20m -v ./test/interop/

# Each scenario prints a "FAULTS <scenario>: ..." line of figures, the ones
# docs/reliability.md records. FAULTS_FLOOD_RATE sets the garbage flood's
# datagrams per second (default 100000).
faults: deps
	$(GO) vet -tags faults ./test/faults/
	$(GO) test -tags faults -count=1 -timeout 15m -v ./test/faults/

# The Go benchmarks, then a 60-second loadgen scenario against serve on a
# throwaway PostgreSQL (test/bench/loadgen.sh; AMPHORAE, RATE, DURATION).
bench: build deps
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) ./...
	./test/bench/loadgen.sh

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
	$(BIN)/staticcheck -tags faults ./test/faults/

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) .run
