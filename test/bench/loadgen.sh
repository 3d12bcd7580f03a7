#!/usr/bin/env bash
# make bench, second half: a 60-second loadgen scenario against serve on a
# throwaway PostgreSQL. Prints loadgen's JSON report of the measured
# window on stdout, and the warm-up's report, prefixed "warm-up:", on
# stderr.
#   AMPHORAE (10000), RATE (9000 heartbeats/s), DURATION (60s),
#   TOPOLOGY_CACHE_SECONDS (empty: the manager's default; 0: off) and
#   WARMUP (empty: long enough for every amphora to send once,
#   AMPHORAE/RATE + 1 s, as test/bench/cpu.sh; 0: none, so the measured
#   window starts with every topology unread and every amphora_health and
#   listener_statistics row still to insert; e.g. 10s) override.
# The seeded tables are analyzed before the first heartbeat, as a running
# Octavia database is, so that autovacuum's first analyze does not fall in
# the measured window.
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
${TOPOLOGY_CACHE_SECONDS:+topology_cache_seconds = $TOPOLOGY_CACHE_SECONDS}
[controller_worker]
compute_driver = compute_noop_driver
EOF2
"$hm" --config-file "$work/octavia.conf" migrate 2>"$work/migrate.log"
"$hm" --config-file "$work/octavia.conf" serve 2>"$work/serve.log" &
hm_pid=$!
sleep 1
amphorae=${AMPHORAE:-10000}
rate=${RATE:-9000}
"$hm" --config-file "$work/octavia.conf" loadgen --seed-db --amphorae "$amphorae" \
  --rate 1 --duration 1ms >/dev/null 2>"$work/seed.log"
psql -q "$pg_url" -c 'VACUUM ANALYZE' >/dev/null
WARMUP=${WARMUP:-$(default_warmup "$amphorae" "$rate")}
if [ "$WARMUP" != 0 ] && [ "$WARMUP" != 0s ]; then
  echo "loadgen: warm-up, $amphorae amphorae at $rate heartbeats/s for $WARMUP (not measured)" >&2
  printf 'warm-up: ' >&2
  "$hm" --config-file "$work/octavia.conf" loadgen --amphorae "$amphorae" \
    --rate "$rate" --duration "$WARMUP" >&2 2>>"$work/seed.log"
fi
echo "loadgen: $amphorae amphorae at $rate heartbeats/s for ${DURATION:-60s}" >&2
"$hm" --config-file "$work/octavia.conf" loadgen \
  --amphorae "$amphorae" --rate "$rate" --duration "${DURATION:-60s}"
