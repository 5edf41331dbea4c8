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
    assert "First I look." in text and "> terminal command: ls\n" in text and "done in 0.2s: a.txt" in text
    assert "-> denied by you" in text and text.rstrip().endswith("-- done · 10 in / 5 out tokens · context 0% of 100,000")


def test_a_turn_stopped_before_the_provider_reported_usage_does_not_say_it_cost_nothing():
    """A stream stopped (or failed) before its end carries no usage: "0 in / 0 out tokens" and an empty context
    gauge read as "free" after ~5,000 prompt tokens were sent (found by a newcomer)."""
    events = transcript((ev.Token, dict(text="partial answer")), (ev.Cancelled, dict(message="Cancelled by user")),
                        (ev.Usage, dict(model="m", input_tokens=0, output_tokens=0, cost_usd=None, context_length=128000,
                                        threshold_tokens=64000, last_prompt_tokens=0)),
                        (ev.Done, dict(status="cancelled", text="partial answer")))
    html = static.render_html(events, prompt="p", session="main", history=None)
    out = io.StringIO()
    view = TextView(fake_turn(), out)
    for e in events:
        view(e)
    for shown in (html, out.getvalue()):
        assert "usage not reported" in shown
        assert "0 in / 0 out" not in shown and "context 0%" not in shown and "<meter" not in shown


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


def test_reasoning_streamed_in_pieces_is_redacted_in_the_text_view():
    pieces = ["the key is sk-pro", "j-AbCdEfGh1234AbCd", "EfGh1234AbCdEfGh1234\npassword: ", "hunter2hunter2", " ok"]
    events = transcript(*[(ev.Reasoning, dict(text=p)) for p in pieces], (ev.Token, dict(text="Done.")),
                        (ev.Done, dict(status="done", text="Done.")))
    out = io.StringIO()
    view = TextView(fake_turn(), out)
    for e in events:
        view(e)
    text = out.getvalue()
    assert KEY not in text and "hunter2" not in text
    # one line, as before: the redactor saw the reasoning's own lines ("password: x" starts one)
    assert text.startswith("(thinking) the key is [REDACTED] password: [REDACTED] ok\nDone.")


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


# ----- the live view's streaming (views/stream.py): what it sends, and that it ends as the static rendering ---

from hermes_jupyter.models.scripted.script import lorem  # noqa: E402
from hermes_jupyter.views import parts  # noqa: E402
from hermes_jupyter.views.blocks import render_answer, split  # noqa: E402
from hermes_jupyter.views.inline import autoclose, scan  # noqa: E402
from hermes_jupyter.views.stream import AnswerStream  # noqa: E402

PROSE = lorem(1500)
SHAPES = {
    "paragraphs": PROSE,
    "one paragraph": PROSE.replace("\n\n", " "),
    "code": "Here it is:\n\n```python\n" + "\n".join(
        f"def f{i}(x):\n    return x * {i} + 'abc'  # note {i}" for i in range(120)) + "\n```\n\nThat is all.",
    "table": "| id | name | value |\n|---:|---|---|\n" + "\n".join(f"| {i} | item *{i}* | `{i * 3}` |" for i in range(300)),
    "list": "Steps:\n\n" + "\n".join(f"{i + 1}. step **{i}** then more" for i in range(200)) + "\n\nDone.",
    "mixed": ("# Title\n\nSome *intro* with `code`.\n\n> a quote\n> more\n\n- one\n- two\n\n  still two\n\n---\n\n"
              "| a | b |\n|---|---|\n| 1 | 2 |\n\n```\nplain\n```\n\n```js\n```\nText right after an empty block.\n"
              "Setext heading\n===\n\n~~~\ntilde fence\n~~~\n[ref]: https://example.org\n\nSee [ref]."),
}


def stream(text: str, chunk: int = 4, per_flush: int = 20) -> tuple[list[list], str]:
    """Feed `text` as a model would (chunk characters at a time), flushing as the view does."""
    s = AnswerStream("a")
    batches = []
    for start in range(0, len(text), chunk * per_flush):
        for i in range(start, min(len(text), start + chunk * per_flush), chunk):
            s.feed(text[i:i + chunk])
        batches.append(s.flush())
    batches.append(s.close())
    settled = "".join(op[2] for ops in batches for op in ops if op[0] == "settle")
    return batches, settled


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("chunk", [1, 4, 13])
def test_a_streamed_answer_ends_exactly_as_the_static_rendering(shape, chunk):
    _, settled = stream(SHAPES[shape], chunk=chunk, per_flush=7)
    assert settled == render_answer(SHAPES[shape])


