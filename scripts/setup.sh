#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test oc2mqtt. Safe to run
# twice: it skips every package that is already there.
set -euo pipefail

APT_PACKAGES=(cmake libssl-dev pkg-config mosquitto mosquitto-clients libmosquitto-dev valgrind openssl)
# Extra packages a binding asks for (for example chromium for the dashboard test).
if [ -n "${OC2_EXTRA_APT:-}" ]; then read -r -a extra <<<"$OC2_EXTRA_APT"; APT_PACKAGES+=("${extra[@]}"); fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: apt packages present"
fi

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "setup: python3 not found" >&2; exit 1; }
