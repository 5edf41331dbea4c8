"""Tool cards and the prompt as a person reads them, in every view: the live widget, the static
rendering and the text view. Arguments are never Python reprs; a long prompt is shown collapsed.
"""
from __future__ import annotations

import html
import io
import json
import re

import yaml
from hypothesis import given
from hypothesis import strategies as st

from hermes_jupyter import events as ev
from hermes_jupyter.util.text import cut
from hermes_jupyter.views import parts, static, toolargs
from hermes_jupyter.views.text import TextView

from .frontend import Frontend
from .kernel import fresh_kernel_fixtures
from .test_views import KEY, TURN, assert_shown_visibly, fake_turn, hidden_characters, transcript, trojan

ARG_CHARS = 120  # what agent/run.py keeps of an argument (snapshot_args)
CODE = ("labels = ['first', 'last']\n"
        "readings = {'north': [3, 5, 4], 'south': [7, 6, 8]}\n"
        "growth = {k: round(v[-1] / v[0] - 1, 2) for k, v in readings.items()}\n"
        "print(labels, growth)")
CHOICES = ["Bar chart", "Line chart", "Heatmap by weekday"]
SCRIPT = {"model": "cards-model", "context_length": 128000, "rules": [
    {"match": "cards please", "steps": [
        {"tool_calls": [{"name": "notebook_run_python", "arguments": {"code": CODE}}]},
        {"tool_calls": [{"name": "clarify", "arguments": {"question": "Which chart suits it best?",
                                                          "choices": CHOICES}}]},
        {"tool_calls": [{"name": "terminal", "arguments": {"command": "ls"}}]},
        {"text": "Done."}]},
    {"default": True, "steps": [{"text": "Read it."}]}]}

shared_kernel, kernel = fresh_kernel_fixtures("%load_ext hermes_jupyter\n%config Hermes.notebook = 'nb.ipynb'")


def text_view(events, turn=None) -> str:
    out = io.StringIO()
    view = TextView(turn or fake_turn(), out)
    for e in events:
        view(e)
    return out.getvalue()


def no_repr(shown: str) -> None:
    """What a Python repr of the arguments left: quotes around values, a literal \\n, a list's brackets."""
    shown = html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<style>.*?</style>", "", shown, flags=re.S)))
    for leftover in ("\\n", "=['", "='", '="', "['Bar chart'", "code=", "choices="):
        assert leftover not in shown, (leftover, shown)


# ----- real events: the scripted model calls notebook_run_python and clarify ------------------------------

def test_tool_cards_from_real_events_in_the_widget_the_static_rendering_and_the_text_view(kernel, tmp_path):
    script = tmp_path / "cards.yaml"
    script.write_text(yaml.safe_dump(SCRIPT))
    cell = kernel.run(f"%hermes -o t --approvals allow -m scripted:{script} cards please")
    view = Frontend(kernel, cell)
    view.hello()
    view.click("Line chart")
    final = view.final()
    view.pump(lambda: view.done)
    live = view.html()
    transcript_text = kernel.run("from hermes_jupyter.views import static\n"
                                 "print(static.render_text(t.events, t), end='')").stdout
    assert "-> answered: Line chart" in transcript_text and transcript_text.count("Done.") == 1
    for shown in (live, final["text/html"]):
        card = re.search(r'<details class="hermes-card hermes-tool hermes-ok"><summary>✓ <b>notebook_run_python</b> '
                         r"<small>code:</small> <code>labels = \[&#x27;first&#x27;, &#x27;last&#x27;\]</code> "
                         r"<small>\(\+2 lines\)</small> · done · [\d.]+s</summary>.*?</details>", shown, re.S)
        assert card, shown
        code = card.group(0)
        assert '<pre class="hermes-code highlight"><code class="language-python">' in code
        lines = html.unescape(re.sub(r"<[^>]+>", "", code.split("<pre", 1)[1].split("</pre>")[0].split(">", 1)[1]))
        assert lines.splitlines()[:2] == CODE.splitlines()[:2]  # line by line, as written (cut at the event's limit)
        assert '<span class="s1">' in code  # highlighted
        assert "<small>choices:</small> Bar chart / Line chart / Heatmap by weekday" in shown
        assert "<small>question:</small> Which chart suits it best?" in shown
        assert "<small>command:</small> <code>ls</code>" in shown
        no_repr(shown)
    assert "> notebook_run_python\n    labels = ['first', 'last']\n    readings = {'north'" in transcript_text
    clarify = next(line for line in transcript_text.splitlines() if line.startswith("> clarify "))
    assert sorted(clarify.removeprefix("> clarify ").split(" · ")) == [
        "choices: Bar chart / Line chart / Heatmap by weekday", "question: Which chart suits it best?"]
    assert "> terminal command: ls\n" in transcript_text
    no_repr(transcript_text.replace("labels = ['first', 'last']", "").replace("{'north'", ""))


