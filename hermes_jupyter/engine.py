"""The engine: one turn = one ``AIAgent.run_conversation`` on a worker thread.

Data flows one way: the agent's callbacks (from its own thread and its
streaming thread) become typed events, numbered under one lock, and a
dispatcher thread per turn delivers them in that order to the turn's
subscribers (views, the store, tests). Views act on a turn only through its
handle: ``approve``, ``answer``, ``cancel``. Nothing here imports ipywidgets.
"""
from __future__ import annotations

import collections
import contextvars
import itertools
import json
import logging
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from . import events as ev
from .errors import ConfigError, classify
from .redact import redact_text
from .sanitize import sanitize_history

log = logging.getLogger("hermes_jupyter")

APPROVAL_CHOICES = ("once", "session", "always", "deny")
NO_ANSWER = ("The user did not answer the question. Use your best judgement to choose "
             "and proceed, and say which choice you made.")
CANCEL_GRACE = 3.0  # seconds a cancelled agent gets to unwind before the session is released
_ARG_KEYS, _ARG_CHARS, _RESULT_CHARS = 4, 120, 400

Subscriber = Callable[[ev.Event], None]

# The turn whose agent is running on this thread (hermes-agent copies it into its tool threads).
current_turn: contextvars.ContextVar["Turn | None"] = contextvars.ContextVar("hermes_jupyter_turn", default=None)


class NothingPending(LookupError):
    """approve()/answer() was called but the turn is not waiting for that."""


@dataclass
class ApprovalRequest:
    request_id: str
    seq: int  # of its ApprovalRequested event
    command: str
    description: str
    allow_permanent: bool
    pattern_keys: tuple[str, ...]
    data: dict = field(repr=False)
    choice: str | None = None
    timer: threading.Timer | None = field(default=None, repr=False)
    answered: threading.Event = field(default_factory=threading.Event, repr=False)


@dataclass
class ClarifyRequest:
    request_id: str
    seq: int  # of its ClarifyRequested event
    question: str
    choices: tuple[str, ...]
    answer: str | None = None
    resolved_by: str | None = None
    event: threading.Event = field(default_factory=threading.Event, repr=False)


