"""Record a session against a real model once; replay it offline, exactly.

Recording (``%hermes --record``, ``%config Hermes.record = True`` or
``Hermes.record_to = 'PATH'``): ``settings.resolve`` points the agent at a
``RecordingProxy`` on 127.0.0.1. The proxy forwards every request to the real
endpoint unchanged (headers and key included: they are never stored) and tees
each chat-completions reply, streamed or not, into a file beside the notebook,
``analysis.hermes-recording.yaml``. Messages and replies are sanitized and
redacted as the history is. Only the OpenAI chat-completions protocol
(api_mode ``chat_completions``) can be recorded.

Replay (``--model replay:PATH``): the scripted model's server answers from the
recording (``Replay``) over the same wire protocol, so the real agent runs again
with its real tools, approvals and questions. ``Hermes.replay_timing`` is
``recorded`` (the recorded pauses between chunks) or ``fast``.

The file (YAML; JSON when the name ends in ``.json``)::

    format: hermes-jupyter-recording/1
    model: gpt-4o-mini              # the recorded model, served as the replay's model
    context_length: 128000          # when the endpoint reported one
    exchanges:                      # one per model call, in the order they happened
      - key: 5d0c0a1b2c3d4e5f       # content key of the whole conversation (see below)
        history: 9a8b7c6d5e4f3a2b   # content key of the messages before the prompt
        prompt: List the files      # the turn's user prompt
        step: 1                     # model calls made since that prompt
        earlier: 2                  # messages before the prompt (in earlier exchanges)
        tools: true                 # tools were offered (false: a side call, e.g. a title)
        messages:                   # this turn's messages after the prompt
          - {role: assistant, content: '', tool_calls: [...]}
          - {role: tool, tool_call_id: call_1, content: '{"output": "a.txt", ...}'}
        reply:
          reasoning: ...
          text: ...
          tool_calls: [{id: call_2, name: terminal, arguments: '{"command": "ls"}'}]
          finish_reason: stop
          usage: {prompt_tokens: 1200, completion_tokens: 40, total_tokens: 1240}
          wait_ms: 310              # request sent -> first chunk
          stream: r:4@0 r:4@12 t:5@20 c0:0@3 c0:17@1   # channel:chars@ms since the previous chunk
      - ...
        error: {status: 429, message: ..., retry_after: 2}   # instead of reply: a provider error

Stream channels: ``r`` reasoning, ``t`` text, ``cN`` the arguments of tool
call N (its first chunk also carries its id and name).

How a request finds its reply: by content, not by order. Its content key is a
hash of the conversation so far as the recording stores it (sanitized,
redacted): for each message its role, its text with whitespace collapsed and
its tool calls (name, arguments as canonical JSON), and whether tools were
offered. Left out, because they change from run to run while the question
stays the same: the system prompt (date, paths, model, memory), tool call ids,
the notebook's folder (stored as ``<notebook>``) and digits in tool results
(times, sizes, process ids). A retried request (same key) gets the recorded
answers in order. A request with no recorded key fails the turn with HTTP 409
and a message naming the prompt, the step and what differs.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hermes_jupyter.models.scripted.script import read_document
from hermes_jupyter.prompt import notebook_folder
from hermes_jupyter.safety.redact import redact_obj
from hermes_jupyter.safety.sanitize import sanitize_history
from hermes_jupyter.util.files import replace_atomically
from hermes_jupyter.util.text import message_text

FORMAT = "hermes-jupyter-recording/1"
NOTEBOOK = "<notebook>"
DEFAULT_CONTEXT_LENGTH = 128_000
DRIFT_STATUS = 409  # a 4xx the agent neither retries nor takes for a context overflow

# Wire strings: the replay server's drift error (HTTP 409) and the proxy's refusal (HTTP 405),
# which agent/failures.py recognizes in the agent's error text.
REPLAY_DRIFT = "Replay drift"
RECORD_PROTOCOL = "can record only the OpenAI chat-completions protocol"
_DIGITS_RE = re.compile(r"\d+")
PIECE_RE = re.compile(r"^(r|t|c\d+):(\d+)@(\d+)$")


# --- what a request asks: its conversation and content key ------------------------------------

def _replace_deep(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_replace_deep(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _replace_deep(v, old, new) for k, v in value.items()}
    return value


def stored_conversation(messages: Iterable[Any], secrets: Iterable[str]) -> list[dict[str, Any]]:
    """A request's conversation as the recording stores it: no system prompt, sanitized and
    redacted like the history, the notebook's folder written ``<notebook>``."""
    messages = [m for m in messages if isinstance(m, dict)]
    folder = notebook_folder(messages)
    convo = redact_obj(sanitize_history(m for m in messages if m.get("role") != "system"), secrets)
    if folder and len(folder) > 1:
        convo = _replace_deep(convo, folder.rstrip("/"), NOTEBOOK)
    return list(convo)


