"""The guide's parallel example beside libexona: requests per scan, 429s, failures, makespan.

    cargo build --release -p exona-sim && pip install "./bindings/python[test]"
    python bindings/python/bench_parallel.py [--rows guide,exona,scan_many] [--seed 1]

Each row runs on a fresh exona-sim at the real limit's shape compressed tenfold (30 requests per
60 s window, scans of 3-12 s, Retry-After: 1) with a fresh key and state directory:

- guide: tests/guide/parallel.py as the guide writes it (ThreadPoolExecutor(5) over the guide's
  requests client, which polls every poll_interval or Retry-After), with the client's default
  poll_interval compressed as the rest is (10 s -> 1 s; set before the snippet runs);
- exona: the same file with only its import line changed to `from exona import ExonaClient`;
- scan_many: the same 20 companies through `client.scan_many`.

libexona is told the compressed scan length (EXONA_SCAN_DURATION_MS=3000-12000), as its default
30-120 s expectation would be at the real shape. Every row is bounded (10 minutes) and the
simulators stop by themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
GUIDE = HERE / "tests" / "guide"
REPO = HERE.parents[1]
SIM = os.environ.get("EXONA_SIM_BIN", str(REPO / "target" / "release" / "exona-sim"))

SCAN_MANY = r"""
import os, runpy
from exona import ExonaClient
portfolio = runpy.run_path(os.environ["PORTFOLIO_FILE"], run_name="portfolio")["portfolio"]
client = ExonaClient()
for o in client.scan_many(portfolio, max_age_days=30):
    print(f"{o.company_name}: {o.result['risk_assessment']['overall_risk_level'] if o.ok else 'FAILED ' + str(o.error)}")
"""


# The guide's 10 s poll interval at the compressed shape; its 300 s timeout is left as is.
GUIDE_COMPRESSED = """import guide_client
guide_client.ExonaClient.scan_and_wait.__defaults__ = (1, 300)
"""


def start_sim(seed: int):
    proc = subprocess.Popen([SIM, "--scan-min", "3", "--scan-max", "12", "--retry-after", "1",
                             "--rate-limit", "30", "--rate-window", "60", "--seed", str(seed),
                             "--exit-after", "700"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return proc, proc.stdout.readline().strip()


def stats(url: str) -> dict:
    with urllib.request.urlopen(url.rsplit("/api/v1", 1)[0] + "/_sim/stats", timeout=10) as r:
        rows = json.load(r)
    total = {"posts": 0, "gets": 0, "rate_limited": 0, "scans_created": 0}
    for row in rows.values():
        for k in total:
            total[k] += row.get(k, 0)
    return total


def portfolio_only(tmp: Path) -> Path:
    """The snippet's portfolio list alone, so scan_many scans exactly the same companies."""
    source = (GUIDE / "parallel.py").read_text()
    start = source.index("portfolio = [")
    end = source.index("]\n", start) + 2
    path = tmp / "portfolio.py"
    path.write_text(source[start:end])
    return path


def run_row(row: str, seed: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"exona-bench-{row}-"))
    proc, url = start_sim(seed)
    env = dict(os.environ, EXONA_API_KEY="exo_test_" + "7" * 36, EXONA_BASE_URL=url,
               EXONA_STATE_DIR=str(tmp / "state"), EXONA_SCAN_DURATION_MS="3000-12000",
               PYTHONDONTWRITEBYTECODE="1")
    source = (GUIDE / "parallel.py").read_text()
    if row == "guide":
        env["PYTHONPATH"] = str(GUIDE)
        script = GUIDE_COMPRESSED + source
    elif row == "exona":
        script = source.replace("from guide_client import ExonaClient", "from exona import ExonaClient")
    else:
        env["PORTFOLIO_FILE"] = str(portfolio_only(tmp))
        script = SCAN_MANY
    (tmp / "run.py").write_text(script)
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(tmp / "run.py")], capture_output=True, text=True,
                          env=env, timeout=600, cwd=tmp)
    makespan = time.monotonic() - started
    counts = stats(url)
    proc.terminate()
    proc.wait(timeout=10)
    lines = done.stdout.splitlines()
    failed = sum("FAILED" in line for line in lines)
    # The simulator counts a request refused with 429 apart from the POSTs and GETs it served.
    requests = counts["posts"] + counts["gets"] + counts["rate_limited"]
    completed = len(lines) - failed
    return {"row": row, "completed": completed, "failed": failed, "requests": requests,
            "requests_per_company": requests / 20,
            "requests_per_completed": requests / completed if completed else float("inf"),
            "rate_limited": counts["rate_limited"],
            "scans_created": counts["scans_created"], "makespan_s": round(makespan, 1),
            "exit": done.returncode}


CANCEL_CHILD = r"""
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
import exona
client = exona.ExonaClient()
print("waiting", flush=True)
try:
    client.scan_and_wait("Stuck", "https://stuck.bench-cancel.example", timeout=60)
except KeyboardInterrupt:
    print(time.monotonic(), flush=True)
"""


def cancel_latency(trials: int) -> None:
    """Ctrl-C while scan_and_wait waits: from SIGINT sent to KeyboardInterrupt caught, with the
    call cancelled and its helper thread joined (one monotonic clock for both processes)."""
    proc, url = start_sim(1)
    env = dict(os.environ, EXONA_API_KEY="exo_test_" + "6" * 36, EXONA_BASE_URL=url, EXONA_STATE_DIR="off",
               PYTHONDONTWRITEBYTECODE="1")
    latencies = []
    for _ in range(trials):
        child = subprocess.Popen([sys.executable, "-c", CANCEL_CHILD], stdout=subprocess.PIPE, text=True, env=env)
        child.stdout.readline()
        time.sleep(1.0)  # into the wait
        sent = time.monotonic()
        child.send_signal(2)
        caught = float(child.stdout.readline())
        child.wait(timeout=30)
        latencies.append((caught - sent) * 1000)
    proc.terminate()
    proc.wait(timeout=10)
    latencies.sort()
    print(f"Ctrl-C to KeyboardInterrupt over {trials} trials: median {latencies[len(latencies) // 2]:.1f} ms, "
          f"max {latencies[-1]:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="guide,exona,scan_many")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trials", type=int, default=20, help="Ctrl-C trials of the cancel row")
    args = parser.parse_args()
    rows = args.rows.split(",")
    if "cancel" in rows:
        rows.remove("cancel")
        cancel_latency(args.trials)
    if not rows:
        return
    print(f"{'row':<10} {'completed':>9} {'failed':>6} {'requests':>8} {'per company':>11} "
          f"{'per completed':>13} {'429s':>5} {'scans':>5} {'makespan':>9}")
    for row in rows:
        r = run_row(row, args.seed)
        print(f"{r['row']:<10} {r['completed']:>9} {r['failed']:>6} {r['requests']:>8} "
              f"{r['requests_per_company']:>11.2f} {r['requests_per_completed']:>13.2f} {r['rate_limited']:>5} "
              f"{r['scans_created']:>5} {r['makespan_s']:>8.1f}s", flush=True)


if __name__ == "__main__":
    main()
