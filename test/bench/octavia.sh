#!/usr/bin/env bash
# Octavia 11's own update_health + update_stats on the loadgen workload, on
# a throwaway PostgreSQL with our schema (the interop suite checks it equals
# Octavia's). Needs Debian's python3-octavia: test/interop/install-deps.sh.
#   AMPHORAE (10000) and DURATION (60, seconds) override.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
hm=$root/bin/octavia-health-manager
work=$(mktemp -d /tmp/octavia-bench.XXXXXX)
chmod 755 "$work"
# shellcheck source=../pg.sh
. "$root/test/pg.sh"

cleanup() {
  pg_stop "$work"
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

if ! /usr/bin/python3 -c 'import octavia' 2>/dev/null; then
  "$root/test/interop/install-deps.sh"
fi
pg_start "$work"
cat >"$work/octavia.conf" <<EOF2
[database]
connection = $pg_url
[health_manager]
heartbeat_key = bench-key
EOF2
"$hm" --config-file "$work/octavia.conf" migrate 2>"$work/migrate.log"
echo "octavia: ${AMPHORAE:-10000} amphorae for ${DURATION:-60} s, one process" >&2
/usr/bin/python3 "$root/test/bench/octavia_bench.py" "$pg_url" "${AMPHORAE:-10000}" "${DURATION:-60}"
