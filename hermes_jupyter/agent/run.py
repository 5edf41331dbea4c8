"""One turn's run of hermes-agent, on the turn's worker thread.

Everything here touches hermes-agent's internals: the approval gateway and the
per-run context it reads, the tools' working folder, the agent's callbacks
(from its own thread and its streaming thread), usage counters, the fallback
switch. What happens becomes typed events through the ``RunPort`` the engine
passes in; the engine decides what the outcome means for the turn.
"""
from __future__ import annotations

import itertools
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from hermes_jupyter import events as ev
from hermes_jupyter.agent import hosting, insights, mcp_servers, settings
from hermes_jupyter.agent.failures import ConfigError, Failure, agent_config_error, classify, provider_fault
from hermes_jupyter.agent.patience import Watch
from hermes_jupyter.agent.settings import RunConfig
from hermes_jupyter.safety.redact import encodable, redact_text
from hermes_jupyter.safety.sanitize import drop_unanswered
from hermes_jupyter.util.text import cut

log = logging.getLogger("hermes_jupyter")

ARG_KEYS, ARG_CHARS, RESULT_CHARS = 4, 120, 400
FAULT = "hermes_jupyter_fault"  # a failure the run itself decided (result key read by classify_outcome)
# hermes' retry lines ("⏳ Retrying in 2.7s (attempt 1/3)...", "⏱️ Rate limited. Waiting 1.0s (attempt 2/3)...",
# "⚠️ No response from provider for 1s ... Reconnecting..."): it buffers them and replays them all when it
# gives up, one cycle per model call, so a turn read "(attempt 1/3), (2/3), (1/3), (2/3)".
_RETRY_LINE = re.compile(r"\bretrying\b|\brate limited\b|\breconnecting\b|\(attempt \d+/\d+\)", re.I)
# hermes' status kinds (status_callback's first argument) shown in the turn, and the level they get there.
_STATUS_LEVELS = {"lifecycle": "info", "warn": "warn", "warning": "warn", "error": "warn", "retry": "warn",
                  "fallback": "warn"}
E = TypeVar("E", bound=ev.Event)


class RunPort(Protocol):
    """What a run reports to: the engine's side of the turn."""

    def emit(self, cls: type[E], **fields: Any) -> E | None: ...
    def request_approval(self, *, command: str, description: str, pattern_keys: tuple[str, ...],
                         allow_permanent: bool, payload: dict[str, Any]) -> None: ...
    def ask_clarify(self, question: str, choices: tuple[str, ...]) -> str: ...
    def note(self, line: str) -> None: ...
    @property
    def cancel_requested(self) -> bool: ...


class CancelledBeforeStart(Exception):
    """The turn was stopped while the agent was being built."""


@dataclass
class RunRequest:
    message: str  # the prompt, with --vars summaries and attachment names
    history: list[dict[str, Any]]  # sanitized
    config: RunConfig
    session_key: str  # hermes' session id and the tools' task id
    approval_key: str  # the gateway key of this turn's approvals
    cwd: Path
    approved_patterns: frozenset[str]
    system_prompt: str
    title: str | None = None  # the session's, for Hermes' own records


@dataclass(frozen=True)
class WarmAgent:
    """An agent kept for the session's next turn: reused only if nothing it was built with changed."""
    agent: Any
    config: RunConfig
    system_prompt: str


def build_warm_agent(config: RunConfig, session_key: str, system_prompt: str) -> WarmAgent:
    """A session's agent built ahead of its first turn (the warm-up): the endpoint probed.
    Callbacks are attached when a turn checks it out. MCP servers are left to the first turn,
    which connects them and reports a broken one in its cell (with MCP toolsets that turn
    builds its own agent)."""
    agent = hosting.build_agent(config, session_id=session_key, callbacks={}, ephemeral_system_prompt=system_prompt)
    return WarmAgent(agent, config, system_prompt)


@dataclass
class RunOutcome:
    result: dict[str, Any]
    agent: Any  # to keep warm for the next turn
    config: RunConfig  # with MCP toolsets added
    usage: ev.Usage | None


def snapshot_args(args: Any) -> dict[str, str]:
    # Redact before cutting: a secret cut in half no longer matches its pattern.
    if not isinstance(args, dict):
        return {}
    return {str(k): cut(redact_text(str(v)), ARG_CHARS) for k, v in itertools.islice(args.items(), ARG_KEYS)}


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
    return cut(text.strip(), RESULT_CHARS)


