"""An OpenAI-compatible chat-completions server on 127.0.0.1 that answers from a script.

It speaks the real wire protocol (JSON and SSE streaming, tool calls,
``reasoning_content`` deltas, usage, OpenAI-style error bodies), so the real
AIAgent and the ``openai`` client can run against it with no key and no network.

Beside the OpenAI routes it serves the gates of ``gate:`` steps (see ``script``):
``POST /gates/NAME/open`` releases the replies held at a gate, ``GET /gates``
lists how many each one holds, ``GET /gates/NAME?held=N&timeout=S`` answers
once gate NAME holds N replies (``"reached"``), or after S seconds.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import logging
import re
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit
from urllib.request import Request, urlopen

from .script import BUILTIN_DEMO, ErrorSpec, Reply, Script, load_script

__all__ = ["ScriptedServer", "open_gate", "shared_server", "wait_held"]

log = logging.getLogger(__name__)

_ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 429: "rate_limit_error",
}


def _error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


HOLD_POLL = 0.05  # seconds between checks that a held reply's client is still there


class _Held:
    """One reply waiting at a gate."""

    def __init__(self, gone: Callable[[], bool]) -> None:
        self.gone = gone  # the client hung up
        self.released = False
        self.dropped = False


class _Gate:
    def __init__(self) -> None:
        self.held: list[_Held] = []
        self.pass_next = False  # opened while nothing was held: the next reply passes


class Gates:
    """The gates of one server (see the ``script`` module docstring)."""

    def __init__(self, closing: threading.Event) -> None:
        self._closing = closing
        self._cond = threading.Condition()
        self._gates: dict[str, _Gate] = {}

    def hold(self, name: str, gone: Callable[[], bool]) -> bool:
        """Wait until the gate opens (True), or the server closes or the client hangs up (False)."""
        with self._cond:
            gate = self._gates.setdefault(name, _Gate())
            if gate.pass_next:
                gate.pass_next = False
                return True
            me = _Held(gone)
            gate.held.append(me)
            self._cond.notify_all()
            try:
                while not me.released:
                    if me.dropped or self._closing.is_set() or gone():
                        return False
                    self._cond.wait(HOLD_POLL)
                return True
            finally:
                if me in gate.held:
                    gate.held.remove(me)
                self._cond.notify_all()

    def open(self, name: str) -> int:
        """Release the replies held at the gate; if none is (still) wanted, let the next one through."""
        with self._cond:
            gate = self._gates.setdefault(name, _Gate())
            live = 0
            for held in gate.held:  # a reply whose client left (a cancelled turn) doesn't count
                if held.gone():
                    held.dropped = True
                else:
                    held.released = True
                    live += 1
            gate.held.clear()
            gate.pass_next = not live
            self._cond.notify_all()
            return live

    def held(self) -> dict[str, int]:
        with self._cond:
            return {name: self._count(name) for name in self._gates}

    def wait_held(self, name: str, count: int, timeout: float | None) -> bool:
        """Wait until the gate holds `count` replies."""
        with self._cond:
            self._cond.wait_for(lambda: self._closing.is_set() or self._count(name) == count, timeout)
            return self._count(name) == count

    def _count(self, name: str) -> int:
        gate = self._gates.get(name)
        return sum(not held.gone() for held in gate.held) if gate is not None else 0

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class ScriptedServer:
    """Serves one script on ``base_url`` from a daemon thread."""

    def __init__(self, script: Script | str | Path | Mapping[str, Any], port: int = 0) -> None:
        self.script = load_script(script)
        self.model = self.script.model
        self.requests: list[dict[str, Any]] = []  # bodies received on /chat/completions
        self.hits: list[str] = []  # "METHOD /path" of every request, to see what clients probe
        self._port = port
        self._lock = threading.Lock()
        self._attempts: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self._closing = threading.Event()
        self._gates = Gates(self._closing)
        self._httpd: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> ScriptedServer:
        if self._httpd is None:
            self._closing.clear()
            self._httpd = LoopbackHTTPServer(("127.0.0.1", self._port), _Handler, self)
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                name=f"scripted-model:{self.port}", daemon=True,
            )
            self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._closing.set()  # ends streams between chunks, and the replies held at gates
        self._gates.wake()
        httpd.shutdown()
        httpd.drop_connections()  # idle keep-alive connections would block the join
        httpd.server_close()  # joins the handler threads
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    # --- gates (``gate:`` steps) ------------------------------------------------

    def open_gate(self, name: str) -> int:
        """Release the replies held at gate `name` and answer how many there were.

        With none held, the next reply to reach the gate passes instead.
        """
        return self._gates.open(name)

    def held(self, name: str) -> int:
        """How many replies gate `name` holds now."""
        return self._gates.held().get(name, 0)

    def wait_held(self, name: str, count: int = 1, timeout: float | None = 30) -> bool:
        """Wait until gate `name` holds `count` replies (0: until they are gone); False on timeout."""
        return self._gates.wait_held(name, count, timeout)

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- used by the handler ------------------------------------------------

    def _record(self, body: dict[str, Any], size: int | None = None) -> tuple[Reply, str]:
        key = self.script.turn_key(body)
        with self._lock:
            self.requests.append(body)
            attempt = self._attempts[key]
            self._attempts[key] += 1
            request_id = f"chatcmpl-scripted{next(self._ids):06d}"
        return self.script.reply(body, attempt, size=size), request_id

    def _hit(self, method: str, path: str) -> None:
        with self._lock:
            self.hits.append(f"{method} {path}")

    def _model_entry(self) -> dict[str, Any]:
        return {
            "id": self.model, "object": "model", "created": 0, "owned_by": "scripted",
            "context_length": self.script.context_length,
        }


class LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True  # server_close() joins handler threads

    def __init__(self, address: tuple[str, int], handler: type, owner: ScriptedServer) -> None:
        self.owner = owner
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._conns_lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):  # already closed by the client
                    conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("scripted model: error while serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked SSE, like real providers
    server: LoopbackHTTPServer
    timeout = 120  # drops idle keep-alive connections eventually
    disable_nagle_algorithm = True  # headers and body go out in separate writes; avoid 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests and notebooks don't want access logs on stderr

    # --- routing ------------------------------------------------------------

    def _begin(self) -> tuple[str, bytes]:
        """Record the request and read its body (always: keeps keep-alive in sync)."""
        path = urlsplit(self.path).path
        self.server.owner._hit(self.command, path)
        return path, self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        owner = self.server.owner
        path, _ = self._begin()
        route = _strip_v1(path)
        gate = _GATE_WAIT_ROUTE.fullmatch(route)
        if route == "/gates":
            self._json(200, {"gates": owner._gates.held()})
        elif gate is not None:
            self._wait_held(unquote(gate.group(1)))
        elif route == "/models":
            self._json(200, {"object": "list", "data": [owner._model_entry()]})
        elif route.startswith("/models/") and unquote(route[len("/models/"):]) == owner.model:
            self._json(200, owner._model_entry())
        elif route.startswith("/models/"):
            name = unquote(route[len("/models/"):])
            self._error(ErrorSpec(404, f"The model '{name}' does not exist", code="model_not_found"))
        else:
            self._not_found(path)

    def _wait_held(self, name: str) -> None:
        """``GET /gates/NAME?held=N&timeout=S``: answers once the gate holds N replies (or after S seconds)."""
        query = parse_qs(urlsplit(self.path).query)
        try:
            count = int(query.get("held", ["1"])[0])
            timeout = min(float(query.get("timeout", ["0"])[0]), 300.0)
        except ValueError:
            self._error(ErrorSpec(400, "held must be an integer and timeout a number of seconds"))
            return
        owner = self.server.owner
        reached = owner.wait_held(name, count, timeout) if timeout > 0 else owner.held(name) == count
        self._json(200, {"gate": name, "held": owner.held(name), "reached": reached})

    def do_POST(self) -> None:
        owner = self.server.owner
        path, raw = self._begin()
        route = _strip_v1(path)
        gate = _GATE_ROUTE.fullmatch(route)
        if gate is not None:
            name = unquote(gate.group(1))
            self._json(200, {"gate": name, "released": owner.open_gate(name)})
            return
        if route != "/chat/completions":
            self._not_found(path)
            return
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._error(ErrorSpec(400, "Request body must be a JSON object with a 'messages' list"))
            return
        try:
            reply, request_id = owner._record(body, size=len(raw))
        except Exception as exc:  # a script bug must not take the server down
            log.exception("scripted model: cannot answer request")
            self._error(ErrorSpec(500, f"scripted model failed: {exc}"))
            return
        model = str(body.get("model") or owner.model)
        if body.get("stream") and reply.error is None:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(_chunks(reply, request_id, model, include_usage), reply)
            return
        if reply.gate is not None and not self._hold(reply.gate.name):
            return
        if reply.error is not None:
            self._error(reply.error)
        else:
            self._json(200, _completion(reply, request_id, model))

    def _other(self) -> None:
        self._not_found(self._begin()[0])

    do_PUT = do_DELETE = do_PATCH = _other

    # --- responses ----------------------------------------------------------

    def _not_found(self, path: str) -> None:
        self._error(ErrorSpec(404, f"Unknown path: {path}", code="not_found"))

    def _error(self, error: ErrorSpec) -> None:
        body = {"error": {
            "message": error.message,
            "type": error.type or _error_type(error.status),
            "param": None,
            "code": error.code,
        }}
        headers = {"Retry-After": f"{error.retry_after:g}"} if error.retry_after is not None else {}
        self._json(error.status, body, headers)

    def _json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client went away
            self.close_connection = True

    def _hold(self, name: str) -> bool:
        """Wait at gate `name`; False (the connection is to be dropped) if the server closes or the client left."""
        if self.server.owner._gates.hold(name, self._client_gone):
            return True
        self.close_connection = True
        return False

    def _client_gone(self) -> bool:
        """The client closed the connection (nothing to read but the end of the stream)."""
        try:
            if hasattr(select, "poll"):  # select() can't take descriptors above 1023
                poller = select.poll()
                poller.register(self.connection, select.POLLIN)
                readable = bool(poller.poll(0))
            else:
                readable = bool(select.select([self.connection], [], [], 0)[0])
            return readable and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _stream(self, chunks: Iterator[dict[str, Any]], reply: Reply) -> None:
        closing = self.server.owner._closing
        gate_at = -1
        if reply.gate is not None:  # hold before this chunk: after the role chunk and `after` content chunks
            listed = list(chunks)
            last = next(i for i, c in enumerate(listed) if c["choices"] and c["choices"][0]["finish_reason"])
            gate_at, chunks = min(1 + reply.gate.after, last), iter(listed)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i, chunk in enumerate(chunks):
                if i == gate_at and reply.gate is not None and not self._hold(reply.gate.name):
                    return
                # Waiting on the event doubles as the inter-chunk delay and lets close() cut it short.
                wait = reply.pause(i)
                if closing.is_set() or (wait > 0 and closing.wait(wait)):
                    self.close_connection = True
                    return
                self._send_chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            self._send_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # BrokenPipe/ConnectionReset: the client hung up (an interrupt)
            self.close_connection = True

    def _send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


_GATE_ROUTE = re.compile(r"/gates/([^/]+)/open")
_GATE_WAIT_ROUTE = re.compile(r"/gates/([^/]+)")


def _gates_url(base_url: str, name: str) -> str:
    root = base_url.rstrip("/")
    root = root[: -len("/v1")] if root.endswith("/v1") else root
    return f"{root}/gates/{quote(name, safe='')}"


def open_gate(base_url: str, name: str, timeout: float = 10) -> int:
    """Open gate `name` of the scripted server at `base_url` (with or without its ``/v1``), from any process.

    Answers how many held replies were released (0: the next one to reach the gate passes).
    """
    request = Request(_gates_url(base_url, name) + "/open", data=b"", method="POST")
    with urlopen(request, timeout=timeout) as response:
        return int(json.loads(response.read())["released"])


def wait_held(base_url: str, name: str, count: int = 1, timeout: float = 30) -> bool:
    """Wait until gate `name` of the scripted server at `base_url` holds `count` replies, from any process.

    False if it does not within `timeout` seconds.
    """
    url = f"{_gates_url(base_url, name)}?held={count}&timeout={timeout:g}"
    with urlopen(url, timeout=timeout + 10) as response:
        return bool(json.loads(response.read())["reached"])


def _strip_v1(path: str) -> str:
    path = path.rstrip("/") or "/"
    return path[3:] if path.startswith("/v1/") else path


# --- wire format --------------------------------------------------------------

def _usage(reply: Reply) -> dict[str, Any]:
    if reply.usage is not None:  # recorded
        return dict(reply.usage)
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": len(reply.reasoning) // 4},
    }


def _completion(reply: Reply, request_id: str, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text if reply.text or not reply.tool_calls else None,
        "refusal": None,
    }
    if reply.reasoning:
        message["reasoning_content"] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in reply.tool_calls
        ]
    return {
        "id": request_id, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}],
        "usage": _usage(reply),
    }


def _pieces(text: str, size: int) -> Iterator[str]:
    for i in range(0, len(text), size):
        yield text[i:i + size]


def _chunks(reply: Reply, request_id: str, model: str, include_usage: bool) -> Iterator[dict[str, Any]]:
    """The SSE chunks of a streamed reply, split like OpenAI's."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": request_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            out["usage"] = None
        return out

    size = reply.chunk_size
    yield chunk({"role": "assistant", "content": "", "refusal": None})
    if reply.deltas is not None:  # a recorded stream, split as it was recorded
        for delta in reply.deltas:
            yield chunk(dict(delta))
        yield from _ending(reply, chunk, request_id, created, model, include_usage)
        return
    # hermes-agent reads delta.reasoning_content (falling back to delta.reasoning).
    for piece in _pieces(reply.reasoning, size):
        yield chunk({"reasoning_content": piece})
    for piece in _pieces(reply.text, size):
        yield chunk({"content": piece})
    for index, call in enumerate(reply.tool_calls):
        yield chunk({"tool_calls": [{
            "index": index, "id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }]})
        for piece in _pieces(call.arguments, size):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield from _ending(reply, chunk, request_id, created, model, include_usage)


def _ending(reply: Reply, chunk: Callable[..., dict[str, Any]], request_id: str, created: int, model: str,
            include_usage: bool) -> Iterator[dict[str, Any]]:
    yield chunk({}, reply.finish_reason)
    if include_usage:
        yield {
            "id": request_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": _usage(reply),
        }


# --- one server per script per process -----------------------------------------

_shared: dict[Path, ScriptedServer] = {}
_shared_lock = threading.Lock()


def shared_server(script: str | Path | None = None) -> ScriptedServer:
    """The process-wide running server for a script path ("demo"/None: the built-in demo)."""
    path = BUILTIN_DEMO if script in (None, "demo") else Path(script)
    path = path.expanduser().resolve()
    with _shared_lock:
        server = _shared.get(path)
        if server is None or server._httpd is None:  # closed by someone: start afresh
            server = _shared[path] = ScriptedServer(path).start()
        return server


def close_shared() -> None:
    """Stop every shared server of this process (the extension is unloaded)."""
    with _shared_lock:
        servers = list(_shared.values())
        _shared.clear()
    for server in servers:
        server.close()
