"""ExonaClient: the guide's client ("Polling for Results"), with libexona underneath."""

from __future__ import annotations

import threading
from typing import Any, Iterable, Optional

from . import _call, errors
from ._lib import ffi, lib
from ._options import ProgressFn, Questionnaire, ScanOptions, client_options
from .batch import Company, ScanMany
from .results import Scan, ScanResult, result_of, take


def _arg(value: Optional[str], what: str) -> Any:
    if value is None:
        return ffi.NULL
    if not isinstance(value, str):
        raise errors.InvalidArgumentError(f"{what} must be a string, not {type(value).__name__}")
    return value.encode("utf-8")


class ExonaClient:
    """A client of the Exona API for one key, safe to share between threads (and cheap to
    share: one client keeps one budget for the key, one connection pool, one engine).

    ``api_key``: the key; None reads ``EXONA_API_KEY``. ``base_url``: None reads
    ``EXONA_BASE_URL``, else the production URL (``https://platform.exonalab.com/api/v1``).

    Settings (all optional, as in the other bindings):
        state_dir: the state store the processes of this host share (the key's budget, scans
            in flight, results, learned durations); default ``EXONA_STATE_DIR`` or the user's
            cache directory; ``"off"`` for none.
        state_url: the fleet store: a ``postgresql://`` URL shared by the hosts of a fleet on
            one key, in place of ``state_dir``'s file; default ``EXONA_STATE_URL``. Its
            password never appears in a message.
        poll_mode: ``"adaptive"`` (the default: polls as the key's budget allows),
            ``"balanced"``, ``"latency"`` or ``"frugal"``; default ``EXONA_POLL_MODE``.
        connect_timeout, attempt_timeout: seconds, per connection and per request attempt.
        proxy: a proxy URL (``""`` for none, whatever the environment says).
        ca_bundle: a PEM file of extra trusted certificates.
        user_agent_suffix: appended to the User-Agent (your product and version).
        expected_duration: ``(min, max)`` seconds a scan takes, before any is learned.

    Raises :class:`exona.InvalidArgumentError` for a key, URL or setting it refuses (the
    message names which); nothing is sent by the constructor.
    """

    def __init__(self, api_key: Optional[str] = None, base_url: Optional[str] = None, **settings: Any) -> None:
        self._ptr = None
        self._lock = threading.Lock()
        opts = client_options(**settings)
        out = ffi.new("exona_client **")
        error = ffi.new("exona_result **")
        try:
            rc = lib.exona_client_create_with_options(_arg(api_key, "api_key"), _arg(base_url, "base_url"),
                                                      opts, out, error)
        finally:
            lib.exona_client_options_free(opts)
        if rc != 0:
            _, err = take(error[0])
            raise err if err is not None else errors.InternalError("the client could not be made")
        self._ptr = out[0]

    @property
    def ptr(self) -> Any:
        ptr = self._ptr
        if ptr is None:
            raise errors.InvalidArgumentError("the client is closed")
        return ptr

    def close(self) -> None:
        """Frees the client now (also done by ``with`` and by garbage collection). Calls of
        other threads still running on it must have returned first."""
        with self._lock:
            ptr, self._ptr = self._ptr, None
        if ptr is not None:
            lib.exona_client_free(ptr)

    def __enter__(self) -> "ExonaClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass

    # The guide's calls.

    def create_scan(self, company_name: str, company_website: str, *, max_age_days: Optional[int] = None,
                    force_refresh: bool = False, include_field_citations: bool = False,
                    questionnaire_data: Optional[Questionnaire] = None) -> Scan:
        """``POST /scans``: creates a scan and returns the scan object at once (``status``
        "processing", or a cached "completed" one when ``max_age_days`` allows).

        Spends one request, or none when the state store already holds a completed scan of the
        company within ``max_age_days``. Waits for the key's budget rather than meeting a 429.
        """
        opts = ScanOptions(max_age_days=max_age_days, force_refresh=force_refresh,
                           include_field_citations=include_field_citations,
                           questionnaire_data=questionnaire_data)
        name, site = _arg(company_name, "company_name"), _arg(company_website, "company_website")
        return _call.run(lambda o, out, p=self.ptr: lib.exona_scan_create(p, name, site, o, out), opts)

    def get_scan(self, scan_id: str) -> Scan:
        """``GET /scans/{id}``: the scan object, whatever its status. One request."""
        sid = _arg(scan_id, "scan_id")
        return _call.run(lambda _o, out, p=self.ptr: lib.exona_scan_get(p, sid, out), ScanOptions())

    def scan_and_wait(self, company_name: str, company_website: str, poll_interval: Optional[float] = None,
                      timeout: Optional[float] = 300, **kwargs: Any) -> ScanResult:
        """Creates a scan and waits until it completes; returns its ``result`` (a dict with
        ``enrichment``, ``risk_assessment``, ``matched_incidents``; the whole scan object is
        ``.scan``).

        Keyword arguments: ``max_age_days``, ``force_refresh``, ``include_field_citations``,
        ``questionnaire_data`` as in :meth:`create_scan`; ``mode`` (a poll mode for this call),
        ``thrift`` (0 to 1: 0 polls like latency mode, 1 like frugal), ``on_progress`` (called
        with a dict per wait: scan_id, status, reason, wait, requests_used, budget_left; a
        False return cancels).

        ``timeout``: seconds until :class:`exona.ScanTimeoutError` (a ``TimeoutError``; the scan
        goes on, resume it with :meth:`wait`); None for the library's default (300 s).
        ``poll_interval`` is accepted for the guide's signature and not used: libexona learns
        when scans end and polls as the key's budget allows, never sooner than Retry-After.

        Spends one create and the polls its plan needs (about 2 to 5 requests per scan, never a
        429); none when the state store answers. Raises :class:`exona.ScanFailedError` (a
        ``RuntimeError``) when the scan fails; KeyboardInterrupt cancels the wait at once.
        """
        del poll_interval
        opts = ScanOptions(timeout=timeout, **kwargs)
        name, site = _arg(company_name, "company_name"), _arg(company_website, "company_website")
        return result_of(_call.run(lambda o, out, p=self.ptr: lib.exona_scan_and_wait(p, name, site, o, out), opts))

    def wait(self, scan_id: str, timeout: Optional[float] = 300, **kwargs: Any) -> ScanResult:
        """Waits for an existing scan (no new create): how a program resumes a scan whose id
        it kept, e.g. from a :class:`exona.ScanTimeoutError`. Returns its ``result`` as
        :meth:`scan_and_wait` does; ``mode``, ``thrift`` and ``on_progress`` as there."""
        opts = ScanOptions(timeout=timeout, **kwargs)
        sid = _arg(scan_id, "scan_id")
        return result_of(_call.run(lambda o, out, p=self.ptr: lib.exona_scan_wait(p, sid, o, out), opts))

    # What the guide's loop lacks.

    def scan_many(self, companies: Iterable[Company], max_age_days: Optional[int] = None,
                  journal: Optional[str] = None, on_progress: Optional[Any] = None,
                  **kwargs: Any) -> ScanMany:
        """Scans many companies at once (the guide's ThreadPoolExecutor example in one call)
        and yields an :class:`exona.Outcome` for each as it finishes, in order of finishing.

        ``companies``: (name, website) pairs, or dicts with ``name``/``website`` (or
        ``company_name``/``company_website``). ``journal``: a file that makes the run
        resumable: run again with the same companies after a crash or Ctrl-C, and finished
        rows cost nothing, created ones are waited for by id, no company is created twice.
        ``on_progress``: called with the batch's status dict (done, in_flight, queued,
        requests, budget_left, eta) after each outcome and about once a second.
        Other keyword arguments (``force_refresh``, ``mode``, ...) apply to every row.

        The rows share the key's budget: creates are paced so that none meets a 429, and polls
        follow the budget. Ctrl-C, ``close()`` or leaving the loop early cancels the rest.
        """
        return ScanMany(self, companies, max_age_days=max_age_days, journal=journal,
                        on_progress=on_progress, **kwargs)

    async def ascan_and_wait(self, company_name: str, company_website: str,
                             poll_interval: Optional[float] = None, timeout: Optional[float] = 300,
                             **kwargs: Any) -> ScanResult:
        """:meth:`scan_and_wait` for asyncio: awaiting it lets the loop run; cancelling the
        task cancels the wait (and raises asyncio.CancelledError)."""
        del poll_interval
        opts = ScanOptions(timeout=timeout, **kwargs)
        name, site = _arg(company_name, "company_name"), _arg(company_website, "company_website")
        scan = await _call.run_async(lambda o, out, p=self.ptr: lib.exona_scan_and_wait(p, name, site, o, out), opts)
        return result_of(scan)


def version() -> str:
    """libexona's version."""
    return ffi.string(lib.exona_version()).decode()

