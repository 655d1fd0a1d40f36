#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test oc2mqtt. Safe to run
# twice: it skips every package that is already there.
set -euo pipefail

APT_PACKAGES=(cmake libssl-dev pkg-config mosquitto mosquitto-clients libmosquitto-dev valgrind openssl)
# The other brokers of the interop suite (tests/broker/broker.py --kind rabbitmq|activemq); the
# tests run their own instances, never the system services. libmqtt-client-java (with
# hawtbuf/hawtdispatch) is what ActiveMQ's MQTT transport needs on its class path; javac
# (default-jdk-headless) compiles the small ActiveMQ plugin behind broker.py --deny.
APT_PACKAGES+=(rabbitmq-server activemq libmqtt-client-java libhawtbuf-java libhawtdispatch-java default-jdk-headless)
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
  # Keep the packages' maintainer scripts (invoke-rc.d, deb-systemd-invoke) from starting system services
  # (rabbitmq-server, activemq): a policy-rc.d that refuses everything, only while we
  # install and only if there was none.
  policy=/usr/sbin/policy-rc.d
  own_policy=""
  if [ ! -e "$policy" ]; then
    own_policy=1
    trap '$SUDO rm -f "$policy"' EXIT
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ -n "$own_policy" ]; then $SUDO rm -f "$policy"; trap - EXIT; fi
else
  echo "setup: apt packages present"
fi

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "setup: python3 not found" >&2; exit 1; }
