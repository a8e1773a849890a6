"""libexona for Python: the Exona AI-risk scanning API, with the guide's ``ExonaClient``
interface ("Polling for Results") and libexona underneath: one budget per key across threads
and processes, learned polling, no 429 storms, no twin scans, resumable portfolios.

    from exona import ExonaClient

    client = ExonaClient()            # EXONA_API_KEY; base_url from EXONA_BASE_URL
    result = client.scan_and_wait("Acme AI Ltd", "https://acme.ai")
    print(result["risk_assessment"]["overall_risk_level"])
"""

from ._lib import source as library
from .aio import AsyncExonaClient
from .batch import Outcome, ScanMany
from .client import ExonaClient, version
from .errors import (
    AmbiguousCreateError,
    AuthenticationError,
    BadRequestError,
    CancelledError,
    Error,
    InternalError,
    InvalidArgumentError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitedError,
    ScanFailedError,
    ScanTimeoutError,
    ServerError,
)
from .errors import TimeoutError  # noqa: A004 - exona.TimeoutError only: `import *` must not shadow the built-in
from .results import Scan, ScanResult

__version__ = "0.1.0"

__all__ = [
    "AmbiguousCreateError", "AsyncExonaClient", "AuthenticationError", "BadRequestError", "CancelledError",
    "Error", "ExonaClient", "InternalError", "InvalidArgumentError", "NetworkError", "NotFoundError",
    "Outcome", "PermissionDeniedError", "ProtocolError", "RateLimitedError", "Scan", "ScanFailedError",
    "ScanMany", "ScanResult", "ScanTimeoutError", "ServerError", "library", "version",
]
