"""The static rendering of a finished turn: what a saved notebook, nbconvert and GitHub show.

A pure function of the turn's events, with the live view's structure (parts.py)
and stylesheet, so the output does not move when the live view becomes it.
HTML for rich frontends (its <style> makes it look as the live view did; where
that is stripped, semantic tags carry it), plain text (the text view's
transcript) as the fallback.
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from hermes_jupyter import events as ev
from hermes_jupyter.notebook.outputs import CodeOutput
from hermes_jupyter.safety.redact import redact_for_display
from hermes_jupyter.views import assets, cells, parts, phrases
from hermes_jupyter.views.blocks import render_answer
from hermes_jupyter.views.text import TextView

if TYPE_CHECKING:
    from hermes_jupyter.engine import Turn

usage_line = parts.usage_line
tool_summary = parts.tool_summary

# A block of the static rendering: its kind and what it shows.
Segment: TypeAlias = (
    tuple[Literal["answer", "reasoning", "notice"], str]
    | tuple[Literal["code_output"], list[Mapping[str, Any]]]
    | tuple[Literal["tool"], tuple[ev.ToolStarted, ev.ToolCompleted | None]]
    | tuple[Literal["approval"], tuple[ev.ApprovalRequested, ev.ApprovalResolved | None]]
    | tuple[Literal["clarify"], tuple[ev.ClarifyRequested, ev.ClarifyResolved | None]]
    | tuple[Literal["error"], ev.Error]
)

# Events that end the answer being written (the live view closes its answer on the same ones).
ENDS_ANSWER = (ev.SegmentEnd, ev.ToolStarted, ev.ApprovalRequested, ev.ClarifyRequested,
               ev.Error, ev.Compressed, ev.Cancelled, ev.Status)


def segments(events: Iterable[ev.Event]) -> Iterator[Segment]:
    """The turn as an ordered list of blocks: ('answer', text), ('reasoning', text), ('tool', ...)..."""
    text: list[str] = []
    thinking: list[str] = []
    tool_ends: dict[str, ev.ToolCompleted] = {}
    approvals: dict[str, ev.ApprovalResolved] = {}
    answers: dict[str, ev.ClarifyResolved] = {}
    code: dict[str, list[Mapping[str, Any]]] = {}  # run id -> the outputs of the agent's code run in the kernel
    events = list(events)
    for e in events:
        if isinstance(e, ev.ToolCompleted):
            tool_ends[e.call_id] = e
        elif isinstance(e, ev.ApprovalResolved):
            approvals[e.request_id] = e
        elif isinstance(e, ev.ClarifyResolved):
            answers[e.request_id] = e
        elif isinstance(e, CodeOutput):
            code.setdefault(e.run_id, []).append(e.output)

    def flush() -> Iterator[Segment]:
        if thinking:
            yield "reasoning", "".join(thinking)
            thinking.clear()
        if text:
            yield "answer", "".join(text)
            text.clear()

    for e in events:
        if isinstance(e, CodeOutput):
            if e.run_id in code:  # one block per run, where its first output came
                yield from flush()
                yield "code_output", code.pop(e.run_id)
            continue
        if isinstance(e, ev.Reasoning):
            if text:
                yield from flush()
            thinking.append(e.text)
            continue
        if isinstance(e, ev.Token):
            if thinking:
                yield "reasoning", "".join(thinking)
                thinking.clear()
            text.append(e.text)
            continue
        if isinstance(e, ENDS_ANSWER):
            yield from flush()
        if isinstance(e, ev.ToolStarted):
            yield "tool", (e, tool_ends.get(e.call_id))
        elif isinstance(e, ev.ApprovalRequested):
            yield "approval", (e, approvals.get(e.request_id))
        elif isinstance(e, ev.ClarifyRequested):
            yield "clarify", (e, answers.get(e.request_id))
        elif isinstance(e, ev.Error):
            yield "error", e
        elif isinstance(e, (ev.Compressed, ev.Cancelled)):
            yield "notice", e.message
        elif isinstance(e, ev.Status):
            yield "notice", e.text if e.level == "info" else f"{e.level}: {e.text}"
    yield from flush()


def render_segment(segment: Segment) -> str:
    match segment:
        case ("code_output", outputs):
            return parts.outputs(outputs)
        case ("answer", text):
            return parts.answer(render_answer(text))
        case ("reasoning", text):
            return parts.reasoning(text)
        case ("tool", (start, end)):
            return parts.tool_card(start, end)
        case ("approval", (approval, decided)):
            return parts.approval_card(approval, decided)
        case ("clarify", (question, answered)):
            return parts.clarify_card(question, answered)
        case ("error", e):
            return parts.error_card(e)
        case ("notice", text):
            return parts.notice(text)


def render_html(events: list[ev.Event], *, prompt: str, session: str, history: str | None = None,
                hint: str | None = None, classes: str = "", status: str | None = None, root: str = "hermes-turn") -> str:
    started = next((e for e in events if isinstance(e, ev.TurnStarted)), None)
    usage = next((e for e in reversed(events) if isinstance(e, ev.Usage)), None)
    done = next((e for e in reversed(events) if isinstance(e, ev.Done)), None)
    body = "".join(render_segment(segment) for segment in segments(events))
    if hint:
        body += parts.notice(hint)
    css = assets.css(live=False) if root == "hermes-turn" else assets.css(live=False).replace(".hermes-turn", f".{root}")
    return (f'<div class="{root}{classes}"><style>{css}</style>'
            f"{parts.head(session, started.model if started else '', prompt, history=history)}{body}"
            f"{parts.foot(usage, status or (phrases.status_words(done.status) if done else 'running'), history)}"
            f"{parts.END}</div>")


def _merged(events: list[ev.Event]) -> Iterator[ev.Event]:
    """Consecutive tokens (and reasoning pieces) as one event each: the same transcript, far fewer calls."""
    run: list[ev.Token | ev.Reasoning] = []
    for e in [*events, None]:
        if run and (e is None or type(e) is not type(run[0])):
            first = run[0]
            joined = "".join(r.text for r in run)
            yield (ev.Token(joined, seq=first.seq, time=first.time) if isinstance(first, ev.Token)
                   else ev.Reasoning(joined, seq=first.seq, time=first.time))
            run = []
        if isinstance(e, (ev.Token, ev.Reasoning)):
            run.append(e)
        elif e is not None:
            yield e


def render_text(events: list[ev.Event], turn: Turn) -> str:
    out = io.StringIO()
    view = TextView(turn, out)
    for e in _merged(events):
        view(e)
    return out.getvalue()


def bundle(turn: Turn, history: str | None = None) -> dict[str, str]:
    events = turn.events
    # Where the answer has Python blocks, the command that makes them cells (README: "The agent's work as cells").
    hint = cells.hint_for(turn, turn.text) if turn.done else None
    return {
        "text/html": render_html(events, prompt=turn.prompt, session=turn.session.name, history=history, hint=hint),
        "text/plain": render_text(events, turn),  # the text view says it too
    }


def kept_in(turn_id: str, history: str | None) -> str:
    """Where a turn is kept once its view is gone, and the command that shows it again."""
    where = f"in {history}" if history else "in this kernel's history"
    return f"This turn is kept {where} (turn {turn_id}); %hermes /show {turn_id} shows it again."


def snapshot_class(turn_id: str) -> str:
    """The class of a turn's saved-so-far output: the live view hides it while it renders (loader.js)."""
    return f"hermes-snapshot-{turn_id}"


def snapshot_bundle(turn: Turn, history: str | None = None) -> dict[str, str]:
    """The turn as far as it went, for a notebook saved while it runs: its view is then a widget that a page
    without the kernel cannot draw ("model not found"), so this output, beside it, is what such a page shows."""
    events = turn.events
    note = f"Saved while the turn was running. {kept_in(turn.id, history)}"
    # Its own root class, with the same stylesheet: what finds a turn by `.hermes-turn` (a page's script,
    # a test) finds the live view or the final rendering, never this copy of it.
    html = render_html(events, prompt=turn.prompt, session=turn.session.name, history=history, hint=note,
                       classes=f" {snapshot_class(turn.id)}", status="saved while running", root="hermes-snapshot")
    return {
        "text/html": html,
        # (a segment's end: the text view writes out what it holds back until then)
        "text/plain": (f"> {' '.join(redact_for_display(turn.prompt).split())[:200]}\n"
                       f"{render_text([*events, ev.SegmentEnd()], turn).rstrip()}\n-- {note}\n"),
    }
