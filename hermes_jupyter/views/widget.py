"""The live ipywidgets view of one turn.

A subscriber of the turn's events; it acts on the turn only through its handle
(approve, answer, cancel). Streaming text is coalesced (one update per
FLUSH_INTERVAL at most) and split into settled Markdown blocks plus one open
block, so comm traffic stays near 12 messages a second and grows linearly with
the answer. When the turn ends the view becomes the static rendering.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from hermes_jupyter import events as ev
from hermes_jupyter.engine import NothingPending, Turn
from hermes_jupyter.notebook.outputs import AREA_LAYOUT
from hermes_jupyter.safety.markdown import escape, render_markdown, split_settled
from hermes_jupyter.safety.redact import redact_for_display
from hermes_jupyter.util.scheduler import Scheduled, scheduler
from hermes_jupyter.views import static
from hermes_jupyter.views.comm import act_on_click_early

FLUSH_INTERVAL = 0.1  # seconds between updates of streaming text: at most ~10 flushes a second
TICK = 1.0  # seconds between elapsed-time / countdown updates
PLAIN_REPR = ""  # headless runs record the static rendering as a separate output


def time_left(deadline: float) -> str:
    left = max(0, int(deadline - time.monotonic()))
    return f"{left}s" if left < 120 else f"{left // 60} min"


class TurnBox(w.VBox):  # type: ignore[misc]  # ipywidgets has no type information: VBox is Any
    """The view's root; its text/plain fallback is stable, so headless runs diff cleanly."""

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs)
        data: dict[str, Any] = bundle[0] if isinstance(bundle, tuple) else bundle
        data["text/plain"] = PLAIN_REPR
        return data


class Coalescer:
    """Calls `flush` at most once per interval, and soon after the last `mark` (on the shared scheduler)."""

    def __init__(self, interval: float, flush: Callable[[], None]) -> None:
        self.interval = interval
        self._flush = flush
        self._lock = threading.Lock()
        self._pending: Scheduled | None = None
        self._last = 0.0

    def mark(self) -> None:
        with self._lock:
            if self._pending is not None:
                return
            delay = max(0.0, self._last + self.interval - time.monotonic())
            self._pending = scheduler.call_later(delay, self._run)

    def _run(self) -> None:
        with self._lock:
            self._pending = None
            self._last = time.monotonic()
        self._flush()

    def now(self) -> None:
        """Flush at once (end of a segment, end of the turn)."""
        with self._lock:
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
            self._last = time.monotonic()
        self._flush()


class AnswerStream:
    """One stretch of streamed Markdown: settled blocks, rendered once, and an open tail."""

    def __init__(self, add: Callable[[w.Widget], None]):
        self._add = add
        self._open = ""
        self._rendered: str | None = None
        self._widget = self._new_block()

    def _new_block(self) -> w.HTMLMath:
        block = w.HTMLMath(layout=w.Layout(margin="0"))
        block.add_class("hermes-answer")
        self._add(block)
        return block

    def append(self, text: str) -> None:
        self._open += text

    def flush(self) -> None:
        settled, rest = split_settled(self._open)
        if settled:
            self._widget.value = render_markdown(settled)  # final: never sent again
            self._widget = self._new_block()
            self._open, self._rendered = rest, None
        if self._open != self._rendered:
            self._widget.value = render_markdown(self._open)
            self._rendered = self._open


class ToolCard:
    def __init__(self, start: ev.ToolStarted):
        self.start = start
        self.title = w.HTML(static.tool_summary(start, None, running=True))
        self.result = w.HTML()
        self.fold = w.Accordion(children=[self.result], titles=("Result",), selected_index=None,
                                layout=w.Layout(display="none"))
        self.widget = w.VBox([self.title, self.fold], layout=w.Layout(
            border_left="3px solid #8c959f", padding="0 0 0 8px", margin="4px 0"))

    def complete(self, end: ev.ToolCompleted) -> None:
        with self.widget.hold_sync():
            self.title.value = static.tool_summary(self.start, end)
            self.result.value = f"<pre style='{static.CODE}white-space:pre-wrap;margin:0'>{escape(end.result)}</pre>"
            self.fold.layout.display = None
            if end.is_error:
                self.widget.layout.border_left = "3px solid #cf222e"


