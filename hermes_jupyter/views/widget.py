"""The live view of one turn: the turn's events as parts of a document, sent to the browser as deltas.

A subscriber of the turn's events; it acts on the turn only through its handle
(approve, deny, answer, cancel). The document has the static rendering's
structure (parts.py): a head, parts (reasoning, answer, tool calls, requests,
outputs, notices) and a foot. Changes are batched into one message per flush
(at most FLUSH_INTERVAL apart) on one anywidget (live.py); answers stream with
stream.py, so every shape of answer costs about one send of each character.
When the turn ends the live parts have become what the static rendering shows;
the widget is then closed (the cell's output is replaced by that rendering).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hermes_jupyter import events as ev
from hermes_jupyter.engine import NothingPending, Turn
from hermes_jupyter.safety.redact import redact_for_display
from hermes_jupyter.state import NoticeBlock, TurnState, reduce
from hermes_jupyter.views import cells, parts, static
from hermes_jupyter.views.document import FLUSH_INTERVAL, Document
from hermes_jupyter.views.snapshot import Snapshots

__all__ = ["FLUSH_INTERVAL", "TurnView"]
ANSWER_LIMIT = 4000  # characters of a typed clarify answer
APPROVE_LABELS = {"once": ("Allow once", "success"), "session": ("Allow session", ""),
                  "always": ("Always allow", ""), "deny": ("Deny", "danger")}


class TurnView(Document):
    """Live view of a turn. Subscribe it to the turn; display `view.root`."""

    def __init__(self, turn: Turn, *, history: str | None = None,
                 on_done: Callable[[TurnView], None] | None = None) -> None:
        self.turn = turn
        self.history = history
        self.on_done = on_done
        self._targets: dict[str, tuple[str, str]] = {}  # part -> (approval|clarify, request id)
        # The turn so far, from the one reducer: what the cards show and what the view ends as.
        self._turn_state = TurnState(prompt=turn.prompt, session=turn.session.name)
        self._tokens: list[str] = []  # tokens not reduced yet (a run of them reduces as one)
        self._state: str | None = "starting…"
        self._clock = True  # the head counts seconds until the first output
        self._waiting: str | None = None  # "no reply from MODEL for 40 s", until the next event
        self._started = time.monotonic()
        self._tools: dict[str, str] = {}  # call id -> its card's part, while the call runs
        self._requests: dict[str, str] = {}  # request id -> its card's part, while unanswered
        self._done = False
        self.snapshots: Snapshots | None = None  # the turn so far in a second output, for a save mid-turn
        super().__init__(self._head(), parts.foot(None, "running", history), turn=turn.id,
                         gone_note=f"The kernel stopped. {static.kept_in(turn.id, history)}")
        self._ctl["head"] = (self._stop_spec("Stop"), None)

    def _more_spec(self, part: str, spec: dict[str, Any]) -> dict[str, Any]:
        if part == "head" and self._clock and self._state is not None and self._waiting is None:
            return {**spec, "elapsed": round(time.monotonic() - self._started, 1), "state": self._state}
        return spec

    # ----- events (dispatcher thread) -----------------------------------------------------------
    def __call__(self, event: ev.Event) -> None:
        # The turn so far matters only to a page that can save the notebook: one that drew this view.
        snapshots = self.snapshots if self._channel.connected else None
        if type(event) is ev.Token:
            if snapshots is not None:
                snapshots.grew(len(event.text))
            if self._answer is not None and self._waiting is None:
                with self._lock:  # the common case, thousands a turn: just queue the text for the next flush
                    self._answer.feed(event.text)
                    self._tokens.append(event.text)
                self._flusher.mark()
                return
        handler = getattr(self, f"_on_{event.kind}", None)
        with self._lock:
            self._turn_state = reduce(self.state, event)
            if self._waiting is not None and event.kind != "waiting":
                self._waiting = None
                self._set_state(self._state)
            if handler is not None:
                handler(event)
        if snapshots is not None and not self._done:
            snapshots.event(event)

    @property
    def state(self) -> TurnState:
        """The turn as this view has seen it (its events folded by state.reduce)."""
        with self._lock:
            if self._tokens:
                self._turn_state = reduce(self._turn_state, ev.Token("".join(self._tokens)))
                self._tokens.clear()
            return self._turn_state

    def _head(self) -> str:
        state = None if self._done else (self._waiting or self._state or "running")
        return parts.head(self.turn.session.name, self._turn_state.model, self.turn.prompt, state,
                          history=self.history, live=True)

    def _set_state(self, state: str | None, clock: bool | None = None) -> None:
        self._state = state
        if clock is not None:
            self._clock = clock
        self._html["head"] = self._head()
        self._emit(["state", "head", self._waiting or state or "running"])  # the head's state line only
        if "head" in self._ctl:
            self._controls("head", self._ctl["head"][0])

    def _stop_spec(self, label: str) -> dict[str, Any]:
        return {"buttons": [[label, "stop", None, ""]]}

    def _on_queued(self, e: ev.TurnQueued) -> None:
        self._ctl["head"] = (self._stop_spec("Cancel"), None)
        self._set_state(f"queued (position {e.position})", clock=False)
        self._set("foot", parts.foot(None, "queued", self.history))

    def _on_started(self, e: ev.TurnStarted) -> None:
        self._started = time.monotonic()
        self._ctl["head"] = (self._stop_spec("Stop"), None)
        self._set_state("working…", clock=True)
        self._set("head", self._head())  # now with the model's name
        self._set("foot", parts.foot(None, "running", self.history))

    def _on_phase(self, e: ev.Phase) -> None:
        if self._clock:
            self._set_state(str(e.text))

    def _on_waiting(self, e: ev.Waiting) -> None:
        what = "no more of the reply" if e.started else "no reply"
        self._waiting = f"{what} from {e.model} for {e.seconds:.0f} s — Stop, or keep waiting"
        self._set_state(self._state)

    def _first_output(self) -> None:
        if self._clock:
            self._set_state("answering…", clock=False)

    def _on_reasoning(self, e: ev.Reasoning) -> None:
        self._first_output()
        self._feed_reasoning(e.text)

    def _on_token(self, e: ev.Token) -> None:
        if self._answer is None:
            self._first_output()
        self._feed_answer(e.text)

    def _on_segment_end(self, e: ev.SegmentEnd) -> None:
        self._close_answer()

    def _on_tool(self, e: ev.ToolStarted) -> None:
        self._first_output()
        self._close_answer()
        self._tools[e.call_id] = self._new_part(parts.tool_card(e, None, running=True))

    def _on_tool_complete(self, e: ev.ToolCompleted) -> None:
        part, call = self._tools.pop(e.call_id, None), self._turn_state.tools[e.call_id]
        if part is not None and call.start is not None:
            self._set(part, parts.tool_card(call.start, call.end))

    def _on_approval(self, e: ev.ApprovalRequested) -> None:
        self._close_answer()
        part = self._new_part(parts.approval_card(e, None, pending=True))
        self._requests[e.request_id] = part
        self._targets[part] = ("approval", e.request_id)
        choices = ["once", "session"] + (["always"] if e.allow_permanent else []) + ["deny"]
        buttons = [[APPROVE_LABELS[c][0], "deny" if c == "deny" else "approve", c, APPROVE_LABELS[c][1]]
                   for c in choices]
        self._controls(part, {"buttons": buttons, "countdown": "denied automatically in {left}",
                              "attend": "your approval"},
                       time.monotonic() + e.timeout)

    def _on_approval_resolved(self, e: ev.ApprovalResolved) -> None:
        part = self._requests.pop(e.request_id, None)
        if part is not None:
            approval = self._turn_state.approvals[e.request_id]
            self._targets.pop(part, None)
            self._set(part, parts.approval_card(approval.asked, approval.decided))
            self._controls(part, None)

    def _on_clarify(self, e: ev.ClarifyRequested) -> None:
        self._close_answer()
        part = self._new_part(parts.clarify_card(e, None, pending=True))
        self._requests[e.request_id] = part
        self._targets[part] = ("clarify", e.request_id)
        # A choice goes to the browser as its label (redacted) and comes back as its index.
        buttons = [[redact_for_display(c), "choose", str(i), ""] for i, c in enumerate(e.choices)]
        self._controls(part, {"buttons": buttons, "input": "Or type an answer…", "attend": "your answer",
                              "countdown": "waiting for your answer ({left} left)"}, time.monotonic() + e.timeout)

    def _on_clarify_resolved(self, e: ev.ClarifyResolved) -> None:
        part = self._requests.pop(e.request_id, None)
        if part is not None:
            question = self._turn_state.questions[e.request_id]
            self._targets.pop(part, None)
            self._set(part, parts.clarify_card(question.asked, question.answered))
            self._controls(part, None)

    def _on_code_output(self, e: Any) -> None:
        """Output of the agent's code run in the kernel (notebook.outputs.CodeOutput)."""
        self._add_output(e.run_id, dict(e.output))

    def _notice(self) -> None:
        """The notice the event just added to the state (its words are the reducer's, as in the static rendering)."""
        block = self._turn_state.blocks[-1]
        assert isinstance(block, NoticeBlock)
        self._close_answer()
        self._new_part(parts.notice(block.text))

    def _on_status(self, e: ev.Status) -> None:
        self._notice()

    def _on_compressed(self, e: ev.Compressed) -> None:
        self._notice()

    def _on_cancelled(self, e: ev.Cancelled) -> None:
        self._notice()

    def _on_error(self, e: ev.Error) -> None:
        self._close_answer()
        self._new_part(parts.error_card(e))

    def _on_usage(self, e: ev.Usage) -> None:
        self._set("foot", parts.foot(self._turn_state.usage, "running", self.history))

    def _on_done(self, e: ev.Done) -> None:
        self._close_answer()
        self._fold_reasoning()
        self._settle_outputs()
        self._done = True
        hint = cells.hint_for(self.turn, e.text)  # as the static rendering has it: nothing moves when it replaces us
        if hint:
            self._new_part(parts.notice(hint))
        self._set("head", self._head())
        self._set("foot", parts.foot(self._turn_state.usage, self._turn_state.status, self.history))
        for part in list(self._ctl):
            self._controls(part, None)
        self._emit(["done"])
        self._flusher.now()
        if self.snapshots is not None:
            self.snapshots.close()
        if self.on_done is not None:
            self.on_done(self)  # the cell's output becomes the static rendering
            self.close()

    # ----- clicks (shell channel thread or main thread) -------------------------------------------
    def _act(self, message: dict[str, Any]) -> None:
        part, action, value = message.get("part"), message.get("action"), message.get("value")
        with self._lock:
            target = self._targets.get(str(part))
        try:
            if action == "stop":
                self.turn.cancel()
            elif target is None:
                return  # already answered: a late or repeated click
            elif action == "approve" and target[0] == "approval":
                self.turn.approve(str(value), target[1])
            elif action == "deny" and target[0] == "approval":
                self.turn.deny(target[1])
            elif action == "choose" and target[0] == "clarify":
                question = self.state.questions.get(target[1])
                if question is not None:
                    self.turn.answer(question.asked.choices[int(str(value))], target[1])
            elif action == "answer" and target[0] == "clarify" and str(value or "").strip():
                self.turn.answer(str(value).strip()[:ANSWER_LIMIT], target[1])
        except (NothingPending, ValueError, IndexError) as exc:
            with self._lock:
                if str(part) in self._targets and str(part) in self._ctl:
                    spec = {**self._ctl[str(part)][0], "note": str(exc)}
                    self._controls(str(part), spec, self._ctl[str(part)][1])

    # ----- the end --------------------------------------------------------------------------
    def close(self) -> None:
        """Close the widget once its output has been replaced, and let go of the turn's parts."""
        final = None
        if self._channel.reconnected:  # that page never saw the output replaced: it keeps the widget
            final = static.render_state(self.state, prompt=self.turn.prompt, session=self.turn.session.name,
                                        history=self.history)
        self._channel.close(final)
        with self._lock:
            self._forget()
            self._requests, self._tools, self._targets = {}, {}, {}
            self._turn_state, self._tokens = TurnState(), []
