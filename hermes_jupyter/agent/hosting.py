"""Host hermes-agent inside a long-lived kernel.

hermes-agent is written for a process of its own. Inside a kernel some of its
process-wide habits break the notebook, so this module, once per process:

- stops ``_install_safe_stdio`` from replacing sys.stdout/sys.stderr (under
  IPython 9 every later cell would fail with "'_SafeWriter' object attribute
  'write' is read-only");
- routes approvals of dangerous commands to the notebook (HERMES_EXEC_ASK plus
  a per-turn gateway callback) and lets the notebook's policy, not the user's
  global "smart" mode, decide who answers;
- keeps the root logger and the LogRecord factory as the user had them;
- sends a request's messages without the openai SDK's per-message walk
  (request_body.py) and lets some of hermes' own per-message passes skip the
  messages they saw before (prefix_memo.py): both grew with the session.

Per-turn state lives in context variables, never in os.environ, so concurrent
sessions cannot see each other's settings.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import inspect
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hermes_jupyter.agent import prefix_memo, request_body, tls

_install_lock = threading.Lock()
_installed = False


@dataclass(frozen=True)
class ApprovalPolicy:
    policy: str  # ask | deny | allow | smart
    timeout: float


# Set on a turn's worker thread; hermes-agent copies contexts into its tool threads.
current_policy: contextvars.ContextVar[ApprovalPolicy | None] = contextvars.ContextVar(
    "hermes_jupyter_policy", default=None)

# hermes-agent's own deadline is kept later than ours, so the notebook times
# out first and can tell the user why the request was denied.
_HERMES_DEADLINE_MARGIN = 30.0


@contextlib.contextmanager
def confined_logging() -> Iterator[None]:
    """Let hermes-agent set up its logging, but on its own loggers instead of the root logger.

    AIAgent() attaches its file handlers to the root logger and lowers its level,
    which would send the user's own logging to Hermes' log files (and theirs to
    the notebook). Its LogRecord factory stays: its handlers need its fields.
    """
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        added = [h for h in root.handlers if h not in handlers]
        hermes_level = root.level
        root.handlers[:] = handlers
        root.setLevel(level)
        for name in _hermes_packages() if added else ():
            logger = logging.getLogger(name)
            for handler in added:
                if handler not in logger.handlers:
                    logger.addHandler(handler)
            if logger.level == logging.NOTSET:
                logger.setLevel(hermes_level)


def _hermes_packages() -> list[str]:
    try:
        from importlib.metadata import distribution
        names = (distribution("hermes-agent").read_text("top_level.txt") or "").split()
    except Exception:
        names = []
    return sorted(set(names) | {"agent", "tools", "run_agent", "hermes_cli", "gateway"})


def _no_safe_stdio() -> None:
    """Replacement for hermes-agent's stdio wrapper: the kernel's streams are fine as they are."""


def installed() -> bool:
    """Has hermes-agent been imported and patched in this process (by a turn or the warm-up)?"""
    return _installed


def ensure_installed() -> None:
    """Import hermes-agent and apply the kernel-safe patches (idempotent, thread-safe)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        # Approvals go through the gateway path, which calls our notify callback.
        os.environ["HERMES_EXEC_ASK"] = "1"
        with confined_logging():
            # Kept first, as it was: importing run_agent loads hermes' .env.
            import run_agent  # slow: ~0.8 s, so only ever on a worker thread
            # isort: split
            import agent.agent_init as agent_init
            import agent.conversation_loop as conversation_loop
            import tools.approval as approval

        import agent.process_bootstrap as process_bootstrap
        for module in (agent_init, conversation_loop, run_agent, process_bootstrap):
            if hasattr(module, "_install_safe_stdio"):
                module._install_safe_stdio = _no_safe_stdio

        original_mode = approval._get_approval_mode
        original_timeout = approval._get_approval_timeout

        def notebook_approval_mode() -> str:
            policy = current_policy.get()
            if policy is None:
                return original_mode()
            # ask/deny/allow are decided by the notebook's callback, so Hermes must ask.
            return "smart" if policy.policy == "smart" else "manual"

        def notebook_approval_timeout() -> int:
            policy = current_policy.get()
            if policy is None:
                return original_timeout()
            return int(policy.timeout + _HERMES_DEADLINE_MARGIN)

        approval._get_approval_mode = notebook_approval_mode
        approval._get_approval_timeout = notebook_approval_timeout
        if not request_body.install():
            logging.getLogger("hermes_jupyter").debug("openai's request transform left as it is")
        _speed_up_message_passes()
        _share_tls_contexts()
        try:  # our own toolset: the user's variables and code runs in the kernel
            from hermes_jupyter.notebook.tools import register_tools
            register_tools()
        except Exception:
            logging.getLogger("hermes_jupyter").exception("the notebook tools could not be registered")
        _installed = True


