#!/usr/bin/env bash
# Tests of the installed tree: `make install` into a temporary prefix, then build
# examples/c/scan.c through pkg-config and through CMake, shared and static, run each against
# the simulator, run the installed `exona` command, check the static-link flags against
# rustc's, and `make uninstall`.
# Prints "--- PASS: installed-tree/NAME" or "--- FAIL: installed-tree/NAME" per check.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=0
pass() { echo "--- PASS: installed-tree/$1"; }
fail() { echo "--- FAIL: installed-tree/$1: $2"; failed=1; }

prefix=$(mktemp -d)
work=$(mktemp -d)
sim_pid=
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
  rm -rf "$prefix" "$work"
}
trap cleanup EXIT

echo "make install: into a temporary prefix (the release build of target/release, made if missing)"
if make --no-print-directory install PREFIX="$prefix" >"$work/install.log" 2>&1; then
  pass install
else
  cat "$work/install.log"
  fail install "make install failed"
  exit 1
fi

soname=$(readelf -d "$prefix/lib/libexona.so.0.1.0" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[ "$soname" = "libexona.so.0" ] && pass soname || fail soname "SONAME is '$soname'"

# The static-link flags: what rustc reports, what the package files and the README say. Asked
# of the debug build (the same dependencies and features; the tests built them already), so
# that only the library itself is compiled again.
reported=$(cargo rustc --locked -p exona --lib \
  --crate-type staticlib -- --print native-static-libs 2>&1 | sed -n 's/.*native-static-libs: //p' | tail -n 1)
in_pc=$(sed -n 's/^Libs.private: //p' "$prefix/lib/pkgconfig/exona.pc")
if [ -n "$reported" ] && [ "$reported" = "$in_pc" ] && grep -qF -- "libexona.a $reported" README.md; then
  pass static-flags
else
  fail static-flags "rustc reports '$reported'; exona.pc has '$in_pc'; README must show 'libexona.a $reported'"
fi

# A simulator to run the programs against.
sim=target/release/exona-sim
[ -x "$sim" ] || cargo build --release --locked -p exona-sim >/dev/null 2>&1
"$sim" --scan-min 0.05 --scan-max 0.15 --retry-after 0.05 --exit-after 300 >"$work/sim.out" &
sim_pid=$!
for _ in $(seq 100); do [ -s "$work/sim.out" ] && break; sleep 0.05; done
export EXONA_BASE_URL=$(head -n 1 "$work/sim.out")
export EXONA_API_KEY=exo_test_installcheck000000000000000000000000
export EXONA_SCAN_DURATION_MS=50-150

runs() { # NAME EXE [LD_LIBRARY_PATH]
  if LD_LIBRARY_PATH="${3:-}" "$2" "Acme AI Ltd" https://acme.ai >"$work/$1.out" 2>&1 && grep -q "overall risk:" "$work/$1.out"; then
    pass "$1"
  else
    fail "$1" "$(cat "$work/$1.out")"
  fi
}

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# Exactly the README's line for an outside program.
if cc examples/c/scan.c $(pkg-config --cflags --libs exona) -o "$work/scan-pc"; then
  runs pkg-config-shared "$work/scan-pc" "$prefix/lib"
else
  fail pkg-config-shared "does not build"
fi
# The README's line for a prefix outside the loader's path: rpath from the .pc, no LD_LIBRARY_PATH.
if cc examples/c/scan.c $(pkg-config --cflags --libs exona) -Wl,-rpath,$(pkg-config --variable=rpath exona) \
    -o "$work/scan-pc-rpath"; then
  runs pkg-config-rpath "$work/scan-pc-rpath"
else
  fail pkg-config-rpath "does not build"
fi
if cc examples/c/scan.c $(pkg-config --cflags --libs exona-static) -o "$work/scan-pc-static"; then
  if ldd "$work/scan-pc-static" | grep -q libexona; then
    fail pkg-config-static "the static build still needs libexona.so"
  else
    runs pkg-config-static "$work/scan-pc-static"
  fi
else
  fail pkg-config-static "does not build"
fi

if command -v cmake >/dev/null 2>&1; then
  if cmake -S tests/cmake -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" >"$work/cmake.log" 2>&1 &&
     cmake --build "$work/cmake" >>"$work/cmake.log" 2>&1; then
    runs cmake-shared "$work/cmake/scan_shared"
    runs cmake-static "$work/cmake/scan_static"
  else
    fail cmake "$(tail -n 20 "$work/cmake.log")"
  fi
else
  echo "--- SKIP: installed-tree/cmake (cmake is not installed)"
fi

# The Go binding against the installed prefix (build tag exona_installed: pkg-config), with no
# checkout path in the binary's RUNPATH.
if command -v go >/dev/null 2>&1; then
  if (cd bindings/go && GOFLAGS=-mod=mod GOPROXY=off CGO_LDFLAGS="-Wl,-rpath,$(pkg-config --variable=rpath exona)" \
        go build -tags exona_installed -o "$work/go-scan" ./example) >"$work/go.log" 2>&1; then
    if readelf -d "$work/go-scan" | grep -E 'R(UN)?PATH' | grep -q "$PWD"; then
      fail go-installed "the binary's RUNPATH names the checkout: $(readelf -d "$work/go-scan" | grep -E 'R(UN)?PATH')"
    elif "$work/go-scan" "Acme AI Ltd" https://acme.ai >"$work/go-scan.out" 2>&1; then
      pass go-installed
    else
      fail go-installed "$(cat "$work/go-scan.out")"
    fi
  else
    fail go-installed "$(tail -n 20 "$work/go.log")"
  fi
else
  echo "--- SKIP: installed-tree/go-installed (go is not installed)"
fi

# The installed command, with no state left in the user's home.
if EXONA_STATE_DIR=off "$prefix/bin/exona" scan "Acme AI Ltd" https://acme.ai >"$work/cli.out" 2>&1 &&
   grep -q "overall risk:" "$work/cli.out"; then
  pass exona-command
else
  fail exona-command "$(cat "$work/cli.out")"
fi

# The Ruby binding from a copy outside the checkout: it must find the installed library
# through pkg-config alone (no EXONA_LIB, no repository build to fall back on).
if command -v ruby >/dev/null 2>&1 && ruby -e 'require "ffi"' 2>/dev/null; then
  mkdir -p "$work/ruby/lib" && cp bindings/ruby/lib/exona.rb "$work/ruby/lib/"
  if out=$(cd "$work/ruby" && env -u EXONA_LIB ruby -Ilib -e 'require "exona"; puts Exona::C.ffi_libraries.map(&:name).first' 2>&1) &&
     echo "$out" | grep -q "^$prefix/lib/"; then
    pass ruby-installed
  else
    fail ruby-installed "the gem did not load the installed library: $out"
  fi
  if out=$(cd "$work/ruby" && env -u EXONA_LIB PKG_CONFIG_PATH=/nonexistent LD_LIBRARY_PATH= \
           ruby -Ilib -e 'require "exona"' 2>&1); then
    fail ruby-not-found "loaded a library where none should be found: $out"
  elif echo "$out" | grep -q "EXONA_LIB=/path/to/libexona.so"; then
    pass ruby-not-found
  else
    fail ruby-not-found "the LoadError does not say how to point the gem at the library: $out"
  fi
else
  echo "--- SKIP: installed-tree/ruby-installed (ruby or its ffi gem is not installed)"
fi

# The ABI held (scripts/abi.sh): the installed library against the committed baseline; then
# the check's own test: a field's type changed in a copy of the header, and a function the
# baseline has and the library lacks, must each fail it while the SONAME's major is unchanged.
installed_lib="$prefix/lib/libexona.so.0.1.0"
bash scripts/abi.sh check "$installed_lib" || failed=1
if command -v abidw >/dev/null 2>&1; then
  mkdir -p "$work/abi-broken/include" "$work/abi-removed"
  sed 's/^  uint32_t budget_left;/  uint64_t budget_left;/' include/exona.h >"$work/abi-broken/include/exona.h"
  if EXONA_ABI_INCLUDE="$work/abi-broken/include" bash scripts/abi.sh check "$installed_lib" >"$work/abi-broken.out" 2>&1; then
    fail abi-check-sees-a-changed-field "a struct field's type changed and the check passed"
  elif grep -q "FAIL: abi/exona-h.abi: an incompatible change" "$work/abi-broken.out"; then
    pass abi-check-sees-a-changed-field
  else
    fail abi-check-sees-a-changed-field "$(cat "$work/abi-broken.out")"
  fi
  cp abi/* "$work/abi-removed/"
  sed -i "s|<elf-function-symbols>|<elf-function-symbols>\n    <elf-symbol name='exona_gone' type='func-type' binding='global-binding' visibility='default-visibility' is-defined='yes'/>|" \
    "$work/abi-removed/libexona.abi"
  if EXONA_ABI_DIR="$work/abi-removed" bash scripts/abi.sh check "$installed_lib" >"$work/abi-removed.out" 2>&1; then
    fail abi-check-sees-a-removed-function "a function of the baseline is gone and the check passed"
  elif grep -q "FAIL: abi/libexona.abi: an incompatible change" "$work/abi-removed.out"; then
    pass abi-check-sees-a-removed-function
  else
    fail abi-check-sees-a-removed-function "$(cat "$work/abi-removed.out")"
  fi
fi

make --no-print-directory uninstall PREFIX="$prefix" >/dev/null 2>&1
left=$(find "$prefix" -type f -o -type l | wc -l)
[ "$left" -eq 0 ] && pass uninstall || fail uninstall "$left file(s) left: $(find "$prefix" -type f -o -type l)"
dirs_left=$(find "$prefix" -mindepth 1 -type d | wc -l)
[ "$dirs_left" -eq 0 ] && pass uninstall-leaves-no-directory || fail uninstall-leaves-no-directory "$(find "$prefix" -mindepth 1 -type d)"
exit "$failed"
