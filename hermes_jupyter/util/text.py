"""Cutting and flattening text for display (one copy of each helper for the whole package)."""
from __future__ import annotations

from typing import Any


def cut(text: object, limit: int, *, keep_end: bool = False) -> str:
    """``text`` in at most ``limit`` characters, an ellipsis marking the cut (the end kept if asked)."""
    text = str(text)
    if len(text) <= limit:
        return text
    if keep_end:
        return "…" + text[len(text) - limit + 1:]
    return text[: limit - 1] + "…"


def one_line(text: Any, limit: int = 300) -> str:
    """Whitespace folded to single spaces, then cut."""
    return cut(" ".join(str(text).split()), limit)


def reveal(text: str) -> str:
    """``text`` with each character that shows nothing or reorders its neighbours as its escape (``\\u2067``).

    For a command a human decides on: bidi controls (Trojan Source), zero-width and other
    format characters, line separators, control characters (``\\r``, ESC): those that are not
    ``isprintable``, as Python's repr escapes them. The tool cards' arguments are shown through
    it too. Line breaks and tabs stay, as they show.
    """
    return "".join(c if c.isprintable() or c in "\n\t" else c.encode("unicode_escape").decode() for c in text)


def message_text(content: Any) -> str:
    """The text of a chat message's ``content``: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content
                       if isinstance(p, dict) and p.get("type", "text") == "text")
    return "" if content is None else str(content)


def env_flag(value: Any) -> bool:
    """An on/off value from the environment ("1", "true", "yes", "on" are on), or a bool as it is."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
