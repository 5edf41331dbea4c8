"""The live view's document: its parts, in the static rendering's order, and the operations that change them.

Every change is an operation (live.py lists them) queued until the next flush,
which sends them as one message; a view that connects gets the whole document
as operations instead (`snapshot`). The streamed parts keep their own state:
the answer (stream.py), the reasoning (escaped and redacted text appended), the
outputs of the agent's code. Callers hold `_lock`.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from hermes_jupyter.notebook.outputs import output_html
from hermes_jupyter.safety.markdown import escape
from hermes_jupyter.safety.redact import StreamRedactor
from hermes_jupyter.views import parts
from hermes_jupyter.views.live import Channel, Coalescer, Op, TurnWidget
from hermes_jupyter.views.stream import AnswerStream

# Seconds between messages to the browser, about 7 a second. Each message costs the kernel about 1 ms
# of CPU over its threads (the flush ~0.7: Markdown, redaction, Session.send; ipykernel's IOPub thread
# ~0.2): the main cost of a live view, ~10% of a 200 tokens/s turn's (bench/RESULTS.md, section 4).
# A longer interval would cost latency: at 0.14 s token-to-screen p95 is 136-138 ms (section 3, target 150).
FLUSH_INTERVAL = 0.14


class ReasoningStream:
    """A reasoning fold while it streams: redacted text appended as it comes, the whole once folded."""

    def __init__(self, part: str) -> None:
        self.part = part
        self.raw: list[str] = []
        self._pending: list[str] = []
        self._shown = ""
        self._redactor = StreamRedactor()

    def feed(self, text: str) -> None:
        self.raw.append(text)
        self._pending.append(text)

    def flush(self, final: bool = False) -> list[Op]:
        text = self._redactor.feed("".join(self._pending)) if self._pending else ""
        if final:
            text += self._redactor.flush()
        self._pending.clear()
        if not text:
            return []
        shown = escape(text)
        self._shown += shown
        return [["append", self.part, shown]]

    def snapshot(self) -> Op:
        return ["add", self.part, parts.reasoning(self._shown, live=True)]


class Document:
    def __init__(self, head: str, foot: str, **widget: str) -> None:
        self._lock = threading.RLock()
        self._order: list[str] = ["head", "foot"]
        self._html: dict[str, str] = {"head": head, "foot": foot}
        self._ctl: dict[str, tuple[dict[str, Any], float | None]] = {}  # part -> (spec, deadline)
        self._ops: list[Op] = []
        self._ids = 0
        self._answer: AnswerStream | None = None
        self._streams: dict[str, AnswerStream] = {}
        self._reasoning: ReasoningStream | None = None
        self._folding: dict[str, ReasoningStream] = {}  # reasoning parts not folded yet
        self._areas: dict[str, tuple[str, list[Mapping[str, Any]]]] = {}  # run id -> (part, outputs shown)
        self._area_parts: dict[str, list[Mapping[str, Any]]] = {}
        self._done = False
        self.root: TurnWidget | None = TurnWidget(**widget)  # what to display; None once closed
        self._channel = Channel(self.root, self._lock, self._snapshot, self._flush, self._act)
        self._flusher = Coalescer(FLUSH_INTERVAL, self._flush)

    # ----- parts -------------------------------------------------------------------------------
    def _new_part(self, html: str) -> str:
        self._ids += 1
        part = f"p{self._ids}"
        self._order.insert(len(self._order) - 1, part)
        self._html[part] = html
        self._emit(["add", part, html])
        return part

    def _set(self, part: str, html: str) -> None:
        self._html[part] = html
        self._emit(["set", part, html])

    def _controls(self, part: str, spec: dict[str, Any] | None, deadline: float | None = None) -> None:
        if spec is None:
            self._ctl.pop(part, None)
        else:
            self._ctl[part] = (spec, deadline)
        self._emit(["ctl", part, self._spec(part)])

    def _spec(self, part: str) -> dict[str, Any] | None:
        """A part's controls as the view needs them now (countdowns from the time left)."""
        entry = self._ctl.get(part)
        if entry is None:
            return None
        spec, deadline = entry
        if deadline is not None:
            spec = {**spec, "deadline": round(max(0.0, deadline - time.monotonic()), 1)}
        return self._more_spec(part, spec)

    def _more_spec(self, part: str, spec: dict[str, Any]) -> dict[str, Any]:
        return spec

    def _act(self, message: dict[str, Any]) -> None:
        """A click in the view (see TurnView)."""

    # ----- operations --------------------------------------------------------------------------
    def _emit(self, op: Op) -> None:
        self._ops.append(op)
        self._flusher.mark()

    def _emit_all(self, ops: list[Op]) -> None:
        for op in ops:
            self._emit(op)

    def _flush(self) -> None:
        with self._lock:
            ops, self._ops = self._ops, []
            if self._answer is not None and self._answer.dirty:
                ops += self._answer.flush()
            if self._reasoning is not None:
                ops += self._reasoning.flush()
            self._channel.send(ops)

    def _snapshot(self) -> list[Op]:
        """The whole document as operations, for a view that connects (called under the lock)."""
        ops: list[Op] = []
        for part in self._order:
            if part in self._streams:
                ops += self._streams[part].snapshot()
            elif part in self._folding:
                ops.append(self._folding[part].snapshot())
            elif part in self._area_parts:
                ops.append(["add", part, parts.outputs(self._area_parts[part], live=True)])
            else:
                ops.append(["add", part, self._html[part]])
        ops += [["ctl", part, self._spec(part)] for part in self._ctl]
        if self._done:
            ops.append(["done"])
        return ops

    # ----- streamed parts ----------------------------------------------------------------------
    def _feed_answer(self, text: str) -> bool:
        """Stream answer text; True if it starts a new answer part."""
        answer = self._answer
        new = answer is None
        if answer is None:
            self._fold_reasoning()
            part = self._new_part(parts.answer(""))
            answer = self._answer = self._streams[part] = AnswerStream(part)
        answer.feed(text)
        self._flusher.mark()
        return new

    def _close_answer(self) -> None:
        if self._answer is not None:
            self._emit_all(self._answer.close())
            self._answer = None
        self._fold_reasoning()

    def _feed_reasoning(self, text: str) -> None:
        if self._reasoning is None:
            self._close_answer()
            part = self._new_part(parts.reasoning("", live=True))
            self._reasoning = self._folding[part] = ReasoningStream(part)
        self._reasoning.feed(text)
        self._flusher.mark()

    def _fold_reasoning(self) -> None:
        reasoning, self._reasoning = self._reasoning, None
        if reasoning is not None:
            self._emit_all(reasoning.flush(final=True))
            del self._folding[reasoning.part]
            self._set(reasoning.part, parts.reasoning("".join(reasoning.raw)))

    def _add_output(self, run_id: str, output: dict[str, Any]) -> None:
        """One output of the agent's code: a run's outputs share an area, placed where the first came."""
        area = self._areas.get(run_id)
        if area is None:
            self._close_answer()
            area = self._areas[run_id] = (self._new_part(parts.outputs([], live=True)), [])
            self._area_parts[area[0]] = area[1]
        part, shown = area
        if output.get("output_type") == "clear_output":
            shown.clear()
            self._set(part, parts.outputs([], live=True))
            return
        shown.append(output)
        html = output_html(output)
        if html:
            self._emit(["append", part, html])

    def _settle_outputs(self) -> None:
        """At the end, a run whose outputs were all cleared shows nothing, as in the static rendering (not an
        empty area)."""
        for part, shown in list(self._area_parts.items()):
            if not shown:  # (a clear_output empties it)
                del self._area_parts[part]
                self._set(part, "")

    def _forget(self) -> None:
        """Let go of everything (the widget is closed): a finished turn keeps no copy of its view."""
        self._html, self._streams, self._areas, self._area_parts, self._folding = {}, {}, {}, {}, {}
        self._ops, self._order, self._ctl = [], [], {}
        if self._channel.widget is None:  # closed (not kept for a reconnected page): let it go
            self.root = None
