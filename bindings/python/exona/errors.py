"""The exceptions: one class per libexona code, all under :class:`Error`.

Each also subclasses the built-in exception that code written against the guide's client (or
Python in general) already catches: a failed scan is a :class:`RuntimeError` (the guide raises
one built from the scan's error), a deadline a :class:`TimeoutError`, an argument the library
refuses a :class:`ValueError`, a network failure a :class:`ConnectionError`.
"""

from __future__ import annotations

import builtins
from typing import Any, Dict, Optional, Type


class Error(Exception):
    """A call that did not give its result.

    Attributes:
        code: the libexona code's short name ("timeout", "scan_failed", ...).
        code_name: its C name ("EXONA_ERR_TIMEOUT", ...).
        message: what went wrong, in words (the API key never appears in it).
        scan_id: the scan's id whenever a scan exists: resume it with ``client.wait(scan_id)``.
        request_id: the API's request id, for Exona support.
        http_status: the HTTP status of the answer that ended the call (0 when none).
        api_code: the API's error code ("INVALID_WEBSITE", "WEBSITE_UNREACHABLE", ...).
        hint, param: the API's hint and the parameter it names.
        retry_after: seconds the API asked to wait, when it did.
        scan: the scan object (a dict) when the API sent one, e.g. a failed scan's.
    """

    code = "internal"
    code_name = "EXONA_ERR_INTERNAL"

    def __init__(self, message: str, *, code_name: Optional[str] = None, scan_id: Optional[str] = None,
                 request_id: Optional[str] = None, http_status: int = 0, api_code: Optional[str] = None,
                 hint: Optional[str] = None, param: Optional[str] = None,
                 retry_after: Optional[float] = None, scan: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.message = message
        if code_name:
            self.code_name = code_name
        self.scan_id = scan_id
        self.request_id = request_id
        self.http_status = http_status
        self.api_code = api_code
        self.hint = hint
        self.param = param
        self.retry_after = retry_after
        self.scan = scan

    def __str__(self) -> str:
        extra = [f"scan {self.scan_id}"] if self.scan_id else []
        if self.request_id:
            extra.append(f"request {self.request_id}")
        return f"{self.message} ({', '.join(extra)})" if extra else self.message


class InvalidArgumentError(Error, ValueError):
    """An argument the library refused before sending anything (EXONA_ERR_INVALID_ARGUMENT)."""
    code, code_name = "invalid_argument", "EXONA_ERR_INVALID_ARGUMENT"


class AuthenticationError(Error):
    """The API key was refused (401; EXONA_ERR_AUTHENTICATION)."""
    code, code_name = "authentication", "EXONA_ERR_AUTHENTICATION"


class PermissionDeniedError(Error, builtins.PermissionError):
    """The key may not do this, e.g. from this IP address (403; EXONA_ERR_PERMISSION)."""
    code, code_name = "permission", "EXONA_ERR_PERMISSION"


class BadRequestError(Error, ValueError):
    """The API refused the request's content (400; EXONA_ERR_BAD_REQUEST): see ``api_code``
    and ``param``."""
    code, code_name = "bad_request", "EXONA_ERR_BAD_REQUEST"


class NotFoundError(Error, LookupError):
    """No scan with this id under this key (404; EXONA_ERR_NOT_FOUND)."""
    code, code_name = "not_found", "EXONA_ERR_NOT_FOUND"


class RateLimitedError(Error):
    """The key's budget stayed spent past the call's limit (EXONA_ERR_RATE_LIMITED)."""
    code, code_name = "rate_limited", "EXONA_ERR_RATE_LIMITED"


class ServerError(Error):
    """The API kept failing with 5xx answers (EXONA_ERR_SERVER)."""
    code, code_name = "server", "EXONA_ERR_SERVER"


class NetworkError(Error, builtins.ConnectionError):
    """The API could not be reached (EXONA_ERR_NETWORK)."""
    code, code_name = "network", "EXONA_ERR_NETWORK"


class ProtocolError(Error):
    """The API answered something the library cannot read (EXONA_ERR_PROTOCOL)."""
    code, code_name = "protocol", "EXONA_ERR_PROTOCOL"


class ScanTimeoutError(Error, builtins.TimeoutError):
    """The call's deadline passed while the scan was still processing (EXONA_ERR_TIMEOUT). A
    soft error: the scan goes on; ``scan_id`` resumes it with ``client.wait``."""
    code, code_name = "timeout", "EXONA_ERR_TIMEOUT"


class CancelledError(Error):
    """The call was cancelled, e.g. by an ``on_progress`` callback returning False
    (EXONA_ERR_CANCELLED). Ctrl-C raises KeyboardInterrupt and asyncio cancellation
    asyncio.CancelledError instead, as Python code expects."""
    code, code_name = "cancelled", "EXONA_ERR_CANCELLED"


class ScanFailedError(Error, RuntimeError):
    """The scan ended as failed (EXONA_ERR_SCAN_FAILED): ``api_code`` says why
    ("WEBSITE_UNREACHABLE", ...), ``scan`` holds the scan object with its ``error``."""
    code, code_name = "scan_failed", "EXONA_ERR_SCAN_FAILED"


class AmbiguousCreateError(Error):
    """A create was sent but its answer never came, so whether a scan exists is unknown
    (EXONA_ERR_AMBIGUOUS_CREATE). Asking again with ``max_age_days`` finds it if it completed."""
    code, code_name = "ambiguous_create", "EXONA_ERR_AMBIGUOUS_CREATE"


class InternalError(Error):
    """A bug in libexona (EXONA_ERR_INTERNAL); please report it."""
    code, code_name = "internal", "EXONA_ERR_INTERNAL"


# The guide's and Python's names, for code that catches them by those names.
TimeoutError = ScanTimeoutError  # noqa: A001 - exona.TimeoutError, a builtins.TimeoutError

BY_CODE: Dict[int, Type[Error]] = {
    1: InvalidArgumentError, 2: AuthenticationError, 3: PermissionDeniedError, 4: BadRequestError,
    5: NotFoundError, 6: RateLimitedError, 7: ServerError, 8: NetworkError, 9: ProtocolError,
    10: ScanTimeoutError, 11: CancelledError, 12: ScanFailedError, 13: AmbiguousCreateError,
    14: InternalError,
}


def for_code(code: int) -> Type[Error]:
    return BY_CODE.get(code, InternalError)
