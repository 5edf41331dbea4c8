"""A turn's event log: events numbered under one lock, delivered in order to every subscriber.

Callbacks arrive from several threads (the agent's, its streaming thread, timers,
clicks); ``emit`` numbers them under the log's lock. Delivery is in that order:
before the turn runs (queued, or cancelled while queued) the emitting thread
delivers; once the turn runs, a dispatcher thread started in a copy of the
submitting cell's context delivers, so output a view writes lands in that cell.
Nothing is emitted after ``Done``.

Once ``Done`` has reached every subscriber the log keeps each run of consecutive
``Token`` (or ``Reasoning``) events as one string with their boundaries, seqs and
times (``_Run``): a finished turn of a long answer holds a few kilobytes instead of
an object per chunk, and ``events`` still gives the very same events.
"""
from __future__ import annotations

import contextvars
import logging
import threading
import time
from array import array
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from hermes_jupyter import events as ev

log = logging.getLogger("hermes_jupyter")

Subscriber = Callable[[ev.Event], None]
E = TypeVar("E", bound=ev.Event)


def deliver(fn: Subscriber, event: ev.Event) -> None:
    try:
        fn(event)
    except Exception:  # a broken view must not stop the turn or the other views
        log.exception("subscriber %r failed on %s", fn, event.kind)


class _Run:
    """Consecutive Token or Reasoning events (seqs in a row), kept as one string."""

    __slots__ = ("cls", "ends", "first_seq", "text", "times")

    def __init__(self, events: list[ev.Token] | list[ev.Reasoning]) -> None:
        self.cls = type(events[0])
        self.first_seq = events[0].seq
        self.text = "".join(e.text for e in events)
        self.ends = array("I")  # where each event's text ends in self.text (4 bytes an event, not 8)
        end = 0
        for e in events:
            end += len(e.text)
            self.ends.append(end)
        # Times are rounded to the millisecond (EventLog.emit): kept as whole milliseconds, 4 bytes an
        # event, when that gives back the very same floats (always, for turns under 49 days).
        ms = [round(e.time * 1000) for e in events]
        self.times: array[int] | array[float]
        if all(0 <= m < 2**32 and m / 1000 == e.time for m, e in zip(ms, events, strict=True)):
            self.times = array("I", ms)
        else:
            self.times = array("d", (e.time for e in events))

    def expand(self) -> list[ev.Event]:
        out: list[ev.Event] = []
        start = 0
        scale = 1000 if self.times.typecode == "I" else 1
        for i, (end, at) in enumerate(zip(self.ends, self.times, strict=True)):
            out.append(self.cls(text=self.text[start:end], seq=self.first_seq + i, time=at / scale))
            start = end
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
    return out


def expand(items: Iterable[ev.Event | _Run]) -> list[ev.Event]:
    out: list[ev.Event] = []
    for item in items:
        if isinstance(item, _Run):
            out.extend(item.expand())
        else:
            out.append(item)
    return out


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
        self._dispatcher: threading.Thread | None = None
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
        with self.changed:
            return self.changed.wait_for(lambda: predicate() or self._closed, timeout)

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

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
            inline = self._dispatcher is None
        if inline:
            self._context.copy().run(self._pump)
        return event

    def subscribe(self, fn: Subscriber) -> None:
        """fn gets every event, in order, starting with those already delivered to the others.

        While the dispatcher runs it catches fn up itself, so subscribing never waits for a
        slow subscriber (a history save) on the cell's thread.
        """
        with self.lock:
            if self._dispatcher is not None and not self._delivered.is_set():
                self._joining.append(fn)
                self.changed.notify_all()
                return
        with self._delivering:
            past = self._past()
            for event in past:
                deliver(fn, event)
            with self.lock:
                self._subscribers.append(fn)

    def start(self) -> None:
        """The turn runs: from now on a dispatcher thread delivers."""
        with self.lock:
            if self._dispatcher is not None or self._delivered.is_set():
                return
            ctx = self._context.copy()
            self._dispatcher = threading.Thread(target=ctx.run, args=(self._dispatch,),
                                                name=f"hermes-dispatch-{self.name}", daemon=True)
        self._dispatcher.start()

    def _past(self) -> list[ev.Event]:
        """The events delivered so far (all of them once they are kept compact)."""
        with self.lock:
            if self._compact is not None:
                return expand(self._compact)
            return self._events[: self._dispatched]

    def _keep_compact(self) -> None:
        """Done reached every subscriber: keep the events compact from now on."""
        with self.lock:
            self._compact = compact(self._events)
            self._events = []

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
                    if isinstance(event, ev.Done):
                        self._keep_compact()
                        self._delivered.set()
                    self.changed.notify_all()

    def _dispatch(self) -> None:
        while not self._pump():
            with self.changed:
                self.changed.wait_for(lambda: self._dispatched < len(self._events) or bool(self._joining))
