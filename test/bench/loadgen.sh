#!/usr/bin/env bash
# make bench, second half: a 60-second loadgen scenario against serve on a
# throwaway PostgreSQL. Prints loadgen's JSON report.
#   AMPHORAE (10000), RATE (9000 heartbeats/s), DURATION (60s) and
#   TOPOLOGY_CACHE_SECONDS (0: off) override.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
hm=$root/bin/octavia-health-manager
work=$(mktemp -d /tmp/hm-bench.XXXXXX)
chmod 755 "$work"
# shellcheck source=../pg.sh
. "$root/test/pg.sh"

hm_pid=
cleanup() {
  [ -n "$hm_pid" ] && kill "$hm_pid" 2>/dev/null && wait "$hm_pid" 2>/dev/null
  pg_stop "$work"
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

pg_start "$work"
udp_port=$(pick_udp_port $((25555 + RANDOM % 100)))
metrics_port=$(pick_port 29102)
cat >"$work/octavia.conf" <<EOF2
[database]
connection = $pg_url
[health_manager]
heartbeat_key = bench-key
bind_ip = 127.0.0.1
bind_port = $udp_port
metrics_bind = 127.0.0.1:$metrics_port
failover_driver = noop
topology_cache_seconds = ${TOPOLOGY_CACHE_SECONDS:-0}
[controller_worker]
compute_driver = compute_noop_driver
EOF2
"$hm" --config-file "$work/octavia.conf" migrate 2>"$work/migrate.log"
"$hm" --config-file "$work/octavia.conf" serve 2>"$work/serve.log" &
hm_pid=$!
sleep 1
echo "loadgen: ${AMPHORAE:-10000} amphorae at ${RATE:-9000} heartbeats/s for ${DURATION:-60s}" >&2
"$hm" --config-file "$work/octavia.conf" loadgen --seed-db \
  --amphorae "${AMPHORAE:-10000}" --rate "${RATE:-9000}" --duration "${DURATION:-60s}"
