"""Finds libexona and its C declarations: `ffi` (cffi) and `lib` (the loaded library).

Looked for, most explicit first:

1. ``EXONA_LIB``: a path to an installed ``libexona.so`` (a system package, ``make install``).
2. The library the wheel carries (``pip install ./bindings/python`` builds it with maturin).
3. pkg-config's libdir for ``exona``, the system's library path, and this checkout's build
   (``target/release``), for a source tree put on ``PYTHONPATH`` without building a wheel.

Where the wheel's own declarations are missing (case 3), they are read from ``exona.h``
(pkg-config's includedir, else this checkout's ``include/``), so no copy of the C surface is
kept here to drift from the header.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import cffi

_REPO = Path(__file__).resolve().parents[3]

HELP = """libexona was not found. Tried: EXONA_LIB, the library this package carries, pkg-config's
libdir for exona, the system's library path and this checkout's build. Either:
  pip install ./bindings/python            (builds a wheel that carries libexona)
  EXONA_LIB=/path/to/libexona.so           (an installed library)
  PKG_CONFIG_PATH=PREFIX/lib/pkgconfig     (after make install PREFIX=...)"""


def _pkg_config(variable: str) -> str | None:
    try:
        out = subprocess.run(
            ["pkg-config", f"--variable={variable}", "exona"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None  # pkg-config is not installed
    value = out.stdout.strip()
    return value if out.returncode == 0 and value else None


def cdef_from_header(text: str) -> str:
    """The declarations of exona.h as cffi's cdef takes them: no preprocessor lines, no
    comments, no C++ guard."""
    text = re.sub(r'^}\s*// extern "C".*$', "", text, flags=re.M)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return text.replace('extern "C" {', "")


def _ffi_from_header() -> cffi.FFI:
    candidates = []
    include = _pkg_config("includedir")
    if include:
        candidates.append(Path(include) / "exona.h")
    candidates.append(_REPO / "include" / "exona.h")
    for header in candidates:
        if header.is_file():
            ffi = cffi.FFI()
            ffi.cdef(cdef_from_header(header.read_text(encoding="utf-8")))
            return ffi
    raise ImportError(HELP + "\n(no exona.h found for the declarations: tried "
                      + ", ".join(str(c) for c in candidates) + ")")


def _load():
    try:
        from ._native import ffi as bundled_ffi  # the wheel's declarations and library
        from ._native import lib as bundled_lib
    except ImportError:
        bundled_ffi = bundled_lib = None

    explicit = os.environ.get("EXONA_LIB")
    if explicit:
        ffi = bundled_ffi or _ffi_from_header()
        try:
            return ffi, ffi.dlopen(explicit), explicit
        except OSError as e:
            raise ImportError(f"EXONA_LIB={explicit} cannot be loaded: {e}") from e
    if bundled_lib is not None:
        return bundled_ffi, bundled_lib, "bundled"

    ffi = _ffi_from_header()
    libdir = _pkg_config("libdir")
    tried = []
    for candidate in [
        libdir and os.path.join(libdir, "libexona.so"),
        "libexona.so.0",
        "libexona.so",
        str(_REPO / "target" / "release" / "libexona.so"),
    ]:
        if not candidate:
            continue
        try:
            return ffi, ffi.dlopen(candidate), candidate
        except OSError as e:
            tried.append(f"{candidate}: {e}")
    raise ImportError(HELP + "\n(" + "; ".join(tried) + ")")


ffi, lib, source = _load()
