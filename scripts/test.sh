#!/usr/bin/env bash
# The whole test suite:
# - the Rust crates: unit, integration and simulator tests, and the C programs compiled with
#   the system compiler and run against the simulator (under valgrind and the sanitizers when
#   available; EXONA_REQUIRE_VALGRIND=1 / EXONA_REQUIRE_SANITIZERS=1 make them mandatory);
# - the Go binding (go test -race) and the Ruby binding (minitest), where those toolchains
#   exist; they say "skipped" where not;
# - the installed tree: make install into a temporary prefix, examples built through
#   pkg-config and CMake (when cmake exists), shared and static, then make uninstall;
# - a short coverage-guided fuzz run of every parser (nightly only; "skipped" without it).
# Ends with one summary line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# The bindings link the release library and start the simulator binary.
if command -v go >/dev/null 2>&1 || command -v ruby >/dev/null 2>&1; then
  cargo build --release --locked -p exona -p exona-sim || status=1
fi
export EXONA_SIM_BIN="$PWD/target/release/exona-sim"

if command -v go >/dev/null 2>&1; then
  echo "== Go binding: go test -race"
  (cd bindings/go && export GOCACHE="${GOCACHE:-$PWD/../../.gocache}" GOFLAGS=-mod=mod GOPROXY=off &&
     go vet ./... && go build ./... && go test -race -count=1 -v ./... 2>&1) | tee -a "$log" | grep -E '^(--- |ok|FAIL|PASS|#|vet)'
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
else
  echo "== Go binding: skipped (go is not installed)"
fi

if command -v ruby >/dev/null 2>&1 && ruby -e 'require "ffi"' 2>/dev/null; then
  echo "== Ruby binding: minitest"
  (cd bindings/ruby && ruby -Ilib test/test_exona.rb 2>&1) | tee -a "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
else
  echo "== Ruby binding: skipped (ruby or its ffi gem is not installed)"
fi

echo "== Installed tree: make install, pkg-config, CMake, make uninstall"
bash scripts/check-install.sh 2>&1 | tee -a "$log" | grep -E '^(--- |cmake not installed)'
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "== Fuzzing: every parser, ${EXONA_FUZZ_SECONDS:-10} s per target (scripts/fuzz.sh)"
bash scripts/fuzz.sh "${EXONA_FUZZ_SECONDS:-10}" 2>&1 | tee -a "$log" | grep -E '^fuzz'
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

summary=$(awk '
  /^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  /^--- PASS:/ { p++ }
  /^--- FAIL:/ { f++ }
  /^fuzz [a-z_]+: ok/ { p++ }
  /^fuzz [a-z_]+: FAILED/ { f++ }
  / runs, .* assertions, / { runs = $1; fails = $5 + $7; p += runs - fails; f += fails }
  END { printf "%d passed, %d failed", p, f }' "$log")
echo
echo "$summary"
exit "$status"