def test_a_long_prompt_is_collapsed_live_and_left_out_of_the_saved_output_but_kept_whole_in_the_history(kernel):
    lines = [f"{i:05d} region north sales {i * 7 % 100} growth, month over month" for i in range(5000)]
    prompt = "Summarize this log:\n" + "\n".join(lines) + f"\nmy key is {KEY}\nthe last line"
    assert len(prompt) > 200_000
    cell = kernel.run(f"%%hermes -o t\n{prompt}")
    view = Frontend(kernel, cell)
    view.hello()
    view.pump(lambda: bool(view.parts))
    head = view.parts["head"]
    assert "<b>Summarize this log:<br>00000 region" in head
    fold = re.search(r'<details class="hermes-prompt-more"><summary><small>… ([\d,]+) more lines</small></summary>'
                     r'<div class="hermes-prompt-rest">(.*)</div></details>', head, re.S)
    assert fold, head[:2000]
    assert int(fold.group(1).replace(",", "")) == 5002 - 7  # 8 lines shown of 5,003
    assert "the last line" in fold.group(2) and "[REDACTED]" in fold.group(2) and KEY not in head
    saved = view.final()
    assert len(saved["text/html"].encode()) < 30_000
    assert "more lines (the whole prompt is in the history, <code>nb.hermes.json</code>)" in saved["text/html"]
    assert "the last line" not in saved["text/html"] and "00000 region" in saved["text/html"]
    kernel.run("t.wait(60)")
    history = json.loads((kernel.cwd / "nb.hermes.json").read_text())
    kept = history["sessions"]["main"]["turns"][-1]["prompt"]
    assert kept.startswith("Summarize this log:\n00000") and kept.endswith("my key is [REDACTED]\nthe last line")
    assert len(kept) > 200_000


# ----- the rules, on made-up events ----------------------------------------------------------------------

def tool_events(name: str, args: dict[str, str], result: str = "ok") -> list[ev.Event]:
    return transcript((ev.ToolStarted, dict(call_id="c1", name=name, args=args)),
                      (ev.ToolCompleted, dict(call_id="c1", name=name, duration=0.1, is_error=False, result=result)))


def test_a_long_command_is_a_code_block_and_a_short_one_stays_in_the_title():
    long = "for f in *.csv; do\n  wc -l \"$f\"\ndone"
    card = parts.tool_card(*tool_events("terminal", {"command": long}))
    assert "<summary>✓ <b>terminal</b> <small>command:</small> <code>for f in *.csv; do</code> <small>(+2 lines)</small>" \
        in card
    assert '</summary><div class="hermes-arg"><pre class="hermes-code highlight"><code class="language-bash">' in card
    assert '<div class="hermes-arg"><small>result:</small><pre>ok</pre></div></details>' in card
    assert "> terminal\n    for f in *.csv; do\n      wc -l \"$f\"\n    done\n" in text_view(tool_events("terminal",
                                                                                                    {"command": long}))
    short = parts.tool_card(*tool_events("terminal", {"command": "ls -la"}))
    assert short.startswith('<details class="hermes-card hermes-tool hermes-ok"><summary>✓ <b>terminal</b> '
                            "<small>command:</small> <code>ls -la</code> · done · 0.1s</summary>")