def compression_count(agent: Any) -> int:
    return int(getattr(getattr(agent, "context_compressor", None), "compression_count", 0) or 0)


class AgentRun:
    """Runs one prompt through an agent (a warm one if its configuration still matches)."""

    def __init__(self, port: RunPort, request: RunRequest, warm: WarmAgent | None) -> None:
        self.port = port
        self.request = request
        self.config = request.config
        self.agent: Any = None
        self._warm = warm
        self._tool_started: dict[str, float] = {}
        # Whether non-blank answer text streamed: all classify_outcome needs. A list of the chunks
        # kept every token of every finished turn alive (the runner keeps its AgentRun).
        self._streamed_text = False
        self._said_encodable = False
        self._retries = 0  # hermes' retry lines seen: said once, counted, when the run ends
        self._said: set[str] = set()  # status lines already shown (hermes repeats some)
        self.watch = Watch(model=self.config.model, first_byte=self.config.first_byte_timeout,
                           stall=self.config.stall_timeout, on_wait=self._on_wait)

    def setup(self) -> RunConfig:
        """Import hermes-agent, connect MCP servers (once per kernel); the turn's final config."""
        if not hosting.installed():
            self.port.emit(ev.Phase, text="starting Hermes")
        hosting.ensure_installed()
        toolsets, failures = mcp_servers.for_turn(self.config.toolsets)
        if toolsets != self.config.toolsets:
            self.config = settings.with_overrides(self.config, toolsets=toolsets)
        for server in failures:
            self.port.emit(ev.Status, level="warn", text=mcp_servers.failure_text(server))
        return self.config

    def run(self) -> RunOutcome:
        """Run the conversation; hermes' approval gateway is wired for exactly this run."""
        request, config = self.request, self.config
        approval = hosting.approval_module()
        policy_token = hosting.current_policy.set(hosting.ApprovalPolicy(config.approvals, config.approval_timeout))
        key_token = approval.set_current_session_key(request.approval_key)
        try:
            for pattern in request.approved_patterns:
                approval.approve_session(request.approval_key, pattern)
            # Registered before the run, or the first request would find no listener.
            approval.register_gateway_notify(request.approval_key, self._on_approval)
            from tools.terminal_tool import register_task_env_overrides
            register_task_env_overrides(request.session_key, {"cwd": str(request.cwd)})
            self.agent = self._checkout()
            if self.port.cancel_requested:
                raise CancelledBeforeStart()
            compressions = compression_count(self.agent)
            before = getattr(self.agent, "_hermes_jupyter_usage", (0, 0, 0.0))
            self.port.emit(ev.Phase, text="waiting for the first token")
            message = self._encodable_message()
            sent = drop_unanswered(request.history)
            self.watch.attach(self.agent)
            try:
                result = self.agent.run_conversation(message, conversation_history=sent, task_id=request.session_key)
            finally:
                self.watch.detach()
            result = self._settle(self._keep_unsent(result if isinstance(result, dict) else {}, sent))
            self._say_retries(result)
            if compression_count(self.agent) > compressions:
                self.port.emit(ev.Compressed, message="The conversation was compressed to fit the context window.")
            self._note_fallback(result)
            usage = self._usage(result, before)
            if config.sync_insights and usage is not None:
                if not insights.record_turn(usage, self.agent, result, session_key=request.session_key,
                                            model=config.model, cwd=str(request.cwd), title=request.title):
                    self.port.note("insights: usage not recorded in Hermes' state database")
            return RunOutcome(result, self.agent, config, usage)
        finally:
            approval.unregister_gateway_notify(request.approval_key)  # wakes stragglers as denied
            approval.clear_session(request.approval_key)
            approval.reset_current_session_key(key_token)
            hosting.current_policy.reset(policy_token)
            self.release()

    def release(self) -> None:
        """The run has returned: a finished turn keeps its AgentRun, which must not keep the agent.
        The session's warm agent goes on through RunOutcome; one that is not reused (its
        configuration changed) is freed with what it holds (its client, its conversation)."""
        self.agent = None
        self.watch.release()

    def interrupt(self) -> None:
        if self.agent is not None:
            try:
                self.agent.interrupt("Cancelled by user")
            except Exception:
                log.exception("agent.interrupt failed")

    def _settle(self, result: dict[str, Any]) -> dict[str, Any]:
        """A failed run leaves only its prompt in the conversation: no partial answer, no hermes
        continuation prompts. The prompt is kept as a record and not sent again (drop_unanswered)."""
        fault = self.watch.fault
        if fault is not None and not self.port.cancel_requested:
            config = self.config
            result = {**result, "failed": True, "interrupted": False, "final_response": None,
                      FAULT: provider_fault(fault.kind, model=config.model, base_url=config.display_url,
                                            waited=fault.waited, chars=fault.chars, detail=fault.detail)}
        elif self.port.cancel_requested or result.get("interrupted"):
            return result
        failure = classify_outcome(result, "x" if self._streamed_text else "", self.config,
                                   waited=self.watch.unanswered_for())
        if failure is not None:
            result[FAULT] = failure  # decided here, where the run's own measures are known
            result["messages"] = [*self.request.history, {"role": "user", "content": self._encodable_message()}]
        return result

    def _keep_unsent(self, result: dict[str, Any], sent: list[dict[str, Any]]) -> dict[str, Any]:
        """The conversation hermes hands back starts with what it was sent: the history without the
        prompts of earlier failed or stopped turns. Those prompts were asked, so they stay in it (the
        history file, /export), in their places; they are left out again of the next request."""
        messages = result.get("messages")
        history = self.request.history
        if (len(sent) != len(history) and isinstance(messages, list) and len(messages) >= len(sent)
                and messages[:len(sent)] == sent):
            result["messages"] = [*history, *messages[len(sent):]]
        return result

    def _say_retries(self, result: dict[str, Any]) -> None:
        """hermes' retry lines, counted once for the whole run, in one line above the turn's end."""
        if self._retries:
            times = f"{self._retries} time{'s' * (self._retries > 1)}"
            ended = ", then gave up" if result.get("failed") or result.get(FAULT) else ""
            self.port.emit(ev.Status, level="warn", text=f"Hermes retried the request {times}{ended}")

    def _encodable_message(self) -> str:
        """The prompt as sent: a lone surrogate cannot go into a UTF-8 request (nor a file), so it is
        replaced, and the turn says so once, in one line."""
        message = encodable(self.request.message)
        if message != self.request.message and not self._said_encodable:
            self._said_encodable = True
            self.port.emit(ev.Status, level="warn", text=(
                "the prompt held characters that cannot be encoded (a lone surrogate, e.g. half an emoji "
                "from a bad paste); they were sent as \ufffd"))
        return message

    # ----- the agent ------------------------------------------------------------------------
    def _checkout(self) -> Any:
        warm, self._warm = self._warm, None
        if warm is not None and warm.config == self.config and warm.system_prompt == self.request.system_prompt:
            agent = warm.agent
            for name, fn in self.callbacks().items():
                setattr(agent, name, fn)
        else:
            self.port.emit(ev.Phase, text=f"connecting to {self.config.model}")
            try:
                agent = hosting.build_agent(self.config, session_id=self.request.session_key,
                                            callbacks=self.callbacks(),
                                            ephemeral_system_prompt=self.request.system_prompt)
            except RuntimeError as exc:  # hermes refuses to start without a provider or its key
                config_error: ConfigError | None = agent_config_error(exc)
                if config_error is None:
                    raise
                raise config_error from None
        agent._print_fn = self._print
        return agent

    def _usage(self, result: dict[str, Any], before: tuple[int, int, float]) -> ev.Usage | None:
        # The agent's counters are totals over its life; a warm agent serves several turns.
        compressor = getattr(self.agent, "context_compressor", None)
        totals = (int(result.get("input_tokens") or 0), int(result.get("output_tokens") or 0),
                  float(result.get("estimated_cost_usd") or 0.0))
        self.agent._hermes_jupyter_usage = totals
        cost = totals[2] - before[2]
        return self.port.emit(
            # After a fallback switch the agent reports the model that answered.
            ev.Usage, model=str(result.get("model") or getattr(self.agent, "model", "") or self.config.model),
            input_tokens=max(0, totals[0] - before[0]),
            output_tokens=max(0, totals[1] - before[1]),
            cost_usd=round(cost, 6) if cost > 0 else None,
            context_length=int(getattr(compressor, "context_length", 0) or 0),
            threshold_tokens=int(getattr(compressor, "threshold_tokens", 0) or 0),
            last_prompt_tokens=int(getattr(compressor, "last_prompt_tokens", 0) or 0),
        )

    def _note_fallback(self, result: dict[str, Any]) -> None:
        """Say so when Hermes' configured fallback model, not the primary, answered this turn."""
        agent = self.agent
        if not getattr(agent, "_fallback_activated", False) or result.get("failed"):
            return
        primary = (getattr(agent, "_primary_runtime", None) or {}).get("model") or self.config.model
        answered = str(result.get("model") or getattr(agent, "model", "") or "")
        if answered and answered != primary and str(result.get("final_response") or "").strip():
            why = hosting.fallback_reason(agent)
            self.port.emit(ev.Status, level="warn",
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
        if not self.watch.alive(len(text or ""), reply=text is not None):
            return  # given up: hermes' retries of this reply are not part of the answer
        if text is None:  # hermes closes a segment, also of an attempt that received nothing
            self.port.emit(ev.SegmentEnd)
        elif text:
            self._streamed_text = self._streamed_text or not text.isspace()
            self.port.emit(ev.Token, text=text)

    def _on_reasoning(self, text: str | None) -> None:
        if text and self.watch.alive():
            self.port.emit(ev.Reasoning, text=str(text))

    def _on_wait(self, seconds: float, limit: float, started: bool) -> None:
        self.port.emit(ev.Waiting, model=self.config.model, seconds=round(seconds), limit=limit, started=started)

    def _on_tool_start(self, call_id: str, name: str, args: Any) -> None:
        self._tool_started[call_id] = time.monotonic()
        self.port.emit(ev.ToolStarted, call_id=str(call_id), name=str(name), args=snapshot_args(args))

    def _on_tool_complete(self, call_id: str, name: str, args: Any, result: Any) -> None:
        started = self._tool_started.pop(call_id, None)
        duration = time.monotonic() - started if started else 0.0
        self.port.emit(ev.ToolCompleted, call_id=str(call_id), name=str(name), duration=round(duration, 3),
                       is_error=hosting.is_tool_failure(name, result), result=result_snippet(result))

    def _on_clarify(self, question: Any, choices: Any = None) -> str:
        return self.port.ask_clarify(str(question or ""), tuple(str(c) for c in (choices or [])))

    def _on_status(self, kind: Any, text: Any = "") -> None:
        self.port.note(f"{kind}: {text}")  # the turn's log keeps every line as hermes said it
        line = str(text).strip()
        level = _STATUS_LEVELS.get(str(kind))
        if level is None or not line or line.startswith("❌"):
            return  # hermes giving up: the turn's Error says it, with what to do
        if _RETRY_LINE.search(line):
            self._retries += 1
            return
        if line not in self._said:
            self._said.add(line)
            self.port.emit(ev.Status, level=level, text=cut(line, 300))

    def _on_agent_event(self, name: str, data: Any = None) -> None:
        self.port.note(f"event {name}")

    def _print(self, *args: Any, **_: Any) -> None:
        self.port.note(" ".join(str(a) for a in args))

    def _on_approval(self, data: dict[str, Any]) -> None:
        """hermes-agent wants a human decision on a command. Runs on the agent thread; must not block."""
        self.port.request_approval(
            command=str(data.get("command", "")), description=str(data.get("description", "")),
            pattern_keys=tuple(data.get("pattern_keys") or [data.get("pattern_key", "")]),
            allow_permanent=bool(data.get("allow_permanent", True)), payload=data)


def classify_error(error: BaseException | str | None, config: RunConfig | None, *, waited: float = 0.0) -> Failure:
    """What went wrong and what to do, naming the user's endpoint (never the extension's own proxy)."""
    url, model = (config.display_url, config.model) if config is not None else ("", "")
    failure = classify(error, base_url=url, model=model, waited=waited)
    if config is not None and config.endpoint:
        failure = Failure(failure.kind, failure.message.replace(config.base_url, config.endpoint),
                          failure.hint.replace(config.base_url, config.endpoint))
    return failure


def classify_outcome(result: dict[str, Any], streamed: str, config: RunConfig | None, *,
                     waited: float = 0.0) -> Failure | None:
    """A failure hidden in a finished run's result (hermes reports API failures as text), if any."""
    fault = result.get(FAULT)
    if isinstance(fault, Failure):
        return fault
    if result.get("failed") or result.get("error"):
        return classify_error(str(result.get("error") or result.get("final_response") or ""), config, waited=waited)
    if not str(result.get("final_response") or "").strip() and not streamed.strip():
        return classify_error(None, config)
    return None
