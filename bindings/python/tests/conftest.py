"""Fixtures: exona-sim started per session (EXONA_SIM_BIN, else this checkout's build), keys,
state directories. Nothing is written into the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[3]
REVOKED_KEY = "exo_test_revoked00000000000000000000000000000"
FORBIDDEN_KEY = "exo_test_forbidden000000000000000000000000000"


def sim_binary() -> str:
    explicit = os.environ.get("EXONA_SIM_BIN")
    if explicit:
        return explicit
    for profile in ("release", "debug"):
        path = REPO / "target" / profile / "exona-sim"
        if path.exists():
            return str(path)
    pytest.exit("exona-sim is not built: cargo build --release -p exona-sim", returncode=2)


class Sim:
    """A running exona-sim: its base URL and its per-key counts (/_sim/stats)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sim_binary(), "--exit-after", "900", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), self.url

    def stats(self, key: str) -> dict:
        root = self.url.rsplit("/api/v1", 1)[0]
        with urllib.request.urlopen(f"{root}/_sim/stats", timeout=10) as response:
            rows = json.load(response)
        return rows.get(masked(key), {"posts": 0, "gets": 0, "rate_limited": 0, "scans_created": 0})

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def masked(key: str) -> str:
    """The simulator's name for a key in its stats (sim/src/server.rs, masked)."""
    h = 0xCBF29CE484222325
    for b in key.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{key[:9]}…{key[-4:]} #{h & 0xFFFFFFFF:08x}"


@pytest.fixture(scope="session")
def sim() -> Iterator[Sim]:
    s = Sim("--scan-min", "0.05", "--scan-max", "0.15", "--retry-after", "0.05",
            "--rate-limit", "100000", "--revoked-key", REVOKED_KEY, "--forbidden-key", FORBIDDEN_KEY)
    yield s
    s.stop()


_keys = iter(range(1, 10**6))


@pytest.fixture
def key() -> str:
    """A key of its own for each test, so no two tests share a budget or a cache."""
    return f"exo_test_{os.getpid() % 10**6:06d}{next(_keys):030d}"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sim: Sim) -> None:
    # The simulator's scans take 50-150 ms: tell the library, as a user of a fast API would.
    monkeypatch.setenv("EXONA_SCAN_DURATION_MS", "50-150")
    monkeypatch.setenv("EXONA_BASE_URL", sim.url)
    monkeypatch.setenv("EXONA_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("EXONA_API_KEY", raising=False)
    monkeypatch.delenv("EXONA_POLL_MODE", raising=False)


@pytest.fixture
def client(key: str):
    import exona

    with exona.ExonaClient(api_key=key) as c:
        yield c


def child_env(**extra: str) -> dict:
    """The environment for a Python child process that imports this package as the tests do."""
    env = dict(os.environ)
    import exona

    package_root = str(Path(exona.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


PYTHON = sys.executable
