"""What code the agent ran in the kernel printed and displayed: one event type and its renderings.

``CodeOutput`` (events.py) carries one output in the notebook format (nbformat v4 output
dicts: ``stream``, ``display_data``, ``error``) plus ``clear_output`` for
``IPython.display.clear_output``. The live widget view shows the outputs in
``ipywidgets.Output`` areas; the static rendering and the text view use the
functions below, which are pure and safe: images become ``<img>`` tags built
here from validated base64, HTML goes through the same sanitizer as model
output, and all text is redacted.
"""
from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any

from hermes_jupyter.events import CodeOutput as CodeOutput  # lives with the other events; importable here as before
from hermes_jupyter.safety.markdown import escape, render_markdown, sanitize_html
from hermes_jupyter.safety.redact import redact_for_display

_IMAGES = ("image/png", "image/jpeg", "image/gif")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PRE = ("font-family:var(--jp-code-font-family,monospace);"
        "white-space:pre-wrap;margin:2px 0;font-size:12px;max-height:400px;overflow:auto")
AREA = "border-left:3px solid #0969da;padding:0 0 0 8px;margin:2px 0 6px"
AREA_LAYOUT = {"border_left": "3px solid #0969da", "padding": "0 0 0 8px", "margin": "2px 0 6px"}


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def visible(outputs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The outputs a reader sees: what came after the last clear_output."""
    shown: list[Mapping[str, Any]] = []
    for output in outputs:
        if output.get("output_type") == "clear_output":
            shown.clear()
        else:
            shown.append(output)
    return shown


def summary(data: Mapping[str, Any], limit: int = 1500) -> str:
    """One display as text: its text/plain (cut), or the kinds of data it holds."""
    plain = _text(data.get("text/plain", ""))
    images = [m for m in data if m.startswith("image/")]
    if images and (not plain or plain.startswith("<Figure")):
        return f"[{'figure' if plain.startswith('<Figure') else 'image'} shown: {', '.join(images)}]"
    if "application/vnd.jupyter.widget-view+json" in data:
        return "[widget shown]"
    if plain:
        return plain if len(plain) <= limit else plain[: limit - 1] + "…"
    return f"[display: {', '.join(data) or 'empty'}]"


def output_text(output: Mapping[str, Any]) -> str:
    """Plain text of one output (text view, text/plain fallback), redacted."""
    kind = output.get("output_type")
    if kind == "stream":
        text = _text(output.get("text"))
    elif kind == "error":
        trace = strip_ansi("\n".join(output.get("traceback") or []))
        text = trace or f"{output.get('ename')}: {output.get('evalue')}"
    elif kind == "display_data":
        text = summary(output.get("data") or {})
    else:
        return ""
    return redact_for_display(text)


def _image(mime: str, payload: Any) -> str:
    payload = _text(payload)
    if not _BASE64.match(payload):
        return ""
    return (f"<img src=\"data:{mime};base64,{''.join(payload.split())}\" alt=\"{escape(mime)}\" "
            f"style=\"max-width:100%\">")


def display_html(data: Mapping[str, Any]) -> str:
    for mime in _IMAGES:
        if mime in data:
            tag = _image(mime, data[mime])
            if tag:
                return tag
    if "image/svg+xml" in data:  # as an image, so no script in it can run
        svg = base64.b64encode(_text(data["image/svg+xml"]).encode()).decode()
        return _image("image/svg+xml", svg)
    if "text/html" in data:
        html = sanitize_html(redact_for_display(_text(data["text/html"])))
        return f"<div style='overflow:auto;max-height:500px'>{html}</div>"
    if "text/markdown" in data:
        return render_markdown(redact_for_display(_text(data["text/markdown"])))
    return f"<pre style='{_PRE}'>{escape(redact_for_display(summary(data, 20_000)))}</pre>"


def output_html(output: Mapping[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        color = "background:rgba(207,34,46,0.06);" if output.get("name") == "stderr" else ""
        return f"<pre style='{color}{_PRE}'>{escape(redact_for_display(_text(output.get('text'))))}</pre>"
    if kind == "error":
        return f"<pre style='color:#cf222e;{_PRE}'>{escape(output_text(output))}</pre>"
    if kind == "display_data":
        return display_html(output.get("data") or {})
    return ""


def outputs_html(outputs: Iterable[Mapping[str, Any]]) -> str:
    """The static rendering of one run's outputs (after its last clear_output)."""
    body = "".join(output_html(o) for o in visible(outputs))
    return f"<div class='hermes-code-output' style='{AREA}'>{body}</div>" if body else ""
