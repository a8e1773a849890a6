#!/usr/bin/env bash
# The whole test suite: the Rust crates (unit, integration, simulator HTTP tests, the C
# examples compiled with the system compiler and run against the simulator, under valgrind
# when it is installed). Set EXONA_REQUIRE_VALGRIND=1 to make a missing valgrind an error.
# Ends with one summary line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

summary=$(awk '/^test result:/ {
                 for (i = 1; i < NF; i++) {
                   if ($(i + 1) ~ /^passed/) p += $i
                   if ($(i + 1) ~ /^failed/) f += $i
                 }
               }
               END { printf "%d passed, %d failed", p, f }' "$log")
echo
echo "$summary"
exit "$status"
