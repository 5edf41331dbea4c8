"""An OpenAI-compatible endpoint on 127.0.0.1 that fails the way real providers do.

The faults a notebook meets in practice, one per name (``FaultyProvider(fault)``; ``fault`` can be changed
between turns):

- ``ok``: a normal streamed answer (``ANSWER``);
- ``status:CODE``: an OpenAI-style JSON error with that HTTP status (401, 429, 500, 503, ...);
- ``status:CODE:MESSAGE``: the same with the provider's own words, e.g. ``status:400:foo is not a
  valid model ID`` (how OpenRouter answers an unknown model);
- ``html``: a proxy's HTML error page (502, ``text/html``);
- ``huge``: a 2 MB answer, streamed in 8 kB chunks;
- ``silent``: the request is read and nothing is ever sent back;
- ``stall``: the answer starts (``FRAGMENT``) and then nothing more comes;
- ``malformed``: the answer starts, then a ``data:`` line that is not JSON;
- ``drop``: the answer starts, then the connection is closed mid-stream.

A silent or stalled reply is held until the client hangs up or the server closes, so a test
never waits on a sleep. ``requests`` holds every chat-completions body received
(``arrival_times`` when), and ``arrived`` is set each time one comes in.
"""
from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "faulty-model"
FRAGMENT = "The first fragment of the answer"
ANSWER = FRAGMENT + ", and the rest of it."
HUGE_BYTES = 2 * 1024 * 1024
HTML_PAGE = ("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
             "</h1></center><hr><center>nginx</center></body></html>\n")


def _chunk(content: str | None = None, *, role: bool = False, finish: str | None = None) -> dict[str, Any]:
    delta: dict[str, Any] = {"role": "assistant"} if role else {}
    if content is not None:
        delta["content"] = content
    return {"id": "chatcmpl-faulty", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


class FaultyProvider:
    def __init__(self, fault: str = "ok") -> None:
        self.fault = fault
        self.requests: list[dict[str, Any]] = []
        self.arrival_times: list[float] = []  # time.monotonic() of each request
        self.arrived = threading.Event()
        self.closing = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> FaultyProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    @property
    def owner(self) -> FaultyProvider:
        return self.server.owner  # type: ignore[attr-defined, no-any-return]

    def do_GET(self) -> None:
        entry = {"id": MODEL, "object": "model", "created": 0, "owned_by": "faulty", "context_length": 128000}
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, "application/json", json.dumps({"object": "list", "data": [entry]}).encode())
        elif self.path.endswith("/models/" + MODEL):
            self._send(200, "application/json", json.dumps(entry).encode())
        else:
            self._send(404, "application/json", b'{"error": {"message": "not found", "type": "not_found"}}')

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if not self.path.rstrip("/").endswith("/chat/completions"):
            # Hermes probes local endpoints (Ollama's /api/show, ...): a real provider says 404 at
            # once. Faulting those too would make every first turn wait out hermes' probe timeouts.
            self._send(404, "application/json", b'{"error": {"message": "not found", "type": "not_found"}}')
            return
        owner = self.owner
        owner.requests.append(body)
        owner.arrival_times.append(time.monotonic())
        owner.arrived.set()
        fault = owner.fault
        if fault.startswith("status:"):
            code, _, said = fault.partition(":")[2].partition(":")
            status = int(code)
            kind = "invalid_request_error" if 400 <= status < 500 else "server_error"
            error = {"error": {"message": said or f"Provider error {status}", "type": kind, "code": status}}
            headers = {"Retry-After": "1"} if status == 429 else {}
            self._send(status, "application/json", json.dumps(error).encode(), headers)
        elif fault == "html":
            self._send(502, "text/html", HTML_PAGE.encode())
        elif fault == "silent":
            self._hold()
        else:
            self._stream(fault)

    # ----- replies -----------------------------------------------------------------------------
    def _send(self, status: int, kind: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    def _event(self, data: str) -> None:
        payload = f"data: {data}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.wfile.flush()

    def _stream(self, fault: str) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._event(json.dumps(_chunk("", role=True)))
            if fault == "huge":
                piece = ("lorem ipsum dolor sit amet " * 400)[:8192]
                for _ in range(HUGE_BYTES // len(piece)):
                    self._event(json.dumps(_chunk(piece)))
            else:
                self._event(json.dumps(_chunk(FRAGMENT)))
            if fault == "stall":
                self._hold()
                return
            if fault == "malformed":
                self._event('{"id": "chatcmpl-faulty", "choices": [{"delta": {"content": "oops')
            elif fault == "drop":
                self.connection.shutdown(socket.SHUT_RDWR)  # no final chunk: the stream just ends
                self.close_connection = True
                return
            elif fault == "ok":
                self._event(json.dumps(_chunk(ANSWER[len(FRAGMENT):])))
            self._event(json.dumps(_chunk(finish="stop")))
            usage = {**_chunk(), "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                                                          "total_tokens": 15}}
            self._event(json.dumps(usage))
            self._event("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client hung up
            self.close_connection = True

    def _hold(self) -> None:
        """Send nothing until the client hangs up or the server closes."""
        while not self.owner.closing.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            with contextlib.suppress(OSError):
                if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
                    break
        self.close_connection = True
