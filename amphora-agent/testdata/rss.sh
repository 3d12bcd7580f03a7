#!/bin/sh
# Resident memory of the built amphora-agent with many members (see
# docs/performance.md, "Amphora agent", "Resident memory"):
#
#   amphora-agent/testdata/rss.sh [MONITOR [MEMBERS [SECONDS [BINARY]]]]
#
# MONITOR is TCP (default) or HTTP; MEMBERS (default 1000) are spread over
# 10 pools on loopback addresses 127.1.x.y, all served by one local HTTP
# server on port $PORT (default 18080), probed every 5 s (timeout 2 s). The agent runs on
# the simulator with a controller on a closed loopback port. VmRSS is
# sampled every 5 s for SECONDS (default 60); it prints one JSON line:
# the samples, "steady" (min and max of the second half), "peak" (VmHWM),
# and the agent's CPU seconds. Extra agent settings for [amphora_agent]
# can be given in AGENT_EXTRA (e.g. AGENT_EXTRA="memory_limit_mib = 14"),
# and the environment (GOGC, GOMEMLIMIT, GODEBUG) is passed on. The agent
# is built without cgo, as make build builds it.
set -eu
port=${PORT:-18080}
monitor=${1:-TCP}
members=${2:-1000}
seconds=${3:-60}
bin=${4:-}
here=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'kill $agent $server 2>/dev/null || true; rm -rf "$dir"' EXIT INT TERM
if [ -z "$bin" ]; then
	bin=$dir/amphora-agent
	(cd "$here" && CGO_ENABLED=0 go build -o "$bin" ./cmd/amphora-agent)
fi
python3 - "$monitor" "$members" "$port" > "$dir/lb.json" <<'PY'
import json, sys, uuid
monitor, members, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per = max(1, members // 10)
lb = {"loadbalancer_id": str(uuid.uuid4()), "vip_addresses": ["192.0.2.10"], "listeners": [], "pools": []}
n = 0
for i in range(10):
    mon = {"type": monitor, "delay": 5, "timeout": 2, "max_retries": 3, "max_retries_down": 3}
    if monitor == "HTTP":
        mon.update({"http_method": "GET", "url_path": "/", "expected_codes": "200"})
    pool = {"id": str(uuid.uuid4()), "healthmonitor": mon, "members": []}
    for _ in range(per):
        pool["members"].append({"id": str(uuid.uuid4()), "address": "127.1.%d.%d" % (n // 250, n % 250 + 1),
                                "protocol_port": port, "weight": 1})
        n += 1
    lb["pools"].append(pool)
    lb["listeners"].append({"id": str(uuid.uuid4()), "protocol": "TCP", "protocol_port": 80 + i, "default_pool_id": pool["id"]})
json.dump(lb, sys.stdout)
PY
mkdir -p "$dir/www" && echo ok > "$dir/www/index.html"
python3 -m http.server --bind 0.0.0.0 --directory "$dir/www" "$port" >/dev/null 2>&1 &
server=$!
cat > "$dir/agent.conf" <<CONF
[amphora_agent]
amphora_id = $(python3 -c 'import uuid; print(uuid.uuid4())')
status_bind =
${AGENT_EXTRA:-}
[health_manager]
controller_ip_port_list = 127.0.0.1:9
heartbeat_interval = 10
heartbeat_key = insecure
[haproxy_amphora]
base_path = $dir
[vpp]
dataplane = sim
lb_config_file = $dir/lb.json
ip4_src_address = 198.51.100.1
startup_min_delay = 0
CONF
sleep 1
"$bin" --config-file "$dir/agent.conf" >"$dir/agent.log" 2>&1 &
agent=$!
samples=""
i=0
while [ $i -lt $((seconds / 5)) ]; do
	sleep 5
	kill -0 $agent 2>/dev/null || { echo "agent exited:" >&2; tail -20 "$dir/agent.log" >&2; exit 1; }
	rss=$(awk '/^VmRSS/ {print $2}' /proc/$agent/status)
	samples="$samples${samples:+,}$((rss / 1024))"
	i=$((i + 1))
done
hwm=$(awk '/^VmHWM/ {print $2}' /proc/$agent/status)
cpu=$(awk '{print ($14 + $15) / 100}' /proc/$agent/stat 2>/dev/null || echo 0)
python3 - "$samples" "$hwm" "$cpu" "$monitor" "$members" <<'PY'
import json, sys
s = [int(x) for x in sys.argv[1].split(",")]
half = s[len(s) // 2:]
print(json.dumps({"monitor": sys.argv[4], "members": int(sys.argv[5]), "rss_mib": s,
                  "steady_mib": [min(half), max(half)], "peak_mib": int(sys.argv[2]) // 1024,
                  "cpu_s": float(sys.argv[3])}))
PY