# hermes-agent functions we wrap (prefix memos, the reasoning copy, the TLS decision), each only while
# its source is the one read and checked (hermes-agent 0.19.0): any change there leaves it as it is,
# and tests/test_long_session.py (test_tls_contexts.py for the TLS one) fails so it is read again.
_CHECKED = {
    "estimate_messages_tokens_rough": "2e41e4eb7e1bb2b7",  # a sum over messages judged alone
    "_sanitize_messages_surrogates": "8ac7d1ae8919b213",  # scrubs each message alone, in place
    "ChatCompletionsTransport.convert_messages": "13fae72d0db9fbef",  # returns its list when no message needs a change
    # returns at once for a message that is not the assistant's; without the thinking pad only pops reasoning_content
    "copy_reasoning_content_for_api": "615dbb018f5c9352",
    "AIAgent._copy_reasoning_content_for_api": "deccc6bb941bdef6",  # forwards to it
    "AIAgent._drop_thinking_only_and_merge_users": "c5da0dc079b52061",  # forwards to the next one
    "drop_thinking_only_and_merge_users": "5477bd6da0aee4dc",  # returns its list when no message is thinking-only
    "AIAgent._is_thinking_only_assistant": "b39e0eee94a98f4b",  # judges one message
    # returns False (insecure), a context for the first CA file set (argument, then 4 variables), or True
    "resolve_httpx_verify": "0117302c391da055",
    "_coerce_insecure": "c37ba7df102d8865",  # ssl_verify False or "false"/"0"/"no"/"off"
}
message_passes: list[str] = []  # the ones patched in this process
_IMAGE_TOKEN_COST = 1500  # estimate_messages_tokens_rough's own constant (in its checked source)


def _checked(fn: Any) -> bool:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return False
    return hashlib.sha256(source.encode()).hexdigest()[:16] == _CHECKED.get(fn.__qualname__)


def _rebind(name: str, real: Any, fast: Any) -> None:
    """Every hermes module that imported ``name`` by value gets the fast one."""
    import sys
    for module in list(sys.modules.values()):
        if (getattr(module, "__name__", "") or "").split(".")[0] in ("agent", "run_agent", "gateway", "tools") \
                and getattr(module, name, None) is real:
            setattr(module, name, fast)


