"""A forked child's first scan: with the client its parent made before the fork, against a
client the child makes itself. Requests and time of that one scan, per round.

    cargo build --release -p exona-sim && pip install ./bindings/python
    python bindings/python/bench_fork.py [--rounds 5]

Each round forks two children from a parent that has scanned once: one scans with the
parent's client, the other with a fresh client (same settings). Each child has a key of its
own, so the simulator's counts are that scan's requests. The simulator's scans take 3-8 s and
the library is told so (EXONA_SCAN_DURATION_MS=3000-8000); no state store, so neither child
learns from the parent's scan. Bounded: every child is killed after 60 s, the simulator after
10 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SIM = os.environ.get("EXONA_SIM_BIN", str(REPO / "target" / "release" / "exona-sim"))


def requests_of(stats_url: str, key: str) -> int:
    with urllib.request.urlopen(stats_url, timeout=10) as response:
        rows = json.load(response)
    prefix = f"{key[:9]}\u2026{key[-4:]}"
    return sum(r["posts"] + r["gets"] for name, r in rows.items() if name.startswith(prefix))


def child_scan(make_client, company: str) -> float:
    """Forks; the child scans `company` and exits 0; returns the child's time, or raises."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read)
            started = time.monotonic()
            client = make_client()
            client.scan_and_wait(company, f"https://{company.lower().replace(' ', '-')}.example", timeout=50)
            os.write(write, f"{time.monotonic() - started:.3f}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise RuntimeError(f"the child scanning {company} hung")
        time.sleep(0.05)
    took = os.read(read, 64).decode()
    os.close(read)
    if status != 0 or not took:
        raise RuntimeError(f"the child scanning {company} failed ({status})")
    return float(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sim = subprocess.Popen([SIM, "--scan-min", "3", "--scan-max", "8", "--retry-after", "1",
                            "--rate-limit", "100000", "--exit-after", "600"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = sim.stdout.readline().strip()
        stats_url = url.rsplit("/api/v1", 1)[0] + "/_sim/stats"
        os.environ.update(EXONA_BASE_URL=url, EXONA_SCAN_DURATION_MS="3000-8000", EXONA_STATE_DIR="off")
        import exona

        rows = {"inherited": [], "fresh": []}
        for r in range(args.rounds):
            # The simulator names a key by its first 9 and last 4 characters: those differ.
            keys = {kind: f"exo_test_{os.getpid() % 10**6:06d}{0:026d}{r:02d}{i:02d}" for i, kind in enumerate(rows, 1)}
            parent_key = f"exo_test_{os.getpid() % 10**6:06d}{0:026d}{r:02d}00"
            parent = exona.ExonaClient(parent_key)
            parent.scan_and_wait(f"Parent {r}", f"https://parent-{r}.example", timeout=50)
            # The inherited client is the parent's, on the parent's key: its child scan is
            # counted as the difference.
            before = requests_of(stats_url, parent_key)
            took = child_scan(lambda: parent, f"Inherited {r}")
            rows["inherited"].append((requests_of(stats_url, parent_key) - before, took))
            took = child_scan(lambda: exona.ExonaClient(keys["fresh"]), f"Fresh {r}")
            rows["fresh"].append((requests_of(stats_url, keys["fresh"]), took))
            parent.close()
        for kind, runs in rows.items():
            reqs = [q for q, _ in runs]
            times = [t for _, t in runs]
            print(f"{kind:9}  requests {reqs}  mean {statistics.mean(reqs):.1f}   "
                  f"time mean {statistics.mean(times):.2f} s, max {max(times):.2f} s")
    finally:
        sim.terminate()
        sim.wait(timeout=10)


if __name__ == "__main__":
    main()
