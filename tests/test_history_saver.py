"""History saves run beside the turn, never in its way, and a finished turn is on disk when wait() returns.

The real engine and agent, the scripted model over HTTP; the only probe is a gate put in
front of the store's save (it holds a save until the test opens it), so what waits for
a save and what does not is seen without timing anything.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

from hermes_jupyter import events as ev
from hermes_jupyter.engine import Engine

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"
TIMEOUT = 60


def test_a_slow_save_holds_up_neither_the_answer_nor_the_cell(tmp_path):
    engine = Engine()
    engine.settings.model = f"scripted:{SCRIPT}"
    engine.attach_history(tmp_path / "h.hermes.json")
    store = engine.store
    assert store is not None
    gate, savers = threading.Event(), []
    save = store.save_session

    def gated(record):
        savers.append(threading.current_thread().name)
        assert gate.wait(TIMEOUT), "the test never opened the gate"
        save(record)

    store.save_session = gated
    seen: list[ev.Event] = []
    first_token = threading.Event()

    def watch(event: ev.Event) -> None:
        seen.append(event)
        if isinstance(event, ev.Token):
            first_token.set()

    turn = engine.submit("say hello", cwd=tmp_path, subscribers=[watch])
    try:
        # The save at TurnStarted is held, yet the answer streams to the subscribers.
        assert first_token.wait(TIMEOUT)
        # The turn ends, but Done is not delivered (and wait() does not return) until it is saved.
        turn.wait_for(lambda: False, TIMEOUT)  # returns once Done is emitted
        assert turn.status == "done"
        assert not turn.wait(0) and not any(isinstance(e, ev.Done) for e in seen)
    finally:
        gate.set()
    assert turn.wait(TIMEOUT) and isinstance(seen[-1], ev.Done)
    saved = json.loads(store.path.read_text())["sessions"]["main"]
    assert [(t["id"], t["status"]) for t in saved["turns"]] == [(turn.id, "done")]
    assert saved["turns"][0]["answer"] == turn.text and saved["messages"][-1]["content"] == turn.text
    assert savers and all(name.startswith("hermes-history-") for name in savers)  # never the dispatcher
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.hermes.json"]  # no lock file left


def test_saves_asked_while_one_runs_are_one_save(tmp_path):
    engine = Engine()
    engine.attach_history(tmp_path / "h.hermes.json")
    store = engine.store
    assert store is not None
    session = engine.session("main")
    gate, entered, saves = threading.Event(), threading.Event(), []
    save = store.save_session

    def gated(record):
        saves.append(record)
        entered.set()
        assert gate.wait(TIMEOUT)
        save(record)

    store.save_session = gated
    first = session.saver.request()
    assert entered.wait(TIMEOUT)
    session.title = "asked while a save ran"
    tickets = [session.saver.request() for _ in range(5)]
    gate.set()
    assert session.saver.wait(tickets[-1], TIMEOUT) and session.saver.wait(first, 0)
    assert len(saves) == 2 and saves[-1]["title"] == "asked while a save ran"
    assert json.loads(store.path.read_text())["sessions"]["main"]["title"] == "asked while a save ran"


def test_finished_turns_do_not_keep_copies_of_the_conversation(tmp_path):
    """Each turn starts from a copy of the conversation; kept by every finished turn, memory grew
    with the square of the session's length."""
    from hermes_jupyter.engine.turn import runner_of

    engine = Engine()
    engine.settings.model = f"scripted:{SCRIPT}"
    engine.attach_history(tmp_path / "h.hermes.json")
    turns = [engine.submit("say hello", cwd=tmp_path) for _ in range(3)]  # queued one after another
    assert all(t.wait(TIMEOUT) and t.status == "done" for t in turns)
    assert len(engine.session().messages) == 6
    for turn in turns:
        run = runner_of(turn)._run
        assert run is not None and run.request.history == []


