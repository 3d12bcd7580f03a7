# octavia-vpp-health build entry points. See README.md.
#
#   make run     build and start the main job (the demo; DEMO_SECONDS=N to stop by itself)
#   make demo-test  run the demo unattended and check its story (about 2 minutes)
#   make test    install what the tests need, then vet and run every test with -race
#   make bench   run the benchmarks
#   make bench-octavia  Octavia 11's own health path on the same workload
#   make bench-cpu  CPU per heartbeat, ours and Octavia 11's, one JSON line
#                (on PostgreSQL; make bench-cpu DB=mariadb on a MariaDB server)
#   make bench-growth  the same, ours only, per members per pool and fleet size
#   make fuzz    run every fuzz target for FUZZTIME each (FUZZTIME=10s, FUZZ=regexp)
#   make deb     the .deb packages of both programs into dist/ (etc/deb/build.sh)
#   make lint    gofmt, go vet, staticcheck (installed into ./bin) and tidy-check
#   make tidy-check  fail when go mod tidy would change go.mod or go.sum
#   make interop run Octavia 11's own code next to ours (test/interop/README.md);
#                make test runs it too when CI=true
#   make interop-fuzz SEEDS=N  the differential fuzzer with N more random seeds
#   make browser drive headless Chromium against the status page
#                (test/browser); make test runs it too when CI=true
#   make faults  the fault suite: database outage, slow database, crash, three
#                managers, mass silence, garbage flood, statistics across agent
#                and VPP restarts (test/faults/);
#                make test runs it too when CI=true

GO          ?= go
BIN         := $(CURDIR)/bin
CONFIG      ?= etc/octavia.conf
FUZZTIME    ?= 60s
BENCHTIME   ?= 1s
BENCH       ?= .
STATICCHECK_VERSION := v0.8.2

export GOFLAGS := -buildvcs=false

.PHONY: all build deb run demo-test test ci-suites ci-interop-browser deps vet tidy-check bench bench-octavia bench-cpu bench-growth fuzz lint fmt clean interop interop-deps interop-fuzz browser browser-deps faults

all: build

# VERSION is what --version prints: git describe of the checkout, "dev"
# outside git.
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X github.com/octavia-vpp/health/internal/version.version=$(VERSION)

# The agent is built without cgo: names resolve through Go's own resolver
# (/etc/hosts, resolv.conf) rather than libc's, and a static binary keeps
# libc's pages (about 1.3 MiB) out of its resident set (docs/performance.md,
# "Amphora agent").
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/amphora-agent

# The demo (test/demo/run.sh): the health manager on a private PostgreSQL
# under .run/, fed by a fleet of amphora-agent processes on the VPP
# simulator; Ctrl-C stops everything. DEMO_SECONDS=N stops after N seconds
# and exits 0 only if the whole story was seen.
run: build
	./test/demo/run.sh

# make run unattended (DEMO_SECONDS) and stopped by signals, checking that
# nothing is left running.
demo-test: build
	$(GO) vet -tags demo ./test/demo/
	$(GO) test -tags demo -count=1 -timeout 10m -run '^TestDemo' -v ./test/demo/

# The .deb packages (nFPM, pinned below; etc/deb/build.sh), into DIST.
DIST         ?= $(CURDIR)/dist
NFPM_VERSION := v2.45.2
deb: build
	NFPM_VERSION=$(NFPM_VERSION) GO=$(GO) ./etc/deb/build.sh $(DIST) $(BIN)

# Modules and system packages (PostgreSQL, faketime) the suite needs on a fresh machine.
deps:
	$(GO) mod download
	./test/install-deps.sh

vet:
	$(GO) vet ./...

# go.mod and go.sum as go mod tidy leaves them (make test and make lint).
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

test: deps vet tidy-check
	$(GO) test -race -count=1 ./...
	@if [ "$(CI)" = "true" ]; then $(MAKE) --no-print-directory interop-deps browser-deps; fi
	@if [ "$(CI)" = "true" ]; then $(MAKE) --no-print-directory -j2 --output-sync=recurse ci-suites; fi

# With CI=true, the fault suite runs beside the interop suite and the
# browser test (each suite's output is printed whole when it ends). The
# fault scenarios spend most of their time waiting out outages, timeouts
# and restarts, the interop suite on Octavia's Python: side by side they
# keep make test within 15 minutes on two cores. Their packages are
# installed just before, one apt at a time.
ci-suites: ci-interop-browser faults

