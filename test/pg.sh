# Sourced by the demo and bench scripts: a private PostgreSQL in a folder.
#   pg_start DIR  -> initdb DIR/pgdata if needed, start it on a free port,
#                    set $pg_url; runs the server as postgres when root.
#   pg_stop DIR   -> fast shutdown.
# As root, when the postgres user cannot reach DIR (a clone under a
# mode-0700 directory such as /root/src), the server's files live in a
# directory of their own under /tmp instead, DIR/pgdata links to it, and
# pg_stop removes it.
#   PG_OPTS adds server options (e.g. "-c shared_preload_libraries=pg_stat_statements").

pg_find_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() { local p=$1; while ! port_free "$p"; do p=$((p + 1)); done; echo "$p"; }
# A UDP port in use shows in /proc/net/udp{,6}. The manager binds with
# SO_REUSEPORT, so a second one on the same port would bind too and take
# half of the first one's heartbeats: two benchmarks at once must differ.
udp_port_free() { ! grep -qi ":$(printf '%04X' "$1") " /proc/net/udp /proc/net/udp6 2>/dev/null; }
pick_udp_port() { local p=$1; while ! udp_port_free "$p"; do p=$((p + 1)); done; echo "$p"; }

pg_start() {
  local dir=$1
  pg_bin=$(pg_find_bin)
  if [ -z "$pg_bin" ] || ! command -v psql >/dev/null 2>&1; then
    "$(dirname "${BASH_SOURCE[0]}")/install-deps.sh"
    pg_bin=$(pg_find_bin)
  fi
  pg_as=()
  mkdir -p "$dir"
  local home=$dir
  if [ "$(id -u)" -eq 0 ]; then
    pg_as=(runuser -u postgres --)
    chown postgres "$dir"
    if [ -L "$dir/pgdata" ]; then
      home=$(dirname "$(readlink "$dir/pgdata")")
      [ -d "$home" ] || { rm -f "$dir/pgdata"; home=$dir; }
    fi
    if ! "${pg_as[@]}" test -w "$home" -a -x "$home"; then
      home=$(mktemp -d /tmp/octavia-vpp-pg.XXXXXX)
      chown postgres "$home"
      ln -s "$home/pgdata" "$dir/pgdata"
    fi
  fi
  if [ ! -d "$home/pgdata" ]; then
    "${pg_as[@]}" "$pg_bin/initdb" -D "$home/pgdata" -A trust -U postgres >"$dir/initdb.log"
  fi
  local port=55432 try
  # A port found free can be taken before the server binds it (another
  # server, or a client's ephemeral port on a busy machine): try the next.
  for try in 1 2 3 4 5; do
    port=$(pick_port "$port")
    if "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$home/pgdata" -l "$home/postgres.log" -w \
      -o "-p $port -k $home -c listen_addresses=127.0.0.1 -c fsync=off ${PG_OPTS:-}" start >/dev/null; then
      break
    fi
    if [ "$try" = 5 ] || ! tail -n 5 "$home/postgres.log" | grep -q "Address already in use"; then
      echo "PostgreSQL did not start; $home/postgres.log ends with:" >&2
      tail -n 20 "$home/postgres.log" >&2 || true
      return 1
    fi
    port=$((port + 1))
  done
  pg_url="postgresql://postgres@127.0.0.1:$port/postgres"
}

pg_stop() {
  [ -n "${pg_bin:-}" ] || return 0
  local data=$1/pgdata
  if [ -L "$data" ]; then data=$(readlink "$data"); fi
  "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
  # The directory under /tmp goes once its server has stopped.
  if [ -L "$1/pgdata" ] && [ ! -f "$data/postmaster.pid" ]; then
    cp "$(dirname "$data")/postgres.log" "$1/postgres.log" 2>/dev/null || true
    rm -rf "$(dirname "$data")" "$1/pgdata"
  fi
}

# default_warmup AMPHORAE RATE: long enough for every amphora to send once
# before a benchmark's measured window, AMPHORAE/RATE + 1 s (rounded up);
# 0 when RATE is 0 (flat out).
default_warmup() {
  local rate=${2%.*}
  if [ "$rate" -gt 0 ]; then
    echo "$(( ($1 + rate - 1) / rate + 1 ))s"
  else
    echo 0
  fi
}

