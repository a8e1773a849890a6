"""Python strings on their way to C: refused, never truncated, when C cannot carry them.

A C string ends at its first NUL, so ``"Acme\\x00Evil"`` would reach the library as ``"Acme"``
and ``"https://a.example\\x00.evil"`` would scan https://a.example: another company. Every
string the package hands to libexona goes through :func:`c_string`, which refuses such a
string with :class:`exona.InvalidArgumentError` before anything is sent.
"""

from __future__ import annotations

from typing import Any

from . import errors


def c_string(value: Any, what: str) -> bytes:
    """``value`` (a ``str``) as UTF-8 for C, or InvalidArgumentError naming ``what``."""
    if not isinstance(value, str):
        raise errors.InvalidArgumentError(f"{what} must be a string, not {type(value).__name__}")
    if "\x00" in value:
        at = value.index("\x00")
        raise errors.InvalidArgumentError(
            f"{what} contains a NUL character (at index {at}); C strings cannot carry one, and "
            "cutting the string there would name something else, so nothing was sent")
    return value.encode("utf-8")
