"""One streamed answer in the live view: each character is sent about once, whatever the answer's shape.

The answer is Markdown. Its top-level blocks (blocks.py) are *settled* once
the next block starts (or, for a paragraph or a table, once a blank line ends
it, and for a fence once it closes): the view gets the block's final HTML once,
the same HTML the static rendering shows. The last, *open* block can be long (a
paragraph without a blank line, a 300-line code block, a long table), so it is
not re-sent as it grows: it is drawn as frozen pieces, each sent once, plus a
small tail that is redrawn on each flush:

* a paragraph freezes at balanced points (inline.py); its tail shows open
  ``*``, ``**`` and backticks closed, so raw markers never stay on screen;
* a fence freezes line by line, highlighted; the tail is the unfinished line;
* a table freezes row by row (an unfinished row is not shown);
* a list freezes item by item; the tail is the last item;
* anything else (headings, quotes...) is redrawn whole, less often as it grows.

The last word of the open text is held back until it ends: a secret streamed
in pieces is redacted before it is ever shown, and so is a half-typed marker;
so is an end whose meaning the next line decides (a list marker alone, a line
that may be a table's header), and unfinished math. What is shown is never
taken back: tests/test_stream_property.py checks it at random chunk boundaries.
Operations for the view are small lists (see live.py for the protocol).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hermes_jupyter.safety.markdown import escape, render_markdown
from hermes_jupyter.safety.redact import redact_for_display
from hermes_jupyter.views import parts
from hermes_jupyter.views.blocks import (
    CODE_CLOSE,
    Block,
    code_boxes,
    code_open,
    highlight,
    last_inline,
    line_offsets,
    normalize,
    parse,
    render_block,
    render_inline,
    split,
)
from hermes_jupyter.views.inline import autoclose, freeze_point

Op = list[Any]

FREEZE_AT = 80  # characters of paragraph tail before a piece is frozen
FREEZE_LEAST = 40  # the shortest frozen piece
FREEZE_FORCE = 1200  # a tail this long freezes at any word boundary, balanced or not
BIG = 4000  # a block redrawn whole is redrawn only when 25% longer than last time past this size

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_STARTS_BLOCK = re.compile(r" {0,3}(?:[#>]|[-+*][ \t]|\d{1,9}[.)][ \t]|`{3}|~{3}|\$\$|(?:[-*_][ \t]*){3,}$)| {4}|\s*$")
_MARKER_ONLY = re.compile(r"[ \t>]*(?:[-+*]|\d{1,9}[.)]|#{1,6}|>|`+|~+|=+|\|)?[ \t]*")
_LIST = re.compile(r"<(ul|ol)( start=\"\d+\")?>\n?(.*)</\1>\n?", re.S)
_ITEM = re.compile(r"<li>(.*)</li>\n?", re.S)
ENDS_FOR_GOOD = ("paragraph", "heading", "table", "hr")  # kinds a blank line closes


@dataclass
class Drawing:
    """How the open block is on screen: a container, frozen pieces, a tail."""
    kind: str
    start: int  # where the block's own lines begin in the open text
    container: str = ""
    tail_tag: str | None = None
    frozen: int = 0  # characters, lines, rows or items drawn for good
    pieces: list[str] = field(default_factory=list)
    tail: str = ""
    tail_size: int = 0
    opened: bool = False
    info: str = ""


class AnswerStream:
    def __init__(self, part: str) -> None:
        self.part = part
        self._pending: list[str] = []
        self._text = ""  # everything after the settled blocks
        self._settled: list[str] = []  # their HTML, for a view that connects later
        self._block: Block | None = None  # the open block, from the last parse of complete lines
        self._checked = 0  # characters of _text made of complete lines, parsed
        self._drawing: Drawing | None = None

    @property
    def dirty(self) -> bool:
        return bool(self._pending)

    def feed(self, text: str) -> None:
        self._pending.append(text)

    def _take(self) -> None:
        if self._pending:
            self._text += normalize("".join(self._pending))
            self._pending.clear()

    # ----- settling --------------------------------------------------------------------------
    def flush(self) -> list[Op]:
        self._take()
        ops: list[Op] = []
        self._settle_complete(ops)
        self._draw(ops)
        return ops

    def close(self) -> list[Op]:
        """The segment ended: every block settles."""
        self._take()
        html = "".join(render_block(source) for source in split(self._text))
        self._text, self._block, self._checked, self._drawing = "", None, 0, None
        self._settled.append(html)
        return [["settle", self.part, html]]

    def _settle_complete(self, ops: list[Op]) -> None:
        end = self._text.rfind("\n") + 1
        if end <= self._checked:
            return
        blocks = self._structure(end)
        self._checked = end
        if not blocks:
            return
        last = blocks[-1]
        lines = self._text.count("\n", 0, end)
        last_line = self._text[self._text.rfind("\n", 0, end - 1) + 1:end]
        done = len(blocks) - 1
        # A fence is closed when its own last line closes it, whatever came after it in the same delta
        # (blank lines, the next paragraph): checking the text's last line instead kept it open for good.
        if (last.kind == "fence" and last.end - last.start > 1
                and self._closes(last, self._text[_line_start(self._text, last.end - 1):end].split("\n", 1)[0])) or (
                last.kind in ENDS_FOR_GOOD and last.end < lines and not last_line.strip()):
            done = len(blocks)  # closed for good: nothing later can change it
        if done == 0:
            self._block = last
            return
        offsets = line_offsets(self._text[:end])
        cuts = [offsets[b.end] for b in blocks[:done]]
        html = "".join(render_block(self._text[a:b]) for a, b in zip([0, *cuts[:-1]], cuts, strict=True))
        ops.append(["settle", self.part, html])
        self._settled.append(html)
        cut = cuts[-1]
        self._text = self._text[cut:]
        self._checked = end - cut
        shift = blocks[done - 1].end
        self._block = (Block(last.kind, last.start - shift, last.end - shift, last.info,
                             tuple((a - shift, b - shift) for a, b in last.items)) if done < len(blocks) else None)
        self._drawing = None

    def _structure(self, end: int) -> list[Block]:
        """The blocks of the complete lines; cheap when new lines only extend the open block."""
        block = self._block
        if block is not None and self._checked:
            text, checked = self._text, self._checked
            first_new = text.count("\n", 0, checked)
            new_lines = text[checked:end].split("\n")[:-1]
            grows = False
            if block.kind == "fence":
                grows = not any(self._closes(block, line) for line in new_lines)
            elif block.kind == "table":
                grows = not any(_STARTS_BLOCK.match(line) for line in new_lines)
            elif block.kind == "paragraph" and first_new > block.start and not text.startswith(
                    "$$", _line_start(text, block.start)):  # "$$" waiting for its closer: maybe a math block
                window = parse(text[text.rfind("\n", 0, checked - 1) + 1:end])
                grows = len(window) == 1 and window[0].kind == "paragraph" and window[0].end == len(new_lines) + 1
            if grows:  # new lines only extend the open block: no parse of the whole of it
                return [Block(block.kind, block.start, first_new + len(new_lines), block.info, block.items)]
        return parse(self._text[:end])

    def _closes(self, block: Block, line: str) -> bool:
        """Does `line` close the fence `block`?"""
        start = _line_start(self._text, block.start)
        fence = _FENCE.match(self._text, start)
        stripped = line.strip()
        return (fence is not None and len(line) - len(line.lstrip(" ")) < 4 and stripped != ""
                and set(stripped) == {fence.group(1)[0]} and len(stripped) >= len(fence.group(1)))

    # ----- drawing the open block ------------------------------------------------------------
    def _draw(self, ops: list[Op]) -> None:
        text = self._text
        kind, start = self._open_kind()
        drawing = self._drawing
        if drawing is None or drawing.kind != kind or drawing.start != start:
            drawing = self._drawing = Drawing(kind, start)
        body = text[start:]
        held = len(body) if not body else max(body.rfind(" "), body.rfind("\n"), body.rfind("\t")) + 1
        if kind not in ("fence", "table"):
            held = _undecided(kind, body, held)
        begin = body.find("-----BEGIN", drawing.frozen if kind == "paragraph" else 0)
        if begin != -1 and body.find("-----END", begin) == -1:
            held = min(held, begin)  # an unfinished private key is never shown
        getattr(self, f"_draw_{kind}")(drawing, body, held, ops)

    def _open_kind(self) -> tuple[str, int]:
        block = self._block
        if block is not None:
            start = _line_start(self._text, block.start)
            kind = block.kind
            if kind in ("paragraph", "fence", "table") or kind.endswith("_list"):
                return kind, start
            return "whole", start
        stripped = self._text.lstrip("\n")
        start = len(self._text) - len(stripped)
        first = stripped[:1]
        if first == "|":
            return "pending", start  # maybe a table's header: shown once its delimiter row says so
        if not first or _STARTS_BLOCK.match(stripped) or first == "<":
            return "whole", start
        return "paragraph", start

    def _open(self, drawing: Drawing, container: str, tail_tag: str | None, ops: list[Op]) -> None:
        drawing.container, drawing.tail_tag, drawing.opened = container, tail_tag, True
        ops.append(["open", self.part, container, tail_tag])

    def _set_tail(self, drawing: Drawing, html: str, ops: list[Op]) -> None:
        if html != drawing.tail:
            drawing.tail = html
            ops.append(["tail", self.part, html])

    def _grow(self, drawing: Drawing, html: str, ops: list[Op]) -> None:
        if html:
            drawing.pieces.append(html)
            ops.append(["grow", self.part, html])

    def _draw_pending(self, drawing: Drawing, body: str, held: int, ops: list[Op]) -> None:
        return

    def _draw_paragraph(self, drawing: Drawing, body: str, held: int, ops: list[Op]) -> None:
        if body.startswith("|") and body.count("\n") < 2:
            return  # a table's header row until its delimiter row comes
        if not drawing.opened:
            self._open(drawing, "<p></p>", "span", ops)
        # One redaction per flush, of what is not frozen yet (it starts at a word: same context as in
        # the block). Almost always nothing changes, and the pieces are cut from the text itself.
        pending = body[drawing.frozen:held]
        safe = redact_for_display(pending) if pending.strip() else pending
        if safe != pending:  # a secret in it: drawn as one redacted piece once long enough
            if len(pending) >= FREEZE_AT and (piece := render_inline(safe, redact=False)) is not None:
                self._grow(drawing, piece + " ", ops)
                drawing.frozen, safe = held, ""
            self._set_tail(drawing, render_inline(autoclose(safe), redact=False) or escape(safe), ops)
            return
        while held - drawing.frozen >= FREEZE_AT:
            cut = freeze_point(body, drawing.frozen, held, least=FREEZE_LEAST, force=FREEZE_FORCE)
            piece = render_inline(body[drawing.frozen:cut], redact=False) if cut is not None else None
            if cut is None or piece is None:
                break
            self._grow(drawing, piece + ("\n" if body[cut - 1] == "\n" else " "), ops)
            drawing.frozen = cut
        tail = body[drawing.frozen:held]
        html = render_inline(autoclose(tail), redact=False) if tail.strip() else ""
        self._set_tail(drawing, escape(tail) if html is None else html, ops)

    def _draw_fence(self, drawing: Drawing, body: str, held: int, ops: list[Op]) -> None:
        newline = body.find("\n")
        if newline == -1:
            return
        opening = body[:newline]
        indent = len(opening) - len(opening.lstrip(" "))
        lang = (self._block.info if self._block else "").split(" ")[0]
        content = body[newline + 1:]
        complete = content[:content.rfind("\n") + 1]
        partial = content[len(complete):]
        if not drawing.opened:
            if not complete.strip() and not partial.strip():
                return  # an empty box would only leave a gap
            self._open(drawing, code_open(lang).replace("<code", '<code data-slot=""', 1) + CODE_CLOSE, "span", ops)
        new = "".join(_dedent(line, indent) for line in complete[drawing.frozen:].splitlines(keepends=True))
        shown = _dedent(partial[:max(0, held - newline - 1 - len(complete))], indent)
        if shown.lstrip().startswith(("`", "~")):
            shown = ""  # maybe the closing fence, half typed
        both = new + shown
        safe = redact_for_display(both) if both.strip() else both  # one redaction per flush, mostly
        if safe != both:
            new, shown = redact_for_display(new), redact_for_display(shown)
        elif new:
            new, shown = safe[:len(new)], safe[len(new):]
        if new:
            self._grow(drawing, highlight(new, lang), ops)
            drawing.frozen = len(complete)
        self._set_tail(drawing, escape(shown), ops)

    def _draw_table(self, drawing: Drawing, body: str, held: int, ops: list[Op]) -> None:
        lines = body.split("\n")
        head = "\n".join(lines[:2]) + "\n"
        if not drawing.opened:
            rendered = render_markdown(redact_for_display(head))
            if "</table>" not in rendered:
                return
            self._open(drawing, rendered.replace("</table>", '<tbody data-slot=""></tbody></table>', 1), None, ops)
        rows = lines[2:-1]  # the last line is unfinished (or empty)
        new = rows[drawing.frozen:]
        if new:
            rendered = render_markdown(redact_for_display(head + "\n".join(new) + "\n"))
            _, _, rest = rendered.partition("<tbody>\n")
            self._grow(drawing, rest.partition("</tbody>")[0], ops)
            drawing.frozen = len(rows)

    def _draw_list(self, drawing: Drawing, body: str, held: int, ops: list[Op]) -> None:
        block = self._block
        if block is None or not block.items:
            return self._draw_whole(drawing, body, held, ops)
        offsets = line_offsets(self._text)
        base = offsets[block.start]
        spans = [(offsets[a] - base, offsets[b] - base if b < len(offsets) else len(body)) for a, b in block.items]
        spans[-1] = (spans[-1][0], len(body))
        if not drawing.opened:
            first = _LIST.match(render_markdown(redact_for_display(body[spans[0][0]:spans[0][1]])))
            tag = first.group(1) if first else "ul"
            self._open(drawing, f"<{tag}{first.group(2) or '' if first else ''}></{tag}>", "li", ops)
        for a, b in spans[drawing.frozen:-1]:
            item = _LIST.match(render_markdown(redact_for_display(body[a:b])))
            self._grow(drawing, item.group(3) if item else "", ops)
            drawing.frozen += 1
        a = spans[-1][0]
        rendered = _LIST.match(render_markdown(redact_for_display(_autoclose_end(body[a:max(a, held)]))))
        item = _ITEM.match(rendered.group(3)) if rendered else None
        self._set_tail(drawing, item.group(1) if item else "", ops)
        return None

    _draw_bullet_list = _draw_ordered_list = _draw_list

    def _draw_whole(self, drawing: Drawing, body: str, held: int, ops: list[Op]) -> None:
        if not drawing.opened:
            self._open(drawing, "<div></div>", "div", ops)
        if held > BIG and held < drawing.tail_size * 1.25:
            return  # redrawn less often as it grows: bytes stay linear
        drawing.tail_size = held
        self._set_tail(drawing, code_boxes(render_markdown(redact_for_display(_autoclose_end(body[:held])))), ops)

    # ----- a view that connects ---------------------------------------------------------------
    def snapshot(self) -> list[Op]:
        ops: list[Op] = [["add", self.part, parts.answer("".join(self._settled))]]
        drawing = self._drawing
        if drawing is not None and drawing.opened:
            ops.append(["open", self.part, drawing.container, drawing.tail_tag])
            if drawing.pieces:
                ops.append(["grow", self.part, "".join(drawing.pieces)])
            if drawing.tail:
                ops.append(["tail", self.part, drawing.tail])
        return ops


def _undecided(kind: str, body: str, held: int) -> int:
    """How much of body[:held] to show: not the end whose meaning the next characters decide."""
    line = body.rfind("\n", 0, held) + 1
    if _MARKER_ONLY.fullmatch(body, line, held):
        held = line  # a list item, heading or quote not typed yet: its marker alone would show raw
    unfinished = body.rfind("\n") + 1
    if (kind == "paragraph" and 0 < unfinished < held and _STARTS_BLOCK.match(body, unfinished)
            and body[unfinished:held].strip()):
        held = unfinished  # a line that may start the next block ("> a", "# T") joins it once it ends
    for at in (body.rfind("\n", 0, max(0, unfinished - 1)) + 1, unfinished):
        if at < held and body.startswith("|", at):
            return at  # maybe a table's header: shown once the next line says whether it is one
    return held


def _autoclose_end(text: str) -> str:
    """`text` with the open markers of its last paragraph (or heading) closed; code is left alone."""
    start = last_inline(text)
    return text if start is None else text[:start] + autoclose(text[start:])


def _line_start(text: str, line: int) -> int:
    """Offset of the start of line `line` (blocks start near the top of the open text: few lines to skip)."""
    at = 0
    for _ in range(line):
        at = text.find("\n", at) + 1
    return at


def _dedent(line: str, indent: int) -> str:
    stripped = line.lstrip(" ")
    return line[min(indent, len(line) - len(stripped)):]
