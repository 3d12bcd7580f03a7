#!/usr/bin/env bash
# make bench-cpu: CPU per heartbeat, ours against Octavia 11's, on one
# throwaway PostgreSQL cluster (DB=mariadb: one throwaway MariaDB server).
# Prints one JSON line.
#
# Ours: serve with its defaults (topology_cache_seconds included) on
# database "postgres"; loadgen sends V3 heartbeats at a fixed RATE for
# DURATION and reads, from /proc, the CPU time over the measured window of
# the manager and of every process of the cluster (postmaster, backends,
# background workers), and its own, which is reported apart.
# Octavia: test/bench/octavia_bench.py on database "octavia" of the same
# cluster, twice, for OCTAVIA_SECONDS and twice that: the difference of the
# two runs' CPU over the difference of their heartbeats cancels start-up.
#
# DB=mariadb: the same on a MariaDB server started here (test/my.sh).
# Both sides get a database of their own with Octavia's schema built by
# Debian's `octavia-db-manage upgrade head`; on ours, migrate verifies it
# and creates only our own tables, and loadgen --seed-db fills it. The
# server's CPU is mariadbd's (all its threads) over each measured window.
#
#   DB (postgres; or mariadb), AMPHORAE (20000), LISTENERS (2), POOLS (2), MEMBERS (10 per pool),
#   RATE (3000 heartbeats/s), DURATION (20s), OCTAVIA_SECONDS (20; 0
#   skips Octavia's run and the ratio), TOPOLOGY_CACHE_SECONDS,
#   TOPOLOGY_CACHE_MAX_MB and STATS_FLUSH_INTERVAL_MS (empty: the
#   defaults), WARMUP (empty: long enough for every amphora to send once,
#   AMPHORAE/RATE + 1 s; 0: none; e.g. 10s: send at RATE that long,
#   unmeasured, before the measured window, so that the topology cache is
#   warm as in a manager that has been running),
#   PPROF_BIND (empty: off;
#   e.g. 127.0.0.1:6060 to profile the run) and PG_STATEMENTS (1: load
#   pg_stat_statements and print PostgreSQL's costliest statements of the
#   measured window to stderr) override.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
hm=$root/bin/octavia-health-manager
work=$(mktemp -d /tmp/hm-bench-cpu.XXXXXX)
chmod 755 "$work"
# shellcheck source=../pg.sh
. "$root/test/pg.sh"
# shellcheck source=../my.sh
. "$root/test/my.sh"
db=${DB:-postgres}
case $db in
  postgres | postgresql | pg) db=postgres ;;
  mariadb | mysql) db=mariadb ;;
  *) echo "bench-cpu: DB=$db: want postgres or mariadb" >&2; exit 2 ;;
esac

amphorae=${AMPHORAE:-20000}
listeners=${LISTENERS:-2}
pools=${POOLS:-2}
members=${MEMBERS:-10}
rate=${RATE:-3000}
duration=${DURATION:-20s}
octavia_seconds=${OCTAVIA_SECONDS:-20}
if [ "${PG_STATEMENTS:-}" = 1 ]; then
  export PG_OPTS="${PG_OPTS:-} -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
fi

hm_pid=
cleanup() {
  [ -n "$hm_pid" ] && kill "$hm_pid" 2>/dev/null && wait "$hm_pid" 2>/dev/null
  if [ "$db" = mariadb ]; then my_stop "$work"; else
    [ -n "${BENCH_KEEP_PGLOG:-}" ] && cat "$work/postgres.log" >&2
    [ -n "${BENCH_KEEP_LOG:-}" ] && cp "$work/serve.log" "$BENCH_KEEP_LOG"
    pg_stop "$work"
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ "$db" = mariadb ]; then
  if ! /usr/bin/python3 -c 'import octavia, pymysql' 2>/dev/null; then
    "$root/test/interop/install-deps.sh"
  fi
  my_start "$work"
  server_pid=$my_pid
  pg_url=$my_root/ours
  octavia_url=$my_root/octavia
  my_sql 'CREATE DATABASE ours; CREATE DATABASE octavia'
  echo "bench-cpu: MariaDB on port $my_port; octavia-db-manage upgrade head on both databases" >&2
  for name in ours octavia; do
    printf '[database]\nconnection = %s\n' "$my_root/$name" >"$work/db-manage-$name.conf"
    octavia-db-manage --config-file "$work/db-manage-$name.conf" upgrade head >"$work/db-manage-$name.log" 2>&1 &
  done
  for name in ours octavia; do
    wait -n || { cat "$work"/db-manage-*.log >&2; exit 1; }
  done
