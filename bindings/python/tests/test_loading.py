"""The package finds libexona: the one its wheel carries, or an installed one (EXONA_LIB)
with the declarations read from exona.h."""

from __future__ import annotations

import os
import subprocess
import pytest

import exona
from conftest import PYTHON, REPO, child_env

SOURCE = REPO / "bindings" / "python"
CHILD = "import exona; print(exona.library); print(exona.ExonaClient().scan_and_wait('A', 'https://py-load.example').scan_id)"


def test_the_suite_runs_on_the_wheels_library_when_asked():
    # scripts/test.sh installs the wheel and sets this: the tests must not pass on a source
    # tree that happened to find another library.
    if os.environ.get("EXONA_PY_EXPECT_BUNDLED") == "1":
        assert exona.library == "bundled", exona.library


def test_an_installed_library_is_used_through_exona_lib(key):
    built = REPO / "target" / "release" / "libexona.so"
    if not built.exists():
        pytest.skip("no release build of libexona (cargo build --release -p exona)")
    # The source tree (no wheel's library in it) with EXONA_LIB naming the library.
    env = child_env(EXONA_API_KEY=key, EXONA_LIB=str(built), PYTHONPATH=str(SOURCE))
    done = subprocess.run([PYTHON, "-c", CHILD], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    library, scan_id = done.stdout.split()
    assert library == str(built) and scan_id.startswith("scn_test_")


def test_a_missing_library_is_named_with_the_ways_to_fix_it(tmp_path):
    env = child_env(EXONA_LIB=str(tmp_path / "libexona.so"), PYTHONPATH=str(SOURCE))
    done = subprocess.run([PYTHON, "-c", "import exona"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode != 0
    assert "EXONA_LIB=" in done.stderr and "libexona.so" in done.stderr


def test_the_header_declarations_parse(tmp_path):
    from exona._lib import cdef_from_header
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(cdef_from_header((REPO / "include" / "exona.h").read_text(encoding="utf-8")))
    assert ffi.sizeof("exona_batch_status") == exona._lib.ffi.sizeof("exona_batch_status")
    assert ffi.sizeof("exona_progress") == exona._lib.ffi.sizeof("exona_progress")
