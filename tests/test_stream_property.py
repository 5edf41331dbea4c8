"""Streaming is right at every chunk boundary: properties over real answer shapes, split anywhere.

The live view (views/stream.py) is checked through what a browser would show: a small
pure-Python applier rebuilds the answer part from the operations the stream emits, as
views/assets/view.js applies them. After every flush:

* the settled blocks are exactly the static rendering's first blocks of the complete lines so far,
  and at most the last of those blocks is still open (nothing lags behind);
* the open block is drawn as the element the static rendering makes of it (a paragraph after a
  closed fence is a <p>, not more code);
* the visible text is a prefix of the final rendering's visible text: the view never shows a
  character that later goes away, so no raw fence, emphasis marker or TeX the final rendering
  turns into structure (only the unfinished end is held back).

At the end (Done) the live answer is byte for byte the static rendering. The text view: at any
chunking the printed text equals the unchunked one, and each complete line is out as soon as
its newline came. The corpus has a held-out part the renderer was never tuned on.

CI runs the "ci" profile (tests/conftest.py: derandomized, fixed budget); HYPOTHESIS_PROFILE=long
runs thousands with a random seed it prints (HYPOTHESIS_SEED=N runs one again). Each test prints its
example count, profile and seed (pytest -s shows it).
"""
from __future__ import annotations

import io
import os
import random
import re
from html.parser import HTMLParser
from itertools import accumulate, pairwise

import pytest
from hypothesis import example, given, seed, settings
from hypothesis import strategies as st

from hermes_jupyter import events as ev
from hermes_jupyter.views.blocks import render_answer, render_block, split
from hermes_jupyter.views.stream import AnswerStream
from hermes_jupyter.views.text import TextView
from tests.test_views import fake_turn

# ----- what the browser shows: view.js's answer operations, in Python ---------------------------------


class LiveAnswer:
    """One answer part as view.js draws it: settled HTML, then the open block (container, pieces, tail)."""

    def __init__(self) -> None:
        self.settled: list[str] = []
        self.open: tuple[str, str | None] | None = None
        self.pieces: list[str] = []
        self.tail = ""

    def apply(self, op: list) -> None:
        kind, _part, *args = op
        if kind == "open":  # replaces the open block
            self.open, self.pieces, self.tail = (args[0], args[1]), [], ""
        elif kind == "grow":
            assert self.open is not None, op
            self.pieces.append(args[0])
        elif kind == "tail":
            assert self.open is not None and self.open[1], op
            self.tail = args[0]
        elif kind == "settle":  # removes the open block, appends the final HTML
            self.open, self.pieces, self.tail = None, [], ""
            self.settled.append(args[0])
        else:
            raise AssertionError(f"an answer stream sent {op!r}")

    def open_html(self) -> str:
        if self.open is None:
            return ""
        container, tag = self.open
        inner = "".join(self.pieces) + (f'<{tag} class="hermes-tail">{self.tail}</{tag}>' if tag else "")
        slot = re.search(r'<(\w+)[^>]*data-slot=""[^>]*>', container)  # view.js: the [data-slot], else the element
        if slot:
            at = container.index(f"</{slot.group(1)}>", slot.end())
        else:
            root = re.match(r"<(\w+)", container)
            assert root is not None, container
            at = container.rindex(f"</{root.group(1)}>")
        return container[:at] + inner + container[at:]

    def html(self) -> str:
        return "".join(self.settled) + self.open_html()