else
  if ! /usr/bin/python3 -c 'import octavia, psycopg2' 2>/dev/null; then
    "$root/test/interop/install-deps.sh"
  fi
  pg_start "$work"
  server_pid=$(head -n 1 "$work/pgdata/postmaster.pid")
  octavia_url=${pg_url%/postgres}/octavia
  psql -q "$pg_url" -c 'CREATE DATABASE octavia' >/dev/null
fi

udp_port=$(pick_udp_port $((25655 + RANDOM % 1000)))
metrics_port=$(pick_port 29202)
cat >"$work/octavia.conf" <<EOF2
[database]
connection = $pg_url
[health_manager]
heartbeat_key = bench-key
bind_ip = 127.0.0.1
bind_port = $udp_port
metrics_bind = 127.0.0.1:$metrics_port
pprof_bind = ${PPROF_BIND:-}
${TOPOLOGY_CACHE_SECONDS:+topology_cache_seconds = $TOPOLOGY_CACHE_SECONDS}
${TOPOLOGY_CACHE_MAX_MB:+topology_cache_max_mb = $TOPOLOGY_CACHE_MAX_MB}
${STATS_FLUSH_INTERVAL_MS:+stats_flush_interval_ms = $STATS_FLUSH_INTERVAL_MS}
failover_driver = noop
[controller_worker]
compute_driver = compute_noop_driver
EOF2
sed "s|^connection = .*|connection = $octavia_url|" "$work/octavia.conf" >"$work/octavia-db.conf"
"$hm" --config-file "$work/octavia.conf" migrate 2>"$work/migrate.log"
# On MariaDB, Octavia's database is Octavia's alone, as its alembic left it.
[ "$db" = mariadb ] || "$hm" --config-file "$work/octavia-db.conf" migrate 2>>"$work/migrate.log"

shape=(--amphorae "$amphorae" --listeners "$listeners" --pools "$pools" --members "$members")
echo "bench-cpu: seeding $amphorae amphorae ($listeners listeners, $pools pools of $members members)" >&2
"$hm" --config-file "$work/octavia.conf" serve 2>"$work/serve.log" &
hm_pid=$!
sleep 1
# Seed with one heartbeat, then let PostgreSQL settle, so that neither the
# COPY nor the first analyze falls in the measured window.
"$hm" --config-file "$work/octavia.conf" loadgen --seed-db "${shape[@]}" \
  --rate 1 --duration 1ms >/dev/null 2>"$work/seed.log"
if [ "$db" = mariadb ]; then
  my_sql 'ANALYZE TABLE ours.amphora, ours.load_balancer, ours.listener, ours.pool, ours.member' >/dev/null
  sleep 2
else
  psql -q "$pg_url" -c 'VACUUM ANALYZE' >/dev/null
fi
WARMUP=${WARMUP:-$(default_warmup "$amphorae" "$rate")}
export WARMUP
if [ "$WARMUP" != 0 ] && [ "$WARMUP" != 0s ]; then
  # A manager that has run for a while: every topology cached.
  echo "bench-cpu: warm-up, $rate heartbeats/s for $WARMUP (not measured)" >&2
  "$hm" --config-file "$work/octavia.conf" loadgen "${shape[@]}" \
    --rate "$rate" --duration "$WARMUP" >/dev/null 2>>"$work/seed.log"
fi
if [ "$db" != mariadb ]; then
  if [ "${PG_STATEMENTS:-}" = 1 ]; then
    psql -q "$pg_url" -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' -c 'SELECT pg_stat_statements_reset()' >/dev/null
  fi
fi
echo "bench-cpu: ours, $rate heartbeats/s for $duration" >&2
"$hm" --config-file "$work/octavia.conf" loadgen "${shape[@]}" \
  --rate "$rate" --duration "$duration" \
  --watch-pid "manager=$hm_pid" --watch-pid "$db=$server_pid" >"$work/ours.json"
