#!/usr/bin/env bash
# The ABI held (issue 36): the built library against the committed baseline in abi/, with
# libabigail (Debian's abigail-tools).
#
#   bash scripts/abi.sh check LIB      compare LIB (libexona.so.MAJOR...) with abi/
#   bash scripts/abi.sh baseline LIB   write abi/ from LIB (a release whose major moved, or the first)
#
# Two corpora, because a Rust library's own debug info describes Rust, not the C surface:
# - abi/libexona.abi: the library's exported symbols (abidw on LIB): a function removed is an
#   incompatible change, one added is not;
# - abi/exona-h.abi: the C surface's types, from a probe compiled with -g against
#   include/exona.h: one pointer variable per exported function, typed by its prototype, so
#   that abidiff sees every signature, and through them every public struct, enum and
#   callback type (a parameter added, a field moved, an enum value changed).
# An incompatible change fails unless the SONAME's major moved from the baseline's.
# Prints "--- PASS: abi/NAME" or "--- FAIL: abi/NAME: why". EXONA_ABI_DIR and
# EXONA_ABI_INCLUDE put the baseline and the header elsewhere (the check's own test, in
# scripts/check-install.sh, breaks copies of them on purpose).
set -uo pipefail
cd "$(dirname "$0")/.."
abi_dir="${EXONA_ABI_DIR:-abi}"
include="${EXONA_ABI_INCLUDE:-include}"

mode="${1:-}" lib="${2:-}"
if [ -z "$mode" ] || [ -z "$lib" ] || [ ! -f "$lib" ]; then
  echo "usage: bash scripts/abi.sh check|baseline LIB" >&2
  exit 2
fi
if ! command -v abidw >/dev/null 2>&1; then
  if [ "${EXONA_REQUIRE_TOOLS:-0}" = 1 ]; then
    echo "--- FAIL: abi/tools: abidw is not installed (apt-get install abigail-tools)"
    exit 1
  fi
  echo "skip-check abi: abidw is not installed (apt-get install abigail-tools)"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The probe: every exported exona_* function as a typed pointer, from the library's symbols.
probe() {
  {
    echo '#include "exona.h"'
    nm -D --defined-only "$lib" | awk '$3 ~ /^exona_/ { print $3 }' | sort |
      while read -r name; do echo "__typeof__(&$name) exona_abi_probe_$name = 0;"; done
  } >"$work/probe.c"
  cc -g -O0 -shared -fPIC -I"$include" "$work/probe.c" -o "$work/libexona-abi-probe.so"
}

corpora() { # DIR
  abidw --no-corpus-path --no-show-locs "$lib" >"$1/libexona.abi" &&
    abidw --no-corpus-path --no-show-locs --type-id-style hash "$work/libexona-abi-probe.so" >"$1/exona-h.abi"
}

soname_major() {
  readelf -d "$1" 2>/dev/null | sed -n 's/.*Library soname: \[libexona\.so\.\([0-9]*\)\].*/\1/p'
}

if ! probe; then
  echo "--- FAIL: abi/probe: the probe did not compile against $include/exona.h"
  exit 1
fi

if [ "$mode" = baseline ]; then
  major=$(soname_major "$lib")
  if [ -z "$major" ]; then
    echo "scripts/abi.sh: $lib has no SONAME libexona.so.N (build it as make install does)" >&2
    exit 2
  fi
  mkdir -p "$abi_dir" && corpora "$abi_dir" && echo "$major" >"$abi_dir/SONAME_MAJOR" &&
    echo "wrote $abi_dir/ (SONAME major $major)"
  exit $?
fi

mkdir -p "$work/now"
corpora "$work/now" || { echo "--- FAIL: abi/abidw: abidw failed"; exit 1; }
base_major=$(cat "$abi_dir/SONAME_MAJOR" 2>/dev/null)
now_major=$(soname_major "$lib")
failed=0
for corpus in libexona.abi exona-h.abi; do
  abidiff --no-show-locs "$abi_dir/$corpus" "$work/now/$corpus" >"$work/$corpus.diff" 2>&1
  rc=$?
  # abidiff's status: bit 1 an error, bit 2 a usage error, bit 4 a change, bit 8 a change it
  # knows to be incompatible (a symbol removed). A type changed under a function or a
  # variable is only "a change" to it, yet breaks callers: anything removed or changed counts
  # as incompatible here; only additions do not.
  incompatible=0
  [ $((rc & 8)) -ne 0 ] && incompatible=1
  grep -qE "summary: .*[1-9][0-9]* (Removed|Changed)" "$work/$corpus.diff" && incompatible=1
  if [ $((rc & 3)) -ne 0 ]; then
    echo "--- FAIL: abi/$corpus: abidiff failed (status $rc): $(head -n 5 "$work/$corpus.diff")"
    failed=1
  elif [ "$incompatible" = 1 ] && [ "$now_major" = "$base_major" ]; then
    echo "--- FAIL: abi/$corpus: an incompatible change with the SONAME's major still $now_major:"
    sed 's/^/    /' "$work/$corpus.diff"
    failed=1
  else
    [ $((rc & 4)) -ne 0 ] && echo "abi/$corpus: compatible changes (additions):" &&
      grep -E "^(Functions|Variables) changes summary|Added" "$work/$corpus.diff" | head -n 5
    echo "--- PASS: abi/$corpus"
  fi
done
exit $failed
