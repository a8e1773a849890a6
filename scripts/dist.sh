#!/usr/bin/env bash
# make dist: what users install, with no Rust toolchain, all under target/dist (issue 36):
#
#   libexona-VERSION.tar.gz        the source of the commit (with a COMMIT file naming it)
#   libexona0_VERSION-1_ARCH.deb   the shared library (libexona.so.MAJOR)
#   libexona-dev_VERSION-1_ARCH.deb  the headers (exona.h, exona.hpp), libexona.so, libexona.a,
#                                  pkg-config files and the CMake package
#   exona_VERSION-1_ARCH.deb       the `exona` command
#   exona-VERSION-*.whl            the Python package, carrying libexona (maturin)
#   exona-VERSION-PLATFORM.gem     the Ruby gem, carrying libexona
#   SHA256SUMS
#
# The Debian packages are built with dpkg-deb from `make install DESTDIR=...` (the same files
# `make install` puts in a prefix, so one layout is tested, not two). Nothing is written into
# the checkout outside target/.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR=${VERSION%%.*}
DEB_VERSION="$VERSION-1"
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
MULTIARCH=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
out="$PWD/target/dist"
work="$PWD/target/dist-work"
rm -rf "$out" "$work"
mkdir -p "$out" "$work"
started=$SECONDS
say() { echo "make dist: $* ($((SECONDS - started)) s)"; }

# 1. The source tarball of HEAD, with the commit named inside (build.rs reads COMMIT).
commit=$(git rev-parse --short=12 HEAD)
mkdir -p "$work/src/libexona-$VERSION"
echo "$commit" >"$work/src/libexona-$VERSION/COMMIT"
git archive --format=tar --prefix="libexona-$VERSION/" HEAD >"$work/src.tar"
tar --append -f "$work/src.tar" -C "$work/src" "libexona-$VERSION/COMMIT"
gzip -n -9 <"$work/src.tar" >"$out/libexona-$VERSION.tar.gz"
if ! git diff --quiet HEAD -- 2>/dev/null; then
  echo "make dist: note: the tarball is commit $commit; the work tree has uncommitted changes it lacks"
fi
say "source tarball"

# 2. Debian packages, from the installed tree.
stage="$work/stage"
say "building the library and the command (make install into a staging root; cargo says what it compiles)"
make --no-print-directory install DESTDIR="$stage" PREFIX=/usr LIBDIR="/usr/lib/$MULTIARCH" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; exit 1; }
lib="usr/lib/$MULTIARCH"

# Depends: the packages that hold what a binary links (objdump's NEEDED, dpkg -S).
depends_of() {
  objdump -p "$1" | awk '/NEEDED/ { print $2 }' | while read -r so; do
    dpkg -S "*/$so" 2>/dev/null | head -n 1 | cut -d: -f1
  done | sort -u | paste -sd, - | sed 's/,/, /g'
}

package() { # NAME DESCRIPTION DEPENDS SECTION
  local name="$1" root="$work/pkg/$1"
  mkdir -p "$root/DEBIAN" "$root/usr/share/doc/$name"
  printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: libexona\nFiles: *\nCopyright: libexona developers\nLicense: MIT or Apache-2.0\n' \
    >"$root/usr/share/doc/$name/copyright"
  {
    echo "Package: $name"
    echo "Version: $DEB_VERSION"
    echo "Architecture: $ARCH"
    echo "Maintainer: libexona developers <libexona@exonalab.com>"
    [ -n "$3" ] && echo "Depends: $3"
    echo "Section: $4"
    echo "Priority: optional"
    echo "Homepage: https://platform.exonalab.com"
    echo "Installed-Size: $(du -sk "$root" | cut -f1)"
    echo "Description: $2"
  } >"$root/DEBIAN/control"
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out/${name}_${DEB_VERSION}_${ARCH}.deb" >/dev/null
}

mkdir -p "$work/pkg/libexona$MAJOR/$lib" "$work/pkg/libexona-dev/$lib" "$work/pkg/libexona-dev/usr/include" \
  "$work/pkg/exona/usr/bin"
cp -a "$stage/$lib/libexona.so.$VERSION" "$stage/$lib/libexona.so.$MAJOR" "$work/pkg/libexona$MAJOR/$lib/"
echo "activate-noawait ldconfig" >"$work/triggers"
cp -a "$stage/$lib/libexona.so" "$stage/$lib/libexona.a" "$stage/$lib/pkgconfig" "$stage/$lib/cmake" \
  "$work/pkg/libexona-dev/$lib/"
cp -a "$stage/usr/include/exona.h" "$stage/usr/include/exona.hpp" "$work/pkg/libexona-dev/usr/include/"
cp -a "$stage/usr/bin/exona" "$work/pkg/exona/usr/bin/"

mkdir -p "$work/pkg/libexona$MAJOR/DEBIAN"
cp "$work/triggers" "$work/pkg/libexona$MAJOR/DEBIAN/triggers"
echo "libexona $MAJOR libexona$MAJOR (>= $VERSION)" >"$work/pkg/libexona$MAJOR/DEBIAN/shlibs"
package "libexona$MAJOR" "C client of the Exona AI-risk scanning API (shared library)
 One call scans a company and waits out rate limits, flaky networks and crashes;
 a result C reads without a JSON parser." "$(depends_of "$stage/$lib/libexona.so.$VERSION")" libs
package libexona-dev "C client of the Exona AI-risk scanning API (development files)
 The header exona.h (and the C++ wrapper exona.hpp), the static library, pkg-config
 files and a CMake package (find_package(exona))." "libexona$MAJOR (= $DEB_VERSION)" libdevel
package exona "the exona command: scan companies with the Exona AI-risk API
 Scan a company, resume a scan by id, or screen a portfolio (CSV or JSON Lines)
 that survives crashes." "$(depends_of "$stage/usr/bin/exona")" utils
say "Debian packages"

# 3. The Python wheel, carrying libexona (maturin, fetched by pip from PyPI). The suite's
# Python step builds it into target/wheels from this same tree; a wheel there newer than
# every source file is used as it is.
say "the Python wheel (pip wheel ./bindings/python: maturin builds libexona into it)"
wheel=$(ls -t target/wheels/exona-"$VERSION"-*.whl 2>/dev/null | head -n 1)
newer=$(find src bindings/python Cargo.toml Cargo.lock build.rs include -newer "${wheel:-/nonexistent}" -type f 2>/dev/null | head -n 1)
if [ -n "$wheel" ] && [ -z "$newer" ]; then
  cp "$wheel" "$out/"
else
  python3 -m pip wheel -q --disable-pip-version-check --no-deps -w "$out" ./bindings/python >"$work/wheel.log" 2>&1 ||
    { cat "$work/wheel.log"; exit 1; }
fi
say "Python wheel"

# 4. The Ruby gem, carrying libexona (the SONAME build), for this platform.
gemdir="$work/gem"
mkdir -p "$gemdir/lib/exona"
cp -a bindings/ruby/lib/exona.rb "$gemdir/lib/"
cp -a bindings/ruby/README.md bindings/ruby/exona.gemspec "$gemdir/"
cp "$stage/$lib/libexona.so.$VERSION" "$gemdir/lib/exona/libexona.so"
(cd "$gemdir" && gem build -q exona.gemspec -o "$out/exona-$VERSION-$(ruby -e 'print Gem::Platform.local.to_s').gem") \
  >"$work/gem.log" 2>&1 || { cat "$work/gem.log"; exit 1; }
say "Ruby gem"

(cd "$out" && sha256sum -- * >SHA256SUMS)
rm -rf "$work"
say "done"
ls -l "$out"
