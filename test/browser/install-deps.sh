#!/usr/bin/env bash
# Installs what the browser test needs beyond `make deps`: Debian's
# headless-capable Chromium and its WebDriver (chromium, chromium-driver).
# Missing packages are a hard error, never a silent skip.
set -euo pipefail

have() {
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
}

if have; then
  exit 0
fi

echo "browser: chromium or chromium-driver missing; installing them with apt-get" >&2
pkgs=(chromium chromium-driver fonts-dejavu-core)
if [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
else
  echo "browser: cannot install ${pkgs[*]}: not root and no password-less sudo." >&2
  echo "browser: run 'sudo apt-get install ${pkgs[*]}' and retry." >&2
  exit 1
fi

if ! have; then
  echo "browser: ${pkgs[*]} installed, but chromium or chromedriver is still not on PATH" >&2
  exit 1
fi