ci-interop-browser:
	@$(MAKE) --no-print-directory interop
	@$(MAKE) --no-print-directory browser

# Debian's Octavia 11.0.0 and psycopg2, for /usr/bin/python3.
interop-deps: deps
	./test/interop/install-deps.sh

# INTEROP_SEEDS=a,b replays given scenarios; INTEROP_TRACE=1 writes the
# per-packet trace; see test/interop/README.md.
interop: interop-deps
	$(GO) vet -tags interop ./test/interop/
	$(GO) test -tags interop -count=1 -timeout 20m -v ./test/interop/

# The differential fuzzer alone, with SEEDS more random seeds (400 mutated
# heartbeats each) after the fixed ones; see test/interop/README.md.
SEEDS ?= 10
interop-fuzz: interop-deps
	INTEROP_FUZZ_RANDOM=$(SEEDS) $(GO) test -tags interop -count=1 -timeout 60m -run 'TestDiffFuzz' -v ./test/interop/

# Debian's chromium and chromium-driver.
browser-deps: deps
	./test/browser/install-deps.sh

# The status page in headless Chromium; the screenshot is written to
# test/browser/out/status-page.png.
browser: browser-deps
	$(GO) vet -tags browser ./test/browser/
	$(GO) test -tags browser -count=1 -timeout 5m -v ./test/browser/
# Each scenario prints a "FAULTS <scenario>: ..." line of figures, the ones
# docs/reliability.md records. FAULTS_FLOOD_RATE sets the garbage flood's
# datagrams per second (default 100000).
faults: deps
	$(GO) vet -tags faults ./test/faults/
	$(GO) test -tags faults -count=1 -timeout 15m -v ./test/faults/

# The Go benchmarks, then a 60-second loadgen scenario against serve on a
# throwaway PostgreSQL (test/bench/loadgen.sh; AMPHORAE, RATE, DURATION, WARMUP,
# TOPOLOGY_CACHE_SECONDS).
bench: build deps
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) ./...
	./test/bench/loadgen.sh

# Octavia 11's unwrap_envelope, update_health and update_stats on the same
# workload and PostgreSQL, one process (test/bench/octavia.sh; AMPHORAE,
# DURATION in seconds).
bench-octavia: build deps
	./test/bench/octavia.sh

# CPU per heartbeat (manager + PostgreSQL, from /proc), ours at a fixed
# rate and Octavia 11's on the same cluster, and the ratio: one JSON line
# (test/bench/cpu.sh; AMPHORAE, LISTENERS, POOLS, MEMBERS, RATE, DURATION,
# OCTAVIA_SECONDS, PPROF_BIND). DB=mariadb: the same on a throwaway MariaDB
# server (test/my.sh), manager + mariadbd, Octavia's schema built by
# octavia-db-manage on both sides.
bench-cpu: build deps
	./test/bench/cpu.sh

bench-growth: build deps
	./test/bench/growth.sh

# go test -fuzz takes one target per run, so every func Fuzz* in the tree is
# found and run in turn, each for FUZZTIME (make fuzz FUZZTIME=10s for a
# quick pass). FUZZ=regexp picks targets by name (grep -E; write "$" as "$$"
# for make); FUZZPARALLEL sets the workers per target (default: all CPUs).
# Every target runs even after one fails; the failures are listed at the
# end. A failing input is written to <package>/testdata/fuzz/<target>/,
# where go test replays it from then on.
FUZZ         ?= .
FUZZPARALLEL ?=
fuzz:
	@failed=""; ran=0; \
	for file in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	  pkg=./$$(dirname $${file#./}); \
	  for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file | grep -E '$(FUZZ)'); do \
	    echo "== $$pkg $$target ($(FUZZTIME))"; ran=$$((ran + 1)); \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) \
	      $(if $(FUZZPARALLEL),-parallel $(FUZZPARALLEL)) $$pkg || failed="$$failed $$pkg:$$target"; \
	  done; \
	done; \
	if [ $$ran -eq 0 ]; then echo "no fuzz target matches FUZZ=$(FUZZ)"; exit 1; fi; \
	if [ -n "$$failed" ]; then echo "fuzz targets failed:$$failed"; exit 1; fi

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(BIN)/staticcheck tidy-check
	@out=$$(gofmt -l $$(git ls-files '*.go') ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...
	$(BIN)/staticcheck -tags faults,browser,demo,interop ./test/...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) .run $(DIST)
