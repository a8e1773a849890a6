# libexona: the two commands a newcomer needs are `make demo` and `make test`.

.PHONY: demo test abi-baseline dist test-dist test-rust test-c test-go test-ruby test-python test-install test-fuzz header build clean install uninstall

PREFIX ?= /usr/local
export PREFIX LIBDIR DESTDIR

# Build the library and the simulator, start the simulator, scan a company from C.
demo:
	bash scripts/demo.sh

# The whole test suite (what .ci/run runs); README.md says how long it takes on two cores.
test:
	bash scripts/test.sh

# One part of it: the Rust crates (with the C programs), the C programs alone, a binding, the
# installed tree, the fuzzers (EXONA_FUZZ_SECONDS per target).
test-rust test-c test-go test-ruby test-python test-install test-dist test-fuzz:
	bash scripts/test.sh $(@:test-%=%)

# The ABI baseline (abi/): write it from the library as `make install` builds it, when a
# release moves the SONAME's major (or adds to the surface and should hold the additions).
# The suite compares every build with it (scripts/abi.sh, run by `make test-install`).
abi-baseline:
	cargo build --release --locked -p exona
	bash scripts/abi.sh baseline target/release/libexona.so

# Regenerate include/exona.h after changing the C surface (src/ffi), then commit it.
header:
	EXONA_UPDATE_HEADER=1 cargo build

build:
	cargo build --release -p exona -p exona-sim

clean:
	cargo clean

# The packages users install, under target/dist: a source tarball, Debian packages
# (libexona0, libexona-dev, exona), a Python wheel and a Ruby gem carrying the library, and
# SHA256SUMS (scripts/dist.sh; checked by `make test-dist`).
dist:
	bash scripts/dist.sh

# Install the shared library (SONAME libexona.so.MAJOR), the static library, the header,
# pkg-config files and a CMake package under PREFIX (LIBDIR, DESTDIR honoured).
install:
	bash scripts/install.sh install

# Remove exactly what `make install` put there.
uninstall:
	bash scripts/install.sh uninstall
