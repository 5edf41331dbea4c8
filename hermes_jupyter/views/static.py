"""The static rendering of a finished turn: what a saved notebook, nbconvert and GitHub show.

A pure function of the turn's events, so the live view's final state, the
saved output and tests all agree. HTML for rich frontends, plain text (the
text view's transcript) as the fallback.
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from hermes_jupyter import events as ev
from hermes_jupyter.notebook.outputs import CodeOutput, outputs_html
from hermes_jupyter.safety.markdown import escape, render_markdown
from hermes_jupyter.safety.redact import redact_for_display
from hermes_jupyter.views.text import TextView

if TYPE_CHECKING:
    from hermes_jupyter.engine import Turn

BOX = ("border:1px solid var(--jp-border-color2,#d0d7de);border-radius:6px;padding:6px 12px;"
       "margin:4px 0;font-size:var(--jp-content-font-size1,14px)")
MUTED = "color:var(--jp-ui-font-color2,#57606a);font-size:12px"
CODE = "font-family:var(--jp-code-font-family,monospace);"  # JupyterLab's CSS makes <pre> inherit the text font
CARD = ("border-left:3px solid {color};padding:2px 8px;margin:6px 0;"
        "background:var(--jp-layout-color2,#f6f8fa)")
COLORS = {"ok": "#2da44e", "error": "#cf222e", "warn": "#bf8700", "info": "#0969da", "muted": "#8c959f"}
BY = {"user": "by you", "policy": "by the approval policy", "timeout": "nobody answered in time",
      "cancel": "the turn was stopped", "nobody": "nobody can answer in this run"}


# A block of the static rendering: its kind and what it shows.
Segment: TypeAlias = (
    tuple[Literal["answer", "reasoning", "notice"], str]
    | tuple[Literal["code_output"], list[Mapping[str, Any]]]
    | tuple[Literal["tool"], tuple[ev.ToolStarted, ev.ToolCompleted | None]]
    | tuple[Literal["approval"], tuple[ev.ApprovalRequested, ev.ApprovalResolved | None]]
    | tuple[Literal["clarify"], tuple[ev.ClarifyRequested, ev.ClarifyResolved | None]]
    | tuple[Literal["error"], ev.Error]
)


def args_text(args: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def tool_summary(start: ev.ToolStarted, end: ev.ToolCompleted | None, running: bool = False) -> str:
    if end is None:
        state = "running…" if running else "did not finish"
    else:
        state = f"{'failed' if end.is_error else 'done'} · {end.duration:.1f}s"
    mark = "✗" if end is not None and end.is_error else ("✓" if end is not None else "…")
    return f"{mark} <b>{escape(start.name)}</b> <code>{escape(args_text(start.args))}</code> · {state}"


def approval_line(req: ev.ApprovalRequested, res: ev.ApprovalResolved | None) -> str:
    if res is None:
        decision = "no decision"
    elif res.choice == "deny":
        decision = f"<b>denied</b> ({BY.get(res.by, res.by)})"
    else:
        decision = f"<b>allowed {escape(res.choice)}</b> ({BY.get(res.by, res.by)})"
    return (f"⚠ Approval: {escape(req.description)}<pre style='{CODE}margin:2px 0'>{escape(req.command)}</pre>"
            f"→ {decision}")


def clarify_line(req: ev.ClarifyRequested, res: ev.ClarifyResolved | None) -> str:
    choices = f" <span style='{MUTED}'>({escape(' / '.join(req.choices))})</span>" if req.choices else ""
    if res is not None and res.answer is not None:
        answer = f"<b>{escape(res.answer)}</b>"
    else:
        answer = f"no answer ({BY.get(res.by, 'none') if res else 'none'})"
    return f"? {escape(req.question)}{choices} → {answer}"


def usage_line(usage: ev.Usage | None, status: str, history: str | None) -> str:
    parts = [escape(status)]
    if usage is not None:
        parts.append(escape(usage.model))
        parts.append(f"{usage.input_tokens:,} in / {usage.output_tokens:,} out tokens")
        if usage.cost_usd:
            parts.append(f"${usage.cost_usd:.4f}")
        if usage.context_length:
            parts.append(context_bar(usage))
    if history:
        parts.append(f"history: <code>{escape(history)}</code>")
    return " · ".join(parts)


def context_bar(usage: ev.Usage) -> str:
    used = min(1.0, usage.last_prompt_tokens / usage.context_length)
    threshold = usage.threshold_tokens / usage.context_length if usage.threshold_tokens else 0
    marker = (f"<span style='position:absolute;left:{threshold:.0%};top:-2px;height:10px;"
              f"border-left:2px solid {COLORS['warn']}' title='compression threshold'></span>"
              if threshold else "")
    return (f"<span title='context window: {usage.last_prompt_tokens:,} of {usage.context_length:,} tokens'>"
            f"context <span style='display:inline-block;position:relative;width:80px;height:6px;"
            f"background:var(--jp-layout-color3,#d0d7de);border-radius:3px;vertical-align:middle'>"
            f"<span style='display:block;width:{used:.0%};height:6px;background:{COLORS['info']};"
            f"border-radius:3px'></span>{marker}</span> {used:.0%}</span>")


def card(body: str, kind: str) -> str:
    return f"<div style='{CARD.format(color=COLORS[kind])}'>{body}</div>"


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
        if isinstance(e, (ev.SegmentEnd, ev.ToolStarted, ev.ApprovalRequested, ev.ClarifyRequested,
                          ev.Error, ev.Compressed, ev.Cancelled, ev.Status)):
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
            yield "notice", f"{e.level}: {e.text}"
    yield from flush()


def render_block(segment: Segment) -> str:
    match segment:
        case ("code_output", outputs):
            return outputs_html(outputs)
        case ("answer", text):
            return f"<div class='hermes-answer'>{render_markdown(redact_for_display(text))}</div>"
        case ("reasoning", text):
            return (f"<details style='{MUTED}'><summary>Reasoning</summary>"
                    f"<div style='white-space:pre-wrap'>{escape(redact_for_display(text))}</div></details>")
        case ("tool", (start, end)):
            result = f"<pre style='{CODE}white-space:pre-wrap;margin:2px 0'>{escape(end.result)}</pre>" if end else ""
            color = "error" if end is not None and end.is_error else "muted"
            return card(f"<details><summary>{tool_summary(start, end)}</summary>{result}</details>", color)
        case ("approval", (approval, decided)):
            return card(approval_line(approval, decided),
                        "ok" if decided is not None and decided.choice != "deny" else "warn")
        case ("clarify", (question, answered)):
            return card(redact_for_display(clarify_line(question, answered)), "info")
        case ("error", e):
            return card(f"<b>Error ({escape(e.error_kind)})</b>: {escape(redact_for_display(e.message))}<br>"
                        f"<span style='{MUTED}'>What to do: {escape(e.hint)}</span>", "error")
        case ("notice", text):
            return f"<div style='{MUTED}'>{escape(text)}</div>"


def render_html(events: list[ev.Event], *, prompt: str, session: str, history: str | None = None) -> str:
    started = next((e for e in events if isinstance(e, ev.TurnStarted)), None)
    usage = next((e for e in reversed(events) if isinstance(e, ev.Usage)), None)
    done = next((e for e in reversed(events) if isinstance(e, ev.Done)), None)
    model = f" · {escape(started.model)}" if started else ""
    head = (f"<div style='{MUTED}'>Hermes · session {escape(session)}{model}</div>"
            f"<div style='font-weight:600;margin:2px 0 4px;white-space:pre-wrap'>"
            f"{escape(redact_for_display(prompt))}</div>")
    body = "".join(render_block(segment) for segment in segments(events))
    foot = f"<div style='{MUTED};margin-top:4px'>{usage_line(usage, done.status if done else 'running', history)}</div>"
    return f"<div class='hermes-turn' style='{BOX}'>{head}{body}{foot}</div>"


def render_text(events: list[ev.Event], turn: Turn) -> str:
    out = io.StringIO()
    view = TextView(turn, out)
    for e in events:
        view(e)
    return out.getvalue()


def bundle(turn: Turn, history: str | None = None) -> dict[str, str]:
    events = turn.events
    return {
        "text/html": render_html(events, prompt=turn.prompt, session=turn.session.name, history=history),
        "text/plain": render_text(events, turn),
    }
