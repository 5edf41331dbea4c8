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


def test_a_run_keeps_its_texts_and_times_exactly_in_a_few_bytes_an_event():
    from hermes_jupyter.engine.log import compact, expand

    def stamped(n, gap=0.0137, size=3):  # as EventLog.emit stamps them: rounded to the millisecond
        return [ev.Token(text=f"w{i}".ljust(size, "x"), seq=i + 1, time=round(i * gap + 12345.6789, 3))
                for i in range(n)]

    cases = [
        (stamped(500), "B", "B", 500 * 2),  # the usual run: 1 byte of size, 1 of time step an event
        (stamped(50, gap=0.3), "B", "H", None),  # 256 ms or more between two chunks
        (stamped(50, size=300), "I", "B", None),  # chunks of 256 characters or more
        (stamped(50, gap=70.0), "B", "I", None),  # a minute or more between two chunks
        ([ev.Token(text="x", seq=i + 1, time=i / 7) for i in range(5)], "B", None, None),  # not milliseconds
        ([ev.Token(text="x", seq=i + 1, time=5 - i) for i in range(5)], "B", None, None),  # back in time
    ]
    for events, sizes, steps, room in cases:
        (kept,) = compact(events)
        assert kept.sizes.typecode == sizes
        assert (kept.steps.typecode if kept.steps is not None else None) == steps
        assert (kept.times is None) == (steps is not None)
        assert expand([kept]) == events  # the very same texts, seqs and times
        if room is not None:
            assert kept.sizes.itemsize * len(kept.sizes) + kept.steps.itemsize * len(kept.steps) < room


def test_an_answer_streamed_in_one_run_is_kept_once():
    """The Done event carries the answer too: a finished turn keeps one string of it, not two (a long session keeps every turn)."""
    log = EventLog("t", contextvars.copy_context())
    log.start()
    chunks = [f"word{i} " for i in range(300)]
    for chunk in chunks:
        log.emit(ev.Token, text=chunk)
    answer = "".join(chunks)
    log.emit(ev.Done, status="done", text=answer)
    assert log.wait(30)
    run, done = log._compact
    assert run.text is done.text is answer
    assert [e.text for e in log.events[:-1]] == chunks  # the same chunks on reading
