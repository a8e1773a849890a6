#!/usr/bin/env bash
# Tests of what `make dist` ships (issue 36), each installed into a clean place and used with
# no Rust toolchain on PATH:
# - the .deb files unpacked into a private root: a C program built through pkg-config
#   (PKG_CONFIG_SYSROOT_DIR) and through CMake (find_package(exona)), run against the
#   simulator; the packaged `exona` command run;
# - the wheel in a fresh virtual environment: a scan from Python;
# - the gem in a fresh GEM_HOME: a scan from Ruby, with no PKG_CONFIG_PATH or LD_LIBRARY_PATH;
# - SHA256SUMS, and nothing written into the checkout outside target/.
# Prints "--- PASS: dist/NAME" or "--- FAIL: dist/NAME: why" per check.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=0
pass() { echo "--- PASS: dist/$1"; }
fail() { echo "--- FAIL: dist/$1: $2"; failed=1; }

work=$(mktemp -d)
sim_pid=
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# What the checkout holds besides target/, before and after (ignored files included: a stray
# .gem or build directory is what this looks for).
tree_state() { git status --porcelain --ignored | grep -v '^!! target/$' | sort; }
tree_state >"$work/before"

echo "make dist: into target/dist (a release build of the library, the command and the wheel:" \
  "minutes the first time)"
start=$SECONDS
if bash scripts/dist.sh >"$work/dist.log" 2>&1; then
  pass make-dist
  echo "make dist took $((SECONDS - start)) s"
else
  cat "$work/dist.log"
  fail make-dist "scripts/dist.sh failed"
  exit 1
fi
tree_state >"$work/after"
if diff "$work/before" "$work/after" >"$work/tree.diff"; then
  pass nothing-else-in-the-checkout
else
  fail nothing-else-in-the-checkout "$(cat "$work/tree.diff")"
fi

dist=target/dist
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
for f in "libexona-$VERSION.tar.gz" "libexona0_$VERSION-1_"*.deb "libexona-dev_$VERSION-1_"*.deb \
  "exona_$VERSION-1_"*.deb "exona-$VERSION-"*.whl "exona-$VERSION-"*.gem SHA256SUMS; do
  # shellcheck disable=SC2086
  if ls $dist/$f >/dev/null 2>&1; then pass "artifact/$f"; else fail "artifact/$f" "missing: $(ls $dist)"; fi
done
(cd "$dist" && sha256sum --quiet -c SHA256SUMS) >"$work/sums" 2>&1 && pass sha256sums || fail sha256sums "$(cat "$work/sums")"
tar -tzf "$dist/libexona-$VERSION.tar.gz" | grep -qx "libexona-$VERSION/COMMIT" &&
  pass tarball-names-its-commit || fail tarball-names-its-commit "no COMMIT in the tarball"

# A simulator to scan against (the repository's: it is the test's, not the user's).
sim=target/release/exona-sim
[ -x "$sim" ] || cargo build --release --locked -p exona-sim >/dev/null 2>&1
"$sim" --scan-min 0.05 --scan-max 0.15 --retry-after 0.05 --exit-after 300 >"$work/sim.out" &
sim_pid=$!
for _ in $(seq 100); do [ -s "$work/sim.out" ] && break; sleep 0.05; done
base_url=$(head -n 1 "$work/sim.out")
# What a user without Rust has: no cargo on PATH, no variable pointing at the checkout.
clean_env=(env -i HOME="$work/home" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8
  EXONA_API_KEY=exo_test_distcheck000000000000000000000000000 EXONA_BASE_URL="$base_url"
  EXONA_SCAN_DURATION_MS=50-150)
mkdir -p "$work/home"
if "${clean_env[@]}" bash -c 'command -v cargo rustc' >/dev/null 2>&1; then
  fail no-rust-on-path "cargo is on the clean PATH"
fi

