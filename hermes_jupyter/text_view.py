"""Plain-text rendering of a turn, for terminal IPython, nbclient/papermill/nbval and --plain.

A subscriber: it turns events into readable lines on a stream. It acts on the
turn only through its handle (approve/answer), and only when the magic asks it
to prompt on the main thread, where input() is safe.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, TextIO

from . import events as ev
from .engine import ApprovalRequest, ClarifyRequest, NothingPending, Turn

NO_STDIN = "nobody can answer in this run"


def _args(args: dict[str, str]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


class TextView:
    def __init__(self, turn: Turn, stream: TextIO | None = None, *, label: str = ""):
        self.turn = turn
        self.stream = stream
        self.label = label
        self._mid_line = False
        self._in_reasoning = False
        self._prompted: set[str] = set()

    # ----- rendering (dispatcher thread) ----------------------------------------------------
    def __call__(self, event: ev.Event) -> None:
        render = getattr(self, f"_on_{event.kind}", None)
        if render is not None:
            render(event)

    def _write(self, text: str) -> None:
        out = self.stream or sys.stdout  # resolved late: the kernel's stream for this cell
        out.write(text)
        out.flush()

    def _line(self, text: str) -> None:
        if self._mid_line:
            self._write("\n")
            self._mid_line = False
        self._write(text + "\n")

    def _on_queued(self, e: ev.TurnQueued) -> None:
        self._line(f"[hermes] queued behind the running turn (position {e.position}); "
                   f"cancel with {self.label or 'the handle'}.cancel() or `%hermes /stop`")

    def _on_started(self, e: ev.TurnStarted) -> None:
        self._line(f"[hermes] session {e.session!r} · model {e.model}")

    def _on_reasoning(self, e: ev.Reasoning) -> None:
        if not self._in_reasoning:
            self._line("(thinking) " + e.text.replace("\n", " "))
            self._in_reasoning = True
            self._mid_line = True
        else:
            self._write(e.text.replace("\n", " "))

    def _on_token(self, e: ev.Token) -> None:
        if self._in_reasoning:
            self._line("")
            self._in_reasoning = False
        self._write(e.text)
        self._mid_line = not e.text.endswith("\n")

    def _on_segment_end(self, e: ev.SegmentEnd) -> None:
        self._in_reasoning = False
        if self._mid_line:
            self._line("")

    def _on_tool(self, e: ev.ToolStarted) -> None:
        self._in_reasoning = False
        self._line(f"> {e.name}({_args(e.args)})")

    def _on_tool_complete(self, e: ev.ToolCompleted) -> None:
        mark = "failed" if e.is_error else "done"
        first = e.result.splitlines()[0] if e.result else ""
        more = " …" if e.result and len(e.result.splitlines()) > 1 else ""
        self._line(f"  {mark} in {e.duration:.1f}s: {first}{more}")

    def _on_approval(self, e: ev.ApprovalRequested) -> None:
        self._line(f"[approval needed] {e.description}\n    $ {e.command}")
        if self.turn.config is not None and self.turn.config.approvals == "ask":
            self._line(f"    answer with {self.label or 'turn'}.approve('once'|'session'"
                       f"{'|always' if e.allow_permanent else ''}) or .deny(); "
                       f"denied in {e.timeout:.0f}s if unanswered")

    def _on_approval_resolved(self, e: ev.ApprovalResolved) -> None:
        verb = "denied" if e.choice == "deny" else f"allowed ({e.choice})"
        why = {"user": "by you", "policy": f"by the approval policy '{self._policy()}'",
               "timeout": "because nobody answered in time", "cancel": "because the turn was stopped",
               "nobody": f"because {NO_STDIN} (policy 'ask')"}.get(e.by, e.by)
        self._line(f"    -> {verb} {why}")

    def _on_clarify(self, e: ev.ClarifyRequested) -> None:
        choices = f" [{' / '.join(e.choices)}]" if e.choices else ""
        self._line(f"[question] {e.question}{choices}")

    def _on_clarify_resolved(self, e: ev.ClarifyResolved) -> None:
        if e.answer is not None:
            self._line(f"    -> answered: {e.answer}")
        else:
            why = {"timeout": "nobody answered in time", "cancel": "the turn was stopped",
                   "nobody": NO_STDIN}.get(e.by, "no answer")
            self._line(f"    -> no answer ({why}); the agent will choose")

    def _on_status(self, e: ev.Status) -> None:
        self._line(f"[{e.level}] {e.text}")

    def _on_compressed(self, e: ev.Compressed) -> None:
        self._line(f"[hermes] {e.message}")

    def _on_error(self, e: ev.Error) -> None:
        self._line(f"[error: {e.error_kind}] {e.message}\n  hint: {e.hint}")

    def _on_cancelled(self, e: ev.Cancelled) -> None:
        self._line(f"[hermes] {e.message}")

    def _on_usage(self, e: ev.Usage) -> None:
        self._usage = e

    def _on_done(self, e: ev.Done) -> None:
        usage = getattr(self, "_usage", None)
        parts = [e.status]
        if usage is not None:
            parts.append(f"{usage.input_tokens} in / {usage.output_tokens} out tokens")
            if usage.cost_usd:
                parts.append(f"${usage.cost_usd:.4f}")
            if usage.context_length:
                parts.append(f"context {usage.last_prompt_tokens / usage.context_length:.0%} "
                             f"of {usage.context_length:,}")
        self._line("-- " + " · ".join(parts))

    def _policy(self) -> str:
        return self.turn.config.approvals if self.turn.config is not None else "ask"

    # ----- prompting (main thread, while the magic waits) -----------------------------------
    def prompt_pending(self, ask: Callable[[str], str] = input) -> None:
        """Ask the user for each open request with input(); if there is no stdin, nobody can answer."""
        for request in self.turn.pending_approvals + self.turn.pending_questions:
            if request.request_id in self._prompted:
                continue
            self._prompted.add(request.request_id)
            try:
                if isinstance(request, ApprovalRequest):
                    self._ask_approval(request, ask)
                else:
                    self._ask_clarify(request, ask)
            except NothingPending:
                pass  # answered elsewhere (a button, the handle, a timeout) meanwhile

    def _ask_approval(self, request: ApprovalRequest, ask: Callable[[str], str]) -> None:
        options = "once/session/always/deny" if request.allow_permanent else "once/session/deny"
        reply = _ask(ask, f"Allow `{request.command}`? [{options}] (default deny): ")
        if reply is None:
            self.turn._answer_approval("deny", request.request_id, by="nobody")
            return
        reply = reply.strip().lower() or "deny"
        choice = {"o": "once", "y": "once", "yes": "once", "s": "session", "a": "always",
                  "d": "deny", "n": "deny", "no": "deny"}.get(reply, reply)
        try:
            self.turn.approve(choice, request.request_id)
        except ValueError as exc:
            self._line(f"    ({exc}; denied)")
            self.turn.deny(request.request_id)

    def _ask_clarify(self, request: ClarifyRequest, ask: Callable[[str], str]) -> None:
        if request.choices:
            for i, choice in enumerate(request.choices, 1):
                self._line(f"    {i}. {choice}")
        reply = _ask(ask, "Your answer (number or text): ")
        if reply is None:
            self.turn.answer(None, request.request_id, by="nobody")
            return
        reply = reply.strip()
        if reply.isdigit() and 1 <= int(reply) <= len(request.choices):
            reply = request.choices[int(reply) - 1]
        self.turn.answer(reply or None, request.request_id)


def _ask(ask: Callable[[str], str], prompt: str) -> str | None:
    try:
        return ask(prompt)
    except (EOFError, OSError, RuntimeError):
        return None
    except Exception as exc:  # ipykernel's StdinNotImplementedError when the frontend has no stdin
        if type(exc).__name__ == "StdinNotImplementedError":
            return None
        raise


def attach(turn: Turn, label: str = "", stream: Any = None) -> TextView:
    view = TextView(turn, stream, label=label)
    turn.subscribe(view)
    return view
