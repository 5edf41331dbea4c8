"""Capturing what the agent's code prints and displays while it runs in the kernel.

``Capture`` turns writes and displays into nbformat outputs for the turn's views
(bounded, redacted) and keeps a bounded text for the model; ``routed_streams``
sends the main thread's output into it and leaves every other thread's alone.
"""
from __future__ import annotations

import collections
import contextvars
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from hermes_jupyter.notebook.outputs import summary
from hermes_jupyter.util.scheduler import Scheduled, scheduler

log = logging.getLogger("hermes_jupyter")

STREAM_FLUSH = 0.1  # seconds: printed text reaches the views at most this late
STREAM_CHUNK = 8_000  # characters per stream output at most
SHOWN_TEXT = 200_000  # characters of printed text shown per run; the rest is only counted
SHOWN_DISPLAYS = 50  # displays (figures, tables) shown per run
DISPLAY_CHARS = 8_000_000  # a bigger display is shown as its text summary
MODEL_HEAD, MODEL_TAIL = 3_000, 1_500  # printed text the model gets: its start and its end

# The capture of the code running on the main thread now, if any.
active_capture: contextvars.ContextVar[Capture | None] = contextvars.ContextVar(
    "hermes_jupyter_capture", default=None)


class BoundedText:
    """The start and the end of a long text, in bounded memory."""

    def __init__(self, head: int, tail: int):
        self.head_limit, self.tail_limit = head, tail
        self._head: list[str] = []
        self._head_len = 0
        self._tail: collections.deque[str] = collections.deque()
        self._tail_len = 0
        self.dropped = 0

    def add(self, text: str) -> None:
        room = self.head_limit - self._head_len
        if room > 0:
            part = text[:room]
            self._head.append(part)
            self._head_len += len(part)
            text = text[len(part):]
        if not text:
            return
        self._tail.append(text)
        self._tail_len += len(text)
        while self._tail_len > self.tail_limit:
            first = self._tail.popleft()
            excess = self._tail_len - self.tail_limit
            if len(first) > excess:
                self._tail.appendleft(first[excess:])
                first = first[:excess]
            self._tail_len -= len(first)
            self.dropped += len(first)

    def text(self) -> str:
        gap = f"\n[… {self.dropped} characters omitted …]\n" if self.dropped else ""
        return "".join(self._head) + gap + "".join(self._tail)


class Capture:
    """Where one run's output goes: output dicts for the views (coalesced, bounded), text for the model."""

    def __init__(self, emit: Callable[[dict[str, Any]], None], clean: Callable[[str], str] = lambda s: s):
        self._emit = emit
        self._clean = clean
        self._lock = threading.RLock()
        self._name: str | None = None
        self._parts: list[str] = []
        self._size = 0
        self._timer: Scheduled | None = None
        self._shown = 0
        self._cut = False
        self._displays = 0
        self._clear_pending = False
        self._closed = False
        self.model = BoundedText(MODEL_HEAD, MODEL_TAIL)

    # ----- from the run (main thread) ---------------------------------------------------------
    def write(self, name: str, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            self.model.add(text)
            if self._cut or self._closed or not text:
                return len(text)
            if self._name != name:
                self._flush_locked()
                self._name = name
            shown = text[: SHOWN_TEXT - self._shown]
            self._parts.append(shown)
            self._size += len(shown)
            self._shown += len(shown)
            if self._shown >= SHOWN_TEXT:
                self._cut = True
                self._flush_locked()
                self._send({"output_type": "stream", "name": "stderr",
                            "text": "\n[… more output, not shown here …]\n"})
            elif self._size >= STREAM_CHUNK:
                self._flush_locked()
            elif self._timer is None:
                self._timer = scheduler.call_later(STREAM_FLUSH, self.flush)
        return len(text)

    def display(self, data: Mapping[str, Any], metadata: Mapping[str, Any] | None = None, *,
                for_model: bool = True) -> None:
        data = dict(data or {})
        with self._lock:
            self._flush_locked()
            if for_model:  # the last expression's value reaches the model as "result" instead
                self.model.add(summary(data) + "\n")
            if self._closed:
                return
            self._displays += 1
            if self._displays > SHOWN_DISPLAYS:
                if self._displays == SHOWN_DISPLAYS + 1:
                    self._send({"output_type": "stream", "name": "stderr",
                                "text": f"[… more than {SHOWN_DISPLAYS} displays, not shown here …]\n"})
                return
            if sum(len(str(v)) for v in data.values()) > DISPLAY_CHARS:
                data, metadata = {"text/plain": summary(data)}, {}
            for mime in ("text/plain", "text/html", "text/markdown", "text/latex"):
                if isinstance(data.get(mime), str):
                    data[mime] = self._clean(data[mime])
            self._send({"output_type": "display_data", "data": data, "metadata": dict(metadata or {})})

    def clear(self, wait: bool = False) -> None:
        with self._lock:
            self._flush_locked()
            if wait:
                self._clear_pending = True
            else:
                self._clear_pending = False
                self._send({"output_type": "clear_output"})

    def error(self, ename: str, evalue: str, trace: list[str]) -> None:
        with self._lock:
            self._flush_locked()
            self._send({"output_type": "error", "ename": ename, "evalue": self._clean(evalue),
                        "traceback": [self._clean(line) for line in trace]})

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        with self._lock:
            self._flush_locked()
            self._closed = True

    # ----- internals ---------------------------------------------------------------------------
    def _flush_locked(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._parts:
            text = "".join(self._parts)
            self._parts, self._size = [], 0
            self._send({"output_type": "stream", "name": self._name or "stdout", "text": self._clean(text)})

    def _send(self, output: dict[str, Any]) -> None:
        if self._clear_pending and output.get("output_type") != "clear_output":
            self._clear_pending = False
            self._safe_emit({"output_type": "clear_output"})
        self._safe_emit(output)

    def _safe_emit(self, output: dict[str, Any]) -> None:
        try:
            self._emit(output)
        except Exception:  # a broken listener must not break the user's code
            log.exception("could not deliver a code output")


class RoutedStream:
    """sys.stdout / sys.stderr during a run: the run's writes go to its capture, others' pass through."""

    def __init__(self, original: Any, name: str):
        self._original = original
        self._name = name

    def write(self, text: str) -> int:
        capture = active_capture.get()
        if capture is None:
            return int(self._original.write(text))
        return capture.write(self._name, text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        capture = active_capture.get()
        if capture is None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


def routed_publisher_class() -> type:
    from IPython.core.displaypub import DisplayPublisher

    class RoutedPublisher(DisplayPublisher):
        """The shell's display publisher during a run: the run's displays go to its capture."""

        def __init__(self, original: Any):
            super().__init__(shell=None)  # type: ignore[no-untyped-call]  # IPython untyped; no shell: do not register execution hooks again
            self.__dict__["_original"] = original

        def publish(self, data: Any, metadata: Any = None, *args: Any, **kwargs: Any) -> Any:  # IPython's signature
            capture = active_capture.get()
            if capture is None:
                return self._original.publish(data, metadata, *args, **kwargs)
            capture.display(data, metadata)
            return None

        def clear_output(self, wait: bool = False) -> Any:
            capture = active_capture.get()
            if capture is None:
                return self._original.clear_output(wait)
            capture.clear(wait)
            return None

        def __getattr__(self, name: str) -> Any:
            original = self.__dict__.get("_original")
            if original is None or name.startswith("__"):
                raise AttributeError(name)
            return getattr(original, name)

    return RoutedPublisher


