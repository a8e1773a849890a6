#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that reads what the network or a user hands over
# (fuzz/fuzz_targets): response decoding, Retry-After and reset parsing, JSON pointers through
# the C accessors, website validation, and the C examples' CSV line reader.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 20)
#
# Needs the nightly toolchain (cargo-fuzz is installed when missing). Without nightly it says
# "fuzz: skipped (no nightly toolchain)" and exits 0. Builds, corpus and findings go under
# target/fuzz/ (never into the repository).
# Ends with one line "N passed, N failed" (a target that found a crash is a failure).
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-20}"

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: skipped (no nightly toolchain)"
  exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (cargo install, a minute or two)"
  cargo install cargo-fuzz --locked --quiet 2>&1 | sed -u 's/^/fuzz install: /'
  if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    echo "fuzz: cannot install cargo-fuzz"
    echo "0 passed, 1 failed"
    exit 1
  fi
fi
# clang instruments the C reader for coverage too; gcc still runs it under AddressSanitizer.
if command -v clang >/dev/null 2>&1; then export CC=clang; fi

# The corpus it grows and any crash it finds go under the workspace's target/, never into the
# repository. The build (the library and its dependencies instrumented on nightly: 6 minutes
# cold on two cores) goes to a cache of the machine's, so that it is made once per machine
# and a fresh clone's suite reuses it (cargo rebuilds what changed):
# EXONA_FUZZ_BUILD_DIR, default ${XDG_CACHE_HOME:-~/.cache}/libexona/fuzz-build.
out="$PWD/../target/fuzz"
build="${EXONA_FUZZ_BUILD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/libexona/fuzz-build}"
mkdir -p "$out" "$build"
# The first build compiles the library with sanitizers on nightly (a few minutes on two cores):
# its progress is shown, one line per crate.
echo "fuzz: building the targets in $build (cargo +nightly fuzz build; 6 minutes on a cold cache, seconds after)"
fuzz_started=$SECONDS
cargo +nightly fuzz build --target-dir "$build" 2>&1 | sed -u -n 's/^ *\(Compiling\|Finished\|error\)/fuzz build: \1/p'
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
  echo "fuzz: the targets do not build"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "fuzz: built in $((SECONDS - fuzz_started)) s"
# The targets run as built: `cargo fuzz run` compiled the library again for each one (about
# 30 s each), though the build above had made them all.
bin_dir="$build/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"
# One target per core at a time (each keeps its core for its whole time), then the results in
# the targets' order.
jobs_at_once=$(nproc 2>/dev/null || echo 2)
targets=$(cargo +nightly fuzz list)
fuzz_one() {
  local target=$1 corpus="$out/corpus/$1" artifacts="$out/artifacts/$1/"
  mkdir -p "$corpus" "$artifacts"
  "$bin_dir/$target" "$corpus" -max_total_time="$secs" -rss_limit_mb=2048 -artifact_prefix="$artifacts" \
    >"$out/$target.log" 2>&1
  echo $? >"$out/$target.rc"
}
for target in $targets; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_at_once" ]; do
    wait -n
  done
  fuzz_one "$target" &
done
wait
passed=0 failed=0
for target in $targets; do
  log="$out/$target.log" artifacts="$out/artifacts/$target/"
  if [ "$(cat "$out/$target.rc" 2>/dev/null)" = 0 ]; then
    runs=$(grep -oE 'Done [0-9]+ runs' "$log" | tail -1)
    echo "fuzz $target: ok (${runs:-no run count} in ${secs} s)"
    passed=$((passed + 1))
  else
    echo "fuzz $target: FAILED (see $log and $artifacts)"
    tail -30 "$log"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
