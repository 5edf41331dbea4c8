"""A tool call's arguments as a person reads them: code as code, lists as lists, text without quotes.

The turn's events carry each argument as display text, cut to a length (agent/run.py): a string
as it is, a list or a dict as Python wrote it (``"['Bar chart', 'Line chart']"``), possibly cut
in the middle. Here they become `Arg`s that every view renders alike: the widget and the
static rendering (HTML, code highlighted), the text view (lines). A character that shows
nothing or reorders its neighbours is shown as its escape (`reveal`), as the approval card does.
"""
from __future__ import annotations

import ast
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hermes_jupyter.safety.markdown import escape
from hermes_jupyter.util.text import cut, reveal
from hermes_jupyter.views.blocks import highlight

# Arguments that hold code, and its language (None: from the file's extension, in the `path` argument).
CODE_ARGS: dict[str, str | None] = {"code": "python", "command": "bash", "script": "bash", "patch": "diff",
                                     "content": None, "old_string": None, "new_string": None}
EXTENSIONS = {".py": "python", ".ipynb": "json", ".json": "json", ".sh": "bash", ".bash": "bash", ".md": "markdown",
              ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".js": "javascript", ".ts": "typescript",
              ".html": "html", ".css": "css", ".sql": "sql", ".r": "r", ".rs": "rust", ".go": "go", ".c": "c",
              ".h": "c", ".cpp": "cpp", ".java": "java", ".diff": "diff", ".patch": "diff"}
INLINE_CODE = 60  # characters: a longer (or multi-line) code argument is a block below the card's title
INLINE_ITEMS, INLINE_ITEM = 6, 40  # a list with more items, or a longer item, is a bulleted block
MORE = "…"


@dataclass(frozen=True, slots=True)
class Arg:
    key: str
    kind: Literal["code", "list", "text"]
    text: str = ""  # code or text, hidden characters escaped
    items: tuple[str, ...] = ()  # a list's items as text ("…" last where the list was cut)
    lang: str = ""  # of code, for highlighting

    @property
    def block(self) -> bool:
        """Shown as a block under the title line, not in it."""
        if self.kind == "code":
            return "\n" in self.text.strip("\n") or len(self.text) > INLINE_CODE
        if self.kind == "list":
            return len(self.items) > INLINE_ITEMS or any(len(i) > INLINE_ITEM or "\n" in i for i in self.items)
        return "\n" in self.text.strip("\n")


def read_args(args: Mapping[str, str]) -> list[Arg]:
    path = str(args.get("path") or args.get("file_path") or "")
    found = []
    for key, value in args.items():
        value = str(value)
        if key in CODE_ARGS:
            lang = CODE_ARGS[key] or EXTENSIONS.get(posixpath.splitext(path)[1].lower(), "")
            found.append(Arg(key, "code", text=reveal(value.strip("\n")), lang=lang))
            continue
        items = _items(value)
        if items is not None:
            found.append(Arg(key, "list", items=tuple(reveal(i) for i in items)))
        else:
            found.append(Arg(key, "text", text=reveal(value)))
    return found


def _items(value: str) -> list[str] | None:
    """The items of a list (or tuple, or dict) as Python wrote it, even cut short; None if it is not one."""
    parsed = _literal(value)
    if parsed is None:
        return None
    data, cut = parsed
    if isinstance(data, dict):
        items = [f"{k}: {_plain(v)}" for k, v in data.items()]
    elif isinstance(data, (list, tuple)):
        items = [_plain(v) for v in data]
    else:
        return None
    cut_in_item = bool(items) and items[-1].endswith(MORE)  # the cut fell inside the last item: it says so
    return [*items, MORE] if cut and not cut_in_item else items


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return " / ".join(_plain(v) for v in value)
    return str(value)


