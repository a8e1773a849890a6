"""Runs one blocking libexona call so that the caller stays interruptible.

The C call runs on a helper thread (cffi releases the GIL while it is in C, so other Python
threads run). The calling thread waits on an event, which Ctrl-C interrupts at once; then the
call is cancelled through its token (libexona ends it within milliseconds), the helper thread
is joined and its result freed: a cancelled call leaves no thread and no allocation behind.
The asyncio form waits on a future instead, and task cancellation does the same.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Optional

from .results import Scan, take
from ._lib import ffi, lib
from ._options import ScanOptions

# start(options_ptr, out_ptr) -> code: one of exona_scan_and_wait, exona_scan_create, ...
Start = Callable[[Any, Any], int]


class _Pending:
    """A C call in flight on its helper thread."""

    def __init__(self, start: Start, options: ScanOptions) -> None:
        self.options = options
        self.token = lib.exona_cancel_new()
        lib.exona_scan_options_set_cancel(options.ptr, self.token)
        self.out = ffi.new("exona_result **")
        self.done = threading.Event()
        self.on_done: Optional[Callable[[], None]] = None
        self._lock = threading.Lock()

        def work() -> None:
            try:
                start(options.ptr, self.out)
            finally:
                with self._lock:
                    self.done.set()
                    notify = self.on_done
                if notify is not None:
                    notify()

        self.thread = threading.Thread(target=work, name="exona-call", daemon=True)
        self.thread.start()

    def notify_when_done(self, notify: Callable[[], None]) -> None:
        with self._lock:
            if not self.done.is_set():
                self.on_done = notify
                return
        notify()

    def abandon(self) -> None:
        """Cancels the call, waits for its thread and frees what it made."""
        lib.exona_cancel(self.token)
        self.thread.join()
        if self.out[0] != ffi.NULL:
            lib.exona_result_free(self.out[0])
            self.out[0] = ffi.NULL
        self.free()

    def finish(self) -> Scan:
        """The call's outcome, once done: its scan, or its error raised."""
        self.thread.join()
        ptr, self.out[0] = self.out[0], ffi.NULL
        self.free()
        scan, error = take(ptr)
        if self.options.callback_error is not None:
            raise self.options.callback_error from error
        if error is not None:
            raise error
        assert scan is not None
        return scan

    def free(self) -> None:
        if self.token is not None:
            self.options.free()
            lib.exona_cancel_free(self.token)
            self.token = None


def run(start: Start, options: ScanOptions) -> Scan:
    """Runs the call and waits for it; Ctrl-C (or any exception raised in this thread while it
    waits) cancels it."""
    pending = _Pending(start, options)
    try:
        pending.done.wait()
    except BaseException:
        pending.abandon()
        raise
    return pending.finish()


async def run_async(start: Start, options: ScanOptions) -> Scan:
    """Runs the call and awaits it; cancelling the awaiting task cancels the call."""
    loop = asyncio.get_running_loop()
    finished = loop.create_future()

    def wake() -> None:
        loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(None))

    pending = _Pending(start, options)
    pending.notify_when_done(wake)
    try:
        await asyncio.shield(finished)
    except BaseException:
        lib.exona_cancel(pending.token)
        # The thread ends within milliseconds of the cancel: wait for it without blocking the
        # loop, then free. A second cancellation meanwhile only ends this wait sooner.
        try:
            await asyncio.shield(finished)
        finally:
            pending.abandon()
        raise
    return pending.finish()
