"""What calls give back: plain dicts (as the guide's client returns them) that also carry what
libexona knows about the answer."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Tuple

from . import errors
from ._lib import ffi, lib


class Scan(Dict[str, Any]):
    """A scan object as the API returned it (``id``, ``status``, ``company``, ``result`` or
    ``error``, ...), as a dict. Also:

    Attributes:
        scan_id: the scan's id.
        cached: the API answered a create with a completed scan within ``max_age_days``.
        from_store: the state store shared by this host's processes answered, with no request.
        http_status: the HTTP status of the answer (0 when no request was sent).
        request_id: the API's request id.
    """

    scan_id: Optional[str]
    cached: bool
    from_store: bool
    http_status: int
    request_id: Optional[str]

    @property
    def status(self) -> Optional[str]:
        return self.get("status")

    @property
    def overall_risk_level(self) -> Optional[str]:
        return ((self.get("result") or {}).get("risk_assessment") or {}).get("overall_risk_level")


class ScanResult(Dict[str, Any]):
    """A completed scan's ``result`` (``enrichment``, ``risk_assessment``,
    ``matched_incidents``), as a dict: what the guide's ``scan_and_wait`` returns.

    Attributes:
        scan: the whole scan object (:class:`Scan`), with its id, company and timestamps.
        scan_id, cached, from_store: as on :class:`Scan`.
    """

    scan: Scan

    @property
    def scan_id(self) -> Optional[str]:
        return self.scan.scan_id

    @property
    def cached(self) -> bool:
        return self.scan.cached

    @property
    def from_store(self) -> bool:
        return self.scan.from_store

    @property
    def overall_risk_level(self) -> Optional[str]:
        return (self.get("risk_assessment") or {}).get("overall_risk_level")


def result_of(scan: Scan) -> ScanResult:
    result = ScanResult(scan.get("result") or {})
    result.scan = scan
    return result


def _text(ptr: Any) -> Optional[str]:
    return None if ptr == ffi.NULL else ffi.string(ptr).decode("utf-8", "replace")


def take(ptr: Any) -> Tuple[Optional[Scan], Optional[errors.Error]]:
    """Copies a C result into Python and frees it: (scan or None, error or None)."""
    if ptr == ffi.NULL:
        return None, errors.InternalError("libexona gave no result")
    try:
        code = lib.exona_result_code(ptr)
        text = _text(lib.exona_result_json(ptr))
        scan = None
        if text is not None:
            scan = Scan(json.loads(text))
            scan.scan_id = _text(lib.exona_result_scan_id(ptr))
            scan.cached = bool(lib.exona_result_cached(ptr))
            scan.from_store = bool(lib.exona_result_from_store(ptr))
            scan.http_status = int(lib.exona_result_http_status(ptr))
            scan.request_id = _text(lib.exona_result_request_id(ptr))
        if code == 0:
            return scan, None
        retry_ms = lib.exona_result_retry_after_ms(ptr)
        error = errors.for_code(code)(
            _text(lib.exona_result_message(ptr)) or _text(lib.exona_code_name(code)) or "error",
            code_name=_text(lib.exona_code_name(code)),
            scan_id=_text(lib.exona_result_scan_id(ptr)),
            request_id=_text(lib.exona_result_request_id(ptr)),
            http_status=int(lib.exona_result_http_status(ptr)),
            api_code=_text(lib.exona_result_error_code(ptr)),
            hint=_text(lib.exona_result_hint(ptr)),
            param=_text(lib.exona_result_param(ptr)),
            retry_after=retry_ms / 1000.0 if retry_ms else None,
            scan=scan,
        )
        return scan, error
    finally:
        lib.exona_result_free(ptr)
