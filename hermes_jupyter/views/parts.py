"""The HTML of each part of a turn, shared by the live view and the static rendering.

One structure for both, styled by one stylesheet (assets/turn.css) through
class names. It is also semantic HTML that reads well where styles are
stripped (an untrusted notebook, GitHub): muted text is <small>, a tool call
is a <details> fold, a request or an error is a <blockquote>, the context
window is a <meter>. Every piece of model, tool or user text is escaped here
or rendered by the safe Markdown renderer; nothing else goes in.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from hermes_jupyter import events as ev
from hermes_jupyter.notebook.outputs import output_html, visible
from hermes_jupyter.safety.markdown import escape
from hermes_jupyter.safety.redact import redact_for_display
from hermes_jupyter.util.text import reveal
from hermes_jupyter.views import toolargs
from hermes_jupyter.views.phrases import BY


def text_lines(text: str) -> str:
    """Escaped text whose line breaks survive without styles."""
    return escape(text).replace("\n", "<br>")


# ----- the frame: head and foot ------------------------------------------------------------

def head(session: str, model: str, prompt: str, state: str | None = None, *, history: str | None = None,
         live: bool = False) -> str:
    """Who answers and what was asked; `state` (live only) says what the turn is doing."""
    model_part = f" · {escape(model)}" if model else ""
    state_part = f' · <span class="hermes-state">{escape(state)}</span>' if state else ""
    return (f'<div class="hermes-head"><small>Hermes · session {escape(session)}{model_part}{state_part}</small>'
            f"{prompt_html(prompt, history, live)}</div>")


PROMPT_LINES, PROMPT_CHARS = 8, 1200  # of a long prompt, shown before "… N more lines"


@functools.lru_cache(maxsize=4)  # the live head is rebuilt on each change of its state line: a long prompt once
def prompt_html(prompt: str, history: str | None = None, live: bool = False) -> str:
    """The prompt in bold; a long one cut to its first lines and "… N more lines".

    Live, the rest is in a fold (a pasted file stays readable, not a page of bold text); the saved
    rendering leaves it out and says where the whole prompt is kept, so a notebook does not carry it twice.
    """
    text = redact_for_display(prompt)
    lines = text.splitlines(keepends=True)
    shown = "".join(lines[:PROMPT_LINES])
    if len(shown) > PROMPT_CHARS:
        cut_at = shown.rfind(" ", 0, PROMPT_CHARS)
        shown = shown[: cut_at if cut_at > PROMPT_CHARS // 2 else PROMPT_CHARS]
    if len(shown) == len(text):
        return f'<p class="hermes-prompt"><b>{text_lines(text)}</b></p>'
    rest = text[len(shown):]
    rest_lines = len(rest.splitlines())
    more = f"{rest_lines:,} more lines" if rest_lines > 1 else f"{len(rest):,} more characters"
    first = f'<p class="hermes-prompt"><b>{text_lines(shown.rstrip())}</b></p>'
    if live:
        return (f'{first}<details class="hermes-prompt-more"><summary><small>… {more}</small></summary>'
                f'<div class="hermes-prompt-rest">{text_lines(rest)}</div></details>')
    where = f"the whole prompt is in the history, <code>{escape(history)}</code>" if history else "not shown here"
    return f'{first}<p class="hermes-prompt-more"><small>… {more} ({where})</small></p>'


def foot(usage: ev.Usage | None, status: str, history: str | None) -> str:
    return f'<div class="hermes-foot"><small>{usage_line(usage, status, history)}</small></div>'


def usage_line(usage: ev.Usage | None, status: str, history: str | None) -> str:
    parts = [escape(status)]
    if usage is not None:
        parts.append(escape(usage.model))
        parts.append(f"{usage.input_tokens:,} in / {usage.output_tokens:,} out tokens" if usage.reported
                     else "usage not reported")
        if usage.cost_usd:
            parts.append(f"${usage.cost_usd:.4f}")
        if usage.context_length and usage.reported:
            parts.append(context_gauge(usage))
    if history:
        parts.append(f"history: <code>{escape(history)}</code>")
    return " · ".join(parts)


def context_gauge(usage: ev.Usage) -> str:
    """The context window used: a <meter> (native without styles), the threshold marked where styled."""
    used = min(1.0, usage.last_prompt_tokens / usage.context_length)
    high = f' high="{usage.threshold_tokens}"' if usage.threshold_tokens else ""
    marker = (f'<span class="hermes-threshold" style="left:{usage.threshold_tokens / usage.context_length:.0%}" '
              f'title="compression threshold"></span>' if usage.threshold_tokens else "")
    return (f'<span class="hermes-gauge" title="context window: {usage.last_prompt_tokens:,} of '
            f'{usage.context_length:,} tokens">context <span class="hermes-meter"><meter min="0" '
            f'max="{usage.context_length}"{high} optimum="0" value="{usage.last_prompt_tokens}"></meter>{marker}'
            f"</span> {used:.0%}</span>")


# ----- the body --------------------------------------------------------------------------

def card(kind: str, tone: str, body: str) -> str:
    return f'<blockquote class="hermes-card hermes-{kind} hermes-{tone}">{body}</blockquote>'


def tool_summary(start: ev.ToolStarted, end: ev.ToolCompleted | None, running: bool = False) -> str:
    if end is None:
        state = "running…" if running else "did not finish"
    else:
        state = f"{'failed' if end.is_error else 'done'} · {end.duration:.1f}s"
    mark = "✗" if end is not None and end.is_error else ("✓" if end is not None else "…")
    args = toolargs.inline_html(toolargs.read_args(start.args))
    return f"{mark} <b>{escape(start.name)}</b>{' ' + args if args else ''} · {state}"


def tool_card(start: ev.ToolStarted, end: ev.ToolCompleted | None, running: bool = False) -> str:
    """A tool call, folded to its title line (name, arguments, state); unfolded, the long arguments whole
    (code highlighted, lists bulleted), then the result."""
    tone = "bad" if end is not None and end.is_error else ("ok" if end is not None else "muted")
    blocks = toolargs.blocks_html(toolargs.read_args(start.args))
    result = f"<pre>{escape(end.result)}</pre>" if end is not None and end.result else ""
    if blocks and result:
        result = f'<div class="hermes-arg"><small>result:</small>{result}</div>'
    return (f'<details class="hermes-card hermes-tool hermes-{tone}"><summary>{tool_summary(start, end, running)}'
            f"</summary>{blocks}{result}</details>")


def approval_card(req: ev.ApprovalRequested, res: ev.ApprovalResolved | None, pending: bool = False) -> str:
    if pending:
        decision, tone = "", "warn"
    elif res is None:
        decision, tone = "<p>→ no decision</p>", "warn"
    elif res.choice == "deny":
        decision, tone = f"<p>→ <b>denied</b> ({BY.get(res.by, escape(res.by))})</p>", "bad"
    else:
        decision, tone = f"<p>→ <b>allowed {escape(res.choice)}</b> ({BY.get(res.by, escape(res.by))})</p>", "ok"
    title = "Approval needed" if pending else "Approval"
    command = escape(reveal(req.command))  # as it will run: no hidden character may reorder or hide a part
    return card("approval", tone, f"<b>⚠ {title}</b>: {escape(req.description)}<pre>{command}</pre>"
                f"{decision}")


def clarify_card(req: ev.ClarifyRequested, res: ev.ClarifyResolved | None, pending: bool = False) -> str:
    question = escape(redact_for_display(req.question))
    choices = f" <small>({escape(redact_for_display(' / '.join(req.choices)))})</small>" if req.choices else ""
    if pending:
        return card("clarify", "info", f"<b>? {question}</b>")
    if res is not None and res.answer is not None:
        answer = f"<b>{escape(redact_for_display(res.answer))}</b>"
    else:
        answer = f"no answer ({BY.get(res.by, 'none') if res else 'none'})"
    return card("clarify", "info", f"? {question}{choices} → {answer}")


_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def error_card(e: ev.Error) -> str:
    # The hints are ours, written with `code` spans for the commands to type (escaped first: they hold the user's
    # model names and URLs).
    hint = _CODE_SPAN.sub(r"<code>\1</code>", escape(e.hint))
    return card("error", "bad", f"<b>Error ({escape(e.error_kind)})</b>: {escape(redact_for_display(e.message))}"
                f"<br><small>What to do: {hint}</small>")


def notice(text: str) -> str:
    return f'<p class="hermes-notice"><small>{escape(text)}</small></p>'


def reasoning(text: str, live: bool = False) -> str:
    """A reasoning fold: open and titled "Thinking…" while it streams (its text slot filled live)."""
    if live:
        return ('<details class="hermes-reasoning" open><summary>Thinking…</summary>'
                f'<div class="hermes-reasoning-text" data-slot="">{text}</div></details>')
    return ('<details class="hermes-reasoning"><summary>Reasoning</summary>'
            f'<div class="hermes-reasoning-text">{escape(redact_for_display(text))}</div></details>')


def answer(html: str) -> str:
    return f'<div class="hermes-answer">{html}</div>'


def outputs(items: Iterable[Mapping[str, Any]], live: bool = False) -> str:
    """The outputs of a run of the agent's code in the kernel (after its last clear_output)."""
    body = "".join(output_html(o) for o in visible(items))
    if live:
        return f'<div class="hermes-output" data-slot="">{body}</div>'
    return f'<div class="hermes-output">{body}</div>' if body else ""


END = '<hr class="hermes-end">'  # hidden by the stylesheet; marks the end of a turn where styles are stripped
