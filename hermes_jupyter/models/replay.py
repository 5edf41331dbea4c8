"""Replay: the scripted model's server answering from a recording, matched by content."""
from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hermes_jupyter.models.recording import (
    DEFAULT_CONTEXT_LENGTH,
    DRIFT_STATUS,
    PIECE_RE,
    REPLAY_DRIFT,
    RecordingError,
    Request,
    fingerprint,
    load_recording,
)
from hermes_jupyter.models.scripted.script import ErrorSpec, Reply, Script, ToolCall
from hermes_jupyter.models.scripted.server import ScriptedServer
from hermes_jupyter.safety.redact import configured_secret_values
from hermes_jupyter.util.text import one_line

# --- replay -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Replay(Script):
    """A recording as a script for the scripted model's server."""

    exchanges: tuple[dict[str, Any], ...] = ()
    fast: bool = False
    _by_key: Mapping[str, tuple[dict[str, Any], ...]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, path: Path | str, *, fast: bool = False) -> Replay:
        path = Path(path).expanduser().resolve()
        doc = load_recording(path)
        exchanges = tuple(x for x in doc["exchanges"] if isinstance(x, dict) and x.get("key"))
        by_key: dict[str, list[dict[str, Any]]] = {}
        for x in exchanges:
            by_key.setdefault(str(x["key"]), []).append(x)
        return cls(rules=(), model=str(doc.get("model") or "replay"), source=path, fast=fast,
                   context_length=int(doc.get("context_length") or DEFAULT_CONTEXT_LENGTH),
                   exchanges=exchanges, _by_key={k: tuple(v) for k, v in by_key.items()})

    def turn_key(self, body: Mapping[str, Any]) -> str:
        return Request.read(body, configured_secret_values()).key

    def reply(self, body: Mapping[str, Any], attempt: int = 0, *, size: int | None = None) -> Reply:  # size: unused (recorded usage)
        request = Request.read(body, configured_secret_values())
        found = self._by_key.get(request.key)
        if not found:
            return Reply(error=ErrorSpec(DRIFT_STATUS, self.drift(request), code="replay_drift"))
        return self._reply(found[min(attempt, len(found) - 1)])

    # ----- a recorded reply, on the wire --------------------------------------------------------
    def _reply(self, exchange: Mapping[str, Any]) -> Reply:
        error = exchange.get("error")
        if isinstance(error, dict):
            retry = error.get("retry_after")
            return Reply(error=ErrorSpec(status=int(error.get("status") or 500),
                                         message=str(error.get("message") or "recorded error"),
                                         type=error.get("type"), code=error.get("code"),
                                         retry_after=float(retry) if retry is not None else None))
        recorded = exchange.get("reply") or {}
        calls = tuple(ToolCall(id=str(c.get("id") or f"call_{i}"), name=str(c.get("name") or ""),
                               arguments=str(c.get("arguments") or ""))
                      for i, c in enumerate(recorded.get("tool_calls") or []))
        text, reasoning = str(recorded.get("text") or ""), str(recorded.get("reasoning") or "")
        deltas, gaps = _deltas(str(recorded.get("stream") or ""), text, reasoning, calls)
        pauses = () if self.fast else (int(recorded.get("wait_ms") or 0) / 1000, *gaps)
        usage = recorded.get("usage")
        return Reply(text=text, reasoning=reasoning, tool_calls=calls, deltas=deltas, pauses=pauses,
                     usage=usage if isinstance(usage, dict) else None, finish=recorded.get("finish_reason"))

    # ----- what drifted -------------------------------------------------------------------------
    def drift(self, request: Request) -> str:
        """One short line: which prompt and step found no recording, and what differs."""
        head = f"{REPLAY_DRIFT} at the prompt {one_line(request.prompt, 60)!r} (step {request.step}): "
        prompt_print = fingerprint({"role": "user", "content": request.prompt})
        same_history = [x for x in self.exchanges if x.get("history") == request.history]
        same_prompt = [x for x in self.exchanges
                       if fingerprint({"role": "user", "content": x.get("prompt", "")}) == prompt_print]
        turns = [x for x in same_history if any(x is y for y in same_prompt)]
        if turns:
            return head + self._turn_difference(request, turns) + self._where()
        if same_history:
            expected = next((x for x in same_history if x.get("step") == 0), same_history[0])
            return head + f"the recording asks {one_line(expected.get('prompt', ''), 60)!r} here" + self._where()
        if same_prompt:
            earlier = sorted({int(x.get("earlier") or 0) for x in same_prompt})
            return (head + f"the recording has it after {' or '.join(map(str, earlier))} earlier messages, "
                    f"not after these {request.earlier}: replay the recorded cells in order, from a new "
                    "session" + self._where())
        return head + "this prompt is not in the recording" + self._where()

    def _turn_difference(self, request: Request, turns: list[dict[str, Any]]) -> str:
        now = [fingerprint(m) for m in request.turn]
        best, common = None, -1
        for x in turns:
            recorded = [fingerprint({"role": "user", "content": x.get("prompt", "")})]
            recorded += [fingerprint(m) for m in x.get("messages") or []]
            n = next((i for i, (a, b) in enumerate(zip(now, recorded, strict=False)) if a != b),
                     min(len(now), len(recorded)))
            if n > common:
                best, common = (x, recorded), n
        assert best is not None
        _, recorded = best
        if common >= len(recorded) and common >= len(now):  # same turn, tools offered or not
            return "the recording has this call only with other tools offered"
        if common >= len(recorded):
            return "the agent called the model more often than recorded"
        if common >= len(now):
            return "the agent called the model sooner than recorded"
        message = request.turn[common]
        if message.get("role") == "tool":
            said_now, said_then = _difference(now[common][1], recorded[common][1])
            return f"the result of {message.get('name') or 'a tool'} differs: now {said_now!r}, recorded {said_then!r}"
        return f"message {common} of the turn differs from the recording"

    def _where(self) -> str:
        return f" (recording {self.source.name})" if self.source else ""