# The .deb files in a private root.
root="$work/root"
mkdir -p "$root"
for deb in "$dist"/*.deb; do dpkg-deb -x "$deb" "$root"; done
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
libdir="$root/usr/lib/$multiarch"
[ -L "$libdir/libexona.so.0" ] && pass deb/soname-link || fail deb/soname-link "no libexona.so.0 in libexona0"
pc=(env PKG_CONFIG_PATH="$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_LIBDIR=)
if cc examples/c/scan.c $("${pc[@]}" pkg-config --cflags --libs exona) -o "$work/scan-deb" 2>"$work/cc.log"; then
  if "${clean_env[@]}" LD_LIBRARY_PATH="$libdir" "$work/scan-deb" "Acme AI Ltd" https://acme.ai >"$work/deb.out" 2>&1 &&
    grep -q "overall risk:" "$work/deb.out"; then
    pass deb/c-via-pkg-config
  else
    fail deb/c-via-pkg-config "$(cat "$work/deb.out")"
  fi
else
  fail deb/c-via-pkg-config "does not build: $(cat "$work/cc.log")"
fi
if command -v cmake >/dev/null 2>&1; then
  if cmake -S tests/cmake -B "$work/cmake" -DCMAKE_PREFIX_PATH="$root/usr" >"$work/cmake.log" 2>&1 &&
    cmake --build "$work/cmake" >>"$work/cmake.log" 2>&1 &&
    "${clean_env[@]}" LD_LIBRARY_PATH="$libdir" "$work/cmake/scan_shared" "Acme AI Ltd" https://acme.ai >"$work/cm.out" 2>&1 &&
    grep -q "overall risk:" "$work/cm.out"; then
    pass deb/c-via-cmake
  else
    fail deb/c-via-cmake "$(tail -n 20 "$work/cmake.log") $(cat "$work/cm.out" 2>/dev/null)"
  fi
else
  echo "--- SKIP: dist/deb/c-via-cmake (cmake is not installed)"
fi
if "${clean_env[@]}" "$root/usr/bin/exona" scan "Acme AI Ltd" https://acme.ai >"$work/cli.out" 2>&1; then
  pass deb/exona-command
else
  fail deb/exona-command "$(cat "$work/cli.out")"
fi

# The wheel in a fresh virtual environment (cffi comes from PyPI, as for any user).
venv="$work/venv"
if python3 -m venv "$venv" >/dev/null 2>&1 &&
  "${clean_env[@]}" "$venv/bin/pip" install -q --disable-pip-version-check "$dist"/exona-"$VERSION"-*.whl >"$work/pip.log" 2>&1; then
  if "${clean_env[@]}" "$venv/bin/python" -c '
import exona
with exona.ExonaClient() as c:
    r = c.scan_and_wait("Acme AI Ltd", "https://acme.ai")
    print(r.scan.status, r.overall_risk_level, exona.version(), exona.library)
' >"$work/py.out" 2>&1 && grep -q "^completed" "$work/py.out" && ! grep -q "$PWD" "$work/py.out"; then
    pass wheel/scan-in-a-fresh-venv
  else
    fail wheel/scan-in-a-fresh-venv "$(cat "$work/py.out")"
  fi
else
  fail wheel/scan-in-a-fresh-venv "pip install failed: $(cat "$work/pip.log")"
fi

# The gem in a fresh GEM_HOME (its ffi dependency: the system's, as ruby-ffi installs it).
if command -v gem >/dev/null 2>&1; then
  gemhome="$work/gems"
  if "${clean_env[@]}" GEM_HOME="$gemhome" gem install --local --conservative --no-document \
    "$dist"/exona-"$VERSION"-*.gem >"$work/gem.log" 2>&1; then
    if "${clean_env[@]}" GEM_HOME="$gemhome" ruby -e '
require "exona"
c = Exona::Client.new
s = c.scan_and_wait("Acme AI Ltd", "https://acme.ai")
puts s.status
c.close
' >"$work/rb.out" 2>&1 && grep -q "^completed" "$work/rb.out"; then
      pass gem/scan-in-a-fresh-gem-home
    else
      fail gem/scan-in-a-fresh-gem-home "$(cat "$work/rb.out")"
    fi
  else
    fail gem/scan-in-a-fresh-gem-home "gem install failed: $(cat "$work/gem.log")"
  fi
else
  echo "--- SKIP: dist/gem (ruby is not installed)"
fi
exit "$failed"