class ApprovalCard:
    LABELS = {"once": "Allow once", "session": "Allow session", "always": "Always allow", "deny": "Deny"}

    def __init__(self, request: ev.ApprovalRequested, turn: Turn):
        self.request, self.turn = request, turn
        self.deadline = time.monotonic() + request.timeout
        self.text = w.HTML(
            f"<b>⚠ Approval needed</b>: {escape(request.description)}"
            f"<pre style='{static.CODE}white-space:pre-wrap;margin:2px 0'>{escape(request.command)}</pre>")
        choices = ["once", "session"] + (["always"] if request.allow_permanent else []) + ["deny"]
        self.buttons = [self._button(choice) for choice in choices]
        self.status = w.HTML()
        self.widget = w.VBox([self.text, w.HBox(self.buttons), self.status], layout=w.Layout(
            border_left="3px solid #bf8700", padding="2px 8px", margin="4px 0"))
        self.tick()

    def _button(self, choice: str) -> w.Button:
        button = w.Button(description=self.LABELS[choice],
                          button_style="danger" if choice == "deny" else ("success" if choice == "once" else ""),
                          layout=w.Layout(width="auto"))
        button.on_click(lambda _: self.click(choice))
        return button

    def click(self, choice: str) -> None:
        try:
            self.turn.approve(choice, self.request.request_id)
        except (NothingPending, ValueError) as exc:
            self.status.value = f"<i>{escape(str(exc))}</i>"

    def tick(self) -> None:
        left = time_left(self.deadline)
        self.status.value = f"<span style='{static.MUTED}'>denied automatically in {left}</span>"

    def resolve(self, res: ev.ApprovalResolved) -> None:
        with self.widget.hold_sync():
            for button in self.buttons:
                button.disabled = True
            self.status.value = "→ " + static.approval_line(self.request, res).split("→ ", 1)[1]
            ok = res.choice != "deny"
            self.widget.layout.border_left = f"3px solid {'#2da44e' if ok else '#cf222e'}"


class ClarifyCard:
    def __init__(self, request: ev.ClarifyRequested, turn: Turn):
        self.request, self.turn = request, turn
        self.deadline = time.monotonic() + request.timeout
        self.text = w.HTML(f"<b>? {escape(request.question)}</b>")
        self.choices = [w.Button(description=c, layout=w.Layout(width="auto")) for c in request.choices]
        for button, choice in zip(self.choices, request.choices, strict=True):
            button.on_click(lambda _, c=choice: self.send(c))
        self.free = w.Text(placeholder="Or type an answer…", layout=w.Layout(width="320px"))
        self.send_button = w.Button(description="Send", button_style="primary", layout=w.Layout(width="auto"))
        self.send_button.on_click(lambda _: self.send(self.free.value))
        self.free.on_submit(lambda _: self.send(self.free.value))
        self.status = w.HTML()
        self.widget = w.VBox([self.text, w.HBox(self.choices), w.HBox([self.free, self.send_button]),
                              self.status], layout=w.Layout(border_left="3px solid #0969da",
                                                            padding="2px 8px", margin="4px 0"))
        self.tick()

    def send(self, text: str) -> None:
        if not text.strip():
            self.status.value = "<i>Type an answer first, or pick a choice.</i>"
            return
        try:
            self.turn.answer(text.strip(), self.request.request_id)
        except NothingPending as exc:
            self.status.value = f"<i>{escape(str(exc))}</i>"

    def tick(self) -> None:
        left = time_left(self.deadline)
        self.status.value = f"<span style='{static.MUTED}'>waiting for your answer ({left} left)</span>"

    def resolve(self, res: ev.ClarifyResolved) -> None:
        with self.widget.hold_sync():
            for widget in [*self.choices, self.free, self.send_button]:
                widget.disabled = True
            self.status.value = "→ " + static.clarify_line(self.request, res).split("→ ", 1)[1]