def _difference(now: str, then: str, width: int = 40) -> tuple[str, str]:
    """Both texts from a little before where they first differ."""
    first = next((i for i, (a, b) in enumerate(zip(now, then, strict=False)) if a != b), min(len(now), len(then)))
    start = max(0, first - 12)

    def window(text: str) -> str:
        part = text[start:start + width]
        return ("…" if start else "") + part + ("…" if start + width < len(text) else "")
    return window(now), window(then)


def _deltas(stream: str, text: str, reasoning: str,
            calls: tuple[ToolCall, ...]) -> tuple[tuple[dict[str, Any], ...] | None, tuple[float, ...]]:
    """The recorded stream's deltas, cut at the recorded sizes, and the pause before each.

    The text is the redacted one, so sizes may no longer add up: a channel's
    last piece takes what is left.
    """
    pieces = [m.groups() for m in map(PIECE_RE.match, stream.split()) if m]
    if not pieces:
        return None, ()  # not streamed when recorded: the server's own chunking
    rest = {"r": reasoning, "t": text, **{f"c{i}": c.arguments for i, c in enumerate(calls)}}
    last = {channel: i for i, (channel, _, _) in enumerate(pieces)}
    opened: set[str] = set()
    deltas: list[dict[str, Any]] = []
    gaps: list[float] = []
    pending = 0.0  # the pause of a piece that turned out empty goes to the next one

    def call_delta(channel: str, args: str) -> dict[str, Any] | None:
        index = int(channel[1:])
        if index >= len(calls):
            return None
        entry: dict[str, Any] = {"index": index, "function": {"arguments": args}}
        if channel not in opened:
            opened.add(channel)
            entry.update(id=calls[index].id, type="function")
            entry["function"]["name"] = calls[index].name
        return {"tool_calls": [entry]}

    for i, (channel, size, ms) in enumerate(pieces):
        available = rest.get(channel, "")
        take = available if last[channel] == i else available[: int(size)]
        rest[channel] = available[len(take):]
        pending += int(ms) / 1000
        if channel.startswith("c"):
            delta = call_delta(channel, take) if (take or channel not in opened) else None
        else:
            delta = ({"reasoning_content": take} if channel == "r" else {"content": take}) if take else None
        if delta is not None:
            deltas.append(delta)
            gaps.append(pending)
            pending = 0.0
    # Whatever the recorded stream did not carry (it should not happen): sent at the end.
    for channel, value in rest.items():
        if channel.startswith("c") and (value or channel not in opened):
            delta = call_delta(channel, value)
        else:
            delta = ({"reasoning_content": value} if channel == "r" else {"content": value}) if value else None
        if delta is not None:
            deltas.append(delta)
            gaps.append(0.0)
    return tuple(deltas), tuple(gaps)



_lock = threading.Lock()
_replays: dict[tuple[Path, bool], tuple[tuple[int, int], ScriptedServer]] = {}


def replay_server(path: Path | str, *, fast: bool = False) -> ScriptedServer:
    """The running replay server for a recording (started afresh when the file changed)."""
    path = Path(path).expanduser().resolve()
    try:
        stat = path.stat()
    except OSError as exc:
        raise RecordingError(f"cannot replay {path}: {exc.strerror or exc}; record it first with --record") from None
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _lock:
        known = _replays.get((path, fast))
        if known is not None and known[0] == stamp and known[1]._httpd is not None:
            return known[1]
        try:
            server = ScriptedServer(Replay.load(path, fast=fast)).start()
        except RecordingError as exc:
            raise RecordingError(f"cannot replay: {exc}") from None
        _replays[(path, fast)] = (stamp, server)
    if known is not None:
        known[1].close()
    return server




def close_replays() -> None:
    """Stop every replay server of this process (the extension is unloaded)."""
    with _lock:
        servers = [server for _, server in _replays.values()]
        _replays.clear()
    for server in servers:
        server.close()
