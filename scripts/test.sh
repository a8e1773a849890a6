#!/usr/bin/env bash
# The whole test suite, or some of its parts:
#
#   bash scripts/test.sh [PART...]     PART: rust c go ruby python install dist fuzz (default:
#                                      all but c, which is a part of rust)
#
# - rust: the Rust crates (and the crash harness, cli/tests/crash.rs, all built once with the
#   test-only feature crash-points, inert unless EXONA_CRASH_AT is set): unit, integration and simulator tests, and the C programs compiled with
#   the system compiler and run against the simulator (under valgrind and the sanitizers when
#   available; EXONA_REQUIRE_TOOLS=1 makes every tool mandatory, as in CI); c: only the C
#   programs (cargo test --test c_examples);
# - go, ruby: the Go binding (go vet, go test -race) and the Ruby binding (minitest), where those
#   toolchains exist; they say "skipped" where not;
# - python: `pip install ./bindings/python` (a wheel carrying libexona, built by maturin) into a
#   virtual environment in a temporary directory, then pytest on bindings/python/tests;
# - install: the installed tree: make install into a temporary prefix, examples built through
#   pkg-config and CMake (when cmake exists), shared and static, the ABI against abi/
#   (scripts/abi.sh), then make uninstall;
# - dist: make dist (target/dist), each artifact installed into a clean place and used with
#   no Rust toolchain on PATH (scripts/check-dist.sh);
# - fuzz: a short coverage-guided fuzz run of every parser (nightly only; "skipped" without it;
#   EXONA_FUZZ_SECONDS per target, default 10).
# Ends with the failures by name and one line "N passed, N failed, N skipped"
# (scripts/summary.sh), which agrees with the exit status: a step that fails without a failing
# test of its own (a build, go vet, a crashed test binary) counts as one failure; a step whose
# test failed counts only that test.
set -uo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
export EXONA_SKIP_LOG
EXONA_SKIP_LOG=$(mktemp)
trap 'rm -f "$log" "$EXONA_SKIP_LOG"' EXIT

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(rust go ruby python install dist fuzz)
for part in "${parts[@]}"; do
  case "$part" in
    rust | c | go | ruby | python | install | dist | fuzz) ;;
    *) echo "scripts/test.sh: unknown part '$part' (rust c go ruby python install dist fuzz)" >&2; exit 2 ;;
  esac
done
wants() {
  local p
  for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done
  return 1
}

# Runs one step; its output goes to the log (and, filtered by $2 when given, to the screen).
step() {
  local name="$1" filter="$2" step_started=$SECONDS
  shift 2
  echo "== step: $name" >>"$log"
  if [ -n "$filter" ]; then
    "$@" 2>&1 | tee -a "$log" | grep -E "$filter"
  else
    "$@" 2>&1 | tee -a "$log"
  fi
  local rc="${PIPESTATUS[0]}"
  if [ "$rc" -ne 0 ]; then
    echo "step failed: $name (exit $rc)" | tee -a "$log"
  fi
  echo "   ($name: $((SECONDS - step_started)) s)"
}

# The bindings link the release library and start the simulator binary.
needs_release=0
if { wants go && command -v go >/dev/null 2>&1; } || { wants ruby && command -v ruby >/dev/null 2>&1; } ||
  wants python; then
  needs_release=1
fi
release_build() { cargo build --release --locked -p exona -p exona-sim; }
release_pid=""

if wants rust; then
  echo "== Rust: cargo test --workspace (unit, integration, simulator, the C programs under valgrind and the" \
    "sanitizers, and the crash harness: exona batch processes killed at named crash points and at random)"
  # One build for all of it: the crash points are compiled in (feature crash-points), inert
  # unless EXONA_CRASH_AT names one, which only the crash harness (cli/tests/crash.rs) sets.
  step "cargo test: build" "" cargo test --workspace --locked --no-run --features exona-cli/crash-points
  # The release build the bindings need runs beside the tests (its own directory and lock,
  # target/release): they mostly wait on the simulator's scans and on processes they paused,
  # and it took 2.5 of the suite's 17 minutes on its own.
  if [ "$needs_release" = 1 ]; then
    release_log=$(mktemp)
    release_build >"$release_log" 2>&1 &
    release_pid=$!
  fi
  # Four test threads per binary on two cores: most tests wait on the simulator's scans or on
  # processes they paused, not on the CPU (binaries run one after another).
  step "cargo test" "" cargo test --workspace --locked --no-fail-fast --features exona-cli/crash-points \
    -- --test-threads=4
elif wants c; then
  echo "== C programs: cargo test --test c_examples"
  step "C programs" "" cargo test --locked --test c_examples
fi