kill "$hm_pid"
wait "$hm_pid" 2>/dev/null || true
hm_pid=
if [ "${PG_STATEMENTS:-}" = 1 ]; then
  psql -q "$pg_url" -P pager=off -c "SELECT calls, round(total_exec_time::numeric, 1) AS ms,
      round((total_exec_time / greatest(calls, 1))::numeric, 3) AS ms_per_call, rows,
      shared_blks_hit + shared_blks_read AS blks, shared_blks_dirtied AS dirtied, wal_records,
      left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
    FROM pg_stat_statements WHERE calls > 0 ORDER BY total_exec_time DESC LIMIT 15" >&2
fi
if [ "$octavia_seconds" = 0 ]; then
  /usr/bin/python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); c=o["cpu_us_per_applied"]
print(json.dumps({"ours": {"us_per_heartbeat": round(c["manager"]+c.get("postgres", c.get("mariadb", 0)),1), "manager_us": round(c["manager"],1),
  "db_us": round(c.get("postgres", c.get("mariadb", 0)),1), "applied": o["applied"], "applied_per_s": round(o["applied_per_s"],1),
  "dropped": o["dropped"], "p99_ms": round(o["p99_ms"],1), "hm_rss_bytes": o["hm_rss_bytes"]},
  "loadgen_us_per_heartbeat": round(o["loadgen_cpu_us_per_sent"],1)}))' "$work/ours.json"
  exit 0
fi

for s in "$octavia_seconds" $((2 * octavia_seconds)); do
  echo "bench-cpu: Octavia 11, one process, $s s" >&2
  OCTAVIA_BENCH_SERVER_PID=$server_pid /usr/bin/python3 "$root/test/bench/octavia_bench.py" "$octavia_url" "$amphorae" "$s" \
    "$listeners" "$pools" "$members" >>"$work/octavia.json"
done

/usr/bin/python3 - "$work/ours.json" "$work/octavia.json" "$rate" "$listeners" "$pools" "$members" "$db" <<'EOF2'
import json, sys
ours = json.load(open(sys.argv[1]))
short, long_ = (json.loads(l) for l in open(sys.argv[2]))
rate, listeners, pools, members = float(sys.argv[3]), *(int(v) for v in sys.argv[4:7])
db = sys.argv[7]
applied = ours["applied"]
manager = ours["cpu_us_per_applied"]["manager"]
postgres = ours["cpu_us_per_applied"][db]
n = long_["heartbeats"] - short["heartbeats"]
py = (long_["python_cpu_s"] - short["python_cpu_s"]) / n * 1e6
if db == "mariadb":
    pg = (long_["mariadb_cpu_s"] - short["mariadb_cpu_s"]) / n * 1e6
    octavia_db = {"mariadb_us": round(pg, 1)}
else:
    pg = (long_["pg_cpu_s"] - short["pg_cpu_s"]) / n * 1e6
    octavia_db = {"postgres_backends_us": round(pg, 1)}
print(json.dumps({
    "scenario": ({"database": "mariadb"} if db == "mariadb" else {}) | {
                 "amphorae": ours["amphorae"], "listeners": listeners, "pools": pools, "members_per_pool": members,
                 "rate": rate, "seconds": round(ours["seconds"], 1), "topology_cache_seconds": __import__("os").environ.get("TOPOLOGY_CACHE_SECONDS") or "default", "warmup": __import__("os").environ.get("WARMUP")},
    "ours": {"us_per_heartbeat": round(manager + postgres, 1), "manager_us": round(manager, 1),
             db + "_us": round(postgres, 1), "sent_per_s": round(ours["sent_per_s"], 1),
             "applied": applied, "applied_per_s": round(ours["applied_per_s"], 1),
             "dropped": ours["dropped"], "p99_ms": round(ours["p99_ms"], 1), "hm_rss_bytes": ours["hm_rss_bytes"]},
    "loadgen": {"cpu_s": round(ours["loadgen_cpu_s"], 3), "us_per_heartbeat": round(ours["loadgen_cpu_us_per_sent"], 1)},
    "octavia": {"us_per_heartbeat": round(py + pg, 1), "python_us": round(py, 1), **octavia_db,
                "heartbeats": [short["heartbeats"], long_["heartbeats"]],
                "heartbeats_per_s": [short["heartbeats_per_s"], long_["heartbeats_per_s"]]},
    "ratio": round((py + pg) / (manager + postgres), 1),
}))
EOF2
