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
from hermes_jupyter.views import assets, cells, parts
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
                hint: str | None = None) -> str:
    return render_state(fold(events), prompt=prompt, session=session, history=history, hint=hint)


def render_state(state: TurnState, *, prompt: str, session: str, history: str | None = None,
                 hint: str | None = None) -> str:
    """The static HTML of a turn in ``state``: what its live view has become once it ends."""
    body = "".join(render_segment(segment) for segment in state_segments(state))
    if hint:
        body += parts.notice(hint)
    return (f'<div class="hermes-turn"><style>{assets.css(live=False)}</style>'
            f"{parts.head(session, state.model, prompt, history=history)}{body}"
            f"{parts.foot(state.usage, state.status, history)}{parts.END}</div>")


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
