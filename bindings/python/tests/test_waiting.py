"""While a call waits: other threads run, Ctrl-C and asyncio cancellation end it, and nothing is
left behind (no helper thread, no scan abandoned without its id)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time

import pytest

import exona
from conftest import PYTHON, child_env


def helper_threads() -> list:
    return [t for t in threading.enumerate() if t.name == "exona-call"]


def test_other_threads_run_while_one_waits(client):
    ticks = 0
    stop = threading.Event()

    def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.002)

    t = threading.Thread(target=ticker)
    t.start()
    before = ticks
    # The scan takes at least 50 ms (the simulator's shortest): a binding that held the GIL
    # while it waited would let the ticker tick not at all meanwhile.
    client.scan_and_wait("Acme", "https://py-gil.example")
    during = ticks - before
    stop.set()
    t.join()
    assert during >= 5, "the other thread did not run while the call waited"


CTRL_C_CHILD = r"""
import signal, sys, threading, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job starts with it ignored
import exona
client = exona.ExonaClient()
print("waiting", flush=True)
started = time.monotonic()
try:
    client.scan_and_wait("Stuck", "https://stuck.py-ctrl-c.example", timeout=60)
except KeyboardInterrupt:
    left = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    print(f"interrupted {time.monotonic() - started:.3f} {left}", flush=True)
    sys.exit(0)
print("not interrupted", flush=True)
sys.exit(1)
"""


def test_ctrl_c_cancels_the_wait_and_raises_keyboard_interrupt(key):
    child = subprocess.Popen([PYTHON, "-c", CTRL_C_CHILD], stdout=subprocess.PIPE, text=True,
                             env=child_env(EXONA_API_KEY=key))
    assert child.stdout.readline().strip() == "waiting"
    time.sleep(0.5)  # into the wait (the stuck scan never ends; its deadline is 60 s)
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0, out
    words = out.split(maxsplit=2)
    assert words[0] == "interrupted", out
    # Returning well before the 60 s deadline can only be the interrupt's doing (the benchmark
    # measures how fast); and no helper thread is left.
    assert float(words[1]) < 30, out
    assert words[2].strip() == "[]", out


def test_a_false_return_from_on_progress_cancels(client):
    with pytest.raises(exona.CancelledError) as caught:
        client.scan_and_wait("Stuck", "https://stuck.py-progress.example",
                             on_progress=lambda e: e["scan_id"] is None)
    assert caught.value.scan_id  # the scan exists: its id comes back with the cancellation
    assert not helper_threads()


def test_an_exception_in_on_progress_cancels_and_is_raised_by_the_call(client):
    def boom(_event):
        raise ValueError("a bug in the callback")

    with pytest.raises(ValueError, match="a bug in the callback") as caught:
        client.scan_and_wait("Stuck", "https://stuck.py-boom.example", on_progress=boom)
    assert isinstance(caught.value.__cause__, exona.CancelledError)


def test_asyncio_cancellation_cancels_the_wait(key):
    async def main() -> float:
        async with exona.AsyncExonaClient(key) as client:
            task = asyncio.create_task(client.scan_and_wait("Stuck", "https://stuck.py-async.example",
                                                            timeout=60))
            await asyncio.sleep(0.3)
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return time.monotonic() - started

    assert asyncio.run(main()) < 30  # the deadline was 60 s
    assert not helper_threads()


def test_asyncio_calls_run_together_on_one_loop(key):
    async def main():
        async with exona.AsyncExonaClient(key) as client:
            created = await client.create_scan("Acme", "https://py-async-create.example")
            assert (await client.get_scan(created["id"]))["id"] == created["id"]
            waited = await client.wait(created["id"])
            results = await asyncio.gather(*[
                client.scan_and_wait(f"Co {i}", f"https://py-async-{i}.example") for i in range(8)])
            also = await client.sync.ascan_and_wait("Acme", "https://py-async-sync.example")
            return waited, results, also

    waited, results, also = asyncio.run(main())
    assert waited.scan_id
    assert len({r.scan_id for r in results}) == 8
    assert also.scan_id


def test_asyncio_errors_are_the_same_exceptions(key):
    async def main():
        async with exona.AsyncExonaClient(key) as client:
            await client.scan_and_wait("Gone", "https://gone.invalid")

    with pytest.raises(exona.ScanFailedError):
        asyncio.run(main())
