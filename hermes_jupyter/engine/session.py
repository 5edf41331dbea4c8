"""A named conversation: its history, its queue of turns, and an agent kept warm between turns."""
from __future__ import annotations

import collections
import logging
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hermes_jupyter import events as ev
from hermes_jupyter.agent.settings import Hermes, RunConfig
from hermes_jupyter.engine.runner import TurnRunner
from hermes_jupyter.engine.turn import Turn, runner_of
from hermes_jupyter.history.records import session_usage, turn_record
from hermes_jupyter.prompt import system_prompt

if TYPE_CHECKING:
    from hermes_jupyter.engine.engine import Engine

log = logging.getLogger("hermes_jupyter")


class Session:
    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.key = f"jupyter-{engine.instance}-{name}"
        self.messages: list[dict[str, Any]] = []
        self.turns: list[Turn] = []
        self.saved_turns: list[dict[str, Any]] = []  # turns of earlier kernels, from the history file
        self.title: str | None = None
        self.personality: str | None = None  # chosen with --personality, kept for the session
        self._approved: set[str] = set()
        self._lock = threading.Lock()
        self._active: TurnRunner | None = None
        self._queue: collections.deque[TurnRunner] = collections.deque()
        self._warm: tuple[Any, RunConfig] | None = None

    # ----- what the turn's runner reads ----------------------------------------------------
    @property
    def instance(self) -> str:
        return self.engine.instance

    @property
    def settings(self) -> Hermes:
        return self.engine.settings

    @property
    def shell(self) -> Any:
        return self.engine.shell

    @property
    def busy(self) -> bool:
        return self._active is not None

    def messages_snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages)

    def approved_patterns(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._approved)

    def approve_patterns(self, patterns: Iterable[str]) -> None:
        """'Allow session' and 'Always allow': these patterns run without asking for the rest of the session."""
        with self._lock:
            self._approved.update(patterns)

    def system_prompt(self, cwd: Path, config: RunConfig) -> str:
        return system_prompt(cwd, config.personality_prompt)

    def take_warm_agent(self) -> tuple[Any, RunConfig] | None:
        with self._lock:
            warm, self._warm = self._warm, None
            return warm

    # ----- turns ---------------------------------------------------------------------------
    def new_turn(self, prompt: str, flags: dict[str, Any], cwd: Path) -> Turn:
        turn = Turn(self, prompt, flags, cwd)
        if self.engine.store is not None:
            turn.subscribe(HistoryWriter(self))
        return turn

    def submit(self, turn: Turn) -> None:
        runner = runner_of(turn)
        with self._lock:
            self.turns.append(turn)
            start = self._active is None
            if start:
                self._active = runner
            else:
                self._queue.append(runner)
                position = len(self._queue)
        if start:
            runner.start()
        else:
            runner.queued(position)

    def unqueue(self, runner: TurnRunner) -> bool:
        with self._lock:
            if runner in self._queue:
                self._queue.remove(runner)
                return True
            return False

    def release(self, runner: TurnRunner) -> None:
        """The turn has ended (or was let go after a cancel): start the next queued one."""
        with self._lock:
            if self._active is not runner:
                return
            self._active = self._queue.popleft() if self._queue else None
            following = self._active
        if following is not None:
            following.start()

    def finish_turn(self, messages: list[dict[str, Any]], warm: tuple[Any, RunConfig] | None) -> None:
        with self._lock:
            self.messages = list(messages)
            if warm is not None:
                self._warm = warm

    # ----- history -------------------------------------------------------------------------
    def record(self) -> dict[str, Any]:
        """This session as the history file stores it (the store sanitizes and redacts)."""
        with self._lock:
            turns = list(self.turns)
            messages = list(self.messages)
        records = self.saved_turns + [
            turn_record(t.events, turn_id=t.id, prompt=t.prompt, started=t.started_wall,
                        attachments=t.flags.get("attachments")) for t in turns]
        record: dict[str, Any] = {"name": self.name, "messages": messages, "turns": records,
                                  "usage": session_usage(records)}
        if self.title:
            record["title"] = self.title
        return record

    def save(self) -> None:
        store = self.engine.store
        if store is None:
            return
        try:
            store.save_session(self.record())
        except Exception as exc:  # a read-only folder must not break the turn
            log.debug("history not saved to %s: %s", store.path, exc)  # the user is told below
            message = f"history not saved to {store.path}: {exc}"
            if message != self.engine.store_error:  # say it once, in the cell of the turn it hit
                print(f"[hermes] {message}", file=sys.stderr)
            self.engine.store_error = message
        else:
            if store.notice:  # e.g. the file was corrupted while the kernel ran: moved aside
                print(f"[hermes] {store.notice}", file=sys.stderr)
                store.notice = None


class HistoryWriter:
    """Saves the session when a turn starts, every SAVE_EVERY seconds while it runs, and when it ends."""

    SAVE_EVERY = 5.0

    def __init__(self, session: Session) -> None:
        self.session = session
        self._last = 0.0

    def __call__(self, event: ev.Event) -> None:
        now = time.monotonic()
        if isinstance(event, (ev.TurnStarted, ev.Done)) or now - self._last >= self.SAVE_EVERY:
            self._last = now
            self.session.save()
