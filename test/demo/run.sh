#!/usr/bin/env bash
# make run: the health manager on a private PostgreSQL, fed by a simulated
# fleet of amphora-agent processes (VPP simulator) whose members are local
# HTTP servers, some of them flapping. One amphora goes silent, one member
# is drained. Everything lives under .run/ and stops on Ctrl-C.
#
#   DEMO_SECONDS=N   stop by itself after N seconds of story and exit 0
#                    only if the whole story happened (needs about 60)
#   DEMO_LBS=N       number of load balancers (default 20, at least 17)
#   DEMO_RUN_DIR=D   work in D instead of .run/ (the demo test uses this)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
run=${DEMO_RUN_DIR:-$root/.run}
bin=$root/bin
fleet=$run/fleet
logs=$run/logs
go=${GO:-go}

say() { printf '[make run] %s\n' "$*"; }

# shellcheck source=../pg.sh
. "$root/test/pg.sh"

pids=()
silent_pid=
stopping=
cleanup() {
  local status=$?
  [ -n "$stopping" ] && return
  stopping=1
  trap - INT TERM EXIT
  say "stopping"
  # A stopped process gets SIGTERM only once it runs again.
  [ -n "$silent_pid" ] && kill -CONT "$silent_pid" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  local deadline=$((SECONDS + 10))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "process $pid did not stop on SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  pg_stop "$run"
  say "stopped; logs are in $logs/"
  exit "$status"
}
trap cleanup EXIT
# Ctrl-C and SIGTERM are a normal way to end the demo.
trap 'exit 0' INT TERM

mkdir -p "$bin" "$logs"
# Both programs and the demo's own helper (bin/demo); quick when make run
# has just built them.
(cd "$root" && GOFLAGS=-buildvcs=false "$go" build -o "$bin/" ./cmd/octavia-health-manager ./cmd/amphora-agent ./test/demo)

if [ -f "$run/pgdata/postmaster.pid" ]; then
  # A run that was killed outright leaves its server behind.
  say "stopping the PostgreSQL a previous run left running"
  pg_bin=$(pg_find_bin)
  pg_as=()
  if [ "$(id -u)" -eq 0 ]; then pg_as=(runuser -u postgres --); fi
  pg_stop "$run"
fi
say "starting a private PostgreSQL in $run/pgdata"
pg_start "$run"

"$bin/demo" plan --dir "$fleet" --db "$pg_url" --lbs "${DEMO_LBS:-20}"
# shellcheck source=/dev/null
. "$fleet/env.sh"

"$bin/octavia-health-manager" --config-file "$fleet/octavia.conf" migrate 2>"$logs/migrate.log"
psql -q "$pg_url" -v ON_ERROR_STOP=1 -f "$fleet/seed.sql" >/dev/null
say "seeded $lbs load balancers, $amphorae amphorae, $members members"

"$bin/demo" members --topology "$fleet/topology.json" 2>"$logs/members.log" &
pids+=($!)

"$bin/octavia-health-manager" --config-file "$fleet/octavia.conf" serve 2>"$logs/health-manager.log" &
hm_pid=$!
pids+=("$hm_pid")
if ! "$bin/demo" wait --url "${metrics_url%/metrics}/healthz" --pid "$hm_pid" --timeout 60s; then
  say "the health manager does not answer; $logs/health-manager.log ends with:"
  tail -n 20 "$logs/health-manager.log" >&2
  exit 1
fi

while read -r amp conf; do
  "$bin/amphora-agent" --config-file "$conf" 2>"$logs/agent-$amp.log" &
  pids+=($!)
  if [ "$amp" = "$silent_amphora" ]; then silent_pid=$!; fi
done <"$fleet/agents.txt"

say "health manager answering ${SECONDS}s after start: udp 127.0.0.1:$hm_udp_port; status page $status_url; metrics $metrics_url"
say "$amphorae amphora-agent processes on the VPP simulator; logs in $logs/"

watch=(--topology "$fleet/topology.json" --agent-bin "$bin/amphora-agent" --hm-pid "$hm_pid" --silent-pid "$silent_pid")
if [ -n "${DEMO_SECONDS:-}" ]; then
  watch+=(--duration "${DEMO_SECONDS}s")
else
  say "Ctrl-C stops everything"
fi
# In the background so that a signal to this script is handled at once.
"$bin/demo" watch "${watch[@]}" &
watch_pid=$!
pids+=("$watch_pid")
status=0
wait "$watch_pid" || status=$?
exit "$status"
