# Sourced by the bench scripts: a private MariaDB server in a folder, the
# shell twin of test/mysqltest.
#   my_start DIR  -> mariadb-install-db into DIR/mariadb, start mariadbd on
#                    a free loopback port; sets $my_port, $my_pid (mariadbd
#                    itself: its threads' CPU is the server's) and
#                    $my_root (URL prefix, append the database name).
#                    As root, mariadbd drops to the mysql user (--user).
#   my_stop DIR   -> shutdown, keeping DIR/mariadb/error.log.
#   my_sql SQL    -> run SQL as root through the client.
# Durability is traded for speed, as with pg.sh's fsync=off: commits write
# the log but never sync it.

declare -F pick_port >/dev/null || {
  port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
  pick_port() { local p=$1; while ! port_free "$p"; do p=$((p + 1)); done; echo "$p"; }
}

my_flags() {
  local home=$1
  echo --no-defaults --datadir="$home/data" --tmpdir="$home" \
    --innodb-buffer-pool-size="${MY_BUFFER_POOL:-512M}" --innodb-log-file-size=256M \
    --innodb-flush-log-at-trx-commit=2 --innodb-flush-method=nosync --innodb-doublewrite=0 \
    --innodb-use-native-aio=0 --skip-name-resolve \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci --performance-schema=0
}

my_start() {
  local dir=$1 home=$1/mariadb user=() try
  my_install_db=$(command -v mariadb-install-db || echo /usr/bin/mariadb-install-db)
  my_bin=$(command -v mariadbd || echo /usr/sbin/mariadbd)
  if [ ! -x "$my_bin" ] || [ ! -x "$my_install_db" ] || ! command -v mariadb >/dev/null 2>&1; then
    echo "MariaDB server binaries not found: apt-get install mariadb-server (make deps)" >&2
    return 1
  fi
  mkdir -p "$home"
  if [ "$(id -u)" -eq 0 ]; then
    user=(--user=mysql)
    chown mysql: "$home"
  fi
  # shellcheck disable=SC2046 # my_flags is a list of words
  "$my_install_db" $(my_flags "$home") "${user[@]}" --auth-root-authentication-method=normal \
    --skip-test-db >"$dir/mariadb-install-db.log" 2>&1 || {
    echo "mariadb-install-db failed:" >&2
    tail -n 20 "$dir/mariadb-install-db.log" >&2
    return 1
  }
  my_port=33306
  for try in 1 2 3 4 5; do
    my_port=$(pick_port "$my_port")
    rm -f "$home/error.log"
    # shellcheck disable=SC2046
    "$my_bin" $(my_flags "$home") "${user[@]}" --port="$my_port" --bind-address=127.0.0.1 \
      --socket="$home/mysqld.sock" --pid-file="$home/mysqld.pid" --log-error="$home/error.log" \
      --max-connections=500 </dev/null >/dev/null 2>&1 &
    my_pid=$!
    local i
    for i in $(seq 1 600); do
      if mariadb -uroot -h127.0.0.1 -P"$my_port" -e 'SELECT 1' >/dev/null 2>&1; then
        my_root="mysql+pymysql://root@127.0.0.1:$my_port"
        return 0
      fi
      kill -0 "$my_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$my_pid" 2>/dev/null
    wait "$my_pid" 2>/dev/null
    if [ "$try" = 5 ] || ! grep -q "Address already in use\|Can't start server" "$home/error.log" 2>/dev/null; then
      echo "MariaDB did not start; $home/error.log ends with:" >&2
      tail -n 20 "$home/error.log" >&2 || true
      my_pid=
      return 1
    fi
    my_port=$((my_port + 1))
  done
}

my_sql() { mariadb -uroot -h127.0.0.1 -P"$my_port" -e "$1"; }

my_stop() {
  [ -n "${my_pid:-}" ] || return 0
  kill "$my_pid" 2>/dev/null || true
  wait "$my_pid" 2>/dev/null || true
  my_pid=
  rm -rf "$1/mariadb/data"
}
