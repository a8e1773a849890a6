"""Runs one blocking libexona call so that the caller stays interruptible, and keeps the
client's handle alive while any call uses it.

The C call runs on a helper thread (cffi releases the GIL while it is in C, so other Python
threads run). The calling thread waits on an event, which Ctrl-C interrupts at once; then the
call is cancelled through its token (libexona ends it within milliseconds). What the call
made (its result, options and token) belongs to whichever side finishes last: a caller that
gives up hands it to the helper thread, which frees it when the C call returns, so a second
Ctrl-C during the clean-up leaks nothing. The asyncio form waits on a future instead, and task
cancellation does the same.

:class:`Calls` is a client's handle and the calls in flight on it. A call enters before its
helper thread starts and leaves when the C call has returned; ``close()`` refuses new calls,
cancels those in flight, and the handle is freed by whichever comes last: ``close()`` or the
last call to leave. So no call ever reaches C with a freed handle.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from typing import Any, Callable, Optional, Set

from . import errors
from ._lib import ffi, lib
from ._options import ScanOptions
from .results import Scan, take

# start(client_ptr, options_ptr, out_ptr) -> code: exona_scan_and_wait, exona_scan_create, ...
Start = Callable[[Any, Any, Any], int]

CLOSED = "the client is closed: its calls were cancelled, and it takes no new ones"

# Every live Calls, so that a forked child can reset their locks (see _after_fork_in_child).
_ALL: "weakref.WeakSet[Calls]" = weakref.WeakSet()


class Calls:
    """A client's C handle and the calls in flight on it."""

    def __init__(self, ptr: Any, free: Callable[[Any], None]) -> None:
        self._ptr = ptr
        self._free = free
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending: Set["_Pending"] = set()
        self._closed = False
        _ALL.add(self)

    def enter(self, pending: Optional["_Pending"]) -> Any:
        """The handle, for a call that has not started yet; CancelledError once closed."""
        with self._lock:
            if self._closed:
                raise errors.CancelledError(CLOSED)
            if pending is not None:
                self._pending.add(pending)
            return self._ptr

    def leave(self, pending: "_Pending") -> None:
        """A call's C function has returned: the handle may go if the client is closed."""
        with self._lock:
            self._pending.discard(pending)
            ptr = self._take_if_done()
            self._idle.notify_all()
        if ptr is not None:
            self._free(ptr)

    def using(self) -> "_Using":
        """``with calls.using() as ptr:`` for a short call on this thread (not cancellable)."""
        return _Using(self)

    def cancel_all(self) -> int:
        """Cancels every call in flight (each raises CancelledError, or KeyboardInterrupt /
        asyncio.CancelledError where its caller was interrupted); the client stays usable.
        Returns how many were cancelled."""
        with self._lock:
            pending = list(self._pending)
        for p in pending:
            p.cancel()
        return len(pending)

    def close(self, timeout: Optional[float]) -> None:
        """Refuses new calls, cancels those in flight, waits up to ``timeout`` seconds (None:
        as long as they take) for them to return, and frees the handle once none uses it."""
        with self._lock:
            self._closed = True
            pending = list(self._pending)
        for p in pending:
            p.cancel()
        with self._lock:
            if timeout is None or timeout > 0:
                self._idle.wait_for(lambda: not self._pending, timeout)
            ptr = self._take_if_done()
        if ptr is not None:
            self._free(ptr)

    @property
    def closed(self) -> bool:
        return self._closed

    def in_flight(self) -> int:
        with self._lock:
            return len(self._pending)

    def _take_if_done(self) -> Any:
        # Under the lock: the handle, once closed and unused; it is freed once, by the caller.
        if self._closed and not self._pending and self._ptr is not None:
            ptr, self._ptr = self._ptr, None
            return ptr
        return None

    def _after_fork_in_child(self) -> None:
        # The parent's calls run on threads the child does not have, and a lock one of them
        # held at the fork would never be let go: the child starts with fresh ones. The handle
        # itself is the child's to use (libexona makes the child its own engine).
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = set()


def _after_fork_in_child() -> None:
    for calls in list(_ALL):
        calls._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Using:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.marker = _Marker()

    def __enter__(self) -> Any:
        return self.calls.enter(self.marker)  # type: ignore[arg-type]

    def __exit__(self, *exc: Any) -> None:
        self.calls.leave(self.marker)  # type: ignore[arg-type]


class _Marker:
    """A short call's place among the calls in flight (nothing to cancel)."""

    def cancel(self) -> None:
        pass


class _Pending:
    """A C call in flight on its helper thread."""

    def __init__(self, calls: Calls, start: Start, options: ScanOptions) -> None:
        self.options = options
        self.token = lib.exona_cancel_new()
        lib.exona_scan_options_set_cancel(options.ptr, self.token)
        self.out = ffi.new("exona_result **")
        self.done = threading.Event()
        self.on_done: Optional[Callable[[], None]] = None
        self._lock = threading.Lock()
        # Set when the caller gave up: the helper thread then frees what the call made.
        self._abandoned = False
        try:
            ptr = calls.enter(self)
        except BaseException:
            self.free()
            raise

        def work() -> None:
            try:
                start(ptr, options.ptr, self.out)
            finally:
                calls.leave(self)
                with self._lock:
                    self.done.set()
                    notify = self.on_done
                    abandoned = self._abandoned
                if abandoned:
                    self._free_result()
                    self.free()
                if notify is not None:
                    notify()

        self.thread = threading.Thread(target=work, name="exona-call", daemon=True)
        try:
            self.thread.start()
        except BaseException:
            calls.leave(self)
            self.free()
            raise

    def cancel(self) -> None:
        with self._lock:
            if self.token is not None:
                lib.exona_cancel(self.token)

    def notify_when_done(self, notify: Callable[[], None]) -> None:
        with self._lock:
            if not self.done.is_set():
                self.on_done = notify
                return
        notify()

    def abandon(self) -> None:
        """Cancels the call; what it made is freed now if it has returned, else by its thread
        when it does. Then waits for the thread (an interruption of that wait leaks nothing)."""
        with self._lock:
            if self.token is not None:
                lib.exona_cancel(self.token)
            finished = self.done.is_set()
            self._abandoned = not finished
        if finished:
            self._free_result()
            self.free()
        self.thread.join()

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

    def _free_result(self) -> None:
        if self.out[0] != ffi.NULL:
            lib.exona_result_free(self.out[0])
            self.out[0] = ffi.NULL

    def free(self) -> None:
        with self._lock:
            token, self.token = self.token, None
        if token is not None:
            self.options.free()
            lib.exona_cancel_free(token)


def run(calls: Calls, start: Start, options: ScanOptions) -> Scan:
    """Runs the call and waits for it; Ctrl-C (or any exception raised in this thread while it
    waits) cancels it."""
    pending = _Pending(calls, start, options)
    try:
        pending.done.wait()
    except BaseException:
        pending.abandon()
        raise
    return pending.finish()


async def run_async(calls: Calls, start: Start, options: ScanOptions) -> Scan:
    """Runs the call and awaits it; cancelling the awaiting task cancels the call."""
    loop = asyncio.get_running_loop()
    finished = loop.create_future()

    def wake() -> None:
        loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(None))

    pending = _Pending(calls, start, options)
    pending.notify_when_done(wake)
    try:
        await asyncio.shield(finished)
    except BaseException:
        pending.cancel()
        # The thread ends within milliseconds of the cancel: wait for it without blocking the
        # loop, then free. A second cancellation meanwhile only ends this wait sooner.
        try:
            await asyncio.shield(finished)
        finally:
            pending.abandon()
        raise
    return pending.finish()
