"""Recording: a loopback proxy that forwards every request to the real endpoint and tees
each chat-completions reply into the recording file (see models/recording.py)."""
from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hermes_jupyter.models.recording import (
    RECORD_PROTOCOL,
    RecordingError,
    RecordingFile,
    Request,
)
from hermes_jupyter.models.scripted.server import LoopbackHTTPServer
from hermes_jupyter.safety.redact import configured_secret_values, redact_obj

log = logging.getLogger("hermes_jupyter")

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
        self.usage: dict[str, Any] | None = None
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

    def __init__(self, upstream: str, recording: Path | str | RecordingFile):
        import httpx

        split = urlsplit(upstream.rstrip("/"))
        if split.scheme not in ("http", "https") or not split.netloc:
            raise RecordingError(f"cannot record {upstream!r}: not an http(s) URL")
        self.upstream = upstream.rstrip("/")
        self.origin = f"{split.scheme}://{split.netloc}"
        self.prefix = split.path
        self.file = recording if isinstance(recording, RecordingFile) else RecordingFile(Path(recording))
        self.context_lengths: dict[str, int] = {}
        self._secrets: set[str] = set()
        # No read timeout of our own: the agent has its own and hangs up when it gives up.
        self.client = httpx.Client(timeout=httpx.Timeout(30.0, read=None), follow_redirects=False)
        self._httpd: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path:
        return self.file.path

    def start(self) -> RecordingProxy:
        if self._httpd is None:
            self._httpd = LoopbackHTTPServer(("127.0.0.1", 0), _ProxyHandler, self)  # type: ignore[arg-type]
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
        request = Request.read(body, self.secrets())
        exchange = {"key": request.key, "history": request.history, "prompt": request.prompt,
                    "step": request.step, "earlier": request.earlier, "tools": request.tools,
                    "messages": request.turn[1:], **result}
        model = str(body.get("model") or "")
        self.file.add(exchange, model, self.context_lengths.get(model))


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 600  # idle keep-alive connections go eventually
    server: LoopbackHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
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

    def _relay(self, response: Any, body: dict[str, Any] | None, started: float) -> None:
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

    def _file(self, body: dict[str, Any] | None, capture: _Capture) -> bool:
        if body is not None and capture.done:  # a reply cut short is not recorded
            self.proxy.record(body, {"reply": capture.reply(self.proxy.secrets(), streamed=True)})
        return True

    def _note(self, response: Any, body: dict[str, Any] | None, data: bytes) -> None:
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


# --- wiring into resolve() ----------------------------------------------------------------------

_lock = threading.Lock()
_proxies: dict[tuple[str, Path], RecordingProxy] = {}
_files: dict[Path, RecordingFile] = {}


def recording_proxy(upstream: str, path: Path | str, api_key: str) -> RecordingProxy:
    """The running proxy that records calls to ``upstream`` into ``path`` (one per pair, reused)."""
    path = Path(path).expanduser().resolve()
    key = (upstream.rstrip("/"), path)
    with _lock:
        proxy = _proxies.get(key)
        if proxy is None:
            recording = _files.get(path) or RecordingFile(path)
            _files[path] = recording
            proxy = _proxies[key] = RecordingProxy(upstream, recording).start()
    proxy.add_secrets([api_key])
    return proxy


def close_proxies() -> None:
    """Stop every recording proxy of this process (the extension is unloaded)."""
    with _lock:
        proxies = list(_proxies.values())
        _proxies.clear()
        _files.clear()
    for proxy in proxies:
        proxy.close()