def test_each_block_is_rendered_once_and_the_blocks_partition_the_text():
    for text in SHAPES.values():
        assert "".join(split(text)) == text


@pytest.mark.parametrize("shape", ["paragraphs", "one paragraph", "code", "table", "list"])
def test_stream_bytes_grow_linearly_with_the_answer(shape):
    import json

    def size(text):
        return sum(len(json.dumps(ops)) for ops in stream(text)[0])

    text = SHAPES[shape]
    if shape in ("paragraphs", "one paragraph"):
        short, long = text[:4000], text[:16000]
    else:
        lines = text.splitlines(keepends=True)
        short, long = "".join(lines[: len(lines) // 4]), text
    assert size(long) / size(short) <= 4.5 * len(long) / len(short) / 4 + 0.5


def test_paragraphs_are_cut_at_any_unicode_space_outside_markers():
    # scan() finds plain text in C (a regex per run between markers): its cut points must stay those of
    # str.isspace, every space of the ones outside open delimiters, code spans and links.
    text = "one\u00a0two three\u3000four *not\u2003here* five\tsix `no cut` [no\u2002cut](x y) seven\u2029eight"
    cuts = scan(text).cuts
    spaces = [i for i, ch in enumerate(text) if ch.isspace()]
    inside = [(text.index("*not"), text.index("here*") + 5), (text.index("`no"), text.index("cut`") + 4),
              (text.index("[no"), text.index("y)") + 2)]
    assert cuts == [i for i in spaces if not any(a < i < b for a, b in inside)]
    assert len(cuts) >= 8


def test_open_markers_are_closed_while_they_stream():
    assert autoclose("shorter waves, *Rayleigh scatt") == "shorter waves, *Rayleigh scatt*"
    assert autoclose("**much mo") == "**much mo**"
    assert autoclose("the `blu") == "the `blu`"
    assert autoclose("see [the article](https://en.wiki") == "see the article"
    assert autoclose("2 * 3 = 6 and snake_case") == "2 * 3 = 6 and snake_case"
    text = ("The sky is blue because of *Rayleigh scattering*: short waves scatter **much more** than long ones, "
            "so `blue` light comes from everywhere; see [the article](https://example.org/x) and ~~not~~ more. ") * 4
    for ops in stream(text, chunk=3, per_flush=5)[0]:
        for op in ops:
            if op[0] in ("tail", "grow"):
                shown = re.sub(r"<[^>]+>", "", op[2])
                assert not re.search(r"[*`~\[\]]", shown), op  # a marker never shows as text


def test_a_secret_streamed_in_pieces_never_reaches_the_live_view():
    text = f"Here is the key: {KEY} keep it.\n\nAnd a code block:\n\n```\ntoken = '{KEY}'\n```\n"
    for chunk in (1, 3, 7):
        for ops in stream(text, chunk=chunk, per_flush=2)[0]:
            for op in ops:
                assert KEY[:20] not in json_dumps(op), op


def json_dumps(value) -> str:
    import json
    return json.dumps(value)


def test_a_table_header_waits_for_its_delimiter_row():
    s = AnswerStream("a")
    s.feed("| colour | wavelength |\n")
    assert not [op for op in s.flush() if op[0] in ("tail", "grow")]
    s.feed("|---|---:|\n| blue | 450 |\n")
    ops = s.flush()
    assert ops[0][0] == "open" and "<th>colour</th>" in ops[0][2]
    assert any(op[0] == "grow" and "<td>blue</td>" in op[2] for op in ops)


def test_code_is_highlighted_in_a_box_and_an_empty_block_leaves_nothing():
    html = render_answer("```python\ndef f(x):\n    return 'a'  # c\n```\n\n```\n```\n")
    assert html.count("<pre") == 1 and 'class="hermes-code highlight"' in html
    assert '<span class="k">def</span>' in html and '<span class="c1"># c</span>' in html


HOSTILE = [
    "<script>alert(1)</script>", '<img src=x onerror="alert(1)">', "[x](javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD4=)", '<svg onload="alert(1)"></svg>', "![i](javascript:alert(1))",
    '<a href="javascript:alert(1)">a</a>', "<iframe src=javascript:alert(1)>", "[x](JaVaScRiPt:alert(1))",
    "[x]( javascript:alert(1))", "<div onmouseover=alert(1)>x</div>", '```html"><script>alert(1)</script>\nx\n```',
    "```js\n</code></pre><script>alert(1)</script>\n```", "| <script>a</script> | b |\n|---|---|\n| <img onerror=x> | c |",
    "- <script>x</script>\n- [y](javascript:z)", "*<img src=x onerror=alert(1)>", "`<script>`",
]


def assert_inert(html: str) -> None:
    lowered = html.lower()
    tags = re.findall(r"<[a-z][^>]*>", lowered)  # real tags; escaped text (&lt;...) is inert
    assert not [t for t in tags if re.match(r"<(script|iframe|svg|object|embed|style)", t)], html
    assert not [t for t in tags if re.search(r"\son\w+=", t)], html
    assert not [t for t in tags if re.search(r"(href|src)=\"\s*(javascript|data|vbscript):", t)], html


def live_strings(text):
    """Every string the live view sends for `text` streamed in 1- and in 5-character chunks."""
    for chunk in (1, 5):
        for ops in stream(text, chunk=chunk, per_flush=3)[0]:
            for op in ops:
                yield from (value for value in op[2:] if isinstance(value, str))


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_model_text_stays_inert_live_and_saved(hostile):
    text = f"Intro.\n\n{hostile}\n\nmiddle {hostile} end\n\n{hostile}"
    assert_inert(render_answer(text))
    for value in live_strings(text):
        assert_inert(value)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_tool_output_questions_and_errors_stay_inert(hostile):
    events = transcript(
        (ev.TurnStarted, dict(session="main", prompt=hostile, model=hostile, cwd="/tmp")),
        (ev.Reasoning, dict(text=hostile)),
        (ev.ToolStarted, dict(call_id="c1", name=hostile, args={"command": hostile})),
        (ev.ToolCompleted, dict(call_id="c1", name=hostile, duration=0.2, is_error=False, result=hostile)),
        (ev.ApprovalRequested, dict(request_id="r1", command=hostile, description=hostile,
                                    pattern_keys=("rm",), allow_permanent=True, timeout=60)),
        (ev.ApprovalResolved, dict(request_id="r1", choice="deny", by="user")),
        (ev.ClarifyRequested, dict(request_id="q1", question=hostile, choices=(hostile, "b"), timeout=60)),
        (ev.ClarifyResolved, dict(request_id="q1", answer=hostile, by="user")),
        (ev.Error, dict(error_kind="auth", message=hostile, hint=hostile)),
        (ev.Status, dict(level="warn", text=hostile)),
        (ev.Done, dict(status="failed", text="")),
    )
    html = static.render_html(events, prompt=hostile, session=hostile, history=hostile)
    assert_inert(html.replace(f"<style>{html.split('<style>')[1].split('</style>')[0]}</style>", ""))
    start = events[2]
    assert_inert(parts.tool_card(start, None, running=True))
    assert_inert(parts.approval_card(events[4], None, pending=True))
    assert_inert(parts.clarify_card(events[6], None, pending=True))
    assert_inert(parts.head(hostile, hostile, hostile, hostile))


def test_the_static_rendering_reads_without_styles():
    """Where <style> and inline styles are stripped (untrusted notebook, GitHub), semantic tags carry it."""
    html = static.render_html(TURN, prompt="do it", session="main", history="nb.hermes.json")
    for tag in ("<details", "<summary>", "<blockquote", "<small>", "<meter", "<b>"):
        assert tag in html
    without_styles = re.sub(r"<style>.*?</style>", "", html)
    assert "style=" not in re.sub(r'<span class="hermes-threshold"[^>]*>', "", without_styles)


def test_the_text_fallback_is_the_text_view_transcript():
    out = io.StringIO()
    view = TextView(fake_turn(), out)
    events = transcript(*[(ev.Token, dict(text=w + " ")) for w in PROSE.split()[:300]],
                        (ev.Done, dict(status="done", text="")))
    for e in events:
        view(e)
    assert static.render_text(events, fake_turn()) == out.getvalue()


def test_a_view_connecting_while_changes_wait_for_a_flush_gets_each_change_once():
    """The boot holds the document as it is; changes not sent yet go first to the views that lack them."""
    from hermes_jupyter.views.document import Document

    doc = Document("<div>head</div>", "<div>foot</div>")
    sent: list[dict] = []
    doc.root.send = lambda content, buffers=None: sent.append(content)
    doc._channel.receive({"type": "hello", "page": "a", "have": [], "mid": "1"})
    with doc._lock:
        doc._new_part("<p>new</p>")  # queued for the next flush
    doc._channel.receive({"type": "hello", "page": "b", "have": [], "mid": "2"})
    doc._channel.receive({"type": "hello", "page": "b", "have": [], "mid": "2"})  # the same message again
    assert [m.get("type", "ops") for m in sent] == ["boot", "ops", "boot"]
    assert sent[1]["n"] == sent[2]["n"] == 1  # the new view skips the batch: its boot has it
    assert ["add", "p1", "<p>new</p>"] in sent[2]["doc"] and "js" in sent[0] and "js" in sent[2]
    doc._channel.close()


def test_plain_prose_skips_the_parser_and_renders_exactly_as_markdown_it():
    import random

    from hermes_jupyter.safety.markdown import render_markdown
    from hermes_jupyter.views.blocks import plain_paragraph

    words = [*PROSE.split()[:300], "don't", '"quoted"', "(aside)", "50%", "a/b", "e.g.", "well-known", "2026",
             "1.5", "—", "…", "Zürich", "3)", "-", "--", "1.", "+", "http://x.y/z", "a:b", "*x*", "`c`", "_u_"]
    rng = random.Random(7)
    fast = 0
    for _ in range(4000):
        parts = [rng.choice(["", " ", "\n", "   ", "    ", "\n    "])]
        for _ in range(rng.randint(1, 25)):
            parts += [rng.choice(words), rng.choice([" ", " ", " ", "\n", "  ", " \n", "\n   ", "\n    ", "\n\n"])]
        text = "".join(parts)
        html = plain_paragraph(text)
        if html is not None:
            fast += 1
            assert html == render_markdown(text), repr(text)
    assert fast > 200  # taken often (for the texts without markup)


def test_error_hints_show_commands_as_code_and_name_this_kernels_config_file(monkeypatch, tmp_path):
    """The hints' `code` spans showed as literal backticks, and the rate-limit hint named ~/.hermes/config.yaml
    whatever HERMES_HOME said (found by a newcomer)."""
    from hermes_jupyter.agent.failures import classify
    from hermes_jupyter.views import parts

    monkeypatch.setenv("HERMES_HOME", str(tmp_path / "hh"))
    auth = classify(RuntimeError("HTTP 401: Invalid API key provided"), model="m<x>", base_url="http://h/<b>")
    rate = classify(RuntimeError("HTTP 429: rate limit reached"), model="m")
    assert str(tmp_path / "hh" / "config.yaml") in rate.hint
    for failure in (auth, rate):
        html = parts.error_card(ev.Error(error_kind=failure.kind, message=failure.message, hint=failure.hint,
                                         seq=1, time=0.0))
        hint = html.partition("What to do:")[2]
        assert "`" not in hint and "<b>" not in hint
        if "`" in failure.hint:
            assert "<code>" in hint


@pytest.mark.parametrize("blocking", [False, True], ids=["cell returned", "cell waits"])
def test_the_text_view_offers_only_what_the_user_can_do_while_the_cell_waits(blocking):
    """A cell blocked on its turn takes no code: '_hermes.cancel()' and '_hermes.approve(...)' could not be typed
    (found by a newcomer); an interrupt of the kernel stops it, and approvals are asked at the prompt."""
    events = transcript((ev.Waiting, dict(model="m", seconds=13, limit=25, started=False)),
                        (ev.ApprovalRequested, dict(request_id="r1", command="rm -rf x", description="delete",
                                                    pattern_keys=("rm",), allow_permanent=False, timeout=60)))
    out = io.StringIO()
    view = TextView(fake_turn(), out, label="_hermes", blocking=blocking)
    for e in events:
        view(e)
    text = out.getvalue()
    assert "$ rm -rf x" in text and "no reply from m for 13 s" in text
    assert ("_hermes.cancel()" in text and "_hermes.approve(" in text) is not blocking
    assert ("interrupt of the kernel" in text) is blocking


# ----- Markdown images: the model picks no URL that the page loads by itself (a tracking/exfiltration channel) ---

PIXEL = "http://127.0.0.1:9/pixel.png?data=the-users-private-data"


def image_cases() -> dict[str, tuple[str, str | None]]:
    """Answer text with an image -> the URL its "[image: ...]" link must go to (None: no link)."""
    prose = " ".join(PROSE.split()[:120])  # long enough for the live view to freeze inline pieces around it
    return {
        "inline": (f"{prose} ![chart]({PIXEL}) {prose}", PIXEL),
        "with a title": (f'See ![chart]({PIXEL} "the chart").', PIXEL),
        "angle brackets": (f"![chart](<{PIXEL}>)", PIXEL),
        "reference": (f"Here: ![chart][px] and more.\n\n[px]: {PIXEL}", PIXEL),
        "collapsed reference": (f"Here: ![chart][].\n\n[chart]: {PIXEL}", PIXEL),
        "shortcut reference": (f"Here: ![chart].\n\n[chart]: {PIXEL}", PIXEL),
        "inside a link": (f"[![chart]({PIXEL})](https://example.org/page)", "https://example.org/page"),
        "table cell": (f"| a | b |\n|---|---|\n| ![chart]({PIXEL}) | x |\n| y | z |", PIXEL),
        "list item": (f"- one\n- two ![chart]({PIXEL})\n\n  still two\n- three", PIXEL),
        "quote and heading": (f"# ![chart]({PIXEL})\n\n> quoted ![chart]({PIXEL})", PIXEL),
        "upper-case scheme": ("![chart](HTTP://127.0.0.1:9/p.png)", "HTTP://127.0.0.1:9/p.png"),
        "scheme as entities": ("![chart](&#104;ttp://127.0.0.1:9/p.png)", "http://127.0.0.1:9/p.png"),
        "protocol-relative": ("![chart](//127.0.0.1:9/p.png)", None),
        "relative": ("![chart](pixel.png?data=x)", None),
        "mailto": ("![chart](mailto:a@example.org)", None),
        "data": ("![chart](data:image/png;base64,iVBORw0KGgo=)", None),
        "svg data": ("![chart](data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=)", None),
        "javascript": ("![chart](javascript:alert(1))", None),
        "ftp": ("![chart](ftp://127.0.0.1:9/p.png)", None),
        "raw html": (f'<img src="{PIXEL}"> and <IMG SRC={PIXEL}>', None),
        "html in the alt text": (f'![<img src="{PIXEL}">]({PIXEL})', PIXEL),
        "escaped tricks": (f'![x"><img src={PIXEL}>](http://127.0.0.1:9/"onerror=alert(1))',
                           "http://127.0.0.1:9/%22onerror=alert(1)"),
        "unfinished while streaming": (f"{prose} ![chart]({PIXEL}", None),
    }


def assert_loads_nothing(html: str) -> None:
    """No tag that makes the browser fetch: <img> only with data: (code outputs), no url() in a style."""
    tags = re.findall(r"<[a-z][^>]*>", html.lower())
    assert not [t for t in tags if t.startswith("<img") and not re.search(r'\ssrc="data:image/', t)], html
    assert not [t for t in tags if re.search(r"\s(src|srcset|background|poster)=", t) and not t.startswith("<img")]
    assert not [t for t in tags if "url(" in t], html


def assert_image_link(html: str, url: str | None) -> None:
    if url is not None:
        assert f'<a href="{url}"' in html and "[image: " in html, html


@pytest.mark.parametrize("case", image_cases())
def test_a_markdown_image_is_a_link_in_every_rendering_of_the_answer(case):
    from hermes_jupyter.views.export import session_html

    text, url = image_cases()[case]
    for html in (render_markdown(text), render_answer(text)):
        assert_loads_nothing(html)
        assert_image_link(html, url)
    for value in live_strings(text):
        assert_loads_nothing(value)
    events = transcript(
        (ev.TurnStarted, dict(session="main", prompt=text, model="m", cwd="/tmp")),
        (ev.ToolStarted, dict(call_id="c1", name="read_file", args={"path": text})),
        (ev.ToolCompleted, dict(call_id="c1", name="read_file", duration=0.2, is_error=False, result=text)),
        (ev.Token, dict(text=text)),
        (ev.Done, dict(status="done", text=text)),
    )
    html = static.render_html(events, prompt=text, session="main", history="nb.hermes.json")
    assert_loads_nothing(html)
    assert_image_link(html, url)
    record = {"turns": [{"prompt": text, "answer": text, "status": "done", "model": "m",
                         "tools": [{"name": "read_file", "args": {"path": text}, "snippet": text}]}]}
    exported = session_html(SimpleNamespace(name="main", record=lambda: record))
    assert_loads_nothing(exported)
    assert_image_link(exported, url)


def test_code_outputs_keep_their_own_images_but_their_html_and_markdown_load_nothing():
    from hermes_jupyter.notebook.outputs import display_html

    png = display_html({"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    assert png.startswith('<img src="data:image/png;base64,iVBORw0KGgo="')  # a figure the agent's code drew
    for text, url in image_cases().values():
        markdown = display_html({"text/markdown": text})
        assert_loads_nothing(markdown)
        assert_image_link(markdown, url)
    shown = display_html({"text/html": f'<p>hi <img src="{PIXEL}"> <img src="data:image/png;base64,AA==">'
                                       f'<video poster="{PIXEL}"></video></p><div style="background:url({PIXEL});'
                                       'color:red">styled</div><table><tr><td style="text-align:right">1</td></tr></table>'})
    assert_loads_nothing(shown)
    assert "hi" in shown and "color:red" in shown and "text-align:right" in shown


# ----- a command to approve is shown as it will run: no hidden character reorders or hides a part of it ---

def hidden_characters() -> list[str]:
    """Every format character (bidi controls, zero-width ones, BOM, tags...), line and paragraph
    separators and control characters but newline and tab: each shows nothing, or moves text."""
    import sys
    import unicodedata

    found = [chr(c) for c in range(sys.maxunicode + 1)
             if unicodedata.category(chr(c)) in ("Cf", "Zl", "Zp", "Cc") and chr(c) not in "\n\t"]
    named = [*map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)), *map(chr, range(0x200B, 0x2010)),
             "\u061c", "\u2028", "\u2029", "\u2060", "\ufeff", "\u00ad", "\r", "\x1b", "\x7f"]
    assert set(named) <= set(found)
    return found


def trojan(c: str) -> str:
    """The newcomer's command with `c` at the start, inside words, twice in a row and at the end."""
    return f"{c}echo cleaning up {c}; rm -rf ./vic{c}tim #{c}{c} old logs{c}"


def assert_shown_visibly(shown: str, c: str, times: int) -> None:
    import html

    assert c not in html.unescape(shown), (hex(ord(c)), shown)
    assert html.unescape(shown).count(c.encode("unicode_escape").decode()) >= times, (hex(ord(c)), shown)


def asked_at_the_prompt(command: str) -> str:
    """The terminal's question for an approval of `command` (views/prompter.py)."""
    from hermes_jupyter.engine import ApprovalRequest
    from hermes_jupyter.views.prompter import Prompter

    asked: list[str] = []
    Prompter(SimpleNamespace(approve=lambda *a, **k: None), ask=lambda q: asked.append(q) or "deny",
             say=lambda _: None)._approval(ApprovalRequest("r1", command, "recursive delete", ("rm",), True, 60))
    return asked[0]


def exports(command: str) -> tuple[str, str]:
    """The session's Markdown and HTML exports (/export) with an approval of `command`."""
    from hermes_jupyter.views.export import session_html, session_markdown

    record = {"turns": [{"prompt": "do it", "status": "done", "model": "m", "approvals": [
        {"command": command, "description": "recursive delete", "choice": "deny", "by": "user"}]}]}
    session = SimpleNamespace(name="main", record=lambda: record)
    return session_markdown(session), session_html(session)


def test_a_command_to_approve_shows_its_hidden_characters_in_every_view():
    assert parts.approval_card(TURN[7], None, pending=True).count("<pre>rm -rf x</pre>") == 1  # plain stays as is
    for c in hidden_characters():
        command = trojan(c)
        request = ev.ApprovalRequested(request_id="r1", command=command, description="recursive delete",
                                       pattern_keys=("rm",), allow_permanent=True, timeout=60, seq=1, time=0.1)
        resolved = ev.ApprovalResolved(request_id="r1", choice="deny", by="user", seq=2, time=0.2)
        events = [TURN[0], request, resolved, TURN[-1]]
        text = io.StringIO()
        view = TextView(fake_turn(), text)
        for e in events:
            view(e)
        for shown in (parts.approval_card(request, None, pending=True),  # the live card, with its buttons
                      parts.approval_card(request, resolved),
                      static.render_html(events, prompt="do it", session="main", history="nb.hermes.json"),
                      text.getvalue(), static.render_text(events, fake_turn()), asked_at_the_prompt(command),
                      *exports(command)):
            assert_shown_visibly(shown, c, command.count(c))


@pytest.mark.parametrize("by,shown", [("user", "-> no answer given; the agent will choose"),
                                      ("timeout", "-> no answer (nobody answered in time); the agent will choose")])
def test_a_question_left_unanswered_says_why_once(by, shown):
    """An empty answer read "no answer (no answer)" (found by a newcomer)."""
    out = io.StringIO()
    view = TextView(fake_turn(), out)
    view(transcript((ev.ClarifyResolved, dict(request_id="q1", answer=None, by=by)))[0])
    assert shown in out.getvalue()
