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

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import urlsplit

import yaml

from .errors import RECORD_PROTOCOL, REPLAY_DRIFT, ConfigError
from .redact import configured_secret_values, redact_obj
from .sanitize import sanitize_history
from .scripted.script import ErrorSpec, Reply, Script, ToolCall, read_document
from .scripted.server import ScriptedServer, _HTTPServer

__all__ = ["FORMAT", "RecordingProxy", "Replay", "load_recording", "record_through_proxy",
           "recording_path", "replay_config", "request_key"]

log = logging.getLogger(__name__)

FORMAT = "hermes-jupyter-recording/1"
SUFFIX = ".hermes-recording.yaml"
FALLBACK_NAME = "hermes-recording.yaml"
NOTEBOOK = "<notebook>"
DEFAULT_CONTEXT_LENGTH = 128_000
DRIFT_STATUS = 409  # a 4xx the agent neither retries nor takes for a context overflow

# The folder sentence of Engine.system_prompt: how the replay knows which paths are the notebook's.
_FOLDER_RE = re.compile(r"The notebook's folder is (.+?); use it as the working directory")
_DIGITS_RE = re.compile(r"\d+")
_PIECE_RE = re.compile(r"^(r|t|c\d+):(\d+)@(\d+)$")


def recording_path(notebook: Path | str | None, cwd: Path | str) -> Path:
    """``dir/analysis.ipynb`` -> ``dir/analysis.hermes-recording.yaml``; no notebook -> ``cwd/hermes-recording.yaml``."""
    if notebook is None:
        return Path(cwd) / FALLBACK_NAME
    nb = Path(notebook)
    if not nb.is_absolute():
        nb = Path(cwd) / nb
    stem = nb.name[: -len(".ipynb")] if nb.name.lower().endswith(".ipynb") else nb.stem
    return nb.with_name(stem + SUFFIX)


# --- what a request asks: its conversation and content key ------------------------------------

def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: the text ones
        return "".join(str(p.get("text") or "") for p in content
                       if isinstance(p, dict) and p.get("type", "text") == "text")
    return "" if content is None else str(content)


