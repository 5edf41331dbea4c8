"""Make a stored conversation safe to replay to a chat-completions API.

Ported from the Hermes Web UI's ``_sanitize_messages_for_api`` with the fixes
its maintainers made later:

* providers such as Z.AI/GLM reject unknown message keys with a 400, so only
  the API keys survive;
* strict providers reject a tool result without a preceding call *and* an
  assistant call without a result after it; one bad row would otherwise
  poison every later turn of the session;
* assistant turns that hold only reasoning are never replayed.

Pure: no hermes-agent imports, never mutates its input.
"""
from __future__ import annotations

import bisect
import copy
import json
import threading
from collections.abc import Iterable
from typing import Any

from hermes_jupyter.util.prefix import common_prefix

__all__ = ["SanitizeCache", "drop_unanswered", "sanitize_history", "unanswered_indices"]

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
    return _sanitize(messages, None)


def _sanitize(messages: Iterable[Any], marks: list[tuple[int, int]] | None) -> list[Message]:
    """sanitize_history; with ``marks``, also notes (input index, output length so far) at each
    message that closes a run (``_closes_run``): nothing after it changes the output before it."""
    keys = _API_KEYS
    # Pass 1: drop non-dicts and bad roles, keep only API keys (copied).
    msgs: list[Message] = []
    where: list[int] = []  # input index of each kept message
    for n, m in enumerate(messages):
        if isinstance(m, dict) and m.get("role") in _ROLES:
            msgs.append({k: copy.deepcopy(m[k]) for k in keys if k in m})
            where.append(n)

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

        if marks is not None:
            marks.append((where[i], len(out)))
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


def _closes_run(msg: Any) -> bool:
    """Any valid message but a tool result: it ends the previous assistant's run of results,
    so nothing from it on changes how the messages before it are sanitized."""
    return isinstance(msg, dict) and msg.get("role") in _ROLES and msg.get("role") != "tool"


def _flat(msg: Message) -> bool:
    return all(v is None or type(v) in (str, int, float, bool) for v in msg.values())


class SanitizeCache:
    """``sanitize_history`` for a conversation that grows at its end: only what changed is sanitized again.

    It keeps a deep copy of the messages it was last given, their sanitized form, and the
    places where the conversation can be cut (``_closes_run``). Each call finds how far the
    messages still equal that copy (an edit, a compression, a rollback, or hermes-agent
    handing back a message in another form shows there) and sanitizes from the last cut
    before the first difference. The result equals ``sanitize_history(messages)`` and is
    the caller's own (copies, as ever).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # prepare()'s result: (output, deep copy of the messages after _source, how many messages)
        self._ready: tuple[list[Message], list[Any], int] | None = None
        self._source: list[Any] = []  # deep copy of the messages up to and including the last cut
        self._out: list[Message] = []  # sanitize_history(self._source[:last cut]), never handed out
        self._flat: list[bool] = []  # per message of _out: only scalar values (a shallow copy is a deep one)
        self._cuts: list[int] = []  # input indices of the cuts, ascending
        self._out_at: list[int] = []  # len(output) before each cut

    def __call__(self, messages: Iterable[Any]) -> list[Message]:
        msgs = list(messages)
        with self._lock:
            same = common_prefix(msgs, self._source)
            ready, self._ready = self._ready, None  # any call makes a prepared result stale
            if ready is not None:  # _source is as prepare() left it: every call, this one too, drops _ready
                out, tail, count = ready
                # Equal to the prepared messages: msgs[:same] equal _source, and (same lengths) the rest its tail.
                if len(msgs) == count and msgs[same:] == tail:
                    return out
            return self._sanitized(msgs, same)

    def prepare(self, messages: Iterable[Any]) -> None:
        """Do the next call's work now, while nobody waits for it (a turn has ended): a call with
        messages equal to these then only compares them (in C) and gets this result, instead of
        copying the whole conversation while the next turn waits for its first token."""
        msgs = list(messages)
        with self._lock:
            self._ready = None
            out = self._sanitized(msgs, common_prefix(msgs, self._source))
            self._ready = (out, copy.deepcopy(msgs[len(self._source):]), len(msgs))

    def _sanitized(self, msgs: list[Any], same: int) -> list[Message]:
        """sanitize_history(msgs), given that msgs[:same] equal self._source[:same]; holds the lock."""
        start = self._keep(same)
        prefix = [m.copy() if flat else copy.deepcopy(m) for m, flat in zip(self._out, self._flat, strict=True)]
        marks: list[tuple[int, int]] = []
        fresh = _sanitize(msgs[start:], marks)
        if marks and marks[-1][0] > 0:
            last, settled = marks[-1]
            self._source[start:] = copy.deepcopy(msgs[start:start + last + 1])
            kept = copy.deepcopy(fresh[:settled])
            self._out += kept
            self._flat += [_flat(m) for m in kept]
            base = len(prefix)
            for index, length in marks if start == 0 and not self._cuts else marks[1:]:
                self._cuts.append(start + index)
                self._out_at.append(base + length)
        return prefix + fresh

    def _keep(self, same: int) -> int:
        """Forget everything after the last cut whose message is still the same; where to sanitize from."""
        keep = bisect.bisect_left(self._cuts, same) - 1  # a cut at index c needs messages[:c + 1] unchanged
        if keep < 0:
            self._source, self._out, self._flat, self._cuts, self._out_at = [], [], [], [], []
            return 0
        cut, length = self._cuts[keep], self._out_at[keep]
        del self._source[cut + 1:], self._out[length:], self._flat[length:]
        del self._cuts[keep + 1:], self._out_at[keep + 1:]
        return cut


def drop_unanswered(messages: list[Message]) -> list[Message]:
    """The conversation without the prompts nobody answered (a failed or stopped turn's).

    They stay in the history file as a record, but are not sent again: the next prompt would
    otherwise reach the model glued to them, as if the user had asked both at once.
    """
    dropped = unanswered_indices(messages)
    if not dropped:
        return list(messages)
    drop = set(dropped)
    return [m for n, m in enumerate(messages) if n not in drop]


def unanswered_indices(messages: list[Message]) -> list[int]:
    """Where the prompts nobody answered lie, in order: no assistant message between them and the next prompt."""
    found: list[int] = []
    answered = False  # read backwards: an assistant message follows, before the next user message
    for n in range(len(messages) - 1, -1, -1):
        role = messages[n].get("role")
        if role == "assistant":
            answered = True
        elif role == "user":
            if not answered:
                found.append(n)
            answered = False
    return found[::-1]


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