def _canonical_args(arguments: Any) -> str:
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        return json.dumps(parsed, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return " ".join(str(arguments).split())


def fingerprint(message: Mapping[str, Any]) -> list[Any]:
    """What of a message decides the model's next reply (see the module docstring)."""
    role = message.get("role")
    text = " ".join(message_text(message.get("content")).split())
    if role == "tool":
        text = _DIGITS_RE.sub("#", text)
    calls = [[str((c.get("function") or {}).get("name") or ""),
              _canonical_args((c.get("function") or {}).get("arguments"))]
             for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    return [role, text, calls]


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode()).hexdigest()[:16]


@dataclass
class Request:
    """A chat-completions request body, read as the recording sees it."""

    prompt: str
    step: int
    earlier: int
    tools: bool
    turn: list[dict[str, Any]]  # the prompt's message and what followed it
    prints: list[list[Any]]  # fingerprints of the whole conversation
    key: str
    history: str

    @classmethod
    def read(cls, body: Mapping[str, Any], secrets: Iterable[str]) -> Request:
        convo = stored_conversation(body.get("messages") or [], secrets)
        prints = [fingerprint(m) for m in convo]
        last_user = max((i for i, m in enumerate(convo) if m.get("role") == "user"), default=-1)
        turn = convo[last_user:] if last_user >= 0 else convo
        tools = bool(body.get("tools"))
        return cls(prompt=message_text(convo[last_user].get("content")) if last_user >= 0 else "",
                   step=sum(1 for m in turn if m.get("role") == "assistant"),
                   earlier=max(last_user, 0), tools=tools, turn=turn, prints=prints,
                   key=_digest([prints, tools]), history=_digest(prints[:max(last_user, 0)]))


# --- the file -----------------------------------------------------------------------------------

class RecordingError(ValueError):
    """A file that is not a readable recording."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]  # libyaml when there
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Answers and tool output read best as blocks.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def load_recording(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    doc = read_document(path, RecordingError, "the recording")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("exchanges"), list):
        raise RecordingError(f"{path.name} is not a hermes-jupyter recording (format: {FORMAT})")
    return doc


def save_recording(path: Path, doc: dict[str, Any]) -> None:
    if path.suffix == ".json":
        text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    else:
        text = (f"# Recorded by hermes-jupyter. Replay it offline: %hermes --model replay:{path.name} ...\n"
                + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100))
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, text.encode("utf-8"))


class RecordingFile:
    """The recording being written, shared by all proxies that write it.

    Read again when something else changed or deleted it (a user starting afresh). An
    exchange recorded again in this kernel replaces the file's older exchanges with the
    same key; a retry's error and answer, recorded together, stay together.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._fresh: set[str] = set()
        self._load()  # fails at once on a file that is not a recording

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _load(self) -> None:
        self.stamp = self._stamp()
        if self.stamp is None:
            self.doc: dict[str, Any] = {"format": FORMAT, "model": "", "exchanges": []}
            self._fresh.clear()
            return
        try:
            self.doc = load_recording(self.path)
        except RecordingError as exc:
            raise RecordingError(f"will not record over {self.path}: {exc}") from None

    def add(self, exchange: dict[str, Any], model: str, context_length: int | None) -> None:
        with self._lock:
            if self._stamp() != self.stamp:
                self._load()
            key = exchange["key"]
            exchanges = self.doc["exchanges"]
            if key not in self._fresh:
                self._fresh.add(key)
                exchanges = [x for x in exchanges if x.get("key") != key]
            context_length = context_length or self.doc.get("context_length")
            self.doc = {"format": FORMAT, "model": model or self.doc.get("model") or "",
                        **({"context_length": int(context_length)} if context_length else {}),
                        "exchanges": [*exchanges, exchange]}
            save_recording(self.path, self.doc)
            self.stamp = self._stamp()


