"""What a finished turn keeps: what its handle and the history need, not every token
event, and not the agent that ran it. With the real AIAgent; only the model is scripted."""
from __future__ import annotations

import gc
import types

from hermes_jupyter import events as ev
from hermes_jupyter.engine import Engine, Session

from .conftest import turn_jobs_done

TIMEOUT = 60
# Where the walk from a turn stops: shared state that other turns own too, and code.
SHARED = (Session, Engine, types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)


def run(engine, prompt, **kw):
    turn = engine.submit(prompt, **kw)
    assert turn.wait(TIMEOUT) and turn.status == "done", turn.status
    return turn


def kept_by(root: object) -> list[object]:
    """Every object reachable from root, not entering what is shared with other turns."""
    seen, todo, out = {id(root)}, [root], []
    while todo:
        obj = todo.pop()
        out.append(obj)
        for ref in gc.get_referents(obj):
            if id(ref) not in seen and not isinstance(ref, SHARED):
                seen.add(id(ref))
                todo.append(ref)
    return out


def live_agents() -> int:
    from run_agent import AIAgent
    gc.collect()
    return sum(isinstance(o, AIAgent) for o in gc.get_objects())


def test_a_finished_turn_keeps_its_answer_as_text_not_its_chunks(engine, tmp_path):
    turn = run(engine, "many chunks", cwd=tmp_path)
    chunks = [e.text for e in turn.events if isinstance(e, ev.Token)]
    assert len(chunks) > 200 and "".join(chunks) == turn.text  # streamed in many small pieces
    del chunks  # (the events just read are rebuilt from the kept string on each reading)
    kept = kept_by(turn)
    strings = [o for o in kept if isinstance(o, str)]
    assert len(strings) < 100, f"{len(strings)} strings, e.g. {strings[:10]}"
    assert not any(type(o).__name__ == "AIAgent" for o in kept)


def test_the_agent_of_a_finished_turn_is_freed_once_the_session_builds_another(engine, tmp_path):
    before = live_agents()
    # Another approval policy is another configuration: each of these turns builds its own agent.
    for i, policy in enumerate(["deny", "ask", "deny", "ask"]):
        run(engine, "say hello", cwd=tmp_path, session="rebuilt", approvals=policy)
        # Only the session's warm agent (for its next turn) is left, however many turns ran.
        assert live_agents() <= before + 1, f"after turn {i + 1}"


def test_an_ended_turn_hands_freed_memory_back_once_its_views_are_done(engine, tmp_path, monkeypatch):
    """glibc keeps what a turn's threads freed in their arenas (RSS grew 140-470 KiB a turn): malloc_trim
    gives it back, on the turn's thread, after Done has reached every subscriber (the history's save too)."""
    import threading

    from hermes_jupyter.util import memory

    calls: list[bool] = []
    released = threading.Event()
    real = memory.release_free_memory

    def release() -> bool:
        ended = threading.current_thread().name.removeprefix("hermes-turn-")  # the turn's own thread
        this = next(t for s in engine.sessions.values() for t in s.turns if t.id == ended)
        calls.append(this._events.wait(0))  # Done delivered everywhere by then
        released.set()
        return real()

    monkeypatch.setattr(memory, "release_free_memory", release)
    run(engine, "hello", cwd=tmp_path)
    assert released.wait(TIMEOUT) and calls == [True]
    monkeypatch.setattr(engine.settings, "release_memory", False)  # Hermes.release_memory: the user's opt-out
    second = run(engine, "hello", cwd=tmp_path)
    turn_jobs_done(second.id)  # past the point where it would have released
    assert calls == [True]


def test_memory_is_released_on_glibc():
    import platform

    from hermes_jupyter.util.memory import release_free_memory

    assert release_free_memory() is (platform.libc_ver()[0] == "glibc")


def test_an_ended_turn_prepares_the_next_turns_history_so_its_start_copies_nothing(engine, tmp_path, monkeypatch):
    """Sanitizing and copying the conversation took ~3 ms at 1,000 turns between a turn's
    start and its request. An ended turn does it on its own thread, once nobody waits for it; the next
    turn's start only compares the conversation with what was prepared."""
    import sys

    from hermes_jupyter.safety.sanitize import sanitize_history

    first = run(engine, "hello", cwd=tmp_path)
    session = engine.session()
    turn_jobs_done(first.id)  # it has prepared by the time its job ends
    cache = session._sanitize
    assert cache._ready is not None
    callers: list[str] = []
    real = cache._sanitized
    monkeypatch.setattr(cache, "_sanitized", lambda *a: callers.append(sys._getframe(1).f_code.co_name) or real(*a))
    handed: list[list] = []
    real_call = type(cache).__call__
    monkeypatch.setattr(type(cache), "__call__", lambda self, m: handed.append(real_call(self, m)) or handed[-1])
    conversation = session.messages_snapshot()
    second = run(engine, "hello again", cwd=tmp_path)
    assert handed and handed[0] == sanitize_history(conversation)  # what the second turn was given
    assert "__call__" not in callers  # nothing sanitized (or copied) at its start
    assert len(second.session.messages) > len(conversation)


def test_a_finished_turn_lets_go_of_its_views_and_the_context_of_its_cell(engine, tmp_path):
    """Its subscribers (the live view, the history writer) and the cell's context copies (with the
    events that held its start) were kept for the rest of the session: ~8 KB a turn."""
    import contextvars

    class View:  # a subscriber, as the views are
        def __init__(self) -> None:
            self.seen = 0

        def __call__(self, event: ev.Event) -> None:
            self.seen += 1

    class Held:  # something the cell's context holds
        pass

    view, held = View(), Held()
    marker: contextvars.ContextVar[Held] = contextvars.ContextVar("marker")

    def submit():
        marker.set(held)
        return engine.submit("say hello", cwd=tmp_path, subscribers=[view])

    turn = contextvars.copy_context().run(submit)
    assert turn.wait(TIMEOUT) and turn.status == "done" and turn._events.wait(TIMEOUT)
    import threading
    turn_jobs_done(turn.id)  # their own copies of the context go with the turn's jobs
    assert view.seen >= 3  # it got the turn's events
    kept = kept_by(turn)
    assert not any(o is view or o is held or isinstance(o, threading.Thread) for o in kept)
    late = View()
    turn.subscribe(late)  # a view of the finished turn gets every event, and is not kept either
    assert late.seen == view.seen and not any(o is late for o in kept_by(turn))


def test_a_finished_turns_log_holds_no_condition_or_event_of_its_own(engine, tmp_path):
    """~2.5 KB a turn: waiting on a finished turn needs neither, and returns at once."""
    import threading

    from hermes_jupyter.engine import log

    turn = run(engine, "say hello", cwd=tmp_path)
    assert turn._events.wait(TIMEOUT)
    shared = (log._FINISHED, log._DELIVERED, log._DELIVERED._cond)
    own = [o for o in kept_by(turn) if isinstance(o, (threading.Condition, threading.Event))
           and not any(o is s for s in shared)]
    assert not own, own
    assert turn.wait(0) and turn._events.wait_for(lambda: False, 0)
    turn._events.notify()  # nothing to wake, and no lock shared with other turns is taken
