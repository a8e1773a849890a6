#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that reads what the network or a user hands over
# (fuzz/fuzz_targets): response decoding, Retry-After and reset parsing, JSON pointers through
# the C accessors, website validation, and the C examples' CSV line reader.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 20)
#
# Needs the nightly toolchain (cargo-fuzz is installed when missing). Without nightly it says
# "fuzz: skipped (no nightly toolchain)" and exits 0. Findings stay in fuzz/artifacts/.
# Ends with one line "N passed, N failed" (a target that found a crash is a failure).
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-20}"

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: skipped (no nightly toolchain)"
  exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet || { echo "fuzz: cannot install cargo-fuzz"; echo "0 passed, 1 failed"; exit 1; }
fi
# clang instruments the C reader for coverage too; gcc still runs it under AddressSanitizer.
if command -v clang >/dev/null 2>&1; then export CC=clang; fi

if ! cargo +nightly fuzz build 2>&1 | tail -3; then
  echo "fuzz: the targets do not build"
  echo "0 passed, 1 failed"
  exit 1
fi
passed=0 failed=0
for target in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$target"
  if cargo +nightly fuzz run "$target" -- -max_total_time="$secs" -rss_limit_mb=2048 >"/tmp/fuzz-$target.log" 2>&1; then
    runs=$(grep -oE 'Done [0-9]+ runs' "/tmp/fuzz-$target.log" | tail -1)
    echo "fuzz $target: ok (${runs:-no run count} in ${secs} s)"
    passed=$((passed + 1))
  else
    echo "fuzz $target: FAILED (see /tmp/fuzz-$target.log and fuzz/artifacts/$target)"
    tail -30 "/tmp/fuzz-$target.log"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
