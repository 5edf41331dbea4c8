"""A finished turn keeps its events compact, and every reader still gets the very same events."""
from __future__ import annotations

import contextvars

from hermes_jupyter import events as ev
from hermes_jupyter.engine.log import EventLog


def test_a_finished_turn_keeps_runs_of_chunks_as_one_string():
    log = EventLog("t", contextvars.copy_context())
    early: list[ev.Event] = []
    log.subscribe(early.append)
    log.start()
    log.emit(ev.TurnStarted, session="s", prompt="p", model="m", cwd="/")
    for i in range(500):
        log.emit(ev.Token, text=f"w{i} ")
    log.emit(ev.Reasoning, text="think ")
    log.emit(ev.Reasoning, text="more")
    log.emit(ev.SegmentEnd)
    log.emit(ev.Token, text="alone")
    log.emit(ev.ToolStarted, call_id="c", name="terminal", args={})
    log.emit(ev.Token, text="a")
    log.emit(ev.Token, text="")  # an empty chunk keeps its place too
    log.emit(ev.Token, text="b")
    log.emit(ev.Done, status="done", text="x")
    assert log.wait(30)

    events = log.events
    assert events == early and len(events) == 510  # the same events, seqs and times
    assert [e.seq for e in events] == list(range(1, 511))
    kept = log._compact
    assert kept is not None and len(kept) == 8  # started, 500 tokens, 2 reasoning, end, token, tool, 3 tokens, done
    late: list[ev.Event] = []
    log.subscribe(late.append)  # a subscriber after the end gets them all, expanded
    assert late == events and log.delivered(510)


def test_a_run_keeps_its_times_exactly_in_half_the_room():
    from hermes_jupyter.engine.log import compact, expand

    # As EventLog.emit stamps them (rounded to the millisecond): kept as 4-byte milliseconds.
    stamped = [ev.Token(text=f"w{i} ", seq=i + 1, time=round(i * 0.0137 + 12345.6789, 3)) for i in range(300)]
    # Not milliseconds (events built elsewhere): kept as they are.
    raw = [ev.Token(text="x", seq=i + 1, time=i / 7) for i in range(5)]
    for events, typecode in ((stamped, "I"), (raw, "d")):
        (kept,) = compact(events)
        assert kept.times.typecode == typecode and kept.ends.itemsize == 4
        assert expand([kept]) == events  # the very same texts, seqs and times
