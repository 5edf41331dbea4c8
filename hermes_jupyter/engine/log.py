"""A turn's event log: events numbered under one lock, delivered in order to every subscriber.

Callbacks arrive from several threads (the agent's, its streaming thread, timers,
clicks); ``emit`` numbers them under the log's lock. Delivery is in that order:
before the turn runs (queued, or cancelled while queued) the emitting thread
delivers; once the turn runs, a dispatcher (a job on a long-lived thread,
util/workers.py) delivers in a copy of the submitting cell's context, so output a
view writes lands in that cell.
Nothing is emitted after ``Done``.

Once ``Done`` has reached every subscriber the log keeps each run of consecutive
``Token`` (or ``Reasoning``) events as one string with their boundaries, seqs and
times (``_Run``): a finished turn of a long answer holds a few kilobytes instead of
an object per chunk, and ``events`` still gives the very same events.
"""
from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time
from array import array
from collections.abc import Callable, Iterable
from itertools import accumulate, pairwise
from typing import Any, TypeVar

from hermes_jupyter import events as ev
from hermes_jupyter.util import workers

log = logging.getLogger("hermes_jupyter")

Subscriber = Callable[[ev.Event], None]
E = TypeVar("E", bound=ev.Event)


def deliver(fn: Subscriber, event: ev.Event) -> None:
    try:
        fn(event)
    except Exception:  # a broken view must not stop the turn or the other views
        log.exception("subscriber %r failed on %s", fn, event.kind)


class _Run:
    """Consecutive Token or Reasoning events (seqs in a row), kept as one string.

    Per event it keeps the length of its text (1 byte while chunks are under 256 characters)
    and the milliseconds since the previous one (1 byte while they are under 256 ms, 2 while
    under a minute): a 500-token answer's run costs its text and ~1 KB, down from 4 KB.
    """

    __slots__ = ("cls", "first_seq", "sizes", "start_ms", "steps", "text", "times")

    def __init__(self, events: list[ev.Token] | list[ev.Reasoning]) -> None:
        self.cls = type(events[0])
        self.first_seq = events[0].seq
        self.text = "".join(e.text for e in events)
        sizes = [len(e.text) for e in events]
        self.sizes = array("B" if max(sizes) < 256 else "I", sizes)
        # Times are rounded to the millisecond (EventLog.emit): kept as steps of whole milliseconds
        # when that gives back the very same floats (always, for turns under 49 days); else as they are.
        ms = [round(e.time * 1000) for e in events]
        self.start_ms = ms[0]
        self.times: array[float] | None = None
        self.steps: array[int] | None = None
        steps = [b - a for a, b in pairwise(ms)]
        if all(0 <= m < 2**32 and m / 1000 == e.time for m, e in zip(ms, events, strict=True)) and \
                all(step >= 0 for step in steps):
            top = max(steps, default=0)
            self.steps = array("B" if top < 2**8 else "H" if top < 2**16 else "I", steps)
        else:
            self.times = array("d", (e.time for e in events))

    def expand(self) -> list[ev.Event]:
        if self.steps is not None:
            times = [m / 1000 for m in accumulate(self.steps, initial=self.start_ms)]
        else:
            assert self.times is not None
            times = list(self.times)
        out: list[ev.Event] = []
        start = 0
        for i, (size, at) in enumerate(zip(self.sizes, times, strict=True)):
            out.append(self.cls(text=self.text[start:start + size], seq=self.first_seq + i, time=at))
            start += size
        return out


def compact(events: Iterable[ev.Event]) -> list[ev.Event | _Run]:
    """Runs of two or more Token (or Reasoning) events in a row become one _Run each."""
    out: list[ev.Event | _Run] = []
    run: list[Any] = []
    for event in [*events, None]:
        if (run and type(event) is type(run[0]) and event is not None
                and event.seq == run[-1].seq + 1):
            run.append(event)
            continue
        if len(run) > 1:
            out.append(_Run(run))
        else:
            out.extend(run)
        run = [event] if type(event) in (ev.Token, ev.Reasoning) else []
        if event is not None and not run:
            out.append(event)
    done = out[-1] if out and isinstance(out[-1], ev.Done) else None
    if done is not None and done.text:
        for item in out:  # an answer streamed in one run is the Done's text too: keep one string, not two
            if isinstance(item, _Run) and item.cls is ev.Token and item.text == done.text:
                item.text = done.text
    return out


def expand(items: Iterable[ev.Event | _Run]) -> list[ev.Event]:
    out: list[ev.Event] = []
    for item in items:
        if isinstance(item, _Run):
            out.extend(item.expand())
        else:
            out.append(item)
    return out


# What every finished log holds instead of its own (see EventLog._let_go).
_FINISHED = threading.Condition()
_DELIVERED = threading.Event()
_DELIVERED.set()


