"""Inline Markdown while it streams: where a paragraph may be cut, and how to show its unfinished end.

A small scanner follows CommonMark's inline delimiters (code spans, ``*``/``_``
emphasis with the flanking rules, ``~~``, links and images, ``$`` math) just well enough to
say where the text is *balanced*: nothing opened and not yet closed. The live
view freezes a paragraph's pieces at such points, and shows the rest with its
open delimiters closed for the moment (``*Rayleigh scatt`` is shown as
*Rayleigh scatt* rather than with a raw asterisk); unfinished math is not shown yet. The final rendering of the
settled block, by markdown-it, is the authority; this only has to be close.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

_MARKER = re.compile(r"[\\`*_~\[\]!$]")
_SPACE = re.compile(r"\s")  # the same characters as str.isspace


def _punct(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"


@dataclass
class Scan:
    stack: list[tuple[str, int, int]] = field(default_factory=list)  # open delimiters: (char, run length, position)
    code: tuple[int, int] | None = None  # an open code span: (backtick run length, position)
    math: tuple[int, int] | None = None  # open $ or $$ math: (dollar run length, position)
    link: tuple[int, int] | None = None  # a link whose destination is unfinished: ("[" position, "](" position)
    cuts: list[int] = field(default_factory=list)  # positions of whitespace where everything is closed


MATH_PATIENCE = 300  # characters after a $ with no closer: then it was a dollar sign ("$5 and $10")


def scan(text: str, start: int = 0, dollars: frozenset[int] = frozenset()) -> Scan:
    """Scan text[start:] (start must be a balanced point); `dollars`: positions of $ that are plain text."""
    s = Scan()
    n = len(text)
    i = start
    while i < n:
        marker = _MARKER.search(text, i)
        at = n if marker is None else marker.start()
        if at > i:  # plain text up to the next marker (found in C: a tail is rescanned at every flush)
            if not s.stack and s.code is None and s.math is None:
                s.cuts += [space.start() for space in _SPACE.finditer(text, i, at)]
            i = at
            continue
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        j = i
        while j < n and text[j] == ch:
            j += 1
        if ch == "$" and s.code is None and i not in dollars:
            _dollar(text, s, i, j)
            i = j
            continue
        if s.math is not None:  # TeX: no Markdown inside
            i = j
            continue
        if ch == "`":
            if s.code is None:
                s.code = (j - i, i)
            elif s.code[0] == j - i:
                s.code = None
            i = j
            continue
        if s.code is not None:
            i = j
            continue
        if ch in "*_~":
            _delimiter(text, s, ch, i, j)
        elif ch == "[":
            s.stack.append(("[", 1, i))
            j = i + 1
        elif ch == "!" and j < n and text[j] == "[":
            s.stack.append(("[", 1, j - 1))  # an image: "![" opens like a link
            j += 1
        elif ch == "]":
            j = i + 1
            if any(c == "[" for c, _, _ in s.stack):
                opened = _pop_to(s, "[")
                if j < n and text[j] == "(":
                    close = _link_end(text, j + 1)
                    if close is None:
                        s.link = (opened, i)
                        return s
                    j = close + 1
        i = j
    if s.math is not None and n - s.math[1] > MATH_PATIENCE:
        return scan(text, start, dollars | {s.math[1]})
    return s


def _dollar(text: str, s: Scan, i: int, j: int) -> None:
    """Math as the renderer reads it (safety/markdown.py): the first $ after an opener closes it, and is a
    closer only with no space before it and no digit after it; else the opener was just a dollar sign."""
    before = text[i - 1] if i > 0 else " "
    after = text[j] if j < len(text) else ""
    double = j - i >= 2  # $$: the space rules look at its other $, so only the digit rule applies
    if s.math is not None:
        length = s.math[0]
        if j - i >= length and (length == 2 or not before.isspace()) and not after.isdigit():
            s.math = None
            return
        if j - i >= length:
            s.math = None  # not a closer: the opener was not math, this $ may open anew
    if j - i <= 2 and after and (double or not after.isspace()) and not before.isdigit():
        s.math = (j - i, i)


def _delimiter(text: str, s: Scan, ch: str, i: int, j: int) -> None:
    if ch == "~" and j - i != 2:
        return  # only ~~ strikes through
    before = text[i - 1] if i > 0 else " "
    after = text[j] if j < len(text) else " "  # the end of a streaming text is not known yet: no opener
    left = not after.isspace() and (not _punct(after) or before.isspace() or _punct(before))
    right = not before.isspace() and (not _punct(before) or after.isspace() or _punct(after))
    if ch == "_":
        can_open, can_close = left and (not right or _punct(before)), right and (not left or _punct(after))
    else:
        can_open, can_close = left, right
    if can_close and any(c == ch for c, _, _ in s.stack):
        _pop_to(s, ch)
    elif can_open:
        s.stack.append((ch, j - i, i))


def _pop_to(s: Scan, ch: str) -> int:
    while s.stack:
        c, _, at = s.stack.pop()
        if c == ch:
            return at
    return -1


def _link_end(text: str, i: int) -> int | None:
    depth = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                return i
            depth -= 1
        elif ch == "\n" and text[i - 1:i] == "\n":
            return i
        i += 1
    return None


def autoclose(text: str) -> str:
    """The text as it should look for now: open delimiters closed, an unfinished link shown as its text."""
    for _ in range(4):  # a dropped link may uncover another; a few rounds are plenty
        s = scan(text)
        if s.link is None:
            break
        opened, closed = s.link
        skip = 2 if text[opened] == "!" else 1
        text = text[:opened] + text[opened + skip:closed]
    else:
        s = scan(text)
    core = text.rstrip()
    if s.math is not None:  # unfinished TeX: shown once its closing $ comes
        core = core[:s.math[1]].rstrip()
    if (len(core) - len(core.rstrip("\\"))) % 2:
        core = core[:-1]  # a backslash that breaks the line or escapes what comes next: not text
    drop: list[tuple[int, int]] = []
    closers: list[str] = []
    if s.code is not None:
        length, at = s.code
        if at + length >= len(core):
            drop.append((at, length))
        else:  # a backtick just before the closer would make one longer run that closes nothing
            closers.append((" " if core.endswith("`") else "") + "`" * length)
    for ch, length, at in reversed(s.stack):
        if ch == "[" or at + length >= len(core):
            drop.append((at, 2 if text[at] == "!" else length))
        else:
            closers.append(ch * length)
    for at, length in sorted(drop, reverse=True):
        core = core[:at] + core[at + length:]
    return core + "".join(closers)


def freeze_point(text: str, start: int, end: int, *, least: int, force: int) -> int | None:
    """Where to cut text[start:end] so that text[start:cut] can be drawn for good, or None.

    The cut is at whitespace where every delimiter is closed, at least `least`
    characters in, before a letter (so the next piece cannot start a list or a
    heading), and never after "Bearer" or inside an unfinished PEM block (a
    secret split in two would escape redaction). Past `force` characters
    without such a point, any whitespace before a letter will do.
    """
    begin = text.find("-----BEGIN", start, end)
    if begin != -1 and text.find("-----END", begin, end) == -1:
        end = begin
    if end - start < least:
        return None
    piece = text[start:end]
    for at in reversed(scan(piece).cuts):
        if at < least:
            break
        if _good_cut(piece, at):
            return start + at + 1
    if end - start >= force:
        for at in range(len(piece) - 1, least - 1, -1):
            if piece[at].isspace() and _good_cut(piece, at):
                return start + at + 1
    return None


def _good_cut(piece: str, at: int) -> bool:
    nxt = piece[at + 1] if at + 1 < len(piece) else ""
    if not nxt.isalpha():
        return False
    word = piece[:at].rstrip().rsplit(None, 1)[-1:] or [""]
    return word[0].lower() != "bearer"