def test_written_files_are_highlighted_by_their_extension():
    card = parts.tool_card(*tool_events("write_file", {"path": "src/app.js", "content": "const a = 1;\nexport {a};"}))
    assert "<small>path:</small> <code>src/app.js</code>" in card
    assert "<small>content:</small><pre class=\"hermes-code highlight\"><code class=\"language-javascript\">" in card


def test_lists_of_records_are_bulleted():
    todos = str([{"id": "1", "content": "Load the data", "status": "done"},
                 {"id": "2", "content": "Plot the rentals by weekday", "status": "pending"}])
    args = {"todos": cut(todos, ARG_CHARS)}
    card = parts.tool_card(*tool_events("todo", args))
    assert "<li>id: 1, content: Load the data, status: done</li>" in card
    assert "<small>todos:</small> id: 1, content: Load the data, status: … <small>(+1 more…)</small>" in card
    assert "> todo\n    - id: 1, content: Load the data, status: done\n" in text_view(tool_events("todo", args))


def test_tool_arguments_show_their_hidden_characters_in_every_view():
    """The repr escaped them; the cards that replaced it must too (the command as it ran)."""
    for c in hidden_characters()[::7] + ["\u2067", "\u202e", "\u200b", "\x1b", "\r"]:
        for args in ({"command": trojan(c)}, {"code": f"x = 1\n{trojan(c)}"}, {"path": trojan(c)},
                     {"choices": str(["a", trojan(c)])}):
            events = [TURN[0], *tool_events("terminal", args), TURN[-1]]
            for shown in (parts.tool_card(*events[1:3]), static.render_html(events, prompt="p", session="main"),
                          text_view(events)):
                assert_shown_visibly(re.sub(r"<[^>]+>", "", shown), c, 1)  # as read: highlighting splits the text


def test_hostile_arguments_stay_escaped():
    hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    for args in ({"command": hostile}, {"code": f"{hostile}\n{hostile}"}, {"choices": str([hostile, "b"])},
                 {"question": hostile}):
        card = parts.tool_card(*tool_events(hostile, args, result=hostile))
        assert "<script" not in card and "<img" not in card, card


# ----- the parser of cut lists, a property ----------------------------------------------------------------

items = st.lists(st.one_of(st.text(max_size=30), st.integers(), st.booleans()), max_size=12)


@given(items, st.integers(min_value=2, max_value=160))
def test_a_list_cut_anywhere_reads_as_its_first_items(values, limit):
    """A list as the event carries it (str(), then cut with "…"): shown as a list whose items are the list's
    first items, the last one perhaps cut, and "…" marking the cut; never as the repr."""
    shown = cut(str(values), limit)
    found = toolargs.read_args({"choices": shown})[0]
    if found.kind != "list":
        assert shown.endswith("…") and found.text == shown  # a cut the parser could not close: the text as it is
        return
    want = [toolargs.reveal(str(v)) for v in values]
    got = list(found.items)
    if not shown.endswith("…"):
        assert got == want
        return
    if got and got[-1] == "…":
        got.pop()
    for i, item in enumerate(got):
        if item.endswith("…") and i == len(got) - 1:
            assert want[i].startswith(item[:-1])
        else:
            assert item == want[i]


@given(st.text(max_size=200))
def test_text_arguments_are_shown_as_they_are(text):
    """A string is never quoted or escaped beyond its hidden characters, whatever it holds."""
    found = toolargs.read_args({"question": text})[0]
    if found.kind == "text":
        assert found.text == toolargs.reveal(text)
