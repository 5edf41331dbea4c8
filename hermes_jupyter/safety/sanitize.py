"""Make a stored conversation safe to replay to a chat-completions API.

Ported from the Hermes Web UI's ``_sanitize_messages_for_api`` with the fixes
its maintainers made later (see webui-lessons.md, points 1-3):

* providers such as Z.AI/GLM reject unknown message keys with a 400, so only
  the API keys survive;
* strict providers reject a tool result without a preceding call *and* an
  assistant call without a result after it; one bad row would otherwise
  poison every later turn of the session;
* assistant turns that hold only reasoning are never replayed.

Pure: no hermes-agent imports, never mutates its input.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

__all__ = ["drop_unanswered", "sanitize_history"]

Message = dict[str, Any]

_API_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")
_ROLES = frozenset({"system", "user", "assistant", "tool"})
# Content parts a user never sees; a turn made only of these is "reasoning-only".
_HIDDEN_PART_TYPES = frozenset({"thinking", "redacted_thinking", "reasoning"})


def _call_id(call: Any) -> str:
    """Id of a tool call: OpenAI uses ``id``, Anthropic-style payloads ``call_id``."""
    if not isinstance(call, dict):
        return ""
    tid = call.get("id") or call.get("call_id") or ""
    return tid if isinstance(tid, str) else ""


def _has_visible_content(content: Any) -> bool:
    if content is None:
        return False
    if isinstance(content, str):
        return bool(content.strip())
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                return True
            kind = part.get("type")
            if kind in _HIDDEN_PART_TYPES:
                continue
            if kind == "text":
                if str(part.get("text") or "").strip():
                    return True
                continue
            return True  # images, files, ... are visible
        return False
    return bool(content)


def sanitize_history(
    messages: Iterable[Any]
) -> list[Message]:
    """Return a new, deep-copied list of messages fit for the next API call."""
    keys = _API_KEYS
    # Pass 1: drop non-dicts and bad roles, keep only API keys (copied).
    msgs: list[Message] = [
        {k: copy.deepcopy(m[k]) for k in keys if k in m}
        for m in messages
        if isinstance(m, dict) and m.get("role") in _ROLES
    ]

    # Pass 2: pair each assistant's calls with the run of tool messages right
    # after it. A call survives only if its result is in that run; a result
    # survives only if it answers a surviving call (first result wins).
    out: list[Message] = []
    open_ids: set[str] = set()  # calls of the current assistant still awaiting a result
    i = 0
    while i < len(msgs):
        msg = msgs[i]
        role = msg["role"]
        if role == "tool":
            tid = msg.get("tool_call_id")
            if isinstance(tid, str) and tid in open_ids:
                open_ids.discard(tid)
                out.append(msg)
            i += 1
            continue

        open_ids = set()  # any non-tool message closes the previous run
        if role == "assistant":
            answered: set[str] = set()
            j = i + 1
            while j < len(msgs) and msgs[j]["role"] == "tool":
                tid = msgs[j].get("tool_call_id")
                if isinstance(tid, str):
                    answered.add(tid)
                j += 1
            calls = msg.get("tool_calls")
            kept: list[Any] = []
            for call in calls if isinstance(calls, list) else []:
                tid = _call_id(call)
                if tid and tid in answered and tid not in open_ids:
                    open_ids.add(tid)
                    kept.append(call)
            msg.pop("tool_calls", None)  # never send None or [] (OpenAI rejects [])
            if kept:
                msg["tool_calls"] = kept
            elif not _has_visible_content(msg.get("content")):
                i += 1  # empty, reasoning-only, or only unanswered calls
                continue
        out.append(msg)
        i += 1
    return out


def drop_unanswered(messages: list[Message]) -> list[Message]:
    """The conversation without the prompts nobody answered (a failed or stopped turn's).

    They stay in the history file as a record, but are not sent again: the next prompt would
    otherwise reach the model glued to them, as if the user had asked both at once.
    """
    kept: list[Message] = []
    answered = False  # read backwards: an assistant message follows, before the next user message
    for msg in reversed(messages):
        role = msg.get("role")
        if role == "assistant":
            answered = True
        elif role == "user":
            if not answered:
                continue
            answered = False
        kept.append(msg)
    return kept[::-1]


def _cut(text: str, limit: int) -> str:
    return text[:limit] + ("..." if len(text) > limit else "")


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal parts: keep the text ones
        return "".join(
            str(p.get("text") or "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return str(content)


def _parse_args(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw.strip():
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _args_snapshot(args: dict[str, Any]) -> dict[str, str]:
    snap = {}
    for key, value in list(args.items())[:6]:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        snap[str(key)] = _cut(text, 120)
    return snap
