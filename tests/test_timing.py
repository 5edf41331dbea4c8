"""util/scheduler.py and the live view's Coalescer (views/live.py): calls on time, flushes at most once
per interval, and no thread kept busy once a stream pauses (every wake-up of a kernel's
thread costs CPU and a GIL hand-off while an answer streams)."""
from __future__ import annotations

import itertools
import threading
import time

from hermes_jupyter.util.scheduler import Scheduler, scheduler
from hermes_jupyter.views.live import Coalescer

from .conftest import wait_until

TIMEOUT = 10


def test_an_earlier_call_added_after_a_later_one_runs_first_and_on_time():
    # call_later wakes the loop only for a new earliest deadline: this one must still not wait for the later one.
    s = Scheduler(name="test-scheduler")
    try:
        ran: list[str] = []
        early = threading.Event()
        s.call_later(60, lambda: ran.append("late"))
        start = time.monotonic()
        s.call_later(0.02, lambda: (ran.append("early"), early.set()))
        assert early.wait(TIMEOUT)
        assert time.monotonic() - start < 5 and ran == ["early"]
        # A later deadline added while one is pending runs after it, in order.
        done = threading.Event()
        s.call_later(0.05, lambda: ran.append("a"))
        s.call_later(0.1, lambda: (ran.append("b"), done.set()))
        assert done.wait(TIMEOUT) and ran == ["early", "a", "b"]
    finally:
        s.shutdown()


class Recorder:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.flushed = threading.Event()

    def __call__(self) -> None:
        self.times.append(time.monotonic())
        self.flushed.set()


def test_the_first_mark_after_a_quiet_spell_flushes_at_once():
    flush = Recorder()
    c = Coalescer(30.0, flush)  # an interval far longer than the test: only the leading edge can flush
    start = time.monotonic()
    c.mark()
    assert flush.flushed.wait(TIMEOUT) and flush.times[0] - start < 5
    c.now()  # stop the tick


def test_a_steady_stream_flushes_once_per_interval_and_the_tick_stops_after_it():
    flush, interval = Recorder(), 0.05
    c = Coalescer(interval, flush)
    while len(flush.times) < 6:  # mark as fast as a stream of tokens would, until six flushes
        c.mark()
        threading.Event().wait(0.002)
    gaps = [b - a for a, b in itertools.pairwise(flush.times)]
    assert min(gaps) >= interval * 0.9, gaps  # never more often than the interval
    # Nothing marked any more: one tick finds nothing new and the ticking stops (no wake-ups while idle).
    wait_until(lambda: c._tick is None, TIMEOUT, "the tick to stop")
    count = len(flush.times)
    c.mark()  # the next mark starts again, at once or one interval after the last flush
    wait_until(lambda: len(flush.times) > count, TIMEOUT, "a flush after the pause")
    assert flush.times[-1] - flush.times[-2] >= interval * 0.9
    c.now()


def test_now_flushes_at_once_and_cancels_the_tick():
    flush = Recorder()
    c = Coalescer(0.05, flush)
    c.mark()
    assert flush.flushed.wait(TIMEOUT)
    c.mark()  # pending: a tick is due
    c.now()
    assert len(flush.times) == 2 and c._tick is None
    # The cancelled tick never flushes again: a call scheduled after it on the same scheduler runs, and no flush came.
    later = threading.Event()
    scheduler.call_later(0.1, later.set)
    assert later.wait(TIMEOUT) and len(flush.times) == 2


def test_a_tick_cancelled_after_it_was_due_starts_no_second_chain():
    # The scheduler's thread may already hold a tick when `now` cancels it; if a mark then starts a new tick, the
    # old one, run late, must neither flush nor schedule: two chains would flush twice an interval from then on.
    flush = Recorder()
    c = Coalescer(30.0, flush)
    c.mark()
    assert flush.flushed.wait(TIMEOUT)  # the leading tick ran and scheduled the next one
    c.mark()
    stale = c._ticks  # the pending tick's number
    c.now()
    c.mark()  # a new tick (due in 30 s)
    flushes, current = len(flush.times), c._ticks
    c._run(stale)  # the cancelled tick, run late by the scheduler's thread
    assert len(flush.times) == flushes and c._ticks == current
    c.now()
