"""One timer thread for the whole extension.

Coalesced view flushes, countdown ticks, approval deadlines and the cancel grace
period are all "call this later"; a ``threading.Timer`` each would start a thread
per flush (about ten a second while an answer streams). Here one daemon thread
sleeps until the earliest deadline. Callbacks run on that thread and must be short.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("hermes_jupyter")


class Scheduled:
    """A pending call; ``cancel()`` is safe from any thread, at any time."""

    __slots__ = ("cancelled", "due", "fn")

    def __init__(self, due: float, fn: Callable[[], object]) -> None:
        self.due, self.fn, self.cancelled = due, fn, False

    def cancel(self) -> None:
        self.cancelled = True


class Repeating:
    """A repeating call (``Scheduler.every``); ``cancel()`` stops it."""

    __slots__ = ("cancelled", "current")

    def __init__(self) -> None:
        self.cancelled = False
        self.current: Scheduled | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self.current is not None:
            self.current.cancel()


class Scheduler:
    def __init__(self, name: str = "hermes-scheduler") -> None:
        self._name = name
        self._heap: list[tuple[float, int, Scheduled]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def call_later(self, delay: float, fn: Callable[[], object]) -> Scheduled:
        item = Scheduled(time.monotonic() + max(0.0, delay), fn)
        with self._wake:
            if self._stopped:  # unloaded: nothing runs later any more
                item.cancelled = True
                return item
            heapq.heappush(self._heap, (item.due, next(self._order), item))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            if self._heap[0][2] is item:  # a later deadline needs no wake-up: the loop sleeps until an earlier one
                self._wake.notify()
        return item

    def every(self, interval: float, fn: Callable[[], bool]) -> Repeating:
        """Call ``fn`` every ``interval`` seconds for as long as it returns True."""
        handle = Repeating()

        def tick() -> None:
            if not handle.cancelled and fn():
                handle.current = self.call_later(interval, tick)

        handle.current = self.call_later(interval, tick)
        return handle

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                if self._stopped:
                    return
                _, _, item = heapq.heappop(self._heap)
            if item.cancelled:
                continue
            try:
                item.fn()
            except Exception:  # one broken callback must not stop every timer of the kernel
                log.exception("scheduled call failed")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def shutdown(self) -> None:
        """Stop the thread; pending calls are dropped. A later call_later starts a new thread."""
        with self._wake:
            self._stopped = True
            self._heap.clear()
            thread, self._thread = self._thread, None
            self._wake.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)
        with self._wake:
            self._stopped = False


scheduler = Scheduler()
"""The process's scheduler (shut down by the extension's unload)."""
