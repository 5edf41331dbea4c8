"""The text view and the static rendering as pure functions of a turn's events."""
from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pytest

from hermes_jupyter import events as ev
from hermes_jupyter.safety.markdown import render_markdown, split_settled
from hermes_jupyter.safety.redact import StreamRedactor
from hermes_jupyter.views import static
from hermes_jupyter.views.text import TextView

KEY = "sk-proj-" + "AbCdEfGh1234" * 3


def fake_turn(prompt="do it"):
    config = SimpleNamespace(approvals="ask")
    return SimpleNamespace(prompt=prompt, config=config, session=SimpleNamespace(name="main"))


def transcript(*items):
    events, seq = [], 0
    for cls, fields in items:
        seq += 1
        events.append(cls(**fields, seq=seq, time=0.1 * seq))
    return events


TURN = transcript(
    (ev.TurnStarted, dict(session="main", prompt="do it", model="m", cwd="/tmp")),
    (ev.Reasoning, dict(text="thinking about it")),
    (ev.Token, dict(text="First I ")), (ev.Token, dict(text="look.")),
    (ev.SegmentEnd, {}),
    (ev.ToolStarted, dict(call_id="c1", name="terminal", args={"command": "ls"})),
    (ev.ToolCompleted, dict(call_id="c1", name="terminal", duration=0.2, is_error=False, result="a.txt")),
    (ev.ApprovalRequested, dict(request_id="r1", command="rm -rf x", description="recursive delete",
                                pattern_keys=("rm",), allow_permanent=True, timeout=60)),
    (ev.ApprovalResolved, dict(request_id="r1", choice="deny", by="user")),
    (ev.Token, dict(text="Done: **ok**")),
    (ev.Usage, dict(model="m", input_tokens=10, output_tokens=5, cost_usd=None, context_length=100000,
                    threshold_tokens=50000, last_prompt_tokens=10)),
    (ev.Done, dict(status="done", text="Done: **ok**")),
)


def test_blocks_keep_the_order_things_happened_in():
    kinds = [kind for kind, _ in static.segments(TURN)]
    assert kinds == ["reasoning", "answer", "tool", "approval", "answer"]


def test_static_html_shows_every_part():
    html = static.render_html(TURN, prompt="do it", session="main", history="nb.hermes.json")
    for part in ("<summary>Reasoning</summary>", "First I look.", "<b>terminal</b>", "a.txt",
                 "denied</b> (by you)", "<strong>ok</strong>", "10 in / 5 out tokens", "nb.hermes.json"):
        assert part in html


def test_text_view_transcript():
    out = io.StringIO()
    view = TextView(fake_turn(), out)
    for e in TURN:
        view(e)
    text = out.getvalue()
    assert "(thinking) thinking about it" in text
    assert "First I look." in text and "> terminal(command='ls')" in text and "done in 0.2s: a.txt" in text
    assert "-> denied by you" in text and text.rstrip().endswith("-- done · 10 in / 5 out tokens · context 0% of 100,000")


def test_a_secret_streamed_in_pieces_is_redacted_on_screen_and_in_the_static_rendering():
    pieces = ["my key is sk-pro", "j-AbCdEfGh1234AbCd", "EfGh1234AbCdEfGh1234", " keep it safe"]
    events = transcript(*[(ev.Token, dict(text=p)) for p in pieces], (ev.Done, dict(status="done", text="")))
    out = io.StringIO()
    view = TextView(fake_turn(), out)
    for e in events:
        view(e)
    assert KEY not in out.getvalue() and "[REDACTED]" in out.getvalue() and "keep it safe" in out.getvalue()
    html = static.render_html(events, prompt=f"use {KEY}", session="main")
    assert KEY not in html and "[REDACTED]" in html


def test_stream_redactor_releases_whole_lines_and_holds_pem_blocks():
    redactor = StreamRedactor(redact=lambda s: s.upper())
    assert redactor.feed("one two") == ""  # whole lines: "Authorization: Bearer x" spans words
    assert redactor.feed(" three\nfour") == "ONE TWO THREE\n"
    assert redactor.feed("\n-----BEGIN RSA PRIVATE KEY-----\nabc\ndef") == "FOUR\n"
    assert redactor.feed("\nmore\n") == ""  # nothing after an unfinished PEM block is released
    assert redactor.flush() == "-----BEGIN RSA PRIVATE KEY-----\nABC\nDEF\nMORE\n"
    long_line = StreamRedactor(redact=lambda s: s)
    released = long_line.feed("word " * 200)  # a line too long to hold whole is released in part
    assert released and 1000 - len(released) >= StreamRedactor.HOLD_CHARS


@pytest.mark.parametrize("hostile", [
    "<script>alert(1)</script>", '<img src=x onerror="alert(1)">', "[x](javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD4=)", '<svg onload="alert(1)"></svg>', "![i](javascript:alert(1))",
    '<a href="javascript:alert(1)">a</a>', "<iframe src=javascript:alert(1)>", "[x](JaVaScRiPt:alert(1))",
    "[x]( javascript:alert(1))", "<div onmouseover=alert(1)>x</div>",
])
def test_model_markdown_cannot_carry_script(hostile):
    html = render_markdown(hostile).lower()
    tags = re.findall(r"<[a-z][^>]*>", html)  # real tags; escaped text (&lt;...) is inert
    assert not [t for t in tags if re.match(r"<(script|iframe|svg|object|embed)", t)]
    assert not [t for t in tags if re.search(r"\son\w+=", t)]
    assert not [t for t in tags if re.search(r"(href|src)=\"\s*(javascript|data|vbscript):", t)]


def test_safe_links_and_tables_survive():
    html = render_markdown("[docs](https://example.org) | a | b |\n|---|---|\n| 1 | 2 |\n\n| h |\n|---|\n| c |")
    assert 'href="https://example.org"' in html and "<table>" in html


def test_split_settled_never_splits_inside_a_code_fence():
    text = "intro paragraph " * 30 + "\n\n```python\n" + "x = 1\n\n" * 40 + "```\n\nafter"
    settled, rest = split_settled(text)
    assert settled.count("```") % 2 == 0
    assert settled + rest == text
