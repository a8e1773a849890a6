"""AsyncExonaClient: the same calls for asyncio. Each call's wait runs off the event loop (on a
helper thread, in C, without the GIL); cancelling the awaiting task cancels the call and
raises asyncio.CancelledError, leaving no thread behind."""

from __future__ import annotations

from typing import Any, Optional

from . import _call
from ._lib import lib
from ._options import ScanOptions
from .client import ExonaClient, _arg
from .results import Scan, ScanResult, result_of


class AsyncExonaClient:
    """:class:`exona.ExonaClient` for asyncio: the same constructor (``api_key``, ``base_url``,
    settings) and the same calls, awaited. ``async with AsyncExonaClient() as client:``."""

    def __init__(self, api_key: Optional[str] = None, base_url: Optional[str] = None, **settings: Any) -> None:
        self.sync = ExonaClient(api_key, base_url, **settings)

    async def create_scan(self, company_name: str, company_website: str, **kwargs: Any) -> Scan:
        """:meth:`ExonaClient.create_scan`, awaited."""
        opts = ScanOptions(**kwargs)
        name, site = _arg(company_name, "company_name"), _arg(company_website, "company_website")
        return await _call.run_async(
            self.sync.calls, lambda p, o, out: lib.exona_scan_create(p, name, site, o, out), opts)

    async def get_scan(self, scan_id: str) -> Scan:
        """:meth:`ExonaClient.get_scan`, awaited."""
        sid = _arg(scan_id, "scan_id")
        return await _call.run_async(self.sync.calls, lambda p, _o, out: lib.exona_scan_get(p, sid, out),
                                     ScanOptions())

    async def scan_and_wait(self, company_name: str, company_website: str, poll_interval: Optional[float] = None,
                            timeout: Optional[float] = 300, **kwargs: Any) -> ScanResult:
        """:meth:`ExonaClient.scan_and_wait`, awaited."""
        return await self.sync.ascan_and_wait(company_name, company_website, poll_interval, timeout, **kwargs)

    async def wait(self, scan_id: str, timeout: Optional[float] = 300, **kwargs: Any) -> ScanResult:
        """:meth:`ExonaClient.wait`, awaited."""
        opts = ScanOptions(timeout=timeout, **kwargs)
        sid = _arg(scan_id, "scan_id")
        return result_of(await _call.run_async(
            self.sync.calls, lambda p, o, out: lib.exona_scan_wait(p, sid, o, out), opts))

    def close(self, timeout: Optional[float] = 15.0) -> None:
        """:meth:`ExonaClient.close`: pending awaits raise CancelledError."""
        self.sync.close(timeout)

    def cancel_all(self) -> int:
        """:meth:`ExonaClient.cancel_all`."""
        return self.sync.cancel_all()

    async def __aenter__(self) -> "AsyncExonaClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
