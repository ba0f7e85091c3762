#!/usr/bin/env bash
# Installs what a fresh Debian 12 + Node 20 machine lacks for `npm test`; silent when
# nothing is missing. Run as root (CI is); otherwise it prints the apt command to run.
#
# Debian packages:
#   chromium         headless browser for the vitest browser project (never a downloaded one)
#   libegl-dev       Dawn dlopens the unversioned "libEGL.so" (only the -dev package has it)
#   libegl-mesa0     Mesa's EGL vendor (surfaceless platform) behind libglvnd
#   libgl1-mesa-dri  swrast_dri.so: llvmpipe, the GL ES driver Dawn's opengles backend runs on
#   libvulkan1       Vulkan loader, for Dawn's last-resort backend on Chromium's SwiftShader ICD
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(chromium libegl-dev libegl-mesa0 libgl1-mesa-dri libvulkan1)
missing=()
for p in "${pkgs[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp)
  # Quiet on success, the whole apt log on failure.
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "setup: apt-get failed" >&2
    exit 1
  fi
  rm -f "$log"
fi

# npm ci when node_modules is absent or older than the lockfile (npm writes
# node_modules/.package-lock.json on every install).
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