def _speed_up_message_passes() -> None:
    """Per-message passes hermes-agent runs over the whole conversation before every request
    skip the messages they saw unchanged before (prefix_memo.py; ~6 ms at 1,000 turns)."""
    try:
        import agent.agent_runtime_helpers as helpers
        import agent.message_sanitization as scrub
        import agent.model_metadata as metadata
        import agent.transports.chat_completions as chat
        from run_agent import AIAgent
    except ImportError:
        return
    real = metadata.estimate_messages_tokens_rough
    if _checked(real):
        _rebind(real.__name__, real, prefix_memo.summing(
            real, lambda m: (metadata._estimate_message_chars(m), metadata._count_image_tokens(m, _IMAGE_TOKEN_COST)),
            lambda chars, images: (chars + 3) // 4 + images))
        message_passes.append(real.__name__)
    surrogates = scrub._sanitize_messages_surrogates
    if _checked(surrogates):
        _rebind(surrogates.__name__, surrogates, prefix_memo.scrubbing(surrogates))
        message_passes.append(surrogates.__name__)
    convert = chat.ChatCompletionsTransport.convert_messages
    if _checked(convert):
        chat.ChatCompletionsTransport.convert_messages = prefix_memo.unchanged_if_clean(convert)
        message_passes.append(convert.__qualname__)
    drop = AIAgent._drop_thinking_only_and_merge_users  # a staticmethod: a plain function here
    if all(_checked(f) for f in (drop, helpers.drop_thinking_only_and_merge_users, AIAgent._is_thinking_only_assistant)):
        AIAgent._drop_thinking_only_and_merge_users = staticmethod(prefix_memo.unchanged_if_clean(drop))
        message_passes.append(drop.__qualname__)
    forward, helper = AIAgent._copy_reasoning_content_for_api, helpers.copy_reasoning_content_for_api
    if _checked(forward) and _checked(helper):
        def copy_reasoning(self: Any, source_msg: dict, api_msg: dict) -> None:
            if source_msg.get("role") != "assistant":  # the helper's own first test: skip the call
                return None
            if not self._needs_thinking_reasoning_pad():  # then each branch of the (checked) helper only pops it
                api_msg.pop("reasoning_content", None)
                return None
            return helper(self, source_msg, api_msg)  # what the forwarder (checked) calls
        AIAgent._copy_reasoning_content_for_api = copy_reasoning
        message_passes.append(forward.__qualname__)


def _share_tls_contexts() -> None:
    """hermes-agent's per-request clients get one TLS context per CA source (tls.py), not new ones
    each request (~25 ms and ~1 MB of C heap each, up to three a request)."""
    try:
        import agent.ssl_verify as ssl_verify
    except ImportError:
        return
    real = ssl_verify.resolve_httpx_verify
    if _checked(real) and _checked(ssl_verify._coerce_insecure):
        shared = tls.reusing(real, ssl_verify._coerce_insecure)
        ssl_verify.resolve_httpx_verify = shared
        _rebind(real.__name__, real, shared)


def build_agent(config: Any, *, session_id: str, callbacks: dict[str, Any],
                ephemeral_system_prompt: str) -> Any:
    """Construct an AIAgent for a resolved RunConfig (slow: probes the endpoint)."""
    ensure_installed()
    from run_agent import AIAgent

    with confined_logging():
        agent = AIAgent(
            model=config.model,
            provider=config.provider or None,
            base_url=config.base_url or None,
            api_key=config.api_key or None,
            api_mode=config.api_mode,
            platform="jupyter",
            quiet_mode=True,
            enabled_toolsets=list(config.toolsets),
            skip_memory="memory" not in config.toolsets,
            session_id=session_id,
            fallback_model=config.fallback_model,
            ephemeral_system_prompt=ephemeral_system_prompt,
            **callbacks,
        )
    # Until a turn routes them to its log (run.py), hermes' own prints (its spinner, on a terminal) go nowhere: the
    # warm-up's request and a prepared agent wrote them to the kernel's stdout, over terminal IPython's prompt.
    agent._print_fn = _unrouted
    _note_fallback_reasons(agent)
    return agent


def _unrouted(*args: Any, **kwargs: Any) -> None:
    logging.getLogger("hermes_jupyter").debug("hermes printed outside a turn: %s", " ".join(map(str, args)))


def fallback_reason(agent: Any) -> str:
    """Why the agent last switched to its fallback model ("" if unknown)."""
    return str(getattr(agent, "_hermes_jupyter_fallback_reason", "") or "")


def is_tool_failure(name: str, result: Any) -> bool:
    """hermes-agent's own reading of a tool result as a failure."""
    try:
        from agent.display import _detect_tool_failure
        return bool(_detect_tool_failure(name, result)[0])
    except Exception:
        return False


def _note_fallback_reasons(agent: Any) -> None:
    """Remember why the agent last switched to its fallback model, for the turn's notice.

    hermes-agent logs the reason but keeps only the switch itself; the
    retry loop's last buffered status line says why when no reason is passed.
    """
    switch = getattr(agent, "_try_activate_fallback", None)
    if switch is None:
        return

    def noting_switch(reason: Any = None) -> bool:
        before = getattr(agent, "model", None)
        buffered = list(getattr(agent, "_retry_status_buffer", None) or [])
        switched = switch(reason)
        if switched and getattr(agent, "model", None) != before:
            agent._hermes_jupyter_fallback_reason = _reason_text(reason, buffered)
        return switched

    agent._try_activate_fallback = noting_switch


def _reason_text(reason: Any, buffered: list) -> str:
    if reason is not None:
        return str(getattr(reason, "value", reason)).replace("_", " ")
    # e.g. "⚠️ Max retries (3) exhausted — trying fallback..." -> "max retries (3) exhausted"
    text = next((str(m) for kind, m in reversed(buffered) if kind == "status"), "")
    text = text.split(" — ")[0].lstrip("⚠️🔐⏳🔄 \ufe0f").strip()  # noqa: B005 - a set of characters to strip, as meant
    return text[:1].lower() + text[1:] if text else ""


def approval_module() -> Any:
    import tools.approval as approval
    return approval


def resolve_gateway_entry(session_key: str, data: dict, choice: str) -> bool:
    """Answer the one pending hermes approval whose payload is ``data``.

    hermes-agent's public resolver answers the oldest request first; with
    several approvals pending that can release the wrong one, so we find the
    entry by identity.
    """
    approval = approval_module()
    with approval._lock:
        queue = approval._gateway_queues.get(session_key) or []
        entry = next((e for e in queue if e.data is data), None)
        if entry is None:
            return False
        queue.remove(entry)
        if not queue:
            approval._gateway_queues.pop(session_key, None)
    entry.result = choice
    entry.event.set()
    return True