class _Visible(HTMLParser):
    """Text a reader sees, and the top-level element tags."""

    HIDDEN = {"annotation", "script", "style"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[str] = []
        self.depth = 0
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if self.depth == 0:
            self.tags.append(tag)
        if self.hidden or tag in self.HIDDEN or "hermes-tex" in (dict(attrs).get("class") or "").split():
            self.hidden += 1  # the stylesheet hides a formula's TeX source (for frontends without MathML)
        if tag not in ("br", "hr", "img", "input", "mspace", "mprescripts", "none"):
            self.depth += 1

    def handle_startendtag(self, tag, attrs):
        if self.depth == 0:
            self.tags.append(tag)

    def handle_endtag(self, tag):
        if self.hidden:
            self.hidden -= 1
        if tag not in ("br", "hr", "img", "input", "mspace", "mprescripts", "none"):
            self.depth -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.text.append(data)


def visible(html: str) -> str:
    """The visible characters, without whitespace (where lines wrap or pieces join is not content)."""
    parser = _Visible()
    parser.feed(html)
    return re.sub(r"\s+", "", "".join(parser.text))


def top_tags(html: str) -> list[str]:
    parser = _Visible()
    parser.feed(html)
    return parser.tags


# ----- the corpus: real answer shapes (the held-out part is only ever run, never tuned on) ---------------

CORPUS = [
    "Here:\n\n```python\nx = 1\nprint(x)\n```\n\nAfter the block.",
    "```\nno language here\n```",
    "~~~\ntilde fence\n```\nstill inside\n~~~",
    "````markdown\n```python\ninner\n```\n````",
    "Indented code:\n\n    def f():\n        return a*b\n\nAfter it.",
    "- one\n- two\n  - nested *a*\n  - nested b\n- three\n\n1. first\n2. second\n   1. sub `code`\n",
    "| name | value |\n|---|---:|\n| a | `1` |\n| **b** | 2 |",
    "# Heading\n\n## Sub *heading*\n\nText under it.",
    "Setext\n======\n\nAnd a second\n---",
    "> a quote\n> with **bold**\n>\n> - and a list",
    "Use ``code with ` backtick`` and `x = a*b` here.",
    "Inline math $E = mc^2$ and $a_1 + a_2$ in text.",
    "Display:\n\n$$\n\\sum_{i=1}^n i = \\frac{n(n+1)}{2}\n$$\n\nDone.",
    "Growth $(r_{Jun}/r_{Jan})^{1/5} - 1$ per month.",
    "Prices: $5 and $10 are not math.",
    "Some *emphasis*, **strong**, ~~strike~~ and snake_case_name and 2 * 3 = 6.",
    "A [link](https://example.org/a_b) and an ![img](https://example.org/x.png).",
    "Hard  \nbreak and a backslash\\\nbreak.",
    "***\n\nAfter a rule.",
    "Start:\n\n```bash\necho unclosed\nls -la",  # a fence still open at the end
]
HELD_OUT = [
    "## Plan\n\n1. Read `data.csv`\n2. Fit:\n\n   ```python\n   model.fit(X, y)\n   ```\n\n3. Plot *residuals*",
    "The ratio is $\\frac{a}{b}$, so\n\n$$x = \\sqrt{y}$$\n\nand `y` grows.",
    "| step | time |\n|:--|--:|\n| load | 1 s |\n| fit | 2 s |\n\nTotal: **3 s**.",
    "~~~js\nconst a = `tpl ${x}`;\n~~~\nThen *done*.",
    "> **Note**\n> Run `pip install x` first.\n\n- [x] done\n- [ ] todo",
    "Text then code:\n```\nraw\n```\nno blank line after.",
]

SEPARATORS = ["\n\n", "\n", "\n\n\n"]


@st.composite
def answers(draw, corpus: list[str]) -> str:
    pieces = draw(st.lists(st.sampled_from(corpus), min_size=1, max_size=4))
    text = pieces[0]
    for piece in pieces[1:]:
        text += draw(st.sampled_from(SEPARATORS)) + piece
    text += draw(st.sampled_from(["", "\n", "\n\n"]))
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    return text


@st.composite
def chunked(draw, corpus: list[str]) -> tuple[str, list[str]]:
    """An answer and the deltas it arrives in (cut at random points, a flush after each)."""
    text = draw(answers(corpus))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=40)))
    bounds = [0, *cuts, len(text)]
    return text, [text[a:b] for a, b in pairwise(bounds) if b > a]


# Bugs the property found, each as its smallest case (all failed before their fix).
FOUND = [
    # A fence closed in the same delta as the blank line after it stayed open: the prose became code.
    ("Here:\n\n```python\nx = 1\n```\n\nAfter the block.\n", ["Here:\n\n```python\nx = 1\n", "```\n\n", "After the block.\n"]),
    ("a\\\nb", ["a\\\nb"]),  # a backslash line break showed raw in a paragraph's tail
    ("Code:\n\n    a*b\n\nAfter it.", ["Code:\n\n    a*b\n\nAfter it."]),  # '*' in code "closed" by a stray '*'
    ("1. one\n   1. sub\n", ["1. one\n   1. ", "sub\n"]),  # a list marker typed alone showed raw
    ("Use ``a ` b``.", ["Use ``a ` ", "b``."]),  # an open code span's closer ran into a backtick
    ("Title\n---\n| a | b |\n|---|---|\n", ["Title\n---\n| a ", "| b |\n|---|---|\n"]),  # a header row's pipes
    ("Text.\n> a quote", ["Text.\n> a ", "quote"]),  # a quote starting in a paragraph's tail showed its '>'
    ("Sum:\n\n$$\n\\sum_i i\n$$\n", ["Sum:\n\n$$\n", "\\sum_i i\n$$\n"]),  # an open $$ showed raw
    ("so\n\n$$x$$\n\nand more", ["so\n\n$", "$x$$\n\nand more"]),  # a closed $$ block waited for more
    ("$$\nx\n$$\n", ["$$\nx\n", "$$\n"]),  # a $$ block closed after its lines came was kept a paragraph: raw TeX
]


