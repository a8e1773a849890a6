"""Python keyword arguments to libexona's C option handles, checked with messages that name
the argument."""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import errors
from ._lib import ffi, lib
from ._strings import c_string

MODES = {"balanced": 0, "latency": 1, "frugal": 2, "adaptive": 3}
MODE_NAMES = {v: k for k, v in MODES.items()}
REASONS = ["create", "schedule", "retry_after", "backoff", "rate_limit", "budget", "final_poll",
           "other_create"]

Questionnaire = Union[Mapping[str, str], Iterable[Union[Mapping[str, str], Tuple[str, str]]]]
ProgressFn = Callable[[Dict[str, Any]], Any]


def _ms(seconds: float, what: str) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0 \
            or math.isinf(seconds):
        raise errors.InvalidArgumentError(f"{what} must be a positive number of seconds, not {seconds!r}")
    return max(1, math.ceil(seconds * 1000))


def _mode(mode: str, what: str) -> int:
    if mode not in MODES:
        raise errors.InvalidArgumentError(f"{what} must be one of {', '.join(MODES)}, not {mode!r}")
    return MODES[mode]


def _questions(data: Questionnaire) -> List[Tuple[str, str]]:
    """The guide's questionnaire_data: a list of {"question", "answer"} dicts (the API's own
    shape), a list of (question, answer) pairs, or a dict of question -> answer."""
    items = data.items() if isinstance(data, Mapping) else data
    pairs = []
    for i, item in enumerate(items, 1):
        if isinstance(item, Mapping):
            if "question" not in item or "answer" not in item:
                raise errors.InvalidArgumentError(
                    f"questionnaire_data item {i} needs both 'question' and 'answer'")
            item = (item["question"], item["answer"])
        if not (isinstance(item, Sequence) and len(item) == 2
                and all(isinstance(x, str) for x in item)):
            raise errors.InvalidArgumentError(
                f"questionnaire_data item {i} must be a (question, answer) pair of strings")
        pairs.append((item[0], item[1]))
    return pairs


class ScanOptions:
    """An exona_scan_options handle and what must live as long as it (the progress callback)."""

    def __init__(self, *, max_age_days: Optional[int] = None, force_refresh: bool = False,
                 include_field_citations: bool = False, questionnaire_data: Optional[Questionnaire] = None,
                 timeout: Optional[float] = None, mode: Optional[str] = None, thrift: Optional[float] = None,
                 on_progress: Optional[ProgressFn] = None) -> None:
        self.ptr = lib.exona_scan_options_new()
        self.callback = None
        # An exception raised by on_progress (on a libexona thread): it cancels the call and
        # is raised by the call itself, rather than being lost in a C callback.
        self.callback_error: Optional[BaseException] = None
        try:
            if max_age_days is not None:
                ok = isinstance(max_age_days, int) and not isinstance(max_age_days, bool) \
                    and 0 <= max_age_days <= 365
                if not ok or lib.exona_scan_options_set_max_age_days(self.ptr, max_age_days):
                    raise errors.InvalidArgumentError(f"max_age_days must be 0 to 365, not {max_age_days!r}")
            lib.exona_scan_options_set_force_refresh(self.ptr, bool(force_refresh))
            lib.exona_scan_options_set_include_field_citations(self.ptr, bool(include_field_citations))
            for i, (question, answer) in enumerate(_questions(questionnaire_data or []), 1):
                q = c_string(question, f"questionnaire_data item {i}'s question")
                a = c_string(answer, f"questionnaire_data item {i}'s answer")
                if lib.exona_scan_options_add_question(self.ptr, q, a):
                    raise errors.InvalidArgumentError(
                        f"questionnaire_data item {i} is over the API's limits "
                        "(50 items, 5,000 characters per answer, 20,000 in all)")
            if timeout is not None:
                lib.exona_scan_options_set_timeout_ms(self.ptr, _ms(timeout, "timeout"))
            if mode is not None:
                lib.exona_scan_options_set_poll_mode(self.ptr, _mode(mode, "mode"))
            if thrift is not None:
                if isinstance(thrift, bool) or not isinstance(thrift, (int, float)) or not 0 <= thrift <= 1:
                    raise errors.InvalidArgumentError(f"thrift must be a number from 0 to 1, not {thrift!r}")
                lib.exona_scan_options_set_thrift_permille(self.ptr, round(thrift * 1000))
            if on_progress is not None:
                self.callback = _progress_callback(on_progress, self)
                lib.exona_scan_options_set_progress(self.ptr, self.callback, ffi.NULL)
        except BaseException:
            self.free()
            raise

    def free(self) -> None:
        if self.ptr is not None:
            lib.exona_scan_options_free(self.ptr)
            self.ptr = None

    def __del__(self) -> None:
        self.free()


