"""Through a runtime's lifecycle (DESIGN.md 9.2): strings C cannot carry, close and cancel
while threads call, fork with a client made before it, and names that shadow no built-in.

The races run in a child interpreter, so a crash shows as its exit status, not as a lost
test run."""

from __future__ import annotations

import subprocess

import pytest

import exona
from conftest import PYTHON, child_env

NUL_CASES = [
    ("company_name", lambda c: c.scan_and_wait("Acme\x00Evil", "https://acme.ai", timeout=10)),
    ("company_website", lambda c: c.scan_and_wait("Acme", "https://nul2.example\x00.evil", timeout=10)),
    ("company_website", lambda c: c.create_scan("Acme", "https://nul3.example\x00.evil")),
    ("scan_id", lambda c: c.get_scan("scn_test_1\x00")),
    ("scan_id", lambda c: c.wait("scn_test_1\x00x", timeout=10)),
    ("question", lambda c: c.scan_and_wait("Acme", "https://acme.ai",
                                           questionnaire_data={"Uses AI?\x00": "yes"})),
    ("answer", lambda c: c.scan_and_wait("Acme", "https://acme.ai",
                                         questionnaire_data=[{"question": "Q", "answer": "a\x00b"}])),
    ("website", lambda c: list(c.scan_many([("Fine Ltd", "https://fine.example"),
                                            ("Evil Ltd", "https://nul4.example\x00.evil")]))),
]


@pytest.mark.parametrize("what,call", NUL_CASES, ids=[f"{w}-{i}" for i, (w, _) in enumerate(NUL_CASES)])
def test_a_nul_in_any_string_is_refused_and_nothing_is_sent(client, key, sim, what, call):
    with pytest.raises(exona.InvalidArgumentError, match=f"{what}.*NUL") as caught:
        call(client)
    assert "nothing was sent" in str(caught.value)
    stats = sim.stats(key)
    assert (stats["posts"], stats["gets"]) == (0, 0), stats


@pytest.mark.parametrize("setting", ["state_dir", "proxy", "ca_bundle", "user_agent_suffix", "state_url"])
def test_a_nul_in_a_setting_is_refused(key, tmp_path, setting):
    # A path under tmp_path: a setting cut at the NUL would otherwise write into the cwd.
    with pytest.raises(exona.InvalidArgumentError, match=f"{setting}.*NUL"):
        exona.ExonaClient(key, **{setting: f"{tmp_path}/value\x00more"})
    with pytest.raises(exona.InvalidArgumentError, match="api_key.*NUL"):
        exona.ExonaClient(key + "\x00")


def test_import_star_shadows_no_built_in():
    scope: dict = {}
    exec("import builtins\nfrom exona import *\nsame = TimeoutError is builtins.TimeoutError", scope)
    assert scope["same"], "from exona import * rebinds TimeoutError"
    assert exona.TimeoutError is exona.ScanTimeoutError  # still there by its full name
    import builtins
    shadowing = [n for n in exona.__all__ if hasattr(builtins, n)]
    assert shadowing == [], shadowing


def test_calls_after_close_are_cancelled_and_close_is_idempotent(key):
    c = exona.ExonaClient(key)
    c.close()
    c.close()
    with pytest.raises(exona.CancelledError, match="closed"):
        c.get_scan("scn_test_x")
    with pytest.raises(exona.CancelledError, match="closed"):
        c.scan_many([("A", "https://a.example")])


CLOSE_RACE = r"""
import random, sys, threading, time
import exona

ROUNDS, THREADS = 10, 16
problems = []
for round_ in range(ROUNDS):
    client = exona.ExonaClient()
    # Half the threads ask for a company the state store already holds (answered at once, so
    # they keep entering calls); half start scans of their own that the close cancels.
    client.scan_and_wait("Cached Ltd", "https://cached.example", timeout=30)
    stop_at = [None]
    outcomes = []
    lock = threading.Lock()

    def worker(n):
        while True:
            if stop_at[0] is not None and time.monotonic() > stop_at[0]:
                return
            try:
                if n % 2:
                    client.scan_and_wait("Cached Ltd", "https://cached.example", max_age_days=30, timeout=30)
                else:
                    client.scan_and_wait(f"Co {round_}-{n}", f"https://race-{round_}-{n}.example", timeout=30)
                kind = "result"
            except exona.Error as e:
                kind = type(e).__name__
            except BaseException as e:  # anything else is a defect
                kind = "foreign " + repr(e)
            with lock:
                outcomes.append(kind)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    time.sleep(random.uniform(0.05, 0.2))
    closed_at = time.monotonic()
    client.close()
    stop_at[0] = time.monotonic() + 0.05  # calling on for 50 ms after the close
    for t in threads:
        t.join(timeout=max(0.0, 15 - (time.monotonic() - closed_at)))
    late = [t for t in threads if t.is_alive()]
    if late:
        problems.append(f"round {round_}: {len(late)} threads still running 15 s after close")
    foreign = [o for o in outcomes if o.startswith("foreign")]
    if foreign:
        problems.append(f"round {round_}: {foreign[:3]}")
    cancelled = sum(o == "CancelledError" for o in outcomes)
    print(f"round {round_}: {len(outcomes)} calls, {cancelled} cancelled", flush=True)
print("\n".join(problems) if problems else "every round clean", flush=True)
sys.exit(1 if problems else 0)
"""


def test_close_while_threads_call_never_crashes(sim, key, tmp_path):
    env = child_env(EXONA_API_KEY=key, EXONA_BASE_URL=sim.url, EXONA_STATE_DIR=str(tmp_path / "state"),
                    EXONA_SCAN_DURATION_MS="50-150")
    done = subprocess.run([PYTHON, "-c", CLOSE_RACE], capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    assert "every round clean" in done.stdout, done.stdout
    assert "cancelled" in done.stdout


CANCEL_POOL = r"""
import concurrent.futures, time
import exona

client = exona.ExonaClient()
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    futures = [pool.submit(client.scan_and_wait, f"Slow {i}", f"https://pool-{i}.example", timeout=120)
               for i in range(8)]
    time.sleep(0.5)
    started = time.monotonic()
    print("cancelled", client.cancel_all(), flush=True)
    kinds = []
    for f in futures:
        try:
            f.result(timeout=15)
            kinds.append("result")
        except exona.CancelledError:
            kinds.append("cancelled")
    print("ended in %.1f s:" % (time.monotonic() - started), sorted(kinds), flush=True)
# The client stays open after cancel_all.
print("after:", client.get_scan(client.create_scan("After", "https://after.example").scan_id).status)
client.close()
"""


def test_cancel_all_stops_a_thread_pools_calls(key, tmp_path):
    from conftest import Sim
    slow = Sim("--scan-min", "60", "--scan-max", "60", "--retry-after", "1", "--rate-limit", "100000")
    try:
        env = child_env(EXONA_API_KEY=key, EXONA_BASE_URL=slow.url, EXONA_STATE_DIR="off",
                        EXONA_SCAN_DURATION_MS="60000-60000")
        done = subprocess.run([PYTHON, "-c", CANCEL_POOL], capture_output=True, text=True, env=env, timeout=120)
    finally:
        slow.stop()
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr[-3000:]}"
    assert "cancelled 8" in done.stdout, done.stdout
    assert "['cancelled'" in done.stdout and "'result'" not in done.stdout.split("after:")[0], done.stdout
    assert "after: processing" in done.stdout, done.stdout


FORKED = r"""
import multiprocessing, sys, time
import exona

client = exona.ExonaClient()          # module level, made before the workers fork
client.scan_and_wait("Parent Ltd", "https://parent.example", timeout=30)

def work(i):
    r = client.scan_and_wait(f"Forked {i}", f"https://forked-{i}.example", timeout=30)
    return r["risk_assessment"]["overall_risk_level"]

if __name__ == "__main__":
    started = time.monotonic()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        levels = pool.map_async(work, range(8)).get(timeout=60)
    print("8 scans in %.1f s:" % (time.monotonic() - started), levels, flush=True)
    # The parent's client still works.
    client.scan_and_wait("Parent Again", "https://parent-again.example", timeout=30)
    client.close()
    print("parent done", flush=True)
"""


def test_a_client_made_before_fork_works_in_multiprocessing_workers(sim, key, tmp_path):
    script = tmp_path / "forked.py"
    script.write_text(FORKED)
    env = child_env(EXONA_API_KEY=key, EXONA_BASE_URL=sim.url, EXONA_STATE_DIR=str(tmp_path / "state"),
                    EXONA_SCAN_DURATION_MS="50-150")
    done = subprocess.run([PYTHON, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    assert "8 scans in" in done.stdout and "parent done" in done.stdout, done.stdout
    assert sim.stats(key)["scans_created"] == 10
