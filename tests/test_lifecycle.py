"""A turn's lifecycle as a Hypothesis state machine: the real engine and agent on the scripted model,
one history file, and every step a user or a kernel can take, in any order.

Steps: submit a turn (an answer, a tool call, a dangerous command, a question, a long answer held at the
scripted model's gate), let the held answer stream on (tokens), answer an approval (allow or deny) or let
it time out, answer a question, save, a view connecting again (a reload: a second page says hello),
cancel, the kernel's Interrupt between cells, and kernel death followed by a new kernel resuming.

Kernel death is simulated in this process, honestly so: the engine is abandoned without any cleanup
(its turns are neither cancelled nor saved), it can no longer write the file (its store is taken
away, as a dead process writes nothing) and its instance is no longer registered (what history/liveness.py
asks of a writer in this process; a real process's death is a pid that is gone: tests/test_dead_kernels.py).
A fresh engine, with a new instance, then opens the same history.

After every step: the file parses and holds every acknowledged turn (one that finished while its engine
lived, or that a save wrote); no turn of a dead kernel is `running` in it; every finished turn's static
rendering is non-empty and readable; no approval or question resolves twice.

CI: derandomized (the same examples every run), 10 examples of up to 10 steps (enough to reach a kernel dying mid-turn: with the marking undone, it fails); HYPOTHESIS_PROFILE=long
runs 200 of up to 25.
"""
from __future__ import annotations

