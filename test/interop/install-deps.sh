#!/usr/bin/env bash
# Installs what the interop suite needs beyond `make deps`: Debian's
# Octavia 11.0.0 (python3-octavia), psycopg2 (python3-psycopg2) and PyMySQL
# (python3-pymysql, for the MariaDB runs), for Debian's /usr/bin/python3. Missing packages are a hard error, never a
# silent skip.
set -euo pipefail

have() {
  /usr/bin/python3 -c 'import octavia.amphorae.drivers.health.heartbeat_udp, psycopg2, pymysql' >/dev/null 2>&1
}

if have; then
  exit 0
fi

echo "interop: python3-octavia, python3-psycopg2 or python3-pymysql missing; installing them with apt-get" >&2
pkgs=(python3-octavia python3-psycopg2 python3-pymysql)
if [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
else
  echo "interop: cannot install ${pkgs[*]}: not root and no password-less sudo." >&2
  echo "interop: run 'sudo apt-get install ${pkgs[*]}' and retry." >&2
  exit 1
fi

if ! have; then
  echo "interop: ${pkgs[*]} installed, but /usr/bin/python3 still cannot import Octavia" >&2
  exit 1
fi
