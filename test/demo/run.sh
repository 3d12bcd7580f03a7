#!/usr/bin/env bash
# make run: the health manager on a private PostgreSQL, fed by simulated
# amphorae. Everything lives under .run/ and stops on Ctrl-C.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
run=$root/.run
bin=$root/bin
hm=$bin/octavia-health-manager
key=demo-key
amphorae=(amp-1 amp-2 amp-3)

say() { printf '[make run] %s\n' "$*"; }

# shellcheck source=../pg.sh
. "$root/test/pg.sh"
metrics_port=$(pick_port 9102)
udp_port=5555 # Octavia's bind_port; if it is taken, serve says so and the demo stops

pids=()
cleanup() {
  trap - INT TERM EXIT
  say "stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pg_stop "$run"
  say "stopped; logs are in .run/"
}
trap cleanup INT TERM EXIT

say "starting a private PostgreSQL in .run/pgdata"
pg_start "$run"
db=$pg_url

cat >"$run/octavia.conf" <<EOF
[database]
connection = $db

[health_manager]
heartbeat_key = $key
bind_ip = 127.0.0.1
bind_port = $udp_port
metrics_bind = 127.0.0.1:$metrics_port
heartbeat_interval = 10
receive_sockets = 2
# The demo has no Octavia API to call: it only logs what it would fail over.
failover_driver = noop

[controller_worker]
compute_driver = compute_noop_driver
EOF

"$hm" --config-file "$run/octavia.conf" migrate 2>"$run/migrate.log"
psql -q "$db" -v ON_ERROR_STOP=1 >/dev/null <<'EOF'
TRUNCATE amphora_health, listener_statistics;
DELETE FROM member; DELETE FROM listener; DELETE FROM pool; DELETE FROM amphora; DELETE FROM load_balancer;
INSERT INTO load_balancer (id, name, provisioning_status, operating_status, enabled) VALUES
  ('lb-1', 'web', 'ACTIVE', 'OFFLINE', true), ('lb-2', 'api', 'ACTIVE', 'OFFLINE', true), ('lb-3', 'dns', 'ACTIVE', 'OFFLINE', true);
INSERT INTO amphora (id, load_balancer_id, status, compute_id, cert_busy) VALUES
  ('amp-1', 'lb-1', 'ALLOCATED', 'vm-1', false), ('amp-2', 'lb-2', 'ALLOCATED', 'vm-2', false), ('amp-3', 'lb-3', 'ALLOCATED', 'vm-3', false);
INSERT INTO pool (id, load_balancer_id, protocol, lb_algorithm, operating_status, enabled, provisioning_status)
  SELECT 'pool-' || n, 'lb-' || n, 'HTTP', 'ROUND_ROBIN', 'OFFLINE', true, 'ACTIVE' FROM generate_series(1, 3) n;
INSERT INTO member (id, pool_id, ip_address, protocol_port, operating_status, enabled, provisioning_status, backup)
  SELECT 'm-' || n || '-' || k, 'pool-' || n, '192.0.2.' || k, 80, 'OFFLINE', true, 'ACTIVE', false
  FROM generate_series(1, 3) n, generate_series(1, 2) k;
INSERT INTO listener (id, load_balancer_id, protocol, protocol_port, provisioning_status, operating_status, enabled, default_pool_id)
  SELECT 'l-' || n, 'lb-' || n, 'HTTP', 80, 'ACTIVE', 'OFFLINE', true, 'pool-' || n FROM generate_series(1, 3) n;
EOF

"$hm" --config-file "$run/octavia.conf" serve 2>"$run/health-manager.log" &
hm_pid=$!
pids+=("$hm_pid")
hm_alive() {
  kill -0 "$hm_pid" 2>/dev/null && return 0
  say "the health manager exited; its log (.run/health-manager.log) ends with:"
  tail -n 20 "$run/health-manager.log" >&2
  exit 1
}
sleep 1
hm_alive
say "health manager listening on udp 127.0.0.1:$udp_port; metrics at http://127.0.0.1:$metrics_port/metrics"
say "simulated amphorae: ${amphorae[*]}; m-2-2 flaps, amp-3 goes silent after 30 s. Ctrl-C stops everything."

# One simulated amphora: a V3 heartbeat sealed with encode, sent over UDP.
send() {
  local n=$1 seq=$2 member2=$3
  printf '{"id": "amp-%s", "seq": %s, "listeners": {"l-%s": {"status": "OPEN", "stats": {"tx": %s, "rx": %s, "conns": 3, "totconns": 5, "ereq": 0}}}, "pools": {"pool-%s:l-%s": {"status": "UP", "members": {"m-%s-1": "UP", "m-%s-2": "%s"}}}, "ver": 3}' \
    "$n" "$seq" "$n" $((seq * 900)) $((seq * 1200)) "$n" "$n" "$n" "$n" "$member2" |
    "$hm" encode --key "$key" >"/dev/udp/127.0.0.1/$udp_port"
}

seq=0
start=$SECONDS
while true; do
  seq=$((seq + 1))
  for n in 1 2 3; do
    member2=UP
    if [ "$n" -eq 2 ] && [ $(((seq / 5) % 2)) -eq 1 ]; then member2=DOWN; fi
    if [ "$n" -eq 3 ] && [ $((SECONDS - start)) -gt 30 ]; then continue; fi
    send "$n" "$seq" "$member2"
  done
  sleep 2
  hm_alive
  printf '\n--- %s ---\n' "$(date +%T)"
  psql -q "$db" -P pager=off <<'EOF' || true
SELECT lb.name, lb.operating_status AS lb, l.operating_status AS listener, p.operating_status AS pool,
       string_agg(m.id || '=' || m.operating_status, ' ' ORDER BY m.id) AS members,
       round(extract(epoch FROM (now() AT TIME ZONE 'UTC') - h.last_update)) AS heartbeat_age_s
FROM load_balancer lb
JOIN amphora a ON a.load_balancer_id = lb.id
LEFT JOIN amphora_health h ON h.amphora_id = a.id
JOIN listener l ON l.load_balancer_id = lb.id
JOIN pool p ON p.load_balancer_id = lb.id
JOIN member m ON m.pool_id = p.id
GROUP BY lb.name, lb.operating_status, l.operating_status, p.operating_status, h.last_update
ORDER BY lb.name;
EOF
done
