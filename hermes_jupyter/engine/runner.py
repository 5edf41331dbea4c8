"""A turn's life on its worker thread: resolve, run the agent, end exactly once.

``TurnRunner`` is the engine's side of a ``Turn``: its state machine
(new → queued → running → done | failed | cancelled), the agent run
(agent/run.py) and the ports the run and the notebook's tools report through.
Every path ends in ``_close``, which keeps the prompt in the history whatever
happened: a failed or cancelled turn never loses what the user asked.
"""
from __future__ import annotations

import contextvars
import functools
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from hermes_jupyter import events as ev
from hermes_jupyter.agent import settings
from hermes_jupyter.agent.failures import ConfigError, Failure, classify
from hermes_jupyter.agent.run import (
    AgentRun,
    CancelledBeforeStart,
    RunOutcome,
    RunRequest,
    WarmAgent,
    classify_error,
    classify_outcome,
)
from hermes_jupyter.agent.settings import Hermes, RunConfig, RunOptions
from hermes_jupyter.engine.broker import Broker
from hermes_jupyter.engine.log import EventLog
from hermes_jupyter.notebook.host import current_host
from hermes_jupyter.safety.redact import prompt_secret_notice
from hermes_jupyter.safety.sanitize import sanitize_history
from hermes_jupyter.util import memory, workers
from hermes_jupyter.util.scheduler import scheduler

if TYPE_CHECKING:
    from hermes_jupyter.engine.session import Session

log = logging.getLogger("hermes_jupyter")

CANCEL_GRACE = 3.0  # seconds a cancelled agent gets to unwind before the session is released
# Set by Engine.starts_held(): a turn submitted in that block begins its work once the block ends.
start_gate: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("hermes_start_gate", default=None)
GATE_LIMIT = 30.0  # seconds: a block that never ends (a bug) must not hold a turn for ever
# Also set there, optionally: set when the submitting cell has finished. The turn waits for it at most
# CELL_WAIT after the block (the cell may go on with other code, or wait for the turn itself).
cell_end: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("hermes_cell_end", default=None)
CELL_WAIT = 0.1
RELEASE_WAIT = 30.0  # seconds an ended turn waits for its views and history before its after-work (below)
E = TypeVar("E", bound=ev.Event)
Status = Literal["new", "queued", "running", "done", "failed", "cancelled"]


def attachment_note(options: RunOptions) -> str:
    """Attached files are named in the message, as the Hermes Web UI does; the agent reads them with its tools."""
    paths = options.attachments
    return f"\n\n[Attached files: {', '.join(paths)}]" if paths else ""