def _cut(text: Any, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def snapshot_args(args: Any) -> dict[str, str]:
    # Redact before cutting: a secret cut in half no longer matches its pattern.
    if not isinstance(args, dict):
        return {}
    return {str(k): _cut(redact_text(str(v)), _ARG_CHARS) for k, v in itertools.islice(args.items(), _ARG_KEYS)}


def result_snippet(result: Any) -> str:
    text = redact_text(str(result or ""))
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            for key in ("output", "result", "error", "message"):
                if data.get(key):
                    text = str(data[key])
                    break
    except ValueError:
        pass
    return _cut(text.strip(), _RESULT_CHARS)


class Turn:
    """The handle of one prompt's run. Returned by ``%hermes -o NAME`` and by ``Engine.submit``."""

    _ids = itertools.count(1)

    def __init__(self, session: "Session", prompt: str, flags: dict[str, Any], cwd: Path,
                 context: contextvars.Context | None = None):
        # Unique across kernels and restarts: the history file merges turns by id.
        self.id = f"{session.engine.instance}-{next(self._ids)}"
        self.started_wall = time.time()
        self.session = session
        self.prompt = prompt
        self.flags = dict(flags)
        self.cwd = cwd
        self.log: list[str] = []  # the agent's own status prints, never shown in a cell
        self.config = None  # the resolved RunConfig, once known
        self.usage: ev.Usage | None = None
        self.error: ev.Error | None = None
        self.status = "new"  # new | queued | running | done | failed | cancelled
        self.started_at = time.monotonic()
        self._context = context or contextvars.copy_context()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._events: list[ev.Event] = []
        self._dispatched = 0
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._subscribers: list[Subscriber] = []
        self._delivered = threading.Event()  # Done has reached every subscriber
        self._text: list[str] = []
        self._final_text: str | None = None
        self._approvals: dict[str, ApprovalRequest] = {}
        self._clarifies: dict[str, ClarifyRequest] = {}
        self._cancel_requested = False
        self._cancel_hooks: list[Callable[[], None]] = []
        self._finalized = False
        self._closing = False
        self._agent = None
        self._approval_key = f"{session.key}:{self.id}"
        self._usage_before = (0, 0, 0.0)
        self._tool_started: dict[str, float] = {}
        self._start_dispatcher()

    # ----- what code and views read -------------------------------------------------------
    @property
    def events(self) -> list[ev.Event]:
        with self._lock:
            return list(self._events)

    @property
    def text(self) -> str:
        """The answer: final once the turn is done, the streamed part so far before that."""
        with self._lock:
            return self._final_text if self._final_text is not None else "".join(self._text)

    @property
    def done(self) -> bool:
        return self.status in ev.TERMINAL_STATUSES

    @property
    def pending_approvals(self) -> list[ApprovalRequest]:
        with self._lock:
            return [r for r in self._approvals.values() if r.choice is None]

    @property
    def pending_questions(self) -> list[ClarifyRequest]:
        with self._lock:
            return [r for r in self._clarifies.values() if r.resolved_by is None]

    def __repr__(self) -> str:
        return f"<hermes Turn {self.id} session={self.session.name!r} status={self.status}>"

    # ----- what code and views do -----------------------------------------------------------
    def subscribe(self, fn: Subscriber) -> None:
        """Receive every event of this turn, in order, starting with those already sent."""
        with self._lock:
            if not self._delivered.is_set():
                self._outbox.put(("subscribe", fn))
                return
            past = list(self._events)
        for event in past:
            _deliver(fn, event)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the turn has ended and every subscriber has seen it. True if it ended."""
        return self._delivered.wait(timeout)

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate() or self._finalized, timeout)

    def notify(self) -> None:
        """Wake the threads in wait_for: something they check changed outside the events."""
        with self._changed:
            self._changed.notify_all()

    def on_cancel(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Call fn() when the turn is cancelled (at once if it was). Returns the function that unhooks it."""
        with self._lock:
            now = self._cancel_requested
            if not now:
                self._cancel_hooks.append(fn)
        if now:
            fn()

        def unhook() -> None:
            with self._lock:
                if fn in self._cancel_hooks:
                    self._cancel_hooks.remove(fn)
        return unhook

    def delivered(self, seq: int) -> bool:
        """True once the event numbered `seq` has reached every subscriber."""
        with self._lock:
            return self._dispatched >= seq

    def approve(self, choice: str = "once", request_id: str | None = None, *, by: str = "user") -> ApprovalRequest:
        """Answer a pending approval: once, session, always or deny (the oldest if no id)."""
        return self._answer_approval(choice, request_id, by=by)

    def deny(self, request_id: str | None = None) -> ApprovalRequest:
        return self._answer_approval("deny", request_id, by="user")

    def answer(self, text: str | None, request_id: str | None = None, *, by: str = "user") -> ClarifyRequest:
        """Answer a pending clarify question (the oldest if no id). None means 'no answer'."""
        with self._lock:
            request = self._pick(self._clarifies, request_id, lambda r: r.resolved_by is None,
                                 "No question is waiting for an answer in this turn.")
            request.answer = None if text is None else str(text)
            request.resolved_by = by
        request.event.set()
        self._emit(ev.ClarifyResolved, request_id=request.request_id, answer=request.answer, by=by)
        return request

    def cancel(self) -> bool:
        """Stop the turn: interrupt the agent, deny approvals, wake questions, keep the partial answer."""
        with self._lock:
            if self._finalized or self._cancel_requested:
                return False
            self._cancel_requested = True
            queued = self.status in ("new", "queued")
        if queued and self.session.unqueue(self):
            self._close("cancelled", "", None, message="Cancelled before it started")
            return True
        agent = self._agent
        if agent is not None:
            try:
                agent.interrupt("Cancelled by user")
            except Exception:
                log.exception("agent.interrupt failed")
        with self._lock:
            hooks, self._cancel_hooks = self._cancel_hooks, []
        for hook in hooks:  # e.g. interrupt the agent's code running in the kernel
            try:
                hook()
            except Exception:
                log.exception("cancel hook failed")
        for request in self.pending_approvals:
            self._resolve_approval(request, "deny", by="cancel")
        for question in self.pending_questions:
            with self._lock:
                question.resolved_by = "cancel"
            question.event.set()
            self._emit(ev.ClarifyResolved, request_id=question.request_id, answer=None, by="cancel")
        # If the agent does not unwind in time, release the session anyway (it may hang in a tool).
        timer = threading.Timer(CANCEL_GRACE, self._release_eagerly)
        timer.daemon = True
        timer.start()
        return True

    # ----- events ---------------------------------------------------------------------------
    def _emit(self, cls: type[ev.Event], **fields: Any) -> ev.Event | None:
        with self._lock:
            if self._finalized:
                return None  # nothing after Done, whatever thread is late
            event = cls(**fields, seq=len(self._events) + 1,
                        time=round(time.monotonic() - self.started_at, 3))
            self._events.append(event)
            self._outbox.put(("event", event))
            self._changed.notify_all()
            return event

    def _start_dispatcher(self) -> None:
        # Runs in a copy of the submitting cell's context, so output a view
        # writes lands in the cell that ran %hermes (ipykernel 7).
        ctx = self._context.copy()
        thread = threading.Thread(target=ctx.run, args=(self._dispatch,),
                                  name=f"hermes-dispatch-{self.id}", daemon=True)
        thread.start()

    def _dispatch(self) -> None:
        while True:
            what, item = self._outbox.get()
            if what == "subscribe":
                with self._lock:
                    past = self._events[: self._dispatched]
                for event in past:
                    _deliver(item, event)
                self._subscribers.append(item)
                continue
            for fn in list(self._subscribers):
                _deliver(fn, item)
            with self._lock:
                self._dispatched += 1
                self._changed.notify_all()
                if isinstance(item, ev.Done):
                    self._delivered.set()
                    return

    # ----- the run, on the turn's worker thread ---------------------------------------------
    def _start(self) -> None:
        ctx = self._context.copy()
        thread = threading.Thread(target=ctx.run, args=(self._run,),
                                  name=f"hermes-turn-{self.id}", daemon=True)
        thread.start()

    def _run(self) -> None:
        from . import hosting, insights, mcp_servers, settings

        with self._lock:
            if self._closing:
                return
            self.status = "running"
        history = sanitize_history(self.session.messages)
        result: dict[str, Any] | None = None
        failure = None
        key_token = policy_token = None
        approval = None
        try:
            config = settings.resolve(self.flags, self.session.engine.settings)
            self.config = config
            self._emit(ev.TurnStarted, session=self.session.name, prompt=self.prompt,
                       model=config.model, cwd=str(self.cwd))
            hosting.ensure_installed()
            # The user's MCP servers connect once per kernel, here: on a worker thread, never in the cell.
            toolsets, mcp_failures = mcp_servers.for_turn(config.toolsets)
            if toolsets != config.toolsets:
                config = self.config = settings.with_overrides(config, toolsets=toolsets)
            for server in mcp_failures:
                self._emit(ev.Status, level="warn", text=mcp_servers.failure_text(server))
            approval = hosting.approval_module()
            policy_token = hosting.current_policy.set(
                hosting.ApprovalPolicy(config.approvals, config.approval_timeout))
            key_token = approval.set_current_session_key(self._approval_key)
            current_turn.set(self)
            for pattern in self.session.approved_patterns:
                approval.approve_session(self._approval_key, pattern)
            # Registered before the run, or the first request would find no listener.
            approval.register_gateway_notify(self._approval_key, self._on_approval)
            from tools.terminal_tool import register_task_env_overrides
            register_task_env_overrides(self.session.key, {"cwd": str(self.cwd)})
            agent = self.session.checkout_agent(config, self)
            self._agent = agent
            if self._cancel_requested:
                raise _CancelledBeforeStart()
            compressions = _compression_count(agent)
            self._usage_before = getattr(agent, "_hermes_jupyter_usage", (0, 0, 0.0))
            # --vars: variable summaries the model gets after the prompt (not shown as the prompt)
            message = self.prompt + str(self.flags.get("context") or "") + attachment_note(self.flags)
            result = agent.run_conversation(
                message, conversation_history=history, task_id=self.session.key)
            if _compression_count(agent) > compressions:
                self._emit(ev.Compressed, message="The conversation was compressed to fit the context window.")
            self._note_fallback(agent, result)
            self._emit_usage(agent, result)
            if config.sync_insights:
                insights.record_turn(self, agent, result)
        except _CancelledBeforeStart:
            pass
        except ConfigError as exc:
            failure = classify(exc)
        except Exception as exc:  # the agent failed outside its own error handling
            log.exception("turn %s failed", self.id)
            self.log.append(f"exception: {type(exc).__name__}: {exc}")
            failure = classify(exc, base_url=getattr(self.config, "base_url", ""),
                               model=getattr(self.config, "model", ""))
        finally:
            if approval is not None:
                approval.unregister_gateway_notify(self._approval_key)  # wakes stragglers as denied
                approval.clear_session(self._approval_key)
                if key_token is not None:
                    approval.reset_current_session_key(key_token)
            if policy_token is not None:
                hosting.current_policy.reset(policy_token)
        self._complete(history, result, failure)

    def _complete(self, history: list[dict], result: dict | None, failure) -> None:
        result = result or {}
        messages = result.get("messages")
        if not isinstance(messages, list) or not messages:
            messages = history + [{"role": "user", "content": self.prompt}]  # the prompt is never lost
        streamed = "".join(self._text)
        if self._cancel_requested or result.get("interrupted"):
            self._close("cancelled", streamed or str(result.get("final_response") or ""), messages)
            return
        if failure is None and (result.get("failed") or result.get("error")):
            failure = classify(str(result.get("error") or result.get("final_response") or ""),
                               base_url=self.config.base_url, model=self.config.model)
        answer = str(result.get("final_response") or "")
        if failure is None and not answer.strip() and not streamed.strip():
            failure = classify(None, base_url=self.config.base_url, model=self.config.model)
        if failure is not None:
            self.error = self._emit(ev.Error, error_kind=failure.kind, message=failure.message,
                                    hint=failure.hint)
            self._close("failed", streamed, messages)
        else:
            self._close("done", answer or streamed, messages, keep_agent=True)

    def _release_eagerly(self) -> None:
        """The cancelled agent did not return in time: keep what we have and free the session."""
        partial = "".join(self._text)
        messages = sanitize_history(self.session.messages) + [{"role": "user", "content": self.prompt}]
        if partial.strip():
            messages.append({"role": "assistant", "content": partial})
        self._close("cancelled", partial, messages)

    def _close(self, status: str, text: str, messages: list[dict] | None, *,
               keep_agent: bool = False, message: str = "Cancelled by user") -> None:
        """End the turn exactly once, whichever thread gets here first."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        if messages is not None:
            self.session.finish_turn(self, messages, keep_agent=keep_agent)
        if status == "cancelled":
            self._emit(ev.Cancelled, message=message)
        with self._lock:
            self._final_text = text
            self.status = status
            self._emit(ev.Done, status=status, text=text)
            self._finalized = True
            self._changed.notify_all()
        for request in list(self._approvals.values()):
            if request.timer is not None:
                request.timer.cancel()
        self.session.release(self)

    def _emit_usage(self, agent: Any, result: dict) -> None:
        # The agent's counters are totals over its life; a warm agent serves several turns.
        compressor = getattr(agent, "context_compressor", None)
        totals = (int(result.get("input_tokens") or 0), int(result.get("output_tokens") or 0),
                  float(result.get("estimated_cost_usd") or 0.0))
        agent._hermes_jupyter_usage = totals
        before = self._usage_before
        cost = totals[2] - before[2]
        self.usage = self._emit(
            # After a fallback switch the agent reports the model that answered.
            ev.Usage, model=str(result.get("model") or getattr(agent, "model", "") or self.config.model),
            input_tokens=max(0, totals[0] - before[0]),
            output_tokens=max(0, totals[1] - before[1]),
            cost_usd=round(cost, 6) if cost > 0 else None,
            context_length=int(getattr(compressor, "context_length", 0) or 0),
            threshold_tokens=int(getattr(compressor, "threshold_tokens", 0) or 0),
            last_prompt_tokens=int(getattr(compressor, "last_prompt_tokens", 0) or 0),
        )

    def _note_fallback(self, agent: Any, result: dict) -> None:
        """Say so when Hermes' configured fallback model, not the primary, answered this turn."""
        if not getattr(agent, "_fallback_activated", False) or result.get("failed"):
            return
        primary = (getattr(agent, "_primary_runtime", None) or {}).get("model") or self.config.model
        answered = str(result.get("model") or getattr(agent, "model", "") or "")
        if answered and answered != primary and str(result.get("final_response") or "").strip():
            why = getattr(agent, "_hermes_jupyter_fallback_reason", "")  # set in hosting.build_agent
            self._emit(ev.Status, level="warn",
                       text=f"answered by fallback model {answered} (primary {primary} failed"
                            + (f": {why})" if why else ")"))

    # ----- agent callbacks (agent thread or its streaming thread) -------------------------
    def callbacks(self) -> dict[str, Any]:
        return {
            "stream_delta_callback": self._on_delta,
            "reasoning_callback": self._on_reasoning,
            "tool_start_callback": self._on_tool_start,
            "tool_complete_callback": self._on_tool_complete,
            "clarify_callback": self._on_clarify,
            "status_callback": self._on_status,
            "event_callback": self._on_agent_event,
        }

    def _on_delta(self, text: str | None) -> None:
        if text is None:
            self._emit(ev.SegmentEnd)
            return
        if text:
            with self._lock:
                if self._finalized:
                    return
                self._text.append(text)
            self._emit(ev.Token, text=text)

    def _on_reasoning(self, text: str | None) -> None:
        if text:
            self._emit(ev.Reasoning, text=str(text))

    def _on_tool_start(self, call_id: str, name: str, args: Any) -> None:
        self._tool_started[call_id] = time.monotonic()
        self._emit(ev.ToolStarted, call_id=str(call_id), name=str(name), args=snapshot_args(args))

    def _on_tool_complete(self, call_id: str, name: str, args: Any, result: Any) -> None:
        started = self._tool_started.pop(call_id, None)
        duration = time.monotonic() - started if started else 0.0
        try:
            from agent.display import _detect_tool_failure
            is_error = bool(_detect_tool_failure(name, result)[0])
        except Exception:
            is_error = False
        self._emit(ev.ToolCompleted, call_id=str(call_id), name=str(name),
                   duration=round(duration, 3), is_error=is_error, result=result_snippet(result))

    def _on_status(self, kind: Any, text: Any = "") -> None:
        self.log.append(f"{kind}: {text}")
        if str(kind) in ("warn", "warning", "error", "retry", "fallback", "lifecycle"):
            self._emit(ev.Status, level=str(kind), text=_cut(text, 300))

    def _on_agent_event(self, name: str, data: Any = None) -> None:
        self.log.append(f"event {name}")

    def _print(self, *args: Any, **_: Any) -> None:
        self.log.append(" ".join(str(a) for a in args))

    # ----- approvals ------------------------------------------------------------------------
    def _on_approval(self, data: dict) -> None:
        """hermes-agent wants a human decision on a command. Runs on the agent thread; must not block."""
        self._open_approval(command=str(data.get("command", "")), description=str(data.get("description", "")),
                            pattern_keys=tuple(data.get("pattern_keys") or [data.get("pattern_key", "")]),
                            allow_permanent=bool(data.get("allow_permanent", True)), data=data)

    def ask_approval(self, command: str, description: str, *, pattern: str,
                     allow_permanent: bool = False) -> str:
        """Block the agent thread until a human (or the policy) decides; for the notebook's own tools.

        Returns once, session, always or deny. "session" and "always" approve
        `pattern` for the rest of the session without asking again.
        """
        if pattern in self.session.approved_patterns:
            return "session"
        request = self._open_approval(command=command, description=description, pattern_keys=(pattern,),
                                      allow_permanent=allow_permanent, data={})
        request.answered.wait()
        return request.choice or "deny"

    def _open_approval(self, *, command: str, description: str, pattern_keys: tuple[str, ...],
                       allow_permanent: bool, data: dict) -> ApprovalRequest:
        request = ApprovalRequest(request_id=uuid.uuid4().hex[:8], seq=0, command=command,
                                  description=description, allow_permanent=allow_permanent,
                                  pattern_keys=pattern_keys, data=data)
        policy, timeout = self.config.approvals, self.config.approval_timeout
        with self._lock:
            self._approvals[request.request_id] = request
            event = self._emit(ev.ApprovalRequested, request_id=request.request_id, command=command,
                               description=description, pattern_keys=pattern_keys,
                               allow_permanent=allow_permanent, timeout=timeout)
            request.seq = event.seq if event else 0
        if self._cancel_requested or event is None:
            self._resolve_approval(request, "deny", by="cancel")
        elif policy == "deny":
            self._resolve_approval(request, "deny", by="policy")
        elif policy == "allow":
            self._resolve_approval(request, "once", by="policy")
        else:
            request.timer = threading.Timer(timeout, self._resolve_approval, (request, "deny", "timeout"))
            request.timer.daemon = True
            request.timer.start()
        return request

    def _answer_approval(self, choice: str, request_id: str | None, by: str) -> ApprovalRequest:
        choice = {"allow": "once", "yes": "once", "no": "deny"}.get(choice, choice)
        if choice not in APPROVAL_CHOICES:
            raise ValueError(f"choice must be one of {', '.join(APPROVAL_CHOICES)}, not {choice!r}")
        with self._lock:
            request = self._pick(self._approvals, request_id, lambda r: r.choice is None,
                                 "No approval is pending in this turn.")
        if choice == "always" and not request.allow_permanent:
            raise ValueError("'always' is not offered for this command; choose once, session or deny")
        self._resolve_approval(request, choice, by=by)
        return request

    def _resolve_approval(self, request: ApprovalRequest, choice: str, by: str) -> bool:
        from . import hosting

        with self._lock:
            if request.choice is not None:
                return False
            request.choice = choice
        if request.timer is not None:
            request.timer.cancel()
        if choice == "session" or choice == "always":
            self.session.approved_patterns.update(p for p in request.pattern_keys if p)
        if request.data:
            hosting.resolve_gateway_entry(self._approval_key, request.data, choice)
        request.answered.set()
        self._emit(ev.ApprovalResolved, request_id=request.request_id, choice=choice, by=by)
        return True

    # ----- clarify --------------------------------------------------------------------------
    def _on_clarify(self, question: Any, choices: Any = None) -> str:
        """The agent asks the user a question. Blocks the agent thread until answered."""
        request = ClarifyRequest(request_id=uuid.uuid4().hex[:8], seq=0, question=str(question or ""),
                                 choices=tuple(str(c) for c in (choices or [])))
        with self._lock:
            self._clarifies[request.request_id] = request
            cancelled = self._cancel_requested
        timeout = self.config.clarify_timeout
        with self._lock:
            event = self._emit(ev.ClarifyRequested, request_id=request.request_id, question=request.question,
                               choices=request.choices, timeout=timeout)
            request.seq = event.seq if event else 0
        if not cancelled and not request.event.wait(timeout):
            with self._lock:
                timed_out = request.resolved_by is None
                if timed_out:
                    request.resolved_by = "timeout"
            if timed_out:
                self._emit(ev.ClarifyResolved, request_id=request.request_id, answer=None, by="timeout")
        answer = (request.answer or "").strip()
        return answer if answer and request.resolved_by == "user" else NO_ANSWER

    @staticmethod
    def _pick(requests: dict, request_id: str | None, is_open: Callable[[Any], bool], missing: str):
        if request_id is not None:
            request = requests.get(request_id)
            if request is None or not is_open(request):
                raise NothingPending(f"Request {request_id!r} is not pending in this turn.")
            return request
        for request in requests.values():
            if is_open(request):
                return request
        raise NothingPending(missing)


class _CancelledBeforeStart(Exception):
    pass


def _deliver(fn: Subscriber, event: ev.Event) -> None:
    try:
        fn(event)
    except Exception:  # a broken view must not stop the turn or the other views
        log.exception("subscriber %r failed on %s", fn, event.kind)


def attachment_note(flags: dict[str, Any]) -> str:
    """Attached files are named in the message, as the Hermes Web UI does; the agent reads them with its tools."""
    paths = flags.get("attachments") or []
    return f"\n\n[Attached files: {', '.join(paths)}]" if paths else ""


def _with_attachments(record: dict, turn: "Turn") -> dict:
    if turn.flags.get("attachments"):
        record["attachments"] = list(turn.flags["attachments"])
    return record


def _compression_count(agent: Any) -> int:
    return int(getattr(getattr(agent, "context_compressor", None), "compression_count", 0) or 0)


class Session:
    """A named conversation: its history, its queue of turns, and an agent kept warm between turns."""

    def __init__(self, engine: "Engine", name: str):
        self.engine = engine
        self.name = name
        self.key = f"jupyter-{engine.instance}-{name}"
        self.messages: list[dict] = []
        self.turns: list[Turn] = []
        self.approved_patterns: set[str] = set()
        self.saved_turns: list[dict] = []  # turns of earlier kernels, from the history file
        self.title: str | None = None
        self.personality: str | None = None  # chosen with --personality, kept for the session
        self._lock = threading.Lock()
        self._active: Turn | None = None
        self._queue: collections.deque[Turn] = collections.deque()
        self._idle_agent: tuple[Any, Any] | None = None  # (agent, config)

    @property
    def busy(self) -> bool:
        return self._active is not None

    def submit(self, turn: Turn) -> None:
        if self.engine.store is not None:
            turn.subscribe(HistoryWriter(self, turn))
        with self._lock:
            self.turns.append(turn)
            start = self._active is None
            if start:
                self._active = turn
            else:
                self._queue.append(turn)
                turn.status = "queued"
                position = len(self._queue)
        if start:
            turn._start()
        else:
            turn._emit(ev.TurnQueued, position=position)

    def unqueue(self, turn: Turn) -> bool:
        with self._lock:
            if turn in self._queue:
                self._queue.remove(turn)
                return True
            return False

    def release(self, turn: Turn) -> None:
        """The turn has ended (or was let go after a cancel): start the next queued one."""
        with self._lock:
            if self._active is not turn:
                return
            self._active = self._queue.popleft() if self._queue else None
            following = self._active
        if following is not None:
            following._start()

    def checkout_agent(self, config: Any, turn: Turn) -> Any:
        from . import hosting

        with self._lock:
            idle, self._idle_agent = self._idle_agent, None
        if idle is not None and idle[1] == config:
            agent = idle[0]
            for name, fn in turn.callbacks().items():
                setattr(agent, name, fn)
        else:
            agent = hosting.build_agent(config, session_id=self.key, callbacks=turn.callbacks(),
                                        ephemeral_system_prompt=self.engine.system_prompt(turn))
        agent._print_fn = turn._print
        return agent

    def finish_turn(self, turn: Turn, messages: list[dict], *, keep_agent: bool) -> None:
        with self._lock:
            self.messages = list(messages)
            if keep_agent and turn._agent is not None and turn.config is not None:
                self._idle_agent = (turn._agent, turn.config)


    def record(self) -> dict:
        """This session as the history file stores it (the store sanitizes and redacts)."""
        with self._lock:
            turns = list(self.turns)
            messages = list(self.messages)
        from .store import turn_record

        records = self.saved_turns + [
            _with_attachments(turn_record(t.events, turn_id=t.id, prompt=t.prompt, started=t.started_wall), t)
            for t in turns]
        usage = {"input_tokens": 0, "output_tokens": 0, "cost_usd": None}
        for r in records:
            u = r.get("usage") or {}
            usage["input_tokens"] += int(u.get("input_tokens") or 0)
            usage["output_tokens"] += int(u.get("output_tokens") or 0)
            if u.get("cost_usd"):
                usage["cost_usd"] = (usage["cost_usd"] or 0.0) + float(u["cost_usd"])
        record = {"name": self.name, "messages": messages, "turns": records, "usage": usage}
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


class HistoryWriter:
    """Saves the session when a turn starts, every SAVE_EVERY seconds while it runs, and when it ends."""

    SAVE_EVERY = 5.0

    def __init__(self, session: Session, turn: Turn):
        self.session, self.turn = session, turn
        self._last = 0.0

    def __call__(self, event: ev.Event) -> None:
        now = time.monotonic()
        if isinstance(event, (ev.TurnStarted, ev.Done)) or now - self._last >= self.SAVE_EVERY:
            self._last = now
            self.session.save()


class Engine:
    """All sessions of one kernel. The magic holds one; code may create its own."""

    def __init__(self, settings: Any = None):
        from .settings import Hermes

        self.settings = settings if settings is not None else Hermes()
        self.instance = uuid.uuid4().hex[:8]
        self.sessions: dict[str, Session] = {}
        self.current = "main"
        self.store = None  # a HistoryStore once attach_history() ran
        self.store_error: str | None = None
        self.shell = None  # the IPython shell whose namespace the notebook tools see (set by the magic)
        self._lock = threading.Lock()

    def attach_history(self, path: Path) -> str | None:
        """Keep this engine's sessions in `path`, resuming what it holds. Returns a notice, if any."""
        from .store import HistoryStore

        store = HistoryStore(Path(path))
        document = store.load()
        with self._lock:
            self.store = store
            for name, record in document.get("sessions", {}).items():
                session = self.sessions.get(name) or Session(self, name)
                session.messages = list(record.get("messages") or [])
                session.saved_turns = list(record.get("turns") or [])
                session.title = record.get("title")
                self.sessions[name] = session
            if document.get("sessions"):
                self.current = document.get("current") or self.current
        return store.notice

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
                self.sessions[name] = Session(self, name)
            return self.sessions[name]

    def submit(self, prompt: str, *, session: str | None = None, cwd: str | Path | None = None,
               subscribers: Iterable[Subscriber] = (), **flags: Any) -> Turn:
        """Start (or queue) a turn and return its handle at once."""
        target = self.session(session)
        if flags.get("personality"):
            target.personality = flags["personality"]
        elif target.personality:
            flags["personality"] = target.personality
        turn = Turn(target, prompt, flags, Path(cwd or Path.cwd()).resolve())
        for fn in subscribers:
            turn.subscribe(fn)
        target.submit(turn)
        return turn

    def running(self) -> list[Turn]:
        return [t for s in list(self.sessions.values()) for t in s.turns if not t.done]

    def system_prompt(self, turn: Turn) -> str:
        prompt = (
            "You are working inside a Jupyter notebook through the %hermes magic. "
            f"The notebook's folder is {turn.cwd}; use it as the working directory for files "
            "and commands. Your answers are rendered as Markdown in the notebook."
        )
        # A personality goes where the Hermes CLI puts it: the ephemeral system prompt.
        persona = getattr(turn.config, "personality_prompt", None)
        return f"{prompt}\n\n{persona}" if persona else prompt
