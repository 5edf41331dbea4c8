"""``Engine``: all sessions of one kernel, and where their history is kept."""
from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from hermes_jupyter.agent.settings import Hermes, RunOptions
from hermes_jupyter.engine.log import Subscriber
from hermes_jupyter.engine.runner import cell_end, start_gate
from hermes_jupyter.engine.session import Session
from hermes_jupyter.engine.turn import Turn
from hermes_jupyter.history import liveness
from hermes_jupyter.history.records import settle_dead
from hermes_jupyter.history.store import HistoryStore

log = logging.getLogger("hermes_jupyter")


class SessionNameError(ValueError):
    """A session name that cannot be used (the magic shows it as a usage error)."""


def check_session_name(name: str) -> str:
    """Refused before anything runs: a session's name is in its history file, hermes-agent's session id and
    its logs, so a name that looks like a secret would be saved nowhere (the history refuses it) or leak."""
    from hermes_jupyter.safety.redact import redact_for_display

    if not name.strip():
        raise SessionNameError("a session needs a name")
    if redact_for_display(name) != name:
        raise SessionNameError(f"{redact_for_display(name)!r} looks like a secret, and a session's name is saved "
                               "in its history: choose another name")
    return name


class Engine:
    """All sessions of one kernel. The magic holds one; code may create its own."""

    def __init__(self, settings: Hermes | None = None) -> None:
        self.settings = settings if settings is not None else Hermes()
        self.instance = uuid.uuid4().hex[:8]
        self.sessions: dict[str, Session] = {}
        self.current = "main"
        self.store: HistoryStore | None = None  # once attach_history() ran
        self.store_error: str | None = None
        self.shell: Any = None  # the IPython shell whose namespace the notebook tools see (set by the magic)
        self._lock = threading.Lock()
        self.writer = liveness.identity(self.instance)  # in the records of its running turns
        liveness.register(self.instance, self)

    def attach_history(self, path: Path, moved_from: Path | None = None) -> str | None:
        """Keep this engine's sessions in `path`, resuming what it holds. Returns a notice, if any.

        Called again when the user names the notebook later: sessions that already ran turns in
        this kernel keep their conversation and are saved into the new file, merged by turn with a
        session of the same name there (each turn's messages kept, store.py); the file's other
        sessions are resumed. `moved_from`, the unnamed file this kernel wrote until now (no other
        kernel writes it), is removed once `path` holds every turn of it.
        """
        store = HistoryStore(Path(path))
        document = store.load()
        left_over: list[Session] = []  # sessions with turns of a kernel that is gone, now interrupted
        with self._lock:
            self.store = store
            ran_here = {name for name, s in self.sessions.items() if s.turns}
            for name, record in document.get("sessions", {}).items():
                if name in ran_here:
                    continue
                session = self.sessions.get(name) or Session(self, name)
                session.messages = list(record.get("messages") or [])
                session.saved_turns, settled = settle_dead(list(record.get("turns") or []))
                if settled:
                    left_over.append(session)
                session.title = record.get("title")
                self.sessions[name] = session
            if document.get("sessions") and not ran_here:
                self.current = document.get("current") or self.current
        self.save_all()
        for session in left_over:
            session.save()
        notice = store.notice
        store.notice = None
        if moved_from is not None and moved_from.resolve() != store.path:
            notice = self._remove_moved(moved_from, store) or notice
        return notice

    @staticmethod
    def _remove_moved(old: Path, store: HistoryStore) -> str | None:
        try:
            if not old.exists():
                return None
            had, has = HistoryStore(old).sessions(), store.sessions()
            for name, rec in had.items():
                ids = {t.get("id") for t in has.get(name, {}).get("turns", [])}
                if not {t.get("id") for t in rec["turns"]} <= ids:
                    return f"{old} was kept: {store.path.name} does not hold all of session {name!r}"
            old.unlink()
        except Exception as exc:  # unreadable, or a read-only folder: it stays
            return f"{old} was kept: {exc}"
        return None

    def save_all(self) -> None:
        """Save every session that ran turns here (at kernel shutdown: partial answers included)."""
        for session in list(self.sessions.values()):
            if session.turns:
                session.save()

    def use(self, name: str) -> Session:
        session = self.session(name)
        self.current = name
        if self.store is not None:
            try:
                self.store.set_current(name)
            except Exception as exc:
                log.warning("could not record the current session: %s", exc)
        return session

    def rename(self, old: str, new: str) -> None:
        check_session_name(new)
        with self._lock:
            if old not in self.sessions:
                raise KeyError(f"no session named {old!r}")
            if new in self.sessions:
                raise ValueError(f"a session named {new!r} exists already")
            session = self.sessions.pop(old)
            if session.busy:
                self.sessions[old] = session
                raise ValueError(f"session {old!r} is busy; stop it first")
            session.name = new
            self.sessions[new] = session
            if self.current == old:
                self.current = new
        if self.store is not None:
            self.store.rename_session(old, new)

    def delete(self, name: str) -> None:
        with self._lock:
            session = self.sessions.get(name)
            if session is None:
                raise KeyError(f"no session named {name!r}")
            if session.busy:
                raise ValueError(f"session {name!r} is busy; stop it first")
            del self.sessions[name]
            if self.current == name:
                self.current = "main"
        if self.store is not None:
            try:
                self.store.delete_session(name)
            except KeyError:
                pass  # never saved

    def session(self, name: str | None = None) -> Session:
        name = name or self.current
        with self._lock:
            if name not in self.sessions:
                self.sessions[name] = Session(self, check_session_name(name))
            return self.sessions[name]

    def submit(self, prompt: str, *, session: str | None = None, cwd: str | Path | None = None,
               subscribers: Iterable[Subscriber] = (), options: RunOptions | None = None, **flags: Any) -> Turn:
        """Start (or queue) a turn and return its handle at once. `flags` (model=..., approvals=...) are
        RunOptions' fields, over `options`; an unknown one is a TypeError."""
        target = self.session(session)
        options = replace(options or RunOptions(), **flags)
        if not options.personality and target.personality:
            options = replace(options, personality=target.personality)  # a --personality given once stays (runner.py keeps it)
        turn = target.new_turn(prompt, options, Path(cwd or Path.cwd()).resolve())
        for fn in subscribers:
            turn.subscribe(fn)
        target.submit(turn)
        return turn

    @contextlib.contextmanager
    def starts_held(self, cell_ended: threading.Event | None = None) -> Iterator[None]:
        """Turns submitted in the block begin their work when it ends, and then once `cell_ended` is
        set (at most CELL_WAIT later). The magic submits in one, so the cell draws its view and returns
        first: a turn's start (the history made ready, the agent set up) then never contends with the
        cell for the GIL, however long the session."""
        gate = threading.Event()
        tokens = (start_gate.set(gate), cell_end.set(cell_ended))
        try:
            yield
        finally:
            cell_end.reset(tokens[1])
            start_gate.reset(tokens[0])
            gate.set()

    def prepare_agent(self, cwd: str | Path) -> bool:
        """Build the current session's agent ahead of its first turn (see Session.prepare_agent)."""
        return self.session().prepare_agent(Path(cwd).resolve())

    def running(self) -> list[Turn]:
        return [t for s in list(self.sessions.values()) for t in s.turns if not t.done]