def _literal(value: str) -> tuple[Any, bool] | None:
    """A Python literal list/tuple/dict and whether it was cut ("…" at its end, in or between items)."""
    if value[:1] not in "[({":
        return None
    try:
        return ast.literal_eval(value), False
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    if not value.endswith(MORE):
        return None
    body = value[: -len(MORE)]
    closers: list[str] = []
    quote = ""
    i = 0
    while i < len(body):  # where the cut left us: inside which brackets, inside a string?
        c = body[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "[({":
            closers.append({"[": "]", "(": ")", "{": "}"}[c])
        elif c in "])}":
            if not closers:
                return None
            closers.pop()
        i += 1
    if quote:
        if (len(body) - len(body.rstrip("\\"))) % 2:  # a cut escape
            body = body[:-1]
        body += MORE + quote
    else:  # a number or name cut short reads as another one ("1" of 10): leave it out
        body = re.sub(r"[\w.+-]+$", "", body.rstrip()).rstrip().rstrip(",:").rstrip()
    for attempt in (body, body[: max(body.rfind(","), 1)]):  # a dict cut after its key: drop that key
        try:
            return ast.literal_eval(attempt + "".join(reversed(closers))), True
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
    return None


# ----- HTML (the widget and the static rendering) ---------------------------------------------

def _value_html(text: str) -> str:
    # Identifiers, paths and numbers read best as code; prose (and the mark of a cut) as text.
    return escape(text) if " " in text.strip() or text == MORE else f"<code>{escape(text)}</code>"


def inline_html(args: list[Arg]) -> str:
    """The arguments in the card's title line: `key: value · key: a / b`; a block by its start and its size."""
    shown = []
    for arg in args:
        if arg.kind == "code" or (arg.block and arg.kind == "text"):
            first, *more = arg.text.strip("\n").splitlines() or [""]
            value = f"<code>{escape(cut(first, INLINE_CODE))}</code>" if arg.kind == "code" else escape(cut(first, 80))
            if more:
                value += f" <small>(+{len(more)} line{'s' if len(more) > 1 else ''})</small>"
        elif arg.kind == "list" and arg.block:
            others = [i for i in arg.items[1:] if i != MORE]
            value = (f"{escape(cut(arg.items[0], INLINE_ITEM))} "
                     f"<small>(+{len(others)} more{'…' if arg.items[-1] == MORE else ''})</small>")
        elif arg.kind == "list":
            value = " / ".join(_value_html(i) for i in arg.items) or "<small>(none)</small>"
        else:
            value = _value_html(arg.text) if arg.text.strip() else "<small>(empty)</small>"
        shown.append(f"<small>{escape(arg.key)}:</small> {value}")
    return " · ".join(shown)


def blocks_html(args: list[Arg]) -> str:
    """The arguments too long for the title line, whole: code highlighted in a box, lists bulleted."""
    blocks = [a for a in args if a.block]
    out = []
    for arg in blocks:
        label = f"<small>{escape(arg.key)}:</small>" if len(args) > 1 else ""
        if arg.kind == "code":
            lang = f' class="language-{escape(arg.lang)}"' if arg.lang else ""
            code, cut_mark = (arg.text[:-1], MORE) if arg.text.endswith(MORE) else (arg.text, "")  # not a token
            out.append(f'<div class="hermes-arg">{label}<pre class="hermes-code highlight"><code{lang}>'
                       f"{highlight(code, arg.lang)}{cut_mark}</code></pre></div>")
        elif arg.kind == "list":
            items = "".join(f"<li>{escape(i)}</li>" for i in arg.items)
            out.append(f'<div class="hermes-arg">{label}<ul>{items}</ul></div>')
        else:
            out.append(f'<div class="hermes-arg">{label}<pre>{escape(arg.text)}</pre></div>')
    return "".join(out)


# ----- plain text (the text view) ----------------------------------------------------------------

def text_lines(args: list[Arg], indent: str = "    ") -> tuple[str, list[str]]:
    """The title line's arguments, and the lines of the blocks under it (indented)."""
    inline = []
    lines: list[str] = []
    for arg in args:
        if not arg.block:
            value = " / ".join(arg.items) if arg.kind == "list" else arg.text
            inline.append(f"{arg.key}: {value}")
            continue
        body = arg.text.splitlines() if arg.kind != "list" else [f"- {i}" for i in arg.items]
        pad = f"{indent}  " if len(args) > 1 else indent
        if len(args) > 1:
            lines.append(f"{indent}{arg.key}:")
        lines += [f"{pad}{line}" if line.strip() else "" for line in body]  # no trailing spaces
    return " · ".join(inline), lines