class TurnView:
    """Live view of a turn. Subscribe it to the turn; display `view.root`."""

    def __init__(self, turn: Turn, *, history: str | None = None, on_done: Callable[[TurnView], None] | None = None):
        self.turn = turn
        self.history = history
        self.on_done = on_done
        self._lock = threading.RLock()
        self.header = w.HTML(self._header("starting…"))
        self.body = w.VBox()
        self.stop = w.Button(description="Stop", icon="stop", layout=w.Layout(width="auto"))
        self.stop.on_click(lambda _: self.turn.cancel())
        act_on_click_early(self.stop, self.turn.cancel)  # works while the agent's code holds the kernel
        self.footer = w.HTML()
        self.controls = w.HBox([self.stop])
        self.root = TurnBox([self.header, self.body, self.controls, self.footer],
                            layout=w.Layout(border="1px solid var(--jp-border-color2, #d0d7de)",
                                            padding="6px 12px", margin="4px 0"))
        self.root.add_class("hermes-live")  # the static rendering inside it is .hermes-turn
        self._answer: AnswerStream | None = None
        self._thinking: w.HTML | None = None
        self._thinking_fold: w.Accordion | None = None
        self._thinking_text = ""
        self._tools: dict[str, ToolCard] = {}
        self._cards: dict[str, ApprovalCard | ClarifyCard] = {}
        self._code_areas: dict[str, list[w.Output]] = {}
        self._first_output = False
        self._model = ""
        self._done = False
        self._stream = Coalescer(FLUSH_INTERVAL, self._flush)
        self._started = time.monotonic()
        self._ticker = scheduler.every(TICK, self._tick)

    # ----- events (dispatcher thread) -------------------------------------------------------
    def __call__(self, event: ev.Event) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            with self._lock:
                handler(event)

    def _add(self, widget: w.Widget) -> None:
        self.body.children = (*self.body.children, widget)

    def _on_queued(self, e: ev.TurnQueued) -> None:
        self.header.value = self._header(f"queued (position {e.position})")
        self.stop.description = "Cancel"

    def _on_started(self, e: ev.TurnStarted) -> None:
        self._model = e.model
        self.stop.description = "Stop"
        self.header.value = self._header("working…")

    def _on_reasoning(self, e: ev.Reasoning) -> None:
        self._mark_output()
        if self._thinking is None:
            self._close_answer()
            self._thinking_text = ""
            self._thinking = w.HTML()
            self._thinking_fold = w.Accordion(children=[self._thinking], titles=("Thinking…",), selected_index=0)
            self._add(self._thinking_fold)
        self._thinking_text += e.text
        self._stream.mark()

    def _on_token(self, e: ev.Token) -> None:
        self._mark_output()
        self._fold_thinking()
        if self._answer is None:
            self._answer = AnswerStream(self._add)
        self._answer.append(e.text)
        self._stream.mark()

    def _on_segment_end(self, e: ev.SegmentEnd) -> None:
        self._close_answer()

    def _on_tool(self, e: ev.ToolStarted) -> None:
        self._mark_output()
        self._close_answer()
        self._fold_thinking()
        card = ToolCard(e)
        self._tools[e.call_id] = card
        self._add(card.widget)

    def _on_tool_complete(self, e: ev.ToolCompleted) -> None:
        card = self._tools.get(e.call_id)
        if card is not None:
            card.complete(e)

    def _on_approval(self, e: ev.ApprovalRequested) -> None:
        self._close_answer()
        card = ApprovalCard(e, self.turn)
        self._cards[e.request_id] = card
        self._add(card.widget)

    def _on_approval_resolved(self, e: ev.ApprovalResolved) -> None:
        card = self._cards.pop(e.request_id, None)
        if isinstance(card, ApprovalCard):
            card.resolve(e)

    def _on_clarify(self, e: ev.ClarifyRequested) -> None:
        self._close_answer()
        card = ClarifyCard(e, self.turn)
        self._cards[e.request_id] = card
        self._add(card.widget)

    def _on_clarify_resolved(self, e: ev.ClarifyResolved) -> None:
        card = self._cards.pop(e.request_id, None)
        if isinstance(card, ClarifyCard):
            card.resolve(e)

    def _on_code_output(self, e: Any) -> None:
        """Output of the agent's code run in the kernel (kernel_output.CodeOutput)."""
        self._close_answer()
        areas = self._code_areas.setdefault(e.run_id, [])
        output = dict(e.output)
        if output.get("output_type") == "clear_output":
            for area in areas:
                area.outputs = ()
            return
        area = areas[-1] if areas else None
        # Printed text goes on in one area (up to a size); a display gets its own: no update resends an image.
        if (area is None or output.get("output_type") != "stream" or not area.outputs
                or area.outputs[-1].get("output_type") != "stream"
                or sum(len(str(o.get("text", ""))) for o in area.outputs) > 16_000):
            area = w.Output(layout=w.Layout(**AREA_LAYOUT))
            areas.append(area)
            self._add(area)
        area.outputs = (*area.outputs, output)

    def _on_status(self, e: ev.Status) -> None:
        self._add(w.HTML(f"<span style='{static.MUTED}'>{escape(e.level)}: {escape(e.text)}</span>"))

    def _on_compressed(self, e: ev.Compressed) -> None:
        self._add(w.HTML(f"<span style='{static.MUTED}'>ℹ {escape(e.message)}</span>"))

    def _on_error(self, e: ev.Error) -> None:
        self._close_answer()
        self._add(w.HTML(static.render_block(("error", e))))

    def _on_usage(self, e: ev.Usage) -> None:
        self.footer.value = f"<span style='{static.MUTED}'>{static.usage_line(e, 'running', self.history)}</span>"

    def _on_done(self, e: ev.Done) -> None:
        self._stream.now()
        self._done = True
        self._ticker.cancel()
        html = static.render_html(self.turn.events, prompt=self.turn.prompt,
                                  session=self.turn.session.name, history=self.history)
        # The live parts are replaced by the static rendering: what you see is what is saved.
        with self.root.hold_sync():
            self.root.children = (w.HTML(html),)
            self.root.layout.border = "0"
            self.root.layout.padding = "0"
        self._close(self._live_widgets())
        if self.on_done is not None:
            self.on_done(self)

    # ----- helpers --------------------------------------------------------------------------
    def _header(self, state: str) -> str:
        model = f" · {escape(self._model)}" if getattr(self, "_model", "") else ""
        return (f"<div style='{static.MUTED}'>Hermes · session {escape(self.turn.session.name)}{model}"
                f" · {escape(state)}</div><div style='font-weight:600;white-space:pre-wrap'>"
                f"{escape(redact_for_display(self.turn.prompt))}</div>")

    def _mark_output(self) -> None:
        if not self._first_output:
            self._first_output = True
            self.header.value = self._header("answering…")

    def _fold_thinking(self) -> None:
        if self._thinking_fold is not None:
            self._stream.now()
            with self._thinking_fold.hold_sync():
                self._thinking_fold.titles = ("Reasoning",)
                self._thinking_fold.selected_index = None
            self._thinking = self._thinking_fold = None

    def _close_answer(self) -> None:
        if self._answer is not None:
            self._stream.now()
            self._answer = None

    def _flush(self) -> None:
        with self._lock:
            if self._answer is not None:
                self._answer.flush()
            if self._thinking is not None:
                self._thinking.value = f"<div style='white-space:pre-wrap;{static.MUTED}'>{escape(self._thinking_text)}</div>"

    def _tick(self) -> bool:
        """Elapsed time and countdowns, once a second (a display clock); False stops it."""
        with self._lock:
            if self._done:
                return False
            if not self._first_output and self.turn.status == "running":
                self.header.value = self._header(f"working… {time.monotonic() - self._started:.0f}s")
            for card in list(self._cards.values()):
                card.tick()
            return True

    def close(self) -> None:
        """Close every widget of the view (when its output has been replaced)."""
        self._close([self.root])

    def _live_widgets(self) -> list[w.Widget]:
        return [self.header, self.body, self.controls, self.footer]

    @staticmethod
    def _close(widgets: list[w.Widget]) -> None:
        # Each widget also owns a Layout (and often a Style) model with its own comm.
        for widget in widgets:
            for child in getattr(widget, "children", ()):
                TurnView._close([child])
            for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
                if isinstance(part, w.Widget):
                    part.close()
            widget.close()
