"""A session as a readable document: Markdown, or HTML built from it. Redacted like the history."""
from __future__ import annotations

import html as _html
from typing import Any

from hermes_jupyter.safety.markdown import render_markdown
from hermes_jupyter.safety.redact import configured_secret_values, redact_obj
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
    prompt = str(turn.get("prompt") or "")
    lines = [f"## {number}. {prompt.splitlines()[0][:80] if prompt else '(empty prompt)'}", "", _quote(prompt), ""]
    if turn.get("reasoning"):
        lines += ["*Reasoning*", "", _quote(turn["reasoning"]), ""]
    for tool in turn.get("tools") or []:
        args = ", ".join(f"{k}={v!r}" for k, v in (tool.get("args") or {}).items())
        state = "failed" if tool.get("is_error") else "done"
        took = f" in {tool['duration']:.1f}s" if isinstance(tool.get("duration"), (int, float)) else ""
        lines.append(f"- tool {_code(tool.get('name'))} {_code(args)}: {state}{took}: {_code(tool.get('snippet', ''))}")
    for item in turn.get("approvals") or []:
        verdict = "denied" if item.get("choice") == "deny" else f"allowed {item.get('choice')}"
        lines.append(f"- approval {_code(reveal(str(item.get('command'))))} ({item.get('description')}): "
                     f"**{verdict}** ({BY.get(item.get('by'), item.get('by'))})")
    for item in turn.get("clarify") or []:
        answer = item.get("answer") or f"no answer ({BY.get(item.get('by'), 'none')})"
        lines.append(f"- question: {item.get('question')} → **{answer}**")
    if turn.get("tools") or turn.get("approvals") or turn.get("clarify"):
        lines.append("")
    if turn.get("answer"):
        lines += [str(turn["answer"]), ""]
    error = turn.get("error")
    if error:
        lines += [f"**Error ({error.get('kind')})**: {error.get('message')}  ", f"*What to do*: {error.get('hint')}", ""]
    usage = turn.get("usage") or {}
    lines += [(f"*{status_words(str(turn.get('status', '')))} · {turn.get('model', '')} · "
               f"{usage.get('input_tokens', 0)} in / {usage.get('output_tokens', 0)} out tokens*"), ""]
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
