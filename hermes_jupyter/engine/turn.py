"""``Turn``: the handle of one prompt's run, and nothing else.

Code and views act on a turn only through it: ``approve``, ``deny``,
``answer``, ``cancel``, ``wait``, ``subscribe``. Its jobs live in small
classes: the event log and its dispatcher (log.py), the approval and clarify
requests (broker.py), the run on the worker thread (runner.py).
"""
from __future__ import annotations

import contextvars
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hermes_jupyter import events as ev
from hermes_jupyter.engine.broker import Broker
from hermes_jupyter.engine.log import EventLog, Subscriber
from hermes_jupyter.engine.requests import ApprovalRequest, ClarifyRequest, ResolvedBy
from hermes_jupyter.engine.runner import Status as TurnStatus
from hermes_jupyter.engine.runner import TurnRunner

if TYPE_CHECKING:
    from hermes_jupyter.agent.settings import RunConfig, RunOptions
    from hermes_jupyter.engine.session import Session

class Turn:
    """The handle of one prompt's run. Returned by ``%hermes -o NAME`` and by ``Engine.submit``."""

    _ids = itertools.count(1)

    def __init__(self, session: Session, prompt: str, options: RunOptions, cwd: Path,
                 context: contextvars.Context | None = None) -> None:
        # Unique across kernels and restarts: the history file merges turns by id.
        self.id = f"{session.instance}-{next(self._ids)}"
        self.session = session
        self.prompt = prompt
        self.options = options
        self.cwd = cwd
        self.started_wall = time.time()
        context = context or contextvars.copy_context()
        events = EventLog(self.id, context)
        self._events = events
        self._broker = Broker(events, session, f"{session.key}:{self.id}")
        self._runner = TurnRunner(self.id, session, prompt, options, cwd, events, self._broker, context)

    @property
    def status(self) -> TurnStatus:
        """new | queued | running | done | failed | cancelled"""
        return self._runner.status

    @property
    def config(self) -> RunConfig | None:
        """The resolved configuration, once the turn runs."""
        return self._runner.config

    @property
    def usage(self) -> ev.Usage | None:
        return self._runner.usage

    @property
    def error(self) -> ev.Error | None:
        return self._runner.error

    @property
    def log(self) -> list[str]:
        """The agent's own status prints, never shown in a cell."""
        return list(self._runner.lines)

    # ----- what code and views read -------------------------------------------------------
    @property
    def events(self) -> list[ev.Event]:
        return self._events.events

    @property
    def text(self) -> str:
        """The answer: final once the turn is done, the streamed part so far before that."""
        if self._runner.final_text is not None:
            return self._runner.final_text
        return "".join(e.text for e in self._events.events if isinstance(e, ev.Token))

    @property
    def done(self) -> bool:
        return self.status in ev.TERMINAL_STATUSES

    @property
    def pending_approvals(self) -> list[ApprovalRequest]:
        return self._broker.approvals.pending()

    @property
    def pending_questions(self) -> list[ClarifyRequest]:
        return self._broker.questions.pending()

    def __repr__(self) -> str:
        return f"<hermes Turn {self.id} session={self.session.name!r} status={self.status}>"

    # ----- what code and views do -----------------------------------------------------------
    def subscribe(self, fn: Subscriber) -> None:
        """Receive every event of this turn, in order, starting with those already sent."""
        self._events.subscribe(fn)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the turn has ended and every subscriber has seen it. True if it ended."""
        return self._events.wait(timeout)

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Block until predicate() holds (checked on every event) or the turn ended."""
        return self._events.wait_for(predicate, timeout)

    def delivered(self, seq: int) -> bool:
        """True once the event numbered `seq` has reached every subscriber."""
        return self._events.delivered(seq)

    def approve(self, choice: str = "once", request_id: str | None = None, *,
                by: ResolvedBy = "user") -> ApprovalRequest:
        """Answer a pending approval: once, session, always or deny (the oldest if no id)."""
        return self._broker.answer_approval(choice, request_id, by)

    def deny(self, request_id: str | None = None) -> ApprovalRequest:
        return self._broker.answer_approval("deny", request_id, "user")

    def answer(self, text: str | None, request_id: str | None = None, *, by: ResolvedBy = "user") -> ClarifyRequest:
        """Answer a pending clarify question (the oldest if no id). None means 'no answer'."""
        return self._broker.answer_question(text, request_id, by)

    def cancel(self, message: str | None = None) -> bool:
        """Stop the turn: interrupt the agent, deny approvals, wake questions, keep the partial answer.
        `message` is what the turn says it ended by ("Cancelled by user" without one)."""
        return self._runner.cancel(message)


def runner_of(turn: Turn) -> TurnRunner:
    """The engine's side of a turn (for the session that queues and starts it)."""
    return turn._runner
