#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run every libFuzzer target for N seconds each, growing its corpus in a
# scratch copy (new inputs worth keeping are copied into fuzz/corpus by hand).
set -euo pipefail
build=${1:-build-fuzz}
secs=${2:-60}
for bin in "$build"/fuzz/fuzz_*; do
  name=$(basename "$bin"); corpus=fuzz/corpus/${name#fuzz_}
  work=$(mktemp -d); cp -r "$corpus"/. "$work"/ 2>/dev/null || true
  echo "== $name ($secs s)"
  "$bin" -max_total_time="$secs" -max_len=65536 "$work" "$corpus" >/dev/null 2>"$work.log" || { tail -50 "$work.log"; exit 1; }
  tail -2 "$work.log"
  rm -rf "$work" "$work.log"
done