class EventLog:
    def __init__(self, name: str, context: contextvars.Context) -> None:
        self.name = name
        self.started_at = time.monotonic()
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified on every event and delivery
        self._context = context
        self._events: list[ev.Event] = []
        self._compact: list[ev.Event | _Run] | None = None  # once Done is delivered: what is kept
        self._dispatched = 0  # events delivered to every subscriber
        self._subscribers: list[Subscriber] = []
        self._joining: list[Subscriber] = []  # subscribed while the dispatcher runs: it catches them up
        self._delivering = threading.RLock()  # one deliverer at a time keeps the order
        self._dispatching = False  # a dispatcher thread delivers (from start until Done is delivered)
        self._closed = False  # Done was emitted
        self._delivered = threading.Event()  # Done reached every subscriber

    # ----- reading -------------------------------------------------------------------------
    @property
    def events(self) -> list[ev.Event]:
        with self.lock:
            if self._compact is not None:
                return expand(self._compact)
            return list(self._events)

    @property
    def closed(self) -> bool:
        return self._closed

    def delivered(self, seq: int) -> bool:
        with self.lock:
            return self._dispatched >= seq

    def wait(self, timeout: float | None = None) -> bool:
        return self._delivered.wait(timeout)

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        changed = self.changed  # read once: a finished log swaps it for _FINISHED (_let_go)
        if changed is _FINISHED:  # closed: nothing to wait for
            return True
        with changed:
            return changed.wait_for(lambda: predicate() or self._closed, timeout)

    def notify(self) -> None:
        changed = self.changed
        if changed is _FINISHED:
            return
        with changed:
            changed.notify_all()

    # ----- writing -------------------------------------------------------------------------
    def emit(self, cls: type[E], **fields: Any) -> E | None:
        """Append an event (None once the log is closed: a late thread's event is dropped)."""
        with self.lock:
            if self._closed:
                return None
            event = cls(**fields, seq=len(self._events) + 1, time=round(time.monotonic() - self.started_at, 3))
            self._events.append(event)
            if isinstance(event, ev.Done):
                self._closed = True
            self.changed.notify_all()
            inline = not self._dispatching
        if inline:
            self._context.copy().run(self._pump)
        return event

    def subscribe(self, fn: Subscriber) -> None:
        """fn gets every event, in order, starting with those already delivered to the others.

        While the dispatcher runs it catches fn up itself, so subscribing never waits for a
        slow subscriber (a history save) on the cell's thread.
        """
        with self.lock:
            if self._dispatching and not self._delivered.is_set():
                self._joining.append(fn)
                self.changed.notify_all()
                return
        with self._delivering:
            past = self._past()
            for event in past:
                deliver(fn, event)
            with self.lock:
                if not self._delivered.is_set():  # a finished turn has no more events for it
                    self._subscribers.append(fn)

    def start(self) -> None:
        """The turn runs: from now on a dispatcher thread delivers."""
        with self.lock:
            if self._dispatching or self._delivered.is_set():
                return
            ctx = self._context.copy()
            self._dispatching = True
        workers.shared.run(f"hermes-dispatch-{self.name}", functools.partial(ctx.run, self._dispatch))

    def _past(self) -> list[ev.Event]:
        """The events delivered so far (all of them once they are kept compact)."""
        with self.lock:
            if self._compact is not None:
                return expand(self._compact)
            return self._events[: self._dispatched]

    def _keep_compact(self) -> None:
        """Done reached every subscriber: keep the events compact from now on, and let go of what
        only delivery needed (the views and writers, the cell's context): a finished turn keeps
        them alive for as long as the session lasts otherwise."""
        with self.lock:
            self._compact = compact(self._events)
            self._events = []
            self._subscribers = []
            self._context = contextvars.Context()
            self._dispatching = False  # (this thread: it is done once this delivery returns)

    # ----- delivery ------------------------------------------------------------------------
    def _pump(self) -> bool:
        """Deliver what is waiting; True once Done is delivered."""
        with self._delivering:
            while True:
                with self.lock:
                    joining, self._joining = self._joining, []
                    past = self._past() if joining else []
                    if not joining and self._dispatched >= len(self._events):
                        return self._delivered.is_set()
                    event = None if joining else self._events[self._dispatched]
                    subscribers = list(self._subscribers)
                if joining:
                    for fn in joining:
                        for earlier in past:
                            deliver(fn, earlier)
                    with self.lock:
                        self._subscribers.extend(joining)
                    continue
                assert event is not None
                for fn in subscribers:
                    deliver(fn, event)
                with self.lock:
                    self._dispatched += 1
                    done = isinstance(event, ev.Done)
                    if done:
                        self._keep_compact()
                        self._delivered.set()
                    self.changed.notify_all()
                    if done:
                        self._let_go()

    def _let_go(self) -> None:
        """After the waiters were woken: a finished log needs no condition or event of its own
        (~2.5 KB a turn). Anyone waiting from now on finds it closed and delivered at once;
        nothing ever waits on or notifies _FINISHED (a lock shared by every log could deadlock)."""
        self.changed = _FINISHED
        self._delivered = _DELIVERED

    def _dispatch(self) -> None:
        while not self._pump():
            changed = self.changed
            if changed is _FINISHED:
                return
            with changed:
                changed.wait_for(lambda: self._dispatched < len(self._events) or bool(self._joining))