import itertools
import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hermes_jupyter import events as ev
from hermes_jupyter.engine import Engine, NothingPending, Turn
from hermes_jupyter.history import liveness
from hermes_jupyter.magic import InterruptStops
from hermes_jupyter.models.scripted import shared_server
from hermes_jupyter.views import static
from hermes_jupyter.views.widget import TurnView

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
WAIT = 60
PROMPTS = ["say hello", "run echo", "delete victim", "ask me", "gated story"]
_folders = itertools.count()


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(os.environ["LIFECYCLE_TMP"]) / f"run-{next(_folders)}"
        self.folder.mkdir(parents=True)
        (self.folder / "victim").mkdir()
        self.path = self.folder / "nb.hermes.json"
        self.server = shared_server(str(SCRIPT))
        self.dead: list[Engine] = []
        self.turns: list[Turn] = []  # of every engine, dead ones too
        self.acknowledged: set[str] = set()
        self.views: list[TurnView] = []
        self.engine = self._new_engine()

    def _new_engine(self) -> Engine:
        engine = Engine()
        engine.settings.model = f"scripted:{SCRIPT}"
        engine.attach_history(self.path)
        return engine

    def _live(self) -> list[Turn]:
        return self.engine.running()

    def _file(self) -> dict:
        if not self.path.exists():  # nothing was saved yet
            assert not self.acknowledged
            return {"sessions": {}}
        doc = json.loads(self.path.read_text(encoding="utf-8"))
        assert doc["schema"] == "hermes-jupyter/history"
        return doc

    # ----- steps ------------------------------------------------------------------------------
    @precondition(lambda self: not self._live())  # one turn at a time: queueing has tests of its own
    @rule(prompt=st.sampled_from(PROMPTS), short_timeout=st.booleans())
    def submit(self, prompt: str, short_timeout: bool) -> None:
        flags = {"approval_timeout": 0.5} if short_timeout else {}
        turn = self.engine.submit(prompt, cwd=self.folder, **flags)
        self.turns.append(turn)
        if prompt == "say hello" and turn.wait(WAIT):
            self.acknowledged.add(turn.id)

    @precondition(lambda self: any(t.prompt == "gated story" for t in self._live()))
    @rule()
    def tokens(self) -> None:
        """The held answer streams on to its end."""
        turn = next(t for t in self._live() if t.prompt == "gated story")
        turn.wait_for(lambda: (turn.status == "running" and any(isinstance(e, ev.Token) for e in turn.events))
                      or turn.done, WAIT)
        if not turn.done and self.server.wait_held("story", timeout=WAIT):
            self.server.open_gate("story")
        if turn.wait(WAIT):
            self.acknowledged.add(turn.id)

    @precondition(lambda self: any(t.prompt in ("run echo", "say hello") for t in self._live()))
    @rule()
    def tool_start_and_end(self) -> None:
        turn = next(t for t in self._live() if t.prompt in ("run echo", "say hello"))
        if turn.wait(WAIT):
            self.acknowledged.add(turn.id)

    @precondition(lambda self: any(t.prompt == "delete victim" for t in self._live()))
    @rule(choice=st.sampled_from(["once", "deny", "timeout"]))
    def approval(self, choice: str) -> None:
        turn = next(t for t in self._live() if t.prompt == "delete victim")
        turn.wait_for(lambda: bool(turn.pending_approvals), WAIT)
        try:
            if choice == "deny":
                turn.deny()
            elif choice == "once":
                turn.approve("once")
        except NothingPending:
            pass  # it timed out (or was cancelled) first
        if turn.wait(WAIT):
            self.acknowledged.add(turn.id)

    @precondition(lambda self: any(t.prompt == "ask me" for t in self._live()))
    @rule(answer=st.sampled_from(["red", "blue", None]))
    def clarify(self, answer: str | None) -> None:
        turn = next(t for t in self._live() if t.prompt == "ask me")
        turn.wait_for(lambda: bool(turn.pending_questions), WAIT)
        try:
            turn.answer(answer)
        except NothingPending:
            pass
        if turn.wait(WAIT):
            self.acknowledged.add(turn.id)

    @precondition(lambda self: bool(self.turns))
    @rule()
    def save(self) -> None:
        self.engine.save_all()
        self.acknowledged |= {t["id"] for rec in self._file()["sessions"].values() for t in rec["turns"]}

    @precondition(lambda self: bool(self.engine.sessions.get("main") and self.engine.session().turns))
    @rule(data=st.data())
    def view_reconnects(self, data: st.DataObject) -> None:
        turn = data.draw(st.sampled_from(self.engine.session().turns))
        view = TurnView(turn, history=self.path.name)
        turn.subscribe(view)
        self.views.append(view)
        for page in ("first", "reloaded"):  # a page draws it, then the page is reloaded
            view._channel.receive({"type": "hello", "page": page, "have": [], "mid": f"{turn.id}-{page}"})
        with view._lock:
            doc = view._snapshot()
        assert doc and all(isinstance(op, list) for op in doc)

    @precondition(lambda self: bool(self._live()))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        turn = data.draw(st.sampled_from(self._live()))
        turn.cancel()
        if turn.wait(WAIT):
            self.acknowledged.add(turn.id)

    @precondition(lambda self: bool(self._live()))
    @rule()
    def interrupt(self) -> None:
        """The kernel's Interrupt while no cell runs (magic.InterruptStops, without the signal)."""
        running = self._live()
        InterruptStops(None, self.engine)._stop_all()
        for turn in running:
            if turn.wait(WAIT):
                self.acknowledged.add(turn.id)
                assert turn.status == "cancelled"

    @precondition(lambda self: len(self.dead) < 2 and bool(self._live()))
    @rule()
    def kernel_dies_mid_turn(self) -> None:
        """The case that matters most, as a rule of its own so that small budgets reach it: the turn's
        running record is on disk (its periodic save), then its kernel dies."""
        self.save()
        self.kernel_dies_and_a_new_one_resumes()

    @precondition(lambda self: len(self.dead) < 2 and bool(self.turns))
    @rule()
    def kernel_dies_and_a_new_one_resumes(self) -> None:
        old = self.engine
        old.store = None  # a dead process writes nothing more
        liveness.forget(old.instance)  # and is no longer there
        self.dead.append(old)
        if any(t.prompt == "gated story" for t in old.running()) and self.server.wait_held("story", timeout=WAIT):
            self.server.open_gate("story")  # the model side: its held reply must not hold the next kernel's
        self.engine = self._new_engine()
        assert self.engine.instance != old.instance

    # ----- invariants ----------------------------------------------------------------------------
    @invariant()
    def the_history_parses_and_holds_every_acknowledged_turn(self) -> None:
        turns = [t for rec in self._file()["sessions"].values() for t in rec["turns"]]
        assert self.acknowledged <= {t["id"] for t in turns}

    @invariant()
    def no_turn_of_a_dead_kernel_is_running(self) -> None:
        dead = {e.instance for e in self.dead}
        for rec in self._file()["sessions"].values():
            for t in rec["turns"]:
                if t["status"] == "running":
                    assert t["kernel"]["instance"] not in dead, t["id"]
                    assert t["kernel"]["instance"] == self.engine.instance
                elif t["id"].split("-")[0] in dead and t["status"] == "interrupted":
                    assert t["ended"] and "kernel" not in t

    @invariant()
    def every_finished_turn_renders(self) -> None:
        for turn in self.turns:
            if not turn.done or not turn.delivered(turn.events[-1].seq):
                continue
            bundle = static.bundle(turn, self.path.name)
            text = re.sub(r"<[^>]+>", "", bundle["text/html"])
            assert turn.prompt in text and turn.status in text
            assert bundle["text/plain"].strip()

    @invariant()
    def each_request_resolves_at_most_once(self) -> None:
        resolved = Counter(e.request_id for t in self.turns for e in t.events
                           if isinstance(e, (ev.ApprovalResolved, ev.ClarifyResolved)))
        assert all(n == 1 for n in resolved.values()), resolved

    def teardown(self) -> None:
        for engine in [*self.dead, self.engine]:
            for turn in engine.running():
                turn.cancel()
        if any(t.prompt == "gated story" and not t.done for t in self.turns):
            self.server.open_gate("story")
        for turn in self.turns:
            turn.wait(WAIT)


Lifecycle.TestCase.settings = settings(max_examples=200 if LONG else 10, stateful_step_count=25 if LONG else 10)


@pytest.fixture(autouse=True)
def _folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_TMP", str(tmp_path))


test_lifecycle = Lifecycle.TestCase
