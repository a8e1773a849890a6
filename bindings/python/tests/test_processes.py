"""Two Python processes on one key share it through the state directory: its budget (no 429)
and its scans (a company asked for by both is created once)."""

from __future__ import annotations

import subprocess

from conftest import PYTHON, Sim, child_env

WORKER = r"""
import exona
client = exona.ExonaClient()
companies = [(f"Co {i}", f"https://py-proc-{i}.example") for i in range(6)]
outcomes = list(client.scan_many(companies, max_age_days=30))
print(" ".join(sorted(o.result.scan_id for o in outcomes if o.ok)), flush=True)
"""


def run_two(sim: Sim, key: str, state_dir: str) -> list:
    env = child_env(EXONA_API_KEY=key, EXONA_BASE_URL=sim.url, EXONA_STATE_DIR=state_dir,
                    EXONA_SCAN_DURATION_MS="200-600")
    workers = [subprocess.Popen([PYTHON, "-c", WORKER], stdout=subprocess.PIPE, text=True, env=env)
               for _ in range(2)]
    outs = [w.communicate(timeout=300)[0].strip() for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs
    return outs


def test_two_processes_asking_for_the_same_companies_make_one_scan_each(key, tmp_path):
    # A tight window (10 requests per 3 s) for the 6 scans both processes ask for at once.
    sim = Sim("--scan-min", "0.2", "--scan-max", "0.6", "--retry-after", "0.1",
              "--rate-limit", "10", "--rate-window", "3")
    try:
        outs = run_two(sim, key, str(tmp_path / "shared"))
        assert len(outs[0].split()) == 6 and outs[0] == outs[1], outs  # the same 6 scans
        stats = sim.stats(key)
        assert stats["scans_created"] == 6, stats  # without the shared store: 12 (twins)
        assert stats["rate_limited"] == 0, stats
    finally:
        sim.stop()
