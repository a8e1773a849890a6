#!/usr/bin/env bash
# The main job, end to end: build libexona and exona-sim, start the simulator on a free
# loopback port, and run examples/c/scan.c against it. Arguments: [COMPANY_NAME] [WEBSITE].
set -euo pipefail
cd "$(dirname "$0")/.."

name=${1:-Acme AI Ltd}
website=${2:-https://acme.ai}

echo "==> building libexona, the exona command and exona-sim (release; cargo names each crate it"
echo "    compiles: about 2.5 minutes the first time on two cores, seconds after)"
started=$SECONDS
cargo build --release -p exona -p exona-cli -p exona-sim
echo "==> built in $((SECONDS - started)) s"
mkdir -p target/demo
cc -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude examples/c/scan.c \
   -Ltarget/release -lexona -Wl,-rpath,"$PWD/target/release" -o target/demo/scan

# Scans take 3-8 s here instead of the API's 30-120 s, and polls may come every second.
# The simulator stops by itself after 5 minutes at the latest.
target/release/exona-sim --scan-min 3 --scan-max 8 --retry-after 1 --exit-after 300 > target/demo/sim.out &
sim=$!
trap 'kill "$sim" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  [ -s target/demo/sim.out ] && break
  sleep 0.05
done
base_url=$(head -n 1 target/demo/sim.out)
echo "==> exona-sim listening at $base_url"
echo "==> scanning \"$name\" ($website) through libexona"
echo

# A test key of the documented shape; the simulator accepts any such key. A fresh state
# directory per demo (the simulator is fresh too): the C program records the result there.
rm -rf target/demo/state
EXONA_API_KEY=exo_test_000000000000000000000000000000000000 \
EXONA_BASE_URL="$base_url" \
EXONA_STATE_DIR="$PWD/target/demo/state" \
EXONA_SCAN_DURATION_MS=3000-8000 \
  target/demo/scan "$name" "$website" 30

echo
echo "==> the same company through the exona command (answered from its state store: no request)"
echo
EXONA_API_KEY=exo_test_000000000000000000000000000000000000 \
EXONA_BASE_URL="$base_url" \
EXONA_STATE_DIR="$PWD/target/demo/state" \
EXONA_SCAN_DURATION_MS=3000-8000 \
  target/release/exona scan "$name" "$website" --max-age-days 30