if [ -n "$release_pid" ]; then
  # Waited for here: `step` runs its command in a pipeline's subshell, which cannot wait for
  # this shell's job.
  wait "$release_pid"
  release_rc=$?
  release_waited() {
    cat "$release_log"
    rm -f "$release_log"
    return "$release_rc"
  }
  step "release build for the bindings (made beside the tests)" "" release_waited
elif [ "$needs_release" = 1 ]; then
  step "release build for the bindings" "" release_build
fi
export EXONA_SIM_BIN="$PWD/target/release/exona-sim"

go_binding() {
  cd bindings/go &&
    export GOCACHE="${GOCACHE:-$PWD/../../target/gocache}" GOFLAGS=-mod=mod GOPROXY=off &&
    go vet ./... && go build ./... && go test -race -count=1 -v ./...
}
if ! wants go; then
  :
elif command -v go >/dev/null 2>&1; then
  echo "== Go binding: go vet, go test -race"
  step "Go binding" '^(--- |ok|FAIL|PASS|#|vet)' go_binding
else
  echo "== Go binding: skipped (go is not installed)"
  echo "--- SKIP: go binding (go is not installed)" >>"$log"
fi

if ! wants ruby; then
  :
elif command -v ruby >/dev/null 2>&1 && ruby -e 'require "ffi"' 2>/dev/null; then
  echo "== Ruby binding: minitest"
  step "Ruby binding" "" bash -c 'cd bindings/ruby && ruby -Ilib test/test_exona.rb'
else
  echo "== Ruby binding: skipped (ruby or its ffi gem is not installed)"
  echo "--- SKIP: ruby binding (ruby or its ffi gem is not installed)" >>"$log"
fi

# pip builds the wheel with maturin (the release library, reusing target/) into target/wheels,
# where `make dist` finds it (one build of it per run); the environment
# lives outside the repository, and neither pytest nor Python writes a cache into it.
python_binding() {
  local venv
  venv=$(mktemp -d) &&
    python3 -m venv "$venv" &&
    "$venv/bin/pip" wheel -q --disable-pip-version-check --no-deps -w target/wheels ./bindings/python &&
    "$venv/bin/pip" install -q --disable-pip-version-check "$(ls target/wheels/exona-*.whl | head -n 1)[test]" &&
    PYTHONDONTWRITEBYTECODE=1 EXONA_PY_EXPECT_BUNDLED=1 \
      "$venv/bin/pytest" -p no:cacheprovider -v bindings/python/tests
  local rc=$?
  rm -rf "$venv"
  return $rc
}
if ! wants python; then
  :
elif command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "== Python binding: pip install ./bindings/python, pytest"
  step "Python binding" '(PASSED|FAILED|SKIPPED|ERROR|passed|failed|^E )' python_binding
elif [ "${EXONA_REQUIRE_TOOLS:-0}" = 1 ]; then
  echo "== Python binding: python3 with venv is required (EXONA_REQUIRE_TOOLS=1)"
  echo "step failed: Python binding (python3 -m venv is not available)" >>"$log"
else
  echo "== Python binding: skipped (python3 with venv is not installed)"
  echo "--- SKIP: python binding (python3 with venv is not installed)" >>"$log"
fi

if wants install; then
  echo "== Installed tree: make install, pkg-config, CMake, make uninstall"
  step "installed tree" '^(--- |cmake not installed|make install:)' bash scripts/check-install.sh
fi

if wants dist; then
  echo "== Packages: make dist, each installed into a clean place and used without Rust"
  step "packages" '^(--- |make dist)' bash scripts/check-dist.sh
fi

if wants fuzz; then
  echo "== Fuzzing: every parser, ${EXONA_FUZZ_SECONDS:-10} s per target (scripts/fuzz.sh)"
  step "fuzzing" '^fuzz' bash scripts/fuzz.sh "${EXONA_FUZZ_SECONDS:-10}"
fi

# The figures in BENCHMARKS.md name the commit they measured: when the waiting engine
# (src/engine) changed since, say so (a note for whoever quotes them, not a failure).
bench_commit=$(sed -n 's/^Figures of commit `\([0-9a-f]*\)`.*/\1/p' BENCHMARKS.md | head -n 1)
if [ -n "$bench_commit" ] && git rev-parse -q --verify "$bench_commit^{commit}" >/dev/null 2>&1 &&
  ! git diff --quiet "$bench_commit" HEAD -- src/engine; then
  echo "note: the request counts in BENCHMARKS.md were measured at $bench_commit; the waiting engine" \
    "changed since (re-run exona-bench before quoting them)"
fi

echo
echo "the suite took $((SECONDS / 60)) min $((SECONDS % 60)) s"
grep -E '^skip-(test|check) ' "$EXONA_SKIP_LOG" || true
bash scripts/summary.sh "$log" "$EXONA_SKIP_LOG"
