"""scan_many: many scans over libexona's batch (one engine, one budget, every row ending with
exactly one outcome)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from . import errors
from ._lib import ffi, lib
from ._options import ScanOptions
from ._strings import c_string
from .results import ScanResult, result_of, take

if TYPE_CHECKING:
    from .client import ExonaClient

Company = Union[Tuple[str, str], Mapping[str, str]]
StatusFn = Callable[[Dict[str, Any]], Any]

_EXONA_OK, _EXONA_ERR_NOT_FOUND, _EXONA_ERR_TIMEOUT = 0, 5, 10


@dataclass
class Outcome:
    """How one company's scan ended: ``result`` (its :class:`exona.ScanResult`) or ``error``
    (an :class:`exona.Error`; its ``scan_id`` is set whenever a scan exists)."""

    index: int
    company_name: str
    company_website: str
    result: Optional[ScanResult] = None
    error: Optional[errors.Error] = field(default=None)

    @property
    def ok(self) -> bool:
        return self.error is None


def _company(item: Company, i: int) -> Tuple[str, str]:
    if isinstance(item, Mapping):
        name = item.get("name", item.get("company_name"))
        site = item.get("website", item.get("company_website"))
    elif isinstance(item, (tuple, list)) and len(item) == 2:
        name, site = item
    else:
        name = site = None
    if not isinstance(name, str) or not isinstance(site, str):
        raise errors.InvalidArgumentError(
            f"company {i + 1} must be a (name, website) pair of strings or a dict with name and website, "
            f"not {item!r}")
    # Every row is checked before the batch starts, so a bad row sends nothing at all.
    c_string(name, f"company {i + 1}'s name")
    c_string(site, f"company {i + 1}'s website")
    return name, site


class ScanMany:
    """The iterator :meth:`ExonaClient.scan_many` returns: yields an :class:`Outcome` per
    company as it finishes. ``status()`` says where the run stands; ``close()`` (or leaving a
    ``with`` block, or Ctrl-C while iterating) cancels what is left and frees the batch."""

    def __init__(self, client: "ExonaClient", companies: Iterable[Company], *, max_age_days: Optional[int],
                 journal: Optional[Union[str, "os.PathLike[str]"]], on_progress: Optional[StatusFn],
                 reconcile: bool = False, **kwargs: Any) -> None:
        self._client = client  # kept alive for as long as the batch runs on it
        self._on_progress = on_progress
        self._rows: List[Tuple[str, str]] = [_company(c, i) for i, c in enumerate(companies)]
        with client.calls.using() as client_ptr:
            # The batch holds its own reference to the client from here on.
            self._ptr = lib.exona_batch_new(client_ptr)
        self._left = len(self._rows)
        self._last_progress = 0.0
        self._final: Dict[str, Any] = {}
        try:
            if journal is not None:
                path = os.fspath(journal)
                if lib.exona_batch_set_journal(self._ptr, c_string(path, "journal")):
                    raise errors.InvalidArgumentError(
                        f"{path} cannot be the batch's journal: it is in use by another run, not a "
                        "journal of these rows, or not writable (EXONA_LOG=warn says which)")
                lib.exona_batch_set_reconcile(self._ptr, 1 if reconcile else 0)
            index = ffi.new("size_t *")
            for i, (name, site) in enumerate(self._rows):
                opts = ScanOptions(max_age_days=max_age_days, **kwargs)
                try:
                    rc = lib.exona_batch_add(self._ptr, c_string(name, f"company {i + 1}'s name"),
                                             c_string(site, f"company {i + 1}'s website"), opts.ptr, index)
                finally:
                    opts.free()
                if rc:
                    raise errors.InvalidArgumentError(f"company {i + 1} ({name!r}, {site!r}) could not be added")
        except BaseException:
            self.close()
            raise

    def status(self) -> Dict[str, Any]:
        """Where the run stands: total, done, completed, failed, in_flight, queued, requests
        (sent on the key by this process since the run began), budget_left (requests the key's
        window allows now) and eta (seconds until the last row should end; None when unknown).
        No request is sent."""
        if self._ptr is None:
            return dict(self._final)
        s = ffi.new("exona_batch_status *")
        lib.exona_batch_get_status(self._ptr, s)
        return {
            "total": len(self._rows), "done": int(s.completed + s.failed), "completed": int(s.completed),
            "failed": int(s.failed), "in_flight": int(s.in_flight), "queued": int(s.queued),
            "requests": int(s.requests), "budget_left": int(s.budget_left),
            "eta": None if s.eta_seconds < 0 else float(s.eta_seconds),
        }

    def _progress(self, now: float) -> None:
        if self._on_progress is not None:
            self._last_progress = now
            self._on_progress(self.status())

    def __iter__(self) -> Iterator[Outcome]:
        return self

    def __next__(self) -> Outcome:
        if self._ptr is None:
            raise StopIteration
        out = ffi.new("exona_result **")
        try:
            while True:
                # 100 ms slices: the GIL is released inside, and Ctrl-C is seen between them.
                rc = lib.exona_batch_next(self._ptr, 100, out)
                now = time.monotonic()
                if rc == _EXONA_OK:
                    index = int(lib.exona_result_index(out[0]))
                    scan, error = take(out[0])
                    self._left -= 1
                    name, site = self._rows[index]
                    outcome = Outcome(index, name, site, result_of(scan) if scan is not None and error is None
                                      else None, error)
                    self._progress(now)
                    return outcome
                if rc == _EXONA_ERR_NOT_FOUND:
                    self.close()
                    raise StopIteration
                if rc != _EXONA_ERR_TIMEOUT:
                    raise errors.InternalError(f"exona_batch_next returned {rc}")
                if now - self._last_progress >= 1.0:
                    self._progress(now)
        except StopIteration:
            raise
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Cancels the rows still running (each ends as cancelled) and frees the batch. A
        journaled run can be resumed later with the same companies."""
        if self._ptr is not None:
            lib.exona_batch_cancel_all(self._ptr)
            self._final = self.status()  # what status() says once the batch is gone
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            lib.exona_batch_free(ptr)

    def __enter__(self) -> "ScanMany":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass
