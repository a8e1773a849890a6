"""The guide's own snippets (tests/guide), run unchanged but for the import line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import PYTHON, child_env

GUIDE = Path(__file__).parent / "guide"
GUIDE_IMPORT = "from guide_client import ExonaClient"


def run_snippet(name: str, key: str, tmp_path: Path) -> str:
    source = (GUIDE / name).read_text(encoding="utf-8")
    assert source.count(GUIDE_IMPORT) == 1
    snippet = tmp_path / name
    snippet.write_text(source.replace(GUIDE_IMPORT, "from exona import ExonaClient"), encoding="utf-8")
    done = subprocess.run([PYTHON, str(snippet)], capture_output=True, text=True, timeout=300,
                          env=child_env(EXONA_API_KEY=key), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_usage_snippet(key, tmp_path):
    out = run_snippet("usage.py", key, tmp_path)
    lines = out.splitlines()
    assert lines[0].split(": ")[1] in ("Low", "Medium", "High", "Very High"), out
    assert len(lines) == 8 and lines[-1].startswith("Regulatory exposure:"), out


def test_the_parallel_example(key, tmp_path):
    out = run_snippet("parallel.py", key, tmp_path)
    lines = out.splitlines()
    assert len(lines) == 20, out
    assert all(line.split(": ", 1)[1] in ("Low", "Medium", "High", "Very High") for line in lines), out


def test_the_guides_client_itself_runs_the_usage_snippet(key, tmp_path):
    # The reference the snippets were written against (what bench_parallel.py compares with).
    pytest.importorskip("requests")
    source = (GUIDE / "usage.py").read_text(encoding="utf-8")
    (tmp_path / "usage.py").write_text(source, encoding="utf-8")
    done = subprocess.run([PYTHON, "usage.py"], capture_output=True, text=True, timeout=120,
                          env=child_env(EXONA_API_KEY=key, PYTHONPATH=str(GUIDE)), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Overall risk: ")
