"""No turn outlives its kernel as `running`: the next kernel that opens the history marks it interrupted.

A real kernel runs a turn held at the scripted model's gate and is killed with SIGKILL (nothing of it
runs after); an engine in this process, another kernel in effect, then opens the same history.
"""
from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hermes_jupyter.engine import Engine
from hermes_jupyter.history import liveness
from hermes_jupyter.history.records import iso_time, settle_dead
from hermes_jupyter.history.store import HistoryStore
from hermes_jupyter.models.scripted import wait_held
from hermes_jupyter.views.export import session_markdown
from tests.kernel import Kernel

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"


def _turns(path: Path) -> list[dict]:
    return json.loads(path.read_text())["sessions"]["main"]["turns"]


def test_a_killed_kernels_turn_is_interrupted_by_the_next_kernel_and_a_live_ones_is_not(tmp_path):
    kernel = Kernel(tmp_path)
    try:
        setup = kernel.run(f"%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'\n"
                           "%config Hermes.notebook = 'nb.ipynb'")
        assert setup.reply["status"] == "ok", setup.error
        url = kernel.model_url(SCRIPT)
        ask = kernel.run("%hermes gated story")
        assert ask.reply["status"] == "ok", ask.error
        assert wait_held(url, "story", timeout=60)
        # The gate holds the model after its first words; wait until they have reached the turn.
        arrived = kernel.run("import threading as _t, time as _time\n_end = _time.monotonic() + 60\n"
                             "while not _hermes.text and _time.monotonic() < _end: _t.Event().wait(0.01)\n"
                             "print(bool(_hermes.text))")
        assert arrived.stdout == "True\n", arrived.error
        saved = kernel.run("_hermes.session.save()")  # what its periodic save would have written by now
        assert saved.reply["status"] == "ok", saved.error
        history = tmp_path / "nb.hermes.json"
        before = _turns(history)[0]
        assert before["status"] == "running" and before["answer"]
        assert before["kernel"]["pid"] != os.getpid()

        # Another kernel opens the file while the first still runs the turn: it is left running.
        alive = Engine()
        alive.attach_history(history)
        assert alive.session("main").saved_turns[0]["status"] == "running"
        assert _turns(history)[0]["status"] == "running"
    finally:
        kernel.manager.provisioner.process.send_signal(signal.SIGKILL)  # no atexit, no last save
        kernel.manager.provisioner.process.wait()  # reaped: its pid is free
        kernel.close()

    after = Engine()
    after.attach_history(history)
    turn = after.session("main").saved_turns[0]
    assert turn["status"] == "interrupted"
    assert turn["answer"] == before["answer"] and turn["prompt"] == "gated story"  # what it had is kept
    assert "kernel" not in turn and turn["ended"] == before["kernel"]["seen"]
    on_disk = _turns(history)[0]
    assert on_disk["status"] == "interrupted" and on_disk["answer"] == before["answer"]
    assert "*interrupted (the kernel stopped) · " in session_markdown(after.session("main"))

    # The kernel that was open all along learns it at its next save, and never writes `running` back.
    alive.session("main").save()
    assert _turns(history)[0]["status"] == "interrupted"


def _running(kernel: dict | None, started: str | None = None) -> dict:
    turn = {"id": "k-1", "prompt": "p", "status": "running", "started": started or iso_time(), "answer": "so far"}
    if kernel is not None:
        turn["kernel"] = kernel
    return turn


def test_liveness_of_each_kind_of_writer():
    engine = Engine()  # registered: this process runs its turns
    me = {**engine.writer, "seen": iso_time()}
    assert liveness.alive(_running(me))
    liveness.forget(engine.instance)  # its kernel died (in this process: its engine is gone)
    assert not liveness.alive(_running(me))

    parent = os.getppid()  # alive, but not the process that wrote the turn: the pid was reused
    assert liveness.alive(_running({**me, "pid": parent, "since": liveness._started(parent)}))
    assert not liveness.alive(_running({**me, "pid": parent, "since": 1.0}))

    now = datetime.now(UTC)
    hour_ago = iso_time((now - timedelta(seconds=liveness.STALE_AFTER + 60)).timestamp())
    other = {"instance": "x", "host": "elsewhere", "pid": 1, "since": 1.0}
    assert liveness.alive(_running({**other, "seen": iso_time()}))  # another machine, seen a moment ago
    assert not liveness.alive(_running({**other, "seen": hour_ago}))
    assert liveness.alive(_running(None))  # a file of an earlier version: no writer, started just now
    assert not liveness.alive(_running(None, started=hour_ago))

    turns, changed = settle_dead([_running({**other, "seen": hour_ago}), _running({**other, "seen": iso_time()})])
    assert changed and [t["status"] for t in turns] == ["interrupted", "running"]
    assert turns[0]["answer"] == "so far" and turns[0]["ended"] == hour_ago


def test_a_store_save_never_brings_back_running_over_interrupted(tmp_path):
    store = HistoryStore(tmp_path / "h.hermes.json")
    dead = _running({"instance": "x", "host": "elsewhere", "pid": 1, "since": 1.0,
                     "seen": iso_time((datetime.now(UTC) - timedelta(hours=2)).timestamp())})
    store.save_session({"name": "main", "messages": [], "turns": [dead]})
    store.save_session({"name": "main", "messages": [], "turns": []})  # any later save settles it
    assert [t["status"] for t in store.sessions()["main"]["turns"]] == ["interrupted"]
    store.save_session({"name": "main", "messages": [], "turns": [dead]})  # a stale copy of it, running
    assert [t["status"] for t in store.sessions()["main"]["turns"]] == ["interrupted"]


def test_a_writers_own_end_replaces_another_kernels_interrupted_guess():
    """Two kernels on one session: B marked A's running turn interrupted and got the lock first, though
    A built its final record (done) earlier; A's real end still replaces B's guess, and a stale running
    copy never replaces either."""
    from hermes_jupyter.history.merge import merge_sessions

    def record(turn: dict, updated: str) -> dict:
        return {"name": "main", "title": "", "created": "2026-01-01T00:00:00.000000Z", "updated": updated,
                "messages": [], "turns": [turn]}

    running = _running(None)
    interrupted = {**running, "status": "interrupted"}
    done = {**running, "status": "done", "message_count": 0}
    in_file = record(interrupted, "2026-01-01T00:00:02.000000Z")
    merged, _ = merge_sessions(in_file, record(done, "2026-01-01T00:00:01.000000Z"))
    assert [t["status"] for t in merged["turns"]] == ["done"]
    merged, _ = merge_sessions(in_file, record(running, "2026-01-01T00:00:03.000000Z"))
    assert [t["status"] for t in merged["turns"]] == ["interrupted"]


def test_a_running_turn_whose_start_is_not_a_time_we_wrote_is_not_declared_dead():
    assert liveness.alive(_running(None, started="1765148400.123456"))  # a float stamp, not our ISO time
