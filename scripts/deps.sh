#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian packages Fluxo needs to build, test, fuzz and bench.
# Idempotent and quiet when everything is already installed. Uses sudo when
# not root. Usage: scripts/deps.sh [build|test|bench|fuzz|all]   (default: test)
set -euo pipefail

want=${1:-test}
build_pkgs=(gcc make cmake pkg-config libsqlite3-dev libfyaml-dev libjansson-dev libsodium-dev
            libcmocka-dev libzip-dev libexpat1-dev libxlsxwriter-dev libfreexl-dev libyajl-dev
            libmicrohttpd-dev libjwt-dev curl libpq-dev librabbitmq-dev librdkafka-dev
            libssl-dev libsystemd-dev libmimalloc-dev)
test_pkgs=(sqlite3 procps python3 python3-openpyxl curl chromium python3-prometheus-client
           postgresql-15 postgresql-client-15 rabbitmq-server amqp-tools kcat)
fuzz_pkgs=(clang libclang-rt-14-dev)
bench_pkgs=(sqlite3 time python3 python3-pandas python3-openpyxl wrk)

pkgs=("${build_pkgs[@]}")
case "$want" in
  build) ;;
  test) pkgs+=("${test_pkgs[@]}") ;;
  bench) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  fuzz) pkgs+=("${fuzz_pkgs[@]}") ;;
  all) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|bench|fuzz|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# npm fetches the pinned front-end assets (Swagger UI) at build time; a
# node installed some other way (with its own npm) is fine too
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Installing a server package may start its default instance (Debian's
# postinst scripts do when an init system answers): the tests start private
# instances of their own, so stop those again and leave nothing running.
for p in "${missing[@]}"; do
  case "$p" in
    postgresql-15) $sudo service postgresql stop >/dev/null 2>&1 || true ;;
    rabbitmq-server)
      $sudo service rabbitmq-server stop >/dev/null 2>&1 || true
      $sudo epmd -kill >/dev/null 2>&1 || true ;;
  esac
done
