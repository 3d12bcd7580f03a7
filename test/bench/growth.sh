#!/usr/bin/env bash
# make bench-growth: how CPU per heartbeat (manager + PostgreSQL) grows
# with the message and the fleet. Runs test/bench/cpu.sh once per shape,
# without Octavia's side, and prints one JSON line per shape:
#   members per pool 5, 10 and 50 at 5,000 amphorae, 2,000/s;
#   20,000 and 100,000 amphorae at 10 members per pool, 3,000/s.
# GROWTH_MEMBERS, GROWTH_AMPHORAE (space-separated lists) and DURATION
# (20s) override; other cpu.sh knobs (TOPOLOGY_CACHE_SECONDS, ...) pass
# through. The 100,000-amphora seed takes minutes and about 3 GB of disk.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
run() {
  local line
  line=$(env "$@" OCTAVIA_SECONDS=0 DURATION="${DURATION:-20s}" "$root/test/bench/cpu.sh")
  /usr/bin/python3 -c 'import json, sys
shape = dict(a.split("=", 1) for a in sys.argv[2:])
o = json.loads(sys.argv[1])["ours"]
print(json.dumps({"amphorae": int(shape["AMPHORAE"]), "members_per_pool": int(shape["MEMBERS"]),
                  "rate": int(shape["RATE"]), **o}))' "$line" "$@"
}
for m in ${GROWTH_MEMBERS:-5 10 50}; do
  run AMPHORAE=5000 MEMBERS="$m" RATE=2000
done
for a in ${GROWTH_AMPHORAE:-20000 100000}; do
  run AMPHORAE="$a" MEMBERS=10 RATE=3000
done