def _progress_callback(fn: ProgressFn, owner: ScanOptions) -> Any:
    """A C progress callback calling ``fn`` with each event as a dict. A False return (not
    None) cancels the call; so does an exception, kept in ``owner`` for the call to raise."""

    def call(event: Any, _user: Any) -> int:
        try:
            return deliver(event[0])
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread
            owner.callback_error = e
            return 1

    def deliver(e: Any) -> int:
        keep_going = fn({
            "scan_id": None if e.scan_id == ffi.NULL else ffi.string(e.scan_id).decode(),
            "status": None if e.status == ffi.NULL else ffi.string(e.status).decode(),
            "reason": REASONS[e.reason] if 0 <= e.reason < len(REASONS) else str(e.reason),
            "wait": e.wait_ms / 1000.0,
            "requests_used": e.requests_used,
            "budget_left": e.budget_left,
            "regime": MODE_NAMES.get(e.regime, str(e.regime)),
            "thrift": e.thrift_permille / 1000.0,
        })
        return 1 if keep_going is False else 0

    return ffi.callback("exona_progress_fn", call, error=1)


def client_options(*, connect_timeout: Optional[float] = None, attempt_timeout: Optional[float] = None,
                   user_agent_suffix: Optional[str] = None, proxy: Optional[str] = None,
                   ca_bundle: Optional[str] = None, poll_mode: Optional[str] = None,
                   expected_duration: Optional[Tuple[float, float]] = None,
                   state_dir: Optional[str] = None, state_url: Optional[str] = None) -> Any:
    """An exona_client_options handle; the caller frees it with exona_client_options_free."""
    o = lib.exona_client_options_new()

    def check(rc: int, what: str) -> None:
        if rc:
            raise errors.InvalidArgumentError(what)

    try:
        if connect_timeout is not None:
            lib.exona_client_options_set_connect_timeout_ms(o, _ms(connect_timeout, "connect_timeout"))
        if attempt_timeout is not None:
            lib.exona_client_options_set_attempt_timeout_ms(o, _ms(attempt_timeout, "attempt_timeout"))
        if user_agent_suffix is not None:
            check(lib.exona_client_options_set_user_agent_suffix(o, c_string(str(user_agent_suffix), "user_agent_suffix")),
                  f"user_agent_suffix must be printable ASCII, not {user_agent_suffix!r}")
        if proxy is not None:
            check(lib.exona_client_options_set_proxy(o, c_string(str(proxy), "proxy")),
                  f'proxy must be a URL (or "" for none), not {proxy!r}')
        if ca_bundle is not None:
            check(lib.exona_client_options_set_ca_bundle_file(o, c_string(str(ca_bundle), "ca_bundle")),
                  f"ca_bundle must be a readable PEM file, not {ca_bundle!r}")
        if state_dir is not None:
            check(lib.exona_client_options_set_state_dir(o, c_string(str(state_dir), "state_dir")),
                  f'state_dir must be a directory path (or "off"), not {state_dir!r}')
        if state_url is not None:
            # The message never repeats the URL: it may hold a password.
            check(lib.exona_client_options_set_state_url(o, c_string(str(state_url), "state_url")),
                  'state_url must be a postgresql:// URL (or "off")')
        if poll_mode is not None:
            lib.exona_client_options_set_poll_mode(o, _mode(poll_mode, "poll_mode"))
        if expected_duration is not None:
            try:
                low, high = expected_duration
                rc = lib.exona_client_options_set_expected_duration_ms(
                    o, _ms(low, "expected_duration"), _ms(high, "expected_duration"))
            except (TypeError, ValueError, errors.Error):
                rc = 1
            check(rc, f"expected_duration must be (min, max) seconds, 0 < min <= max, not {expected_duration!r}")
    except BaseException:
        lib.exona_client_options_free(o)
        raise
    return o