class TurnRunner:
    def __init__(self, turn_id: str, session: Session, prompt: str, options: RunOptions, cwd: Any,
                 events: EventLog, broker: Broker, context: contextvars.Context) -> None:
        self.turn_id = turn_id
        self.session = session
        self.prompt = prompt
        self.options = options
        self.cwd = cwd
        self.events = events
        self.broker = broker
        self.status: Status = "new"
        self.config: RunConfig | None = None
        self.usage: ev.Usage | None = None
        self.error: ev.Error | None = None
        self.final_text: str | None = None
        self.lines: list[str] = []  # the agent's status prints
        self._context = context
        self._run: AgentRun | None = None
        self._cancel_requested = False
        self._cancel_message = "Cancelled by user"  # what the turn says when it ends stopped
        self._cancel_hooks: list[Callable[[], None]] = []
        self._closing = False

    # ----- the ports (RunPort for the agent run, ToolHost for the notebook tools) ---------
    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested

    @property
    def shell(self) -> Any:
        return self.session.shell

    @property
    def settings(self) -> Hermes:
        return self.session.settings

    def emit(self, cls: type[E], **fields: Any) -> E | None:
        return self.events.emit(cls, **fields)

    def publish(self, event: type[ev.Event], **fields: Any) -> None:
        self.events.emit(event, **fields)

    def note(self, line: str) -> None:
        self.lines.append(line)

    def notify(self) -> None:
        self.events.notify()

    def request_approval(self, *, command: str, description: str, pattern_keys: tuple[str, ...],
                         allow_permanent: bool, payload: dict[str, Any]) -> None:
        self.broker.open_approval(command=command, description=description, pattern_keys=pattern_keys,
                                  allow_permanent=allow_permanent, payload=payload)

    def ask_approval(self, command: str, description: str, *, pattern: str, allow_permanent: bool = False) -> str:
        return self.broker.ask_approval(command, description, pattern=pattern, allow_permanent=allow_permanent)

    def ask_clarify(self, question: str, choices: tuple[str, ...]) -> str:
        return self.broker.ask_clarify(question, choices)

    def on_cancel(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Call fn() when the turn is cancelled (at once if it was). Returns the function that unhooks it."""
        with self.events.lock:
            now = self._cancel_requested
            if not now:
                self._cancel_hooks.append(fn)
        if now:
            fn()

        def unhook() -> None:
            with self.events.lock:
                if fn in self._cancel_hooks:
                    self._cancel_hooks.remove(fn)
        return unhook

    # ----- queue --------------------------------------------------------------------------
    def queued(self, position: int) -> None:
        self.status = "queued"
        self.events.emit(ev.TurnQueued, position=position)

    def start(self) -> None:
        self.events.start()
        ctx, self._context = self._context.copy(), contextvars.Context()  # the thread's copy is all it needs
        workers.shared.run(f"hermes-turn-{self.turn_id}", functools.partial(ctx.run, self._work))

    # ----- cancel -------------------------------------------------------------------------
    def cancel(self, message: str | None = None) -> bool:
        with self.events.lock:
            if self.events.closed or self._cancel_requested:
                return False
            self._cancel_requested = True
            if message:
                self._cancel_message = message
            queued = self.status in ("new", "queued")
        if queued and self.session.unqueue(self):
            self._close("cancelled", "", None, message=f"{message or 'Cancelled'} before it started")
            return True
        if self._run is not None:
            self._run.interrupt()
        with self.events.lock:
            hooks, self._cancel_hooks = self._cancel_hooks, []
        for hook in hooks:  # e.g. interrupt the agent's code running in the kernel
            try:
                hook()
            except Exception:
                log.exception("cancel hook failed")
        self.broker.cancel_all()
        # If the agent does not unwind in time, release the session anyway (it may hang in a tool).
        scheduler.call_later(CANCEL_GRACE, self._release_eagerly)
        return True

    # ----- the run (worker thread) ------------------------------------------------------------
    def _work(self) -> None:
        gate = start_gate.get()  # (this thread runs in a copy of the submitting cell's context)
        if gate is not None and not gate.wait(GATE_LIMIT):
            log.warning("turn %s started after waiting %.0f s for its cell", self.turn_id, GATE_LIMIT)
        ended = cell_end.get()
        if ended is not None:
            ended.wait(CELL_WAIT)
        with self.events.lock:
            if self._closing:
                return
            self.status = "running"
        history = self.session.sanitized_messages()
        outcome: RunOutcome | None = None
        failure: Failure | None = None
        try:
            self.config = settings.resolve(self.options, self.session.settings)
            if self.options.personality:  # known to exist now: later turns of the session keep it
                self.session.personality = self.config.personality
            self.broker.configure(self.config.approvals, self.config.approval_timeout, self.config.clarify_timeout)
            self.events.emit(ev.TurnStarted, session=self.session.name, prompt=self.prompt,
                             model=self.config.model, cwd=str(self.cwd))
            if (notice := prompt_secret_notice(self.prompt)) is not None:
                self.events.emit(ev.Status, level="warn", text=notice)
            self._run = AgentRun(self, self._request(history, self.config), self.session.take_warm_agent())
            self.config = self._run.setup()
            self._run.request.config = self.config
            self._run.request.system_prompt = self.session.system_prompt(self.cwd, self.config)
            current_host.set(self)
            outcome = self._run.run()
            self.usage = outcome.usage
        except CancelledBeforeStart:
            pass
        except ConfigError as exc:
            failure = classify(exc)
        except Exception as exc:  # the agent failed outside its own error handling
            log.exception("turn %s failed", self.turn_id)
            self.lines.append(f"exception: {type(exc).__name__}: {exc}")
            failure = classify_error(exc, self.config)
        self._complete(history, outcome, failure)
        del outcome, history
        if self.events.wait(RELEASE_WAIT):  # once the views and the history are done with the turn too
            self.session.prepare_next_request()
            if self.session.settings.release_memory:
                memory.release_free_memory()

    def _request(self, history: list[dict[str, Any]], config: RunConfig) -> RunRequest:
        # --vars: variable summaries the model gets after the prompt (not shown as the prompt)
        message = self.prompt + self.options.context + attachment_note(self.options)
        return RunRequest(message=message, history=history, config=config, session_key=self.session.key,
                          approval_key=f"{self.session.key}:{self.turn_id}", cwd=self.cwd,
                          approved_patterns=self.session.approved_patterns(), system_prompt="",
                          title=self.session.title)

    def _streamed(self) -> str:
        return "".join(e.text for e in self.events.events if isinstance(e, ev.Token))

    def _complete(self, history: list[dict[str, Any]], outcome: RunOutcome | None, failure: Failure | None) -> None:
        result = outcome.result if outcome is not None else {}
        messages = result.get("messages")
        if not isinstance(messages, list) or not messages:
            messages = [*history, {"role": "user", "content": self.prompt}]  # the prompt is never lost
        streamed = self._streamed()
        if self._cancel_requested or result.get("interrupted"):
            self._close("cancelled", streamed or str(result.get("final_response") or ""), messages, history=history)
            return
        if failure is None:
            failure = classify_outcome(result, streamed, self.config)
        if failure is not None:
            self.error = self.events.emit(ev.Error, error_kind=failure.kind, message=failure.message,
                                          hint=failure.hint)
            self._close("failed", streamed, messages, history=history)
        else:
            warm = (WarmAgent(outcome.agent, outcome.config, self._run.request.system_prompt)
                    if outcome is not None and self._run is not None else None)
            self._close("done", str(result.get("final_response") or "") or streamed, messages, warm=warm,
                        history=history)

    def _release_eagerly(self) -> None:
        """The cancelled agent did not return in time: keep what we have and free the session."""
        partial = self._streamed()
        history = sanitize_history(self.session.messages_snapshot())
        messages = [*history, {"role": "user", "content": self.prompt}]
        if partial.strip():
            messages.append({"role": "assistant", "content": partial})
        self._close("cancelled", partial, messages, history=history)

    def _close(self, status: Status, text: str, messages: list[dict[str, Any]] | None, *,
               warm: WarmAgent | None = None, message: str | None = None,
               history: list[dict[str, Any]] | None = None) -> None:
        """End the turn exactly once, whichever thread gets here first."""
        with self.events.lock:
            if self._closing:
                return
            self._closing = True
        if messages is not None:
            self.session.finish_turn(messages, warm, turn_id=self.turn_id, history=history)
        if self._run is not None:
            # A finished turn must not keep the conversation as it was when it started: each
            # turn holding its own copy made memory grow with the square of the session's length.
            self._run.request.history = []
        if status == "cancelled":
            self.events.emit(ev.Cancelled, message=message or self._cancel_message)
        with self.events.lock:
            self.final_text = text
            self.status = status
        # Not under the log's lock: a turn cancelled while queued has no dispatcher yet, so Done is
        # delivered on this thread, and the history writer waits there for a save that reads the
        # turn's events under that lock (cancelling a queued turn froze the kernel that way).
        self.events.emit(ev.Done, status=status, text=text)
        self.broker.close()
        self.session.release(self)
