"""A session as a readable document: Markdown, or HTML built from it. Redacted like the history."""
from __future__ import annotations

import html as _html
from typing import Any

from hermes_jupyter.history.records import record_state
from hermes_jupyter.safety.markdown import render_markdown
from hermes_jupyter.safety.redact import configured_secret_values, redact_obj
from hermes_jupyter.state import TurnState
from hermes_jupyter.util.text import reveal
from hermes_jupyter.views.phrases import BY_AFTERWARDS as BY
from hermes_jupyter.views.phrases import status_words


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in str(text).splitlines()) or ">"


def _code(text: Any) -> str:
    text = str(text).replace("\n", " ")
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}"


def turn_markdown(number: int, turn: dict[str, Any]) -> str:
    return state_markdown(number, record_state(turn))


def state_markdown(number: int, state: TurnState) -> str:
    """One turn as Markdown: what its record keeps (the export reads turns from the history)."""
    prompt = state.prompt
    lines = [f"## {number}. {prompt.splitlines()[0][:80] if prompt else '(empty prompt)'}", "", _quote(prompt), ""]
    if state.reasoning:
        lines += ["*Reasoning*", "", _quote(state.reasoning), ""]
    for tool in state.tools.values():
        args = ", ".join(f"{k}={v!r}" for k, v in (tool.start.args if tool.start else {}).items())
        outcome = "failed" if tool.end and tool.end.is_error else "done"
        took = f" in {tool.end.duration:.1f}s" if tool.end else ""
        lines.append(f"- tool {_code(tool.name)} {_code(args)}: {outcome}{took}: "
                     f"{_code(tool.end.result if tool.end else '')}")
    for approval in state.approvals.values():
        choice, by = (approval.decided.choice, approval.decided.by) if approval.decided else (None, None)
        verdict = "denied" if choice == "deny" else f"allowed {choice}"
        lines.append(f"- approval {_code(reveal(approval.asked.command))} ({approval.asked.description}): "
                     f"**{verdict}** ({BY.get(by or '', by)})")
    for question in state.questions.values():
        answer, by = (question.answered.answer, question.answered.by) if question.answered else (None, "")
        answer = answer or f"no answer ({BY.get(by, 'none')})"
        lines.append(f"- question: {question.asked.question} → **{answer}**")
    if state.tools or state.approvals or state.questions:
        lines.append("")
    if state.answer:
        lines += [state.answer, ""]
    error = state.error
    if error:
        lines += [f"**Error ({error.error_kind})**: {error.message}  ", f"*What to do*: {error.hint}", ""]
    usage = state.usage
    lines += [(f"*{status_words(state.status)} · {state.last_model} · "
               f"{usage.input_tokens if usage else 0} in / {usage.output_tokens if usage else 0} out tokens*"), ""]
    return "\n".join(lines)


def session_markdown(session: Any) -> str:
    record = redact_obj(session.record(), extra_secrets=configured_secret_values())
    turns = record.get("turns") or []
    title = record.get("title") or next((t.get("prompt") for t in turns if t.get("prompt")), "") or session.name
    usage = record.get("usage") or {}
    head = [f"# {str(title).splitlines()[0][:80]}", "",
            (f"*Hermes session `{session.name}` · {len(turns)} turns · "
             f"{usage.get('input_tokens', 0)} in / {usage.get('output_tokens', 0)} out tokens*"), ""]
    return "\n".join(head) + "\n".join(turn_markdown(i, t) for i, t in enumerate(turns, 1))


def session_html(session: Any) -> str:
    body = render_markdown(session_markdown(session))  # safe: raw HTML off, links checked, nh3
    title = _html.escape(session.name)
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>Hermes session {title}</title><style>body{{font-family:sans-serif;max-width:52rem;"
            "margin:2rem auto;line-height:1.5}blockquote{color:#444;border-left:3px solid #ccc;"
            "margin-left:0;padding-left:1rem}code{background:#f3f3f3}</style></head>"
            f"<body>{body}</body></html>")