def test_a_turn_waiting_for_a_click_has_its_prompt_on_disk(tmp_path):
    """The start save comes a moment after the cell (HistoryWriter.START_SAVE_DELAY), on a timer, not on
    the next event: a turn that waits for an approval, emitting nothing, still has its prompt saved."""
    engine = Engine()
    engine.settings.model = f"scripted:{SCRIPT}"
    engine.attach_history(tmp_path / "h.hermes.json")
    (tmp_path / "victim").mkdir()
    saved = threading.Event()
    store = engine.store
    assert store is not None
    save = store.save_session

    def watched(record):
        save(record)
        if any(t.get("prompt") == "delete victim" for t in record.get("turns", [])):
            saved.set()

    store.save_session = watched
    turn = engine.submit("delete victim", cwd=tmp_path)
    try:
        assert turn.wait_for(lambda: bool(turn.pending_approvals), TIMEOUT)
        assert saved.wait(TIMEOUT)  # while the approval still waits
        assert turn.pending_approvals and not turn.done
        on_disk = json.loads(store.path.read_text())["sessions"]["main"]["turns"]
        assert [(t["prompt"], t["status"]) for t in on_disk] == [("delete victim", "running")]
    finally:
        turn.deny()
    assert turn.wait(TIMEOUT) and (tmp_path / "victim").exists()


# ----- two kernels on one session ----------------------------------------------------------
KERNEL = """
    import json, sys
    from hermes_jupyter.engine import Engine
    engine = Engine()
    engine.settings.model = sys.argv[2]
    engine.attach_history(sys.argv[1])
    print("ready", flush=True)
    for line in sys.stdin:  # one prompt a line; each turn is on disk when it answers
        turn = engine.submit(line.strip(), cwd=sys.argv[3])
        assert turn.wait(60) and turn.status == "done", turn.status
        print("done", flush=True)
"""


def test_two_kernels_on_one_session_keep_both_conversations(tmp_path):
    """Two writers of one session: the turns were once merged by id, the messages were the last writer's alone."""
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "nb.hermes.json"
    kernels = {who: subprocess.Popen([sys.executable, "-c", textwrap.dedent(KERNEL), str(path), f"scripted:{SCRIPT}",
                                      str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1) for who in "AB"}
    try:
        for kernel in kernels.values():
            assert kernel.stdout.readline().strip() == "ready"
        for who, prompt in [("A", "remember A one"), ("B", "remember B one"), ("A", "remember A two"),
                            ("B", "remember B two")]:
            kernels[who].stdin.write(prompt + "\n")
            kernels[who].stdin.flush()
            assert kernels[who].stdout.readline().strip() == "done"  # the turn is done, and saved
    finally:
        for kernel in kernels.values():
            kernel.stdin.close()
            assert kernel.wait(60) == 0
    prompts = ["remember A one", "remember B one", "remember A two", "remember B two"]
    saved = json.loads(path.read_text())["sessions"]["main"]
    assert [t["prompt"] for t in saved["turns"]] == prompts
    messages = saved["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == prompts  # both kernels', in turn order
    assert [m["role"] for m in messages] == ["user", "assistant"] * 4
    assert [m["content"] for m in messages[1::2]] == [f"I will remember: {p}" for p in prompts]
    assert [t["message_count"] for t in saved["turns"]] == [2, 2, 2, 2]
    for kernel in kernels.values():  # each kernel was told, once, that the file holds the other's turns too
        told = [line for line in kernel.stderr.read().splitlines() if "did not run" in line]
        assert len(told) == 1 and told[0].startswith("[hermes] session 'main' in nb.hermes.json"), told

    # A kernel that resumes the session sends all of it.
    engine = Engine()
    engine.settings.model = f"scripted:{SCRIPT}"
    engine.attach_history(path)
    assert engine.session().sanitized_messages() == messages
    turn = engine.submit("remember C one", cwd=tmp_path)
    assert turn.wait(TIMEOUT) and turn.status == "done"
    assert [m["content"] for m in engine.session().messages if m["role"] == "user"] == [*prompts, "remember C one"]
    saved = json.loads(path.read_text())["sessions"]["main"]
    assert [m["content"] for m in saved["messages"] if m["role"] == "user"] == [*prompts, "remember C one"]
    assert [t["message_count"] for t in saved["turns"]] == [2, 2, 2, 2, 2]
