"""Plain-text rendering of a turn, for terminal IPython, nbclient/papermill/nbval and --plain.

A subscriber: it turns events into readable lines on a stream, and never acts on the turn.
"""
from __future__ import annotations

import sys
from typing import Any, TextIO

from hermes_jupyter import events as ev
from hermes_jupyter.engine import Turn
from hermes_jupyter.safety.redact import StreamRedactor, redact_for_display
from hermes_jupyter.state import TurnState, reduce
from hermes_jupyter.util.text import reveal
from hermes_jupyter.views import cells, toolargs
from hermes_jupyter.views.phrases import BY, because


class TextView:
    def __init__(self, turn: Turn, stream: TextIO | None = None, *, label: str = "", blocking: bool = False):
        self.turn = turn
        self.stream = stream
        self.label = label
        self.blocking = blocking  # the cell waits for the turn: no code can be typed, only Ctrl-C and the prompt's answers
        self._mid_line = False
        self._in_reasoning = False
        self._thinking_shown = False
        # Reasoning streams in pieces like the answer: a secret split across two of them is still one secret.
        self._reasoning = StreamRedactor()
        self._answer = StreamRedactor()
        # The turn so far, from the one reducer (a run of tokens reduces as one): its last line is drawn from it.
        self._state = TurnState(prompt=turn.prompt)
        self._tokens: list[str] = []

    # ----- rendering (dispatcher thread) ----------------------------------------------------
    def __call__(self, event: ev.Event) -> None:
        if type(event) is ev.Token:
            self._tokens.append(event.text)
        else:
            self._state = reduce(self.state, event)
        render = getattr(self, f"_on_{event.kind}", None)
        if render is not None:
            render(event)

    @property
    def state(self) -> TurnState:
        """The turn as this view has seen it (its events folded by state.reduce)."""
        if self._tokens:
            self._state = reduce(self._state, ev.Token("".join(self._tokens)))
            self._tokens.clear()
        return self._state

    def _write(self, text: str) -> None:
        out = self.stream or sys.stdout  # resolved late: the kernel's stream for this cell
        out.write(text)
        # A kernel's OutStream batches writes itself (every 0.2 s); flushing per token would send
        # a message per token. A terminal needs the flush to show a partial line.
        if type(out).__name__ != "OutStream":
            out.flush()

    def _end_line(self) -> None:
        """Write out any held reasoning or answer text and finish the current line."""
        if self._in_reasoning:
            self._show_reasoning(self._reasoning.flush())
            self._in_reasoning = False
        held = self._answer.flush()
        if held:
            self._write(held)
            self._mid_line = not held.endswith("\n")
        if self._mid_line:
            self._write("\n")
            self._mid_line = False

    def _line(self, text: str) -> None:
        self._end_line()
        self._write(text + "\n")

    def _on_queued(self, e: ev.TurnQueued) -> None:
        self._line(f"[hermes] queued behind the running turn (position {e.position}); "
                   f"cancel with {self.label or 'the handle'}.cancel() or `%hermes /stop`")

    def _on_started(self, e: ev.TurnStarted) -> None:
        self._line(f"[hermes] session {e.session!r} · model {e.model}")

    def _on_reasoning(self, e: ev.Reasoning) -> None:
        if not self._in_reasoning:
            self._end_line()
            self._in_reasoning = True
            self._thinking_shown = False
        self._show_reasoning(self._reasoning.feed(e.text))

    def _show_reasoning(self, text: str) -> None:
        # Shown on one line; its newlines go only after redaction, whose line rules ("password: x") need them.
        text = text.replace("\n", " ")
        if not text:
            return
        if not self._thinking_shown:
            text = "(thinking) " + text.lstrip()
            self._thinking_shown = True
        self._write(text)
        self._mid_line = True

    def _on_token(self, e: ev.Token) -> None:
        if self._in_reasoning:
            self._end_line()
        ready = self._answer.feed(e.text)
        if ready:
            self._write(ready)
            self._mid_line = not ready.endswith("\n")

    def _on_segment_end(self, e: ev.SegmentEnd) -> None:
        self._end_line()

    def _on_tool(self, e: ev.ToolStarted) -> None:
        inline, blocks = toolargs.text_lines(toolargs.read_args(e.args))  # code as its lines, lists as lists
        self._line("\n".join([f"> {e.name}{' ' + inline if inline else ''}", *blocks]))

    def _on_tool_complete(self, e: ev.ToolCompleted) -> None:
        mark = "failed" if e.is_error else "done"
        first = e.result.splitlines()[0] if e.result else ""
        more = " …" if e.result and len(e.result.splitlines()) > 1 else ""
        self._line(f"  {mark} in {e.duration:.1f}s: {first}{more}")

    def _on_approval(self, e: ev.ApprovalRequested) -> None:
        command = reveal(e.command.rstrip("\n")).replace("\n", "\n      ")  # code: every line under the "$"
        self._line(f"[approval needed] {e.description}\n    $ {command}")
        if self.label and not self.blocking and self.turn.config is not None and self.turn.config.approvals == "ask":
            choices = "'once'|'session'" + ("|'always'" if e.allow_permanent else "")
            self._line(f"    answer with {self.label}.approve({choices}) or {self.label}.deny(), "
                       f"or %hermes /approve; denied in {e.timeout:.0f}s if unanswered")

    def _on_approval_resolved(self, e: ev.ApprovalResolved) -> None:
        verb = "denied" if e.choice == "deny" else f"allowed ({e.choice})"
        why = because(e.by, self._policy()) + (" (policy 'ask')" if e.by == "nobody" else "")
        self._line(f"    -> {verb} {why}")

    def _on_clarify(self, e: ev.ClarifyRequested) -> None:
        choices = f" [{' / '.join(e.choices)}]" if e.choices else ""
        self._line(redact_for_display(f"[question] {e.question}{choices}"))

    def _on_clarify_resolved(self, e: ev.ClarifyResolved) -> None:
        if e.answer is not None:
            self._line(redact_for_display(f"    -> answered: {e.answer}"))
        else:
            why = f" ({BY[e.by]})" if e.by in ("timeout", "cancel", "nobody") else " given"  # not "no answer (no answer)"
            self._line(f"    -> no answer{why}; the agent will choose")

    def _on_code_output(self, e: Any) -> None:
        """Output of the agent's code in the kernel: printed text as it came, a display per line."""
        from hermes_jupyter.notebook.outputs import output_text

        text = output_text(e.output)
        if not text:
            return
        if e.output.get("output_type") != "stream":
            self._line(text.rstrip("\n"))
            return
        if getattr(self, "_stream_seq", -1) != e.seq - 1:  # not the continuation of printed text
            self._end_line()
        self._write(text)
        self._mid_line = not text.endswith("\n")
        self._stream_seq = e.seq

    def _on_status(self, e: ev.Status) -> None:
        self._line(f"[{'hermes' if e.level == 'info' else e.level}] {e.text}")

    def _on_waiting(self, e: ev.Waiting) -> None:
        what = "no more of the reply" if e.started else "no reply"
        stop = ("an interrupt of the kernel (Ctrl-C in a terminal)" if self.blocking
                else f"{self.label}.cancel()" if self.label else "`%hermes /stop`")
        limit = f" (the turn gives up at {e.limit:.0f} s)" if e.limit else ""
        self._line(f"[hermes] {what} from {e.model} for {e.seconds:.0f} s — stop with {stop}, or keep waiting{limit}")

    def _on_compressed(self, e: ev.Compressed) -> None:
        self._line(f"[hermes] {e.message}")

    def _on_error(self, e: ev.Error) -> None:
        self._line(redact_for_display(f"[error: {e.error_kind}] {e.message}") + f"\n  hint: {e.hint}")

    def _on_cancelled(self, e: ev.Cancelled) -> None:
        self._line(f"[hermes] {e.message}")

    def _on_usage(self, e: ev.Usage) -> None:
        """Nothing to print yet: the last line says the usage (from the state)."""

    def _on_done(self, e: ev.Done) -> None:
        usage = self.state.usage
        parts = [self.state.status]
        if usage is not None:
            parts.append(f"{usage.input_tokens} in / {usage.output_tokens} out tokens" if usage.reported
                         else "usage not reported")
            if usage.cost_usd:
                parts.append(f"${usage.cost_usd:.4f}")
            if usage.context_length and usage.reported:
                parts.append(f"context {usage.last_prompt_tokens / usage.context_length:.0%} "
                             f"of {usage.context_length:,}")
        self._line("-- " + " · ".join(parts))
        hint = cells.hint_for(self.turn, e.text)  # the command that makes the answer's Python blocks cells
        if hint:
            self._line(hint)

    def _policy(self) -> str:
        return self.turn.config.approvals if self.turn.config is not None else "ask"

def attach(turn: Turn, label: str = "", stream: Any = None, *, blocking: bool = False) -> TextView:
    view = TextView(turn, stream, label=label, blocking=blocking)
    turn.subscribe(view)
    return view
