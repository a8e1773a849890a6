#!/usr/bin/env bash
# make install / make uninstall: PREFIX (default /usr/local), LIBDIR (default PREFIX/lib),
# DESTDIR (staging root). Installs the shared library with its SONAME (libexona.so.MAJOR) and
# links, the static library, the headers, pkg-config files (exona, exona-static), a CMake
# package and the `exona` command (PREFIX/bin); uninstall removes exactly those files.
set -euo pipefail
cd "$(dirname "$0")/.."

action=${1:-install}
PREFIX=${PREFIX:-/usr/local}
LIBDIR=${LIBDIR:-$PREFIX/lib}
DESTDIR=${DESTDIR:-}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR=${VERSION%%.*}
MINOR=$(echo "$VERSION" | cut -d. -f2)
# What `rustc --print native-static-libs` reports for the static library (checked by
# scripts/check-install.sh).
STATIC_LIBS="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

files=(
  "$LIBDIR/libexona.so.$VERSION"
  "$LIBDIR/libexona.so.$MAJOR"
  "$LIBDIR/libexona.so"
  "$LIBDIR/libexona.a"
  "$PREFIX/include/exona.h"
  "$PREFIX/include/exona.hpp"
  "$LIBDIR/pkgconfig/exona.pc"
  "$LIBDIR/pkgconfig/exona-static.pc"
  "$LIBDIR/cmake/exona/exonaConfig.cmake"
  "$LIBDIR/cmake/exona/exonaConfigVersion.cmake"
  "$PREFIX/bin/exona"
)

if [ "$action" = uninstall ]; then
  for f in "${files[@]}"; do
    rm -f "$DESTDIR$f"
  done
  # The directories install made, when nothing else is in them (deepest first).
  for d in "$LIBDIR/cmake/exona" "$LIBDIR/cmake" "$LIBDIR/pkgconfig" "$LIBDIR" "$PREFIX/include" "$PREFIX/bin"; do
    rmdir "$DESTDIR$d" 2>/dev/null || true
  done
  echo "removed libexona $VERSION from $DESTDIR$PREFIX"
  exit 0
fi

# The release build (every build carries the SONAME: build.rs), shared with the tests.
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
if [ ! -e "$target_dir/release/libexona.so" ]; then
  echo "make install: building the library and the command in $target_dir/release (the first" \
    "time: about 2.5 minutes on two cores; cargo names each crate it compiles)"
fi
cargo build --release --locked -p exona -p exona-cli
built="$target_dir/release"

INCLUDE_FROM_LIBDIR=$(realpath -m --relative-to="$LIBDIR" "$PREFIX/include")
fill() {
  sed -e "s|@INCLUDE_FROM_LIBDIR@|$INCLUDE_FROM_LIBDIR|g" -e "s|@PREFIX@|$PREFIX|g" -e "s|@LIBDIR@|$LIBDIR|g" -e "s|@VERSION@|$VERSION|g" \
      -e "s|@MAJOR@|$MAJOR|g" -e "s|@MINOR@|$MINOR|g" -e "s|@STATIC_LIBS@|$STATIC_LIBS|g" \
      -e "s|@STATIC_LIBS_CMAKE@|$(echo "$STATIC_LIBS" | sed 's/-l//g; s/ /;/g')|g" "$1"
}

install -d "$DESTDIR$LIBDIR/pkgconfig" "$DESTDIR$LIBDIR/cmake/exona" "$DESTDIR$PREFIX/include" "$DESTDIR$PREFIX/bin"
install -m 755 "$built/exona" "$DESTDIR$PREFIX/bin/exona"
install -m 755 "$built/libexona.so" "$DESTDIR$LIBDIR/libexona.so.$VERSION"
ln -sf "libexona.so.$VERSION" "$DESTDIR$LIBDIR/libexona.so.$MAJOR"
ln -sf "libexona.so.$MAJOR" "$DESTDIR$LIBDIR/libexona.so"
install -m 644 "$built/libexona.a" "$DESTDIR$LIBDIR/libexona.a"
install -m 644 include/exona.h "$DESTDIR$PREFIX/include/exona.h"
install -m 644 include/exona.hpp "$DESTDIR$PREFIX/include/exona.hpp"
fill packaging/exona.pc.in > "$DESTDIR$LIBDIR/pkgconfig/exona.pc"
fill packaging/exona-static.pc.in > "$DESTDIR$LIBDIR/pkgconfig/exona-static.pc"
fill packaging/exonaConfig.cmake.in > "$DESTDIR$LIBDIR/cmake/exona/exonaConfig.cmake"
fill packaging/exonaConfigVersion.cmake.in > "$DESTDIR$LIBDIR/cmake/exona/exonaConfigVersion.cmake"
echo "installed libexona $VERSION in $DESTDIR$PREFIX"
