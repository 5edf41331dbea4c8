"""The static rendering of a finished turn: what a saved notebook, nbconvert and GitHub show.

A pure function of the turn's state (state.py: its events folded), with the live view's structure (parts.py)
and stylesheet, so the output does not move when the live view becomes it.
HTML for rich frontends (its <style> makes it look as the live view did; where
that is stripped, semantic tags carry it), plain text (the text view's
transcript) as the fallback.
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, assert_never

from hermes_jupyter import events as ev
from hermes_jupyter.safety.redact import redact_for_display
from hermes_jupyter.state import (
    AnswerBlock,
    ApprovalBlock,
    ClarifyBlock,
    ErrorBlock,
    NoticeBlock,
    OutputBlock,
    ReasoningBlock,
    ToolBlock,
    TurnState,
    coalesced,
    fold,
)
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

def segments(events: Iterable[ev.Event]) -> Iterator[Segment]:
    """The turn as an ordered list of blocks: ('answer', text), ('reasoning', text), ('tool', ...)..."""
    return state_segments(fold(events))


def state_segments(state: TurnState) -> Iterator[Segment]:
    """A turn's blocks as the static rendering draws them (each request with its resolution, if any)."""
    for block in state.blocks:
        match block:
            case AnswerBlock(text=text):
                yield "answer", text
            case ReasoningBlock(text=text):
                yield "reasoning", text
            case ToolBlock(call_id=call_id):
                call = state.tools[call_id]
                if call.start is not None:
                    yield "tool", (call.start, call.end)
            case ApprovalBlock(request_id=request_id):
                approval = state.approvals[request_id]
                yield "approval", (approval.asked, approval.decided)
            case ClarifyBlock(request_id=request_id):
                question = state.questions[request_id]
                yield "clarify", (question.asked, question.answered)
            case OutputBlock(run_id=run_id):
                yield "code_output", list(state.outputs[run_id])
            case ErrorBlock(error=error):
                yield "error", error
            case NoticeBlock(text=text):
                yield "notice", text
            case _:
                assert_never(block)


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
    return render_state(fold(events), prompt=prompt, session=session, history=history, hint=hint, classes=classes,
                        status=status, root=root)


def render_state(state: TurnState, *, prompt: str, session: str, history: str | None = None, hint: str | None = None,
                 classes: str = "", status: str | None = None, root: str = "hermes-turn") -> str:
    """The static HTML of a turn in ``state``: what its live view has become once it ends (``status`` says
    otherwise, e.g. for the turn so far saved while it runs)."""
    body = "".join(render_segment(segment) for segment in state_segments(state))
    if hint:
        body += parts.notice(hint)
    css = assets.css(live=False) if root == "hermes-turn" else assets.css(live=False).replace(".hermes-turn", f".{root}")
    return (f'<div class="{root}{classes}"><style>{css}</style>'
            f"{parts.head(session, state.model, prompt, history=history)}{body}"
            f"{parts.foot(state.usage, status or phrases.status_words(state.status), history)}"
            f"{parts.END}</div>")


def render_text(events: list[ev.Event], turn: Turn) -> str:
    out = io.StringIO()
    view = TextView(turn, out)
    for e in coalesced(events):  # the same transcript, far fewer calls
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