def _replace_deep(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_replace_deep(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _replace_deep(v, old, new) for k, v in value.items()}
    return value


def stored_conversation(messages: Iterable[Any], secrets: Iterable[str]) -> list[dict]:
    """A request's conversation as the recording stores it: no system prompt, sanitized and
    redacted like the history, the notebook's folder written ``<notebook>``."""
    messages = [m for m in messages if isinstance(m, dict)]
    folder = next((m.group(1) for m in (_FOLDER_RE.search(_text(x.get("content"))) for x in messages
                                        if x.get("role") == "system") if m), None)
    convo = redact_obj(sanitize_history(m for m in messages if m.get("role") != "system"), secrets)
    if folder and len(folder) > 1:
        convo = _replace_deep(convo, folder.rstrip("/"), NOTEBOOK)
    return convo


def _canonical_args(arguments: Any) -> str:
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        return json.dumps(parsed, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return " ".join(str(arguments).split())


def fingerprint(message: Mapping[str, Any]) -> list:
    """What of a message decides the model's next reply (see the module docstring)."""
    role = message.get("role")
    text = " ".join(_text(message.get("content")).split())
    if role == "tool":
        text = _DIGITS_RE.sub("#", text)
    calls = [[str((c.get("function") or {}).get("name") or ""),
              _canonical_args((c.get("function") or {}).get("arguments"))]
             for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    return [role, text, calls]


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode()).hexdigest()[:16]


@dataclass
class _Request:
    """A chat-completions request body, read as the recording sees it."""

    prompt: str
    step: int
    earlier: int
    tools: bool
    turn: list[dict]  # the prompt's message and what followed it
    prints: list[list]  # fingerprints of the whole conversation
    key: str
    history: str

    @classmethod
    def read(cls, body: Mapping[str, Any], secrets: Iterable[str]) -> _Request:
        convo = stored_conversation(body.get("messages") or [], secrets)
        prints = [fingerprint(m) for m in convo]
        last_user = max((i for i, m in enumerate(convo) if m.get("role") == "user"), default=-1)
        turn = convo[last_user:] if last_user >= 0 else convo
        tools = bool(body.get("tools"))
        return cls(prompt=_text(convo[last_user].get("content")) if last_user >= 0 else "",
                   step=sum(1 for m in turn if m.get("role") == "assistant"),
                   earlier=max(last_user, 0), tools=tools, turn=turn, prints=prints,
                   key=_digest([prints, tools]), history=_digest(prints[:max(last_user, 0)]))


def request_key(body: Mapping[str, Any], secrets: Iterable[str] = ()) -> str:
    """The content key of a chat-completions request body."""
    return _Request.read(body, secrets).key


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


def _save(path: Path, doc: dict[str, Any]) -> None:
    if path.suffix == ".json":
        text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    else:
        text = (f"# Recorded by hermes-jupyter. Replay it offline: %hermes --model replay:{path.name} ...\n"
                + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class _RecordingFile:
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
            raise ConfigError(f"will not record over {self.path}: {exc}") from None

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
                        "exchanges": exchanges + [exchange]}
            _save(self.path, self.doc)
            self.stamp = self._stamp()


# --- recording ----------------------------------------------------------------------------------

class _Capture:
    """Assembles a streamed reply from its SSE chunks, with the pause before each piece."""

    def __init__(self, started: float):
        self.started = started
        self.last: float | None = None
        self.wait_ms = 0
        self.reasoning: list[str] = []
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.pieces: list[str] = []
        self.finish: str | None = None
        self.usage: dict | None = None
        self.done = False

    def chunk(self, data: Mapping[str, Any], now: float) -> None:
        if self.last is None:
            self.wait_ms = round((now - self.started) * 1000)
            self.last = now
        gap = round((now - self.last) * 1000)
        self.last = now

        def piece(channel: str, size: int) -> None:
            nonlocal gap
            self.pieces.append(f"{channel}:{size}@{gap}")
            gap = 0  # later pieces of the same chunk came with it

        for choice in data.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or choice.get("message") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self.reasoning.append(reasoning)
                piece("r", len(reasoning))
            content = delta.get("content")
            if isinstance(content, str) and content:
                self.text.append(content)
                piece("t", len(content))
            for call in delta.get("tool_calls") or []:
                index = int(call.get("index", len(self.calls)) or 0)
                entry = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
                fn = call.get("function") or {}
                entry["id"] = call.get("id") or entry["id"]
                entry["name"] = fn.get("name") or entry["name"]
                args = fn.get("arguments") or ""
                entry["arguments"] += args
                piece(f"c{index}", len(args))
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
                self.done = True
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]

    def reply(self, secrets: Iterable[str], streamed: bool) -> dict[str, Any]:
        body = {
            "reasoning": "".join(self.reasoning),
            "text": "".join(self.text),
            "tool_calls": [self.calls[i] for i in sorted(self.calls)],
        }
        out = {k: v for k, v in redact_obj(body, secrets).items() if v}
        out["finish_reason"] = self.finish or ("tool_calls" if self.calls else "stop")
        if self.usage:
            out["usage"] = self.usage
        if streamed:
            out["wait_ms"] = self.wait_ms
            out["stream"] = " ".join(self.pieces)
        return out


class _SSE:
    """Splits a byte stream into server-sent events' data payloads."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> Iterator[str]:
        self._buffer += data.replace(b"\r\n", b"\n")
        while b"\n\n" in self._buffer:
            event, self._buffer = self._buffer.split(b"\n\n", 1)
            lines = [line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")]
            if lines:
                yield b"\n".join(lines).decode("utf-8", "replace")


_REQUEST_HOP = {"host", "content-length", "connection", "keep-alive", "transfer-encoding",
                "accept-encoding", "proxy-connection", "te", "upgrade", "trailer"}
_RESPONSE_HOP = {"content-length", "connection", "keep-alive", "transfer-encoding", "content-encoding"}


class RecordingProxy:
    """Forwards an OpenAI-compatible endpoint on 127.0.0.1 and records its chat completions."""

    def __init__(self, upstream: str, recording: Path | str | _RecordingFile):
        import httpx

        split = urlsplit(upstream.rstrip("/"))
        if split.scheme not in ("http", "https") or not split.netloc:
            raise ConfigError(f"cannot record {upstream!r}: not an http(s) URL")
        self.upstream = upstream.rstrip("/")
        self.origin = f"{split.scheme}://{split.netloc}"
        self.prefix = split.path
        self.file = recording if isinstance(recording, _RecordingFile) else _RecordingFile(Path(recording))
        self.context_lengths: dict[str, int] = {}
        self._secrets: set[str] = set()
        # No read timeout of our own: the agent has its own and hangs up when it gives up.
        self.client = httpx.Client(timeout=httpx.Timeout(30.0, read=None), follow_redirects=False)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        return self.file.path

    def start(self) -> RecordingProxy:
        if self._httpd is None:
            self._httpd = _HTTPServer(("127.0.0.1", 0), _ProxyHandler, self)  # type: ignore[arg-type]
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                            name=f"hermes-recording:{self.port}", daemon=True)
            self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("proxy not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def add_secrets(self, values: Iterable[str]) -> None:
        """Values to redact besides the configured ones (the key the agent was given)."""
        self._secrets.update(v for v in values if isinstance(v, str) and len(v) >= 8)

    def secrets(self) -> set[str]:
        return configured_secret_values() | self._secrets

    def close(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.drop_connections()
            httpd.server_close()
        self.client.close()

    def record(self, body: Mapping[str, Any], result: dict[str, Any]) -> None:
        """File one finished exchange: ``result`` holds ``reply`` or ``error``, already redacted."""
        try:
            self._record(body, result)
        except Exception:  # the agent got its reply; a lost recording must not fail the turn
            log.warning("model call not recorded in %s", self.path, exc_info=True)

    def _record(self, body: Mapping[str, Any], result: dict[str, Any]) -> None:
        request = _Request.read(body, self.secrets())
        exchange = {"key": request.key, "history": request.history, "prompt": request.prompt,
                    "step": request.step, "earlier": request.earlier, "tools": request.tools,
                    "messages": request.turn[1:], **result}
        model = str(body.get("model") or "")
        self.file.add(exchange, model, self.context_lengths.get(model))


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 600  # idle keep-alive connections go eventually
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    @property
    def proxy(self) -> RecordingProxy:
        return self.server.owner  # type: ignore[return-value]

    def _upstream_headers(self) -> dict[str, str]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _REQUEST_HOP}
        headers["Accept-Encoding"] = "identity"  # we read the stream as it passes
        return headers

    def _forward(self) -> None:
        import httpx

        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        route = self.path.split("?", 1)[0].rstrip("/")
        body: Any = None
        if self.command == "POST":
            if not route.endswith("/chat/completions"):
                self._error(405, f"hermes-jupyter {RECORD_PROTOCOL} (POST .../chat/completions), "
                                 f"but the agent sent POST {route}: its provider uses another api_mode.")
                return
            with contextlib.suppress(ValueError):
                body = json.loads(raw or b"null")
        started = time.monotonic()
        try:
            request = self.proxy.client.build_request(self.command, self.proxy.origin + self.path,
                                                      content=raw or None, headers=self._upstream_headers())
            response = self.proxy.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            self._error(502, f"Connection error: the recording proxy cannot reach {self.proxy.origin}: {exc}")
            return
        try:
            self._relay(response, body if isinstance(body, dict) else None, started)
        finally:
            response.close()

    do_GET = do_POST = _forward

    def _relay(self, response: Any, body: dict | None, started: float) -> None:
        import httpx

        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _RESPONSE_HOP]
        streamed = "text/event-stream" in response.headers.get("content-type", "")
        # Each reply is filed before the agent has all of it: when its turn ends, the file is complete.
        if not streamed or response.status_code >= 400:
            data = response.read()
            self._note(response, body, data)
            self._respond(response.status_code, headers, data)
            return
        capture, sse = _Capture(started), _SSE()
        filed = body is None
        try:
            self.send_response(response.status_code)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for data in response.iter_bytes():
                now, ended = time.monotonic(), False
                for payload in sse.feed(data):
                    if payload.strip() == "[DONE]":
                        ended = True
                        continue
                    with contextlib.suppress(ValueError, TypeError, AttributeError):
                        capture.chunk(json.loads(payload), now)
                if ended and not filed:
                    filed = self._file(body, capture)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            if not filed:
                self._file(body, capture)
            self.wfile.write(b"0\r\n\r\n")
        except (OSError, httpx.HTTPError):  # the agent hung up (a stop) or the provider did: not recorded
            self.close_connection = True

    def _file(self, body: dict | None, capture: _Capture) -> bool:
        if body is not None and capture.done:  # a reply cut short is not recorded
            self.proxy.record(body, {"reply": capture.reply(self.proxy.secrets(), streamed=True)})
        return True

    def _note(self, response: Any, body: dict | None, data: bytes) -> None:
        """Record a non-streamed completion or an error; learn context lengths from /models."""
        try:
            parsed = json.loads(data or b"null")
        except ValueError:
            parsed = None
        if body is None:  # a GET
            if response.status_code == 200 and isinstance(parsed, dict) and self.path.rstrip("/").endswith("/models"):
                for entry in parsed.get("data") or []:
                    if isinstance(entry, dict):
                        size = entry.get("context_length") or entry.get("max_model_len") or entry.get("context_window")
                        if isinstance(size, int) and entry.get("id"):
                            self.proxy.context_lengths[str(entry["id"])] = size
            return
        secrets = self.proxy.secrets()
        if response.status_code >= 400:
            error = (parsed or {}).get("error") if isinstance(parsed, dict) else None
            error = error if isinstance(error, dict) else {"message": data.decode("utf-8", "replace")[:2000]}
            spec: dict[str, Any] = {"status": response.status_code,
                                    "message": str(error.get("message") or f"HTTP {response.status_code}")}
            for name in ("type", "code"):
                if isinstance(error.get(name), str):
                    spec[name] = error[name]
            with contextlib.suppress(TypeError, ValueError):
                spec["retry_after"] = float(response.headers["retry-after"])
            self.proxy.record(body, {"error": redact_obj(spec, secrets)})
        elif isinstance(parsed, dict) and parsed.get("choices"):
            capture = _Capture(time.monotonic())
            capture.chunk(parsed, time.monotonic())
            capture.done = True
            self.proxy.record(body, {"reply": capture.reply(secrets, streamed=False)})

    def _respond(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def _error(self, status: int, message: str) -> None:
        data = json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                     "param": None, "code": None}}).encode()
        self._respond(status, [("Content-Type", "application/json")], data)


# --- replay -------------------------------------------------------------------------------------

def _cut(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Replay(Script):
    """A recording as a script for the scripted model's server."""

    exchanges: tuple[dict, ...] = ()
    fast: bool = False
    _by_key: Mapping[str, tuple[dict, ...]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, path: Path | str, *, fast: bool = False) -> Replay:
        path = Path(path).expanduser().resolve()
        doc = load_recording(path)
        exchanges = tuple(x for x in doc["exchanges"] if isinstance(x, dict) and x.get("key"))
        by_key: dict[str, list[dict]] = {}
        for x in exchanges:
            by_key.setdefault(str(x["key"]), []).append(x)
        return cls(rules=(), model=str(doc.get("model") or "replay"), source=path, fast=fast,
                   context_length=int(doc.get("context_length") or DEFAULT_CONTEXT_LENGTH),
                   exchanges=exchanges, _by_key={k: tuple(v) for k, v in by_key.items()})

    def turn_key(self, body: Mapping[str, Any]) -> str:
        return _Request.read(body, configured_secret_values()).key

    def reply(self, body: Mapping[str, Any], attempt: int = 0) -> Reply:
        request = _Request.read(body, configured_secret_values())
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
    def drift(self, request: _Request) -> str:
        """One short line: which prompt and step found no recording, and what differs."""
        head = f"{REPLAY_DRIFT} at the prompt {_cut(request.prompt, 60)!r} (step {request.step}): "
        prompt_print = fingerprint({"role": "user", "content": request.prompt})
        same_history = [x for x in self.exchanges if x.get("history") == request.history]
        same_prompt = [x for x in self.exchanges
                       if fingerprint({"role": "user", "content": x.get("prompt", "")}) == prompt_print]
        turns = [x for x in same_history if any(x is y for y in same_prompt)]
        if turns:
            return head + self._turn_difference(request, turns) + self._where()
        if same_history:
            expected = next((x for x in same_history if x.get("step") == 0), same_history[0])
            return head + f"the recording asks {_cut(expected.get('prompt', ''), 60)!r} here" + self._where()
        if same_prompt:
            earlier = sorted({int(x.get("earlier") or 0) for x in same_prompt})
            return (head + f"the recording has it after {' or '.join(map(str, earlier))} earlier messages, "
                    f"not after these {request.earlier}: replay the recorded cells in order, from a new "
                    "session" + self._where())
        return head + "this prompt is not in the recording" + self._where()

    def _turn_difference(self, request: _Request, turns: list[dict]) -> str:
        now = [fingerprint(m) for m in request.turn]
        best, common = None, -1
        for x in turns:
            recorded = [fingerprint({"role": "user", "content": x.get("prompt", "")})]
            recorded += [fingerprint(m) for m in x.get("messages") or []]
            n = next((i for i, (a, b) in enumerate(zip(now, recorded)) if a != b), min(len(now), len(recorded)))
            if n > common:
                best, common = (x, recorded), n
        assert best is not None
        exchange, recorded = best
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
    first = next((i for i, (a, b) in enumerate(zip(now, then)) if a != b), min(len(now), len(then)))
    start = max(0, first - 12)

    def window(text: str) -> str:
        part = text[start:start + width]
        return ("…" if start else "") + part + ("…" if start + width < len(text) else "")
    return window(now), window(then)


def _deltas(stream: str, text: str, reasoning: str,
            calls: tuple[ToolCall, ...]) -> tuple[tuple[dict, ...] | None, tuple[float, ...]]:
    """The recorded stream's deltas, cut at the recorded sizes, and the pause before each.

    The text is the redacted one, so sizes may no longer add up: a channel's
    last piece takes what is left.
    """
    pieces = [m.groups() for m in map(_PIECE_RE.match, stream.split()) if m]
    if not pieces:
        return None, ()  # not streamed when recorded: the server's own chunking
    rest = {"r": reasoning, "t": text, **{f"c{i}": c.arguments for i, c in enumerate(calls)}}
    last = {channel: i for i, (channel, _, _) in enumerate(pieces)}
    opened: set[str] = set()
    deltas: list[dict] = []
    gaps: list[float] = []
    pending = 0.0  # the pause of a piece that turned out empty goes to the next one

    def call_delta(channel: str, args: str) -> dict | None:
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


# --- wiring into resolve() ----------------------------------------------------------------------

_lock = threading.Lock()
_proxies: dict[tuple[str, Path], RecordingProxy] = {}
_files: dict[Path, _RecordingFile] = {}
_replays: dict[tuple[Path, bool], tuple[tuple[int, int], ScriptedServer]] = {}


def record_through_proxy(config: Any, path: Path | str) -> Any:
    """The RunConfig that records `config`'s model calls into `path`."""
    path = Path(path).expanduser().resolve()
    if config.api_mode not in (None, "chat_completions"):
        raise ConfigError(
            f"--record supports only the OpenAI chat-completions protocol; provider "
            f"{config.provider or '?'!r} uses api_mode {config.api_mode!r}. Record with an "
            "OpenAI-compatible endpoint (--base-url URL --model NAME) or a provider that uses chat completions.")
    if not config.base_url:
        raise ConfigError(f"--record needs the model's base URL; provider {config.provider or '?'!r} has none")
    key = (config.base_url.rstrip("/"), path)
    with _lock:
        proxy = _proxies.get(key)
        if proxy is None:
            recording = _files.get(path) or _RecordingFile(path)
            _files[path] = recording
            proxy = _proxies[key] = RecordingProxy(config.base_url, recording).start()
    proxy.add_secrets([config.api_key])
    # A fallback model would answer around the proxy, and the replay would miss those replies.
    return replace(config, base_url=proxy.base_url, api_mode="chat_completions", fallback_model=None,
                   source=f"{config.source}; recording to {path}")


def replay_server(path: Path | str, *, fast: bool = False) -> ScriptedServer:
    """The running replay server for a recording (started afresh when the file changed)."""
    path = Path(path).expanduser().resolve()
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot replay {path}: {exc.strerror or exc}; record it first with --record") from None
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _lock:
        known = _replays.get((path, fast))
        if known is not None and known[0] == stamp and known[1]._httpd is not None:
            return known[1]
        try:
            server = ScriptedServer(Replay.load(path, fast=fast)).start()
        except RecordingError as exc:
            raise ConfigError(f"cannot replay: {exc}") from None
        _replays[(path, fast)] = (stamp, server)
    if known is not None:
        known[1].close()
    return server


def replay_config(spec: str, *, fast: bool, source: str, **common: Any) -> Any:
    from .settings import RunConfig

    if not spec.strip():
        raise ConfigError("replay needs a recording: --model replay:PATH")
    server = replay_server(spec.strip(), fast=fast)
    return RunConfig(model=server.model, provider="custom", base_url=server.base_url,
                     api_mode="chat_completions", api_key="replay",
                     source=f"{source}, {'fast' if fast else 'recorded timing'}", **common)
