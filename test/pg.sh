# Sourced by the demo and bench scripts: a private PostgreSQL in a folder.
#   pg_start DIR  -> initdb DIR/pgdata if needed, start it on a free port,
#                    set $pg_url; runs the server as postgres when root.
#   pg_stop DIR   -> fast shutdown.
#   PG_OPTS adds server options (e.g. "-c shared_preload_libraries=pg_stat_statements").

pg_find_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() { local p=$1; while ! port_free "$p"; do p=$((p + 1)); done; echo "$p"; }

pg_start() {
  local dir=$1
  pg_bin=$(pg_find_bin)
  if [ -z "$pg_bin" ] || ! command -v psql >/dev/null 2>&1; then
    "$(dirname "${BASH_SOURCE[0]}")/install-deps.sh"
    pg_bin=$(pg_find_bin)
  fi
  pg_as=()
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    pg_as=(runuser -u postgres --)
    chown postgres "$dir"
  fi
  if [ ! -d "$dir/pgdata" ]; then
    "${pg_as[@]}" "$pg_bin/initdb" -D "$dir/pgdata" -A trust -U postgres >"$dir/initdb.log"
  fi
  local port=55432 attempt
  # A free-looking port can still be taken: another process's outgoing
  # connection may hold it as its local port. Try a few.
  for attempt in 1 2 3 4 5; do
    port=$(pick_port "$port")
    if "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$dir/pgdata" -l "$dir/postgres.log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off ${PG_OPTS:-}" start >/dev/null; then
      break
    fi
    [ "$attempt" = 5 ] && return 1
    port=$((port + 1 + RANDOM % 100))
  done
  pg_url="postgresql://postgres@127.0.0.1:$port/postgres"
}

pg_stop() {
  [ -n "${pg_bin:-}" ] || return 0
  "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$1/pgdata" -m fast stop >/dev/null 2>&1 || true
}
