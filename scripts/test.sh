#!/usr/bin/env bash
# The whole test suite: the Rust crates (unit, integration, simulator HTTP tests, the C
# examples compiled with the system compiler and run against the simulator, under valgrind
# when it is installed). Set EXONA_REQUIRE_VALGRIND=1 to make a missing valgrind an error.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --locked