# ----- the live view ----------------------------------------------------------------------------------

def check_live(text: str, deltas: list[str]) -> None:
    assert "".join(deltas) == text
    final = render_answer(text)
    final_visible = visible(final)
    stream, live, so_far = AnswerStream("a"), LiveAnswer(), ""
    for delta in deltas:
        so_far += delta
        stream.feed(delta)
        for op in stream.flush():
            live.apply(op)
        complete = so_far.replace("\r", "")[: so_far.replace("\r", "").rfind("\n") + 1]
        rendered = [render_block(block) for block in split(complete)]
        settled = "".join(live.settled)
        prefixes = list(accumulate(rendered, initial=""))
        assert settled in prefixes, f"settled blocks differ from the static rendering of {complete!r}"
        done = max(i for i, p in enumerate(prefixes) if p == settled)  # an empty code block renders as ""
        assert done >= len(rendered) - 1, f"blocks of {complete!r} not settled: {rendered[done:-1]}"
        if done < len(rendered) and live.open is not None:
            want = top_tags(rendered[done])
            container = live.open[0]
            got = top_tags(live.open_html())
            if container == "<div></div>":  # drawn whole: its content is the block
                got = top_tags(live.open_html()[len('<div><div class="hermes-tail">'):-len("</div></div>")])
            assert not got or got[:len(want)] == want, f"open block of {complete!r} drawn as {got}, static has {want}"
        shown = visible(live.html())
        assert final_visible.startswith(shown), (
            f"after {so_far!r} the view shows {shown!r}, not a prefix of the final {final_visible!r}")
    for op in stream.close():
        live.apply(op)
    assert live.open is None and live.html() == final


def run(prop, corpus: str, examples: list) -> None:
    """Run a property with the profile's budget and say how many examples it ran, with which seed."""
    if settings().derandomize:
        how = "derandomized (its seed is fixed by the test)"
    else:  # a long run: a seed of its own, printed, so a failure can be run again (HYPOTHESIS_SEED=...)
        chosen = int(os.environ.get("HYPOTHESIS_SEED") or random.randrange(2**32))
        prop = seed(chosen)(prop)
        how = f"seed {chosen}"
    prop()
    print(f"[{corpus}] {len(examples)} examples, profile {settings.get_current_profile_name()}, {how}")
    assert len(examples) >= min(10, settings().max_examples)


@pytest.mark.parametrize("corpus", ["tuned", "held out"])
def test_the_live_view_matches_the_static_rendering_at_every_chunk_boundary(corpus):
    examples: list = []

    @settings(database=None)
    @given(chunked(CORPUS if corpus == "tuned" else HELD_OUT))
    def prop(case):
        examples.append(case)
        check_live(*case)

    for case in FOUND:
        prop = example(case)(prop)
    run(prop, corpus, examples)


# ----- the text view ----------------------------------------------------------------------------------

class Writes(io.StringIO):
    """A stream that remembers what was written after each delta."""


def text_view_output(deltas: list[str]) -> tuple[str, list[str]]:
    out = Writes()
    view = TextView(fake_turn(), out)
    seen = []
    seq = 0
    for delta in deltas:
        seq += 1
        view(ev.Token(delta, seq=seq, time=0.0))
        seen.append(out.getvalue())
    view(ev.SegmentEnd(seq=seq + 1, time=0.0))
    return out.getvalue(), seen


def check_text(text: str, deltas: list[str]) -> None:
    whole, _ = text_view_output([text])
    final, seen = text_view_output(deltas)
    assert final == whole
    so_far = ""
    for delta, shown in zip(deltas, seen, strict=True):
        so_far += delta
        assert whole.startswith(shown)  # nothing released twice or out of order
        complete = so_far[: so_far.rfind("\n") + 1]
        assert shown.count("\n") >= complete.count("\n"), f"a complete line of {so_far!r} is not out"


@pytest.mark.parametrize("corpus", ["tuned", "held out"])
def test_the_text_view_prints_the_same_text_at_every_chunking(corpus):
    examples: list = []

    @settings(database=None)
    @given(chunked(CORPUS if corpus == "tuned" else HELD_OUT))
    @example(("a\r\nb\r\n", ["a\r", "\nb\r\n"]))  # a line end split between two deltas
    def prop(case):
        examples.append(case)
        check_text(*case)

    run(prop, corpus, examples)
