#!/usr/bin/env bash
# Installs what the test suite needs beyond Go modules: a PostgreSQL server
# (initdb, pg_ctl, postgres). Debian installs them under
# /usr/lib/postgresql/<major>/bin, which is not on PATH; the test harness
# searches there. Missing binaries are a hard error, never a silent skip.
set -euo pipefail

have_postgres() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

if have_postgres; then
  exit 0
fi

echo "install-deps: PostgreSQL server binaries not found; installing Debian's postgresql package" >&2
if [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
else
  echo "install-deps: cannot install postgresql: not root and no password-less sudo." >&2
  echo "install-deps: run 'sudo apt-get install postgresql' and retry." >&2
  exit 1
fi

if ! have_postgres; then
  echo "install-deps: postgresql was installed but initdb is still missing" >&2
  exit 1
fi
