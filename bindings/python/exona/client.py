"""ExonaClient: the guide's client ("Polling for Results"), with libexona underneath."""

from __future__ import annotations

from typing import Any, Iterable, Optional

from . import _call, errors
from ._lib import ffi, lib
from ._options import ProgressFn, Questionnaire, ScanOptions, client_options
from .batch import Company, ScanMany
from ._strings import c_string
from .results import Scan, ScanResult, result_of, take


def _arg(value: Optional[str], what: str) -> Any:
    """A string argument for C (None: NULL); a NUL in it is refused, never cut off."""
    if value is None:
        return ffi.NULL
    return c_string(value, what)


class ExonaClient:
    """A client of the Exona API for one key, safe to share between threads (and cheap to
    share: one client keeps one budget for the key, one connection pool, one engine).

    ``api_key``: the key; None reads ``EXONA_API_KEY``. ``base_url``: None reads
    ``EXONA_BASE_URL``, else the production URL (``https://platform.exonalab.com/api/v1``).

    Settings (all optional, as in the other bindings):
        state_dir: the state store the processes of this host share (the key's budget, scans
            in flight, results, learned durations); default ``EXONA_STATE_DIR``; with neither,
            no store is used and no file is written (as in every binding; the ``exona``
            command alone keeps one by default); ``"off"`` for none.
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
    message names which), a string holding a NUL character among them; nothing is sent by the
    constructor.

    A client made before ``fork()`` (gunicorn ``--preload``, Celery prefork,
    ``multiprocessing``) works in the child: the library gives the child its own engine and
    connections on its first call. ``close()`` and ``cancel_all()`` end calls running in other
    threads with :class:`exona.CancelledError`.
    """

    def __init__(self, api_key: Optional[str] = None, base_url: Optional[str] = None, **settings: Any) -> None:
        self._calls: Optional[_call.Calls] = None
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
        self._calls = _call.Calls(out[0], lib.exona_client_free)

    @property
    def calls(self) -> "_call.Calls":
        """The C handle and the calls in flight on it (internal)."""
        if self._calls is None:
            raise errors.CancelledError(_call.CLOSED)
        return self._calls

    def close(self, timeout: Optional[float] = 15.0) -> None:
        """Closes the client (also done by ``with`` and by garbage collection): new calls raise
        :class:`exona.CancelledError`, calls still running in other threads are cancelled
        (each raises CancelledError; a scan already created keeps its ``scan_id``), and the
        library's handle is freed once none of them uses it. Waits up to ``timeout`` seconds
        (None: as long as it takes) for them to return; a call whose create request is on the
        wire first takes its answer, so that no scan id is lost. Safe from any thread, and from
        a signal handler. Idempotent."""
        if self._calls is not None:
            self._calls.close(timeout)

    def cancel_all(self) -> int:
        """Cancels every call running on this client, in any thread (a thread pool's too), and
        returns how many; each raises :class:`exona.CancelledError`. The client stays open.
        Safe from a signal handler: how a script stops its workers on Ctrl-C."""
        return self._calls.cancel_all() if self._calls is not None else 0

    def __enter__(self) -> "ExonaClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close(timeout=0)
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
        return _call.run(self.calls, lambda p, o, out: lib.exona_scan_create(p, name, site, o, out), opts)

    def get_scan(self, scan_id: str) -> Scan:
        """``GET /scans/{id}``: the scan object, whatever its status. One request."""
        sid = _arg(scan_id, "scan_id")
        return _call.run(self.calls, lambda p, _o, out: lib.exona_scan_get(p, sid, out), ScanOptions())

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
        return result_of(_call.run(self.calls, lambda p, o, out: lib.exona_scan_and_wait(p, name, site, o, out),
                                   opts))

    def wait(self, scan_id: str, timeout: Optional[float] = 300, **kwargs: Any) -> ScanResult:
        """Waits for an existing scan (no new create): how a program resumes a scan whose id
        it kept, e.g. from a :class:`exona.ScanTimeoutError`. Returns its ``result`` as
        :meth:`scan_and_wait` does; ``mode``, ``thrift`` and ``on_progress`` as there."""
        opts = ScanOptions(timeout=timeout, **kwargs)
        sid = _arg(scan_id, "scan_id")
        return result_of(_call.run(self.calls, lambda p, o, out: lib.exona_scan_wait(p, sid, o, out), opts))

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
        scan = await _call.run_async(self.calls, lambda p, o, out: lib.exona_scan_and_wait(p, name, site, o, out),
                                     opts)
        return result_of(scan)


def version() -> str:
    """libexona's version."""
    return ffi.string(lib.exona_version()).decode()

