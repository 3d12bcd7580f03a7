#!/usr/bin/env bash
# Installs what the test suite needs beyond Go modules:
# - a PostgreSQL server (initdb, pg_ctl, postgres). Debian installs them
#   under /usr/lib/postgresql/<major>/bin, which is not on PATH; the test
#   harness searches there.
# - a MariaDB server (mariadb-install-db, mariadbd; Debian's mariadb-server)
#   and Octavia's alembic migrations (octavia-db-manage: python3-octavia,
#   with python3-pymysql), which build Octavia's schema for the MySQL store's
#   tests (test/mysqltest).
# - libfaketime (Debian's faketime package), preloaded into a test server
#   to run its clock offset from the tests' (test/pgtest ClockOffset).
# - promtool (Debian's prometheus package), which runs the alert rules'
#   unit tests (test/etc, etc/prometheus/octavia-health-alerts.test.yml).
# Anything missing is a hard error, never a silent skip.
set -euo pipefail

have_postgres() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

have_mariadb() {
  command -v mariadb-install-db >/dev/null 2>&1 &&
    { command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; }
}

have_octavia_db_manage() {
  command -v octavia-db-manage >/dev/null 2>&1 &&
    /usr/bin/python3 -c 'import pymysql' >/dev/null 2>&1
}

have_libfaketime() {
  compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null ||
    compgen -G '/usr/lib/faketime/libfaketime.so.1' >/dev/null
}

missing=()
have_postgres || missing+=(postgresql)
have_mariadb || missing+=(mariadb-server)
have_octavia_db_manage || missing+=(python3-octavia python3-pymysql)
have_libfaketime || missing+=(faketime)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# The shadow's TEE recipe is loaded and driven in network namespaces
# (test/etc/shadow_tee_test.go) with the real tools.
PATH=$PATH:/usr/sbin:/sbin command -v iptables >/dev/null 2>&1 || missing+=(iptables)
PATH=$PATH:/usr/sbin:/sbin command -v nft >/dev/null 2>&1 || missing+=(nftables)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: cannot install ${missing[*]}: not root and no password-less sudo." >&2
  echo "install-deps: run 'sudo apt-get install ${missing[*]}' and retry." >&2
  exit 1
fi

if ! have_postgres; then
  echo "install-deps: postgresql was installed but initdb is still missing" >&2
  exit 1
fi
if ! command -v promtool >/dev/null 2>&1; then
  echo "install-deps: prometheus was installed but promtool is still missing" >&2
  exit 1
fi
if ! have_mariadb; then
  echo "install-deps: mariadb-server was installed but mariadb-install-db or mariadbd is still missing" >&2
  exit 1
fi
if ! have_octavia_db_manage; then
  echo "install-deps: python3-octavia and python3-pymysql were installed but octavia-db-manage or pymysql is still missing" >&2
  exit 1
fi
if ! have_libfaketime; then
  echo "install-deps: faketime was installed but libfaketime.so.1 is still missing" >&2
  exit 1
fi
