"""The turn so far, for a notebook saved while it runs: a second output beside the live view.

A saved live view is a widget, and a page that opens the notebook after its kernel went away
cannot draw it ("Error displaying widget: model not found"; an untrusted notebook shows its
text/plain instead). So the cell holds a second output, the static rendering of the turn so
far with where the turn is kept and the command that shows it again (static.snapshot_bundle),
hidden while the live view draws (loader.js) and blanked when the turn ends.

It is brought up to date by display id, rarely: when the answer has doubled since the
last one (so all of them together cost about twice the final answer, however long it
grows), and on a change of structure (a tool card, an approval asked or answered, a question,
an error), at most one every STRUCTURE_GAP seconds.
"""
from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable

from hermes_jupyter import events as ev
from hermes_jupyter.util.scheduler import Scheduled, scheduler

GROWTH = 2.0  # the answer doubled since the last snapshot
FIRST = 1000  # characters of answer before the first snapshot with answer text
STRUCTURE_GAP = 2.0  # seconds

STRUCTURAL = (ev.TurnStarted, ev.ToolStarted, ev.ToolCompleted, ev.ApprovalRequested, ev.ApprovalResolved,
              ev.ClarifyRequested, ev.ClarifyResolved, ev.Error, ev.Cancelled, ev.Compressed)


class Snapshots:
    """Decides when to send the turn so far; `send()` renders and sends it (in the cell's context)."""

    def __init__(self, send: Callable[[], None]) -> None:
        self._send = send
        self._context = contextvars.copy_context()  # the cell's: a display update goes to its output
        self._lock = threading.Lock()
        self._sending = threading.RLock()
        self._chars = 0
        self._next = FIRST
        self._last = 0.0
        self._due: Scheduled | None = None
        self._closed = False
        self.sent = 0

    def grew(self, chars: int) -> None:
        """Answer text arrived (dispatcher thread, the hot path: a comparison)."""
        self._chars += chars
        if self._chars >= self._next:
            self._next = int(self._chars * GROWTH)
            with self._lock:
                self._soon(0.0)

    def event(self, event: ev.Event) -> None:
        if not isinstance(event, STRUCTURAL):
            return
        with self._lock:
            self._soon(max(0.0, self._last + STRUCTURE_GAP - time.monotonic()))

    def _soon(self, delay: float) -> None:
        """Send one on the scheduler's thread, not the dispatcher's: rendering the turn so far must not hold
        up the live view's events (under the lock)."""
        if not self._closed and self._due is None:
            self._due = scheduler.call_later(delay, self._later)

    def _later(self) -> None:
        with self._lock:
            self._due = None
        self._context.copy().run(self._now)

    def _now(self) -> None:
        with self._sending:  # one at a time, and none after close() returned
            with self._lock:
                if self._closed:
                    return
                self._last = time.monotonic()
            self.sent += 1
            self._send()

    def close(self) -> None:
        """The turn ended: nothing more is sent once this returns (the caller then blanks the output)."""
        with self._lock:
            self._closed = True
            due, self._due = self._due, None
        if due is not None:
            due.cancel()
        with self._sending:  # a snapshot being sent on the scheduler's thread is out before the blank
            pass
