"""The turn's state and its one reducer: every event type handled (mypy proves it), pure, total, and
the same state whichever way the events are folded. Properties over generated turns (Hypothesis;
HYPOTHESIS_PROFILE=long runs thousands)."""
from __future__ import annotations

import re
import subprocess
import sys
import typing
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hermes_jupyter import events as ev
from hermes_jupyter import state as turn_state
from hermes_jupyter.state import TurnState, fold, reduce
from tests.test_dispatch import event_classes

ROOT = Path(__file__).resolve().parent.parent


def concrete_event_types() -> set[type]:
    return set(event_classes())


def test_the_union_of_events_names_every_event_type():
    import hermes_jupyter.notebook.outputs  # noqa: F401  (any module that could define one)

    assert ev.Done in concrete_event_types()  # the walk can fail: it must find these
    assert set(typing.get_args(ev.AnyEvent)) == concrete_event_types()


def test_mypy_fails_when_the_reducer_misses_an_event_type(tmp_path):
    """The reducer with one case taken out no longer type-checks: assert_never sees the type left over."""
    source = (ROOT / "hermes_jupyter" / "state.py").read_text()
    case = re.compile(r"\n        case ev\.Usage\(\):\n            return [^\n]*\n")
    assert case.search(source), "the reducer has a case for Usage"
    (tmp_path / "reducer_copy.py").write_text(case.sub("\n", source))
    (tmp_path / "reducer_whole.py").write_text(source)

    def mypy(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent",
                               "--ignore-missing-imports", str(tmp_path / name)],
                              capture_output=True, text=True, cwd=ROOT, timeout=240)

    whole, missing = mypy("reducer_whole.py"), mypy("reducer_copy.py")
    assert whole.returncode == 0, whole.stdout
    assert missing.returncode == 1 and "assert_never" in missing.stdout and "Usage" in missing.stdout, missing.stdout


# ----- generated turns ----------------------------------------------------------------------------

TEXT = st.text(alphabet=st.sampled_from(["a", "b", " ", "\n", "`", "*", "#", "-", "<", ">", "é", "1"]),
               max_size=12) | st.sampled_from(["```python\n", "```\n", "\n\n", "password: hunter2 ", "**x**"])
OUTPUTS = st.sampled_from([
    {"output_type": "stream", "name": "stdout", "text": "printed\n"},
    {"output_type": "stream", "name": "stderr", "text": "warned\n"},
    {"output_type": "display_data", "data": {"text/plain": "42"}, "metadata": {}},
    {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": ["ValueError: bad"]},
    {"output_type": "clear_output"},
])
STEPS = st.lists(st.one_of(
    st.tuples(st.just("token"), TEXT), st.tuples(st.just("reasoning"), TEXT), st.tuples(st.just("segment_end")),
    st.tuples(st.just("tool"), st.sampled_from(["terminal", "read_file", "notebook_run_python"])),
    st.tuples(st.just("tool_end"), st.booleans(), TEXT),
    st.tuples(st.just("approval"), st.booleans()), st.tuples(st.just("approval_resolved"),
                                                             st.sampled_from(["once", "session", "always", "deny"]),
                                                             st.sampled_from(["user", "policy", "timeout", "cancel"])),
    st.tuples(st.just("clarify"), st.lists(TEXT, max_size=3)),
    st.tuples(st.just("clarify_resolved"), st.none() | TEXT, st.sampled_from(["user", "timeout", "cancel", "nobody"])),
    st.tuples(st.just("status"), st.sampled_from(["info", "warn"]), TEXT),
    st.tuples(st.just("compressed"), TEXT), st.tuples(st.just("phase"), TEXT),
    st.tuples(st.just("waiting"), st.booleans()),
    st.tuples(st.just("usage"), st.integers(0, 5000), st.integers(0, 500), st.none() | st.floats(0, 1)),
    st.tuples(st.just("output"), st.integers(0, 2), OUTPUTS),
    st.tuples(st.just("error"), st.sampled_from(["network", "rate_limit", "provider"]), TEXT),
), max_size=40)


@st.composite
def turns(draw: st.DrawFn, settled: bool = False) -> list[ev.Event]:
    """A valid turn's events: queued or not, started, a body (answer, reasoning, tools with ids, requests and
    their resolutions, outputs, usage, errors), and maybe an end (cancelled, failed or done). ``settled``: it
    ends, and every tool and request is over first (as the engine does: a stopped turn denies what it asked)."""
    out: list[ev.Event] = []

    def add(event_type: type[ev.Event], *args: object, **kwargs: object) -> None:
        out.append(event_type(*args, seq=len(out) + 1, time=len(out) * 0.25, **kwargs))

    if draw(st.booleans()):
        add(ev.TurnQueued, draw(st.integers(1, 3)))
    add(ev.TurnStarted, "main", draw(TEXT), "scripted-model", "/tmp")
    tools: list[str] = []
    approvals: list[str] = []
    questions: list[str] = []
    answer: list[str] = []
    ids = 0
    for step in draw(STEPS):
        ids += 1
        match step:
            case ("token", text):
                add(ev.Token, text)
                answer.append(text)
            case ("reasoning", text):
                add(ev.Reasoning, text)
            case ("segment_end",):
                add(ev.SegmentEnd)
            case ("tool", name):
                tools.append(f"call_{ids}")
                add(ev.ToolStarted, tools[-1], name, {"command": "ls -la", "path": "a.txt"})
            case ("tool_end", is_error, result) if tools:
                call_id = tools.pop(0)
                add(ev.ToolCompleted, call_id, "terminal", 0.5, is_error, result)
            case ("approval", permanent):
                approvals.append(f"req_{ids}")
                add(ev.ApprovalRequested, approvals[-1], "rm -rf build", "delete in root path", ("rm",),
                    permanent, 60.0)
            case ("approval_resolved", choice, by) if approvals:
                add(ev.ApprovalResolved, approvals.pop(0), choice, by)
            case ("clarify", choices):
                questions.append(f"q_{ids}")
                add(ev.ClarifyRequested, questions[-1], "Which one?", tuple(choices), 60.0)
            case ("clarify_resolved", answer_text, by) if questions:
                add(ev.ClarifyResolved, questions.pop(0), answer_text, by)
            case ("status", level, text):
                add(ev.Status, level, text)
            case ("compressed", text):
                add(ev.Compressed, text)
            case ("phase", text):
                add(ev.Phase, text)
            case ("waiting", started):
                add(ev.Waiting, "scripted-model", 40.0, 120.0, started)
            case ("usage", tokens_in, tokens_out, cost):
                add(ev.Usage, "scripted-model", tokens_in, tokens_out, cost, 128_000, 100_000, tokens_in)
            case ("output", run, output):
                add(ev.CodeOutput, f"run_{run}", output)
            case ("error", kind, message):
                add(ev.Error, kind, message, "try again")
    end = draw(st.sampled_from(["done", "failed", "cancelled"] if settled else ["running", "done", "failed", "cancelled"]))
    if settled:
        for call_id in tools:
            add(ev.ToolCompleted, call_id, "terminal", 0.5, True, "stopped")
        for request_id in approvals:
            add(ev.ApprovalResolved, request_id, "deny", "cancel")
        for request_id in questions:
            add(ev.ClarifyResolved, request_id, None, "cancel")
    if end == "cancelled":
        add(ev.Cancelled, "Stopped by you.")
    elif end == "failed":
        add(ev.Error, "network", "connection reset", "check the network")
    if end != "running":
        add(ev.Done, end, "".join(answer))
    return out


# Any events in any order: the reducer must take them all.
ANY_EVENTS = st.lists(st.one_of(
    st.builds(ev.Token, TEXT), st.builds(ev.Reasoning, TEXT), st.builds(ev.SegmentEnd),
    st.builds(ev.ToolStarted, st.sampled_from(["a", "b"]), TEXT, st.just({})),
    st.builds(ev.ToolCompleted, st.sampled_from(["a", "b", "c"]), TEXT, st.floats(0, 9), st.booleans(), TEXT),
    st.builds(ev.ApprovalResolved, st.sampled_from(["r", "s"]), TEXT, TEXT),
    st.builds(ev.ClarifyResolved, st.sampled_from(["r", "s"]), st.none() | TEXT, TEXT),
    st.builds(ev.Done, st.sampled_from(["done", "failed"]), TEXT), st.builds(ev.TurnQueued, st.integers(1, 3)),
    st.builds(ev.CodeOutput, st.sampled_from(["x", "y"]), OUTPUTS), st.builds(ev.Cancelled, TEXT),
)) | turns()


@given(ANY_EVENTS)
def test_reduce_is_total_pure_and_deterministic(events):
    state = TurnState()
    for e in events:
        before = repr(state)
        after = reduce(state, e)
        assert repr(state) == before  # the old state is untouched
        assert reduce(state, e) == after  # the same event on the same state: the same state
        state = after
    assert fold(events) == state


@given(turns())
def test_folding_in_one_go_equals_reducing_event_by_event(events):
    """``fold`` joins runs of tokens first: that must not change any state on the way."""
    state = TurnState()
    for i, e in enumerate(events, 1):
        state = reduce(state, e)
        assert fold(events[:i]) == state


@given(turns())
def test_a_turns_state_keeps_every_fact_of_its_events(events):
    state = fold(events)
    tokens = "".join(e.text for e in events if isinstance(e, ev.Token))
    assert "".join(b.text for b in state.blocks if isinstance(b, turn_state.AnswerBlock)) == tokens
    assert state.reasoning == "".join(e.text for e in events if isinstance(e, ev.Reasoning))
    started = [e.call_id for e in events if isinstance(e, ev.ToolStarted)]
    assert [b.call_id for b in state.blocks if isinstance(b, turn_state.ToolBlock)] == started
    ended = {e.call_id: e for e in events if isinstance(e, ev.ToolCompleted)}
    assert {k: t.end for k, t in state.tools.items() if t.end is not None} == ended
    decided = {e.request_id: e for e in events if isinstance(e, ev.ApprovalResolved)}
    assert {k: a.decided for k, a in state.approvals.items() if a.decided is not None} == decided
    answered = {e.request_id: e for e in events if isinstance(e, ev.ClarifyResolved)}
    assert {k: q.answered for k, q in state.questions.items() if q.answered is not None} == answered
    assert state.usage == next((e for e in reversed(events) if isinstance(e, ev.Usage)), None)
    assert state.error == next((e for e in reversed(events) if isinstance(e, ev.Error)), None)
    done = events[-1] if isinstance(events[-1], ev.Done) else None
    assert state.done == done and state.status == (done.status if done else "running")
    assert state.waiting == (events[-1] if isinstance(events[-1], ev.Waiting) else None)


# ----- every picture of the turn is drawn from its state -------------------------------------------

@given(turns())
def test_a_record_read_back_is_the_same_turn(events):
    """record -> state -> record is the record again (but its times), and the export of the live state is the
    export of the state read back from the history."""
    from hermes_jupyter.history.records import record_state, state_record
    from hermes_jupyter.views.export import state_markdown

    state = fold(events)
    record = state_record(state, turn_id="t1", prompt=state.prompt, started=1.7e9)
    back = record_state(record)
    again = state_record(back, turn_id="t1", prompt=back.prompt, started=1.7e9)
    assert {**again, "ended": None} == {**record, "ended": None}
    assert state_markdown(2, back) == state_markdown(2, state)


@given(turns(settled=True))
def test_the_live_view_ends_as_the_static_rendering_of_its_state(events):
    """Whatever happened in a turn, the document the live view ends with is the static rendering (nothing jumps
    when the output is replaced), and the state the view folded is the state of the turn."""
    from types import SimpleNamespace

    from hermes_jupyter.views import static
    from hermes_jupyter.views.widget import TurnView

    from .frontend import Frontend

    session = SimpleNamespace(name="main", turns=[], saved_turns=[])
    turn = SimpleNamespace(id="t1", prompt="do <it>", session=session, config=None, cancel=lambda: True)
    view = TurnView(turn, history="nb.hermes.json")  # type: ignore[arg-type]
    try:
        for e in events:
            view(e)
        assert view.state == fold(events, TurnState(prompt="do <it>", session="main"))
        page = Frontend.__new__(Frontend)  # a page that connects now, drawn as tests/frontend.py draws it
        page.parts, page.opens, page.controls, page.done = {}, {}, {}, False
        with view._lock:
            for op in view._snapshot():
                page._op(op)
        live = "".join(html[: -len("</div>")] + page.opens[part].container + "".join(page.opens[part].pieces)
                       + page.opens[part].tail + "</div>" if part in page.opens else html
                       for part, html in page.parts.items())
        final = static.render_state(view.state, prompt="do <it>", session="main", history="nb.hermes.json")
        assert page.done and not page.controls
        assert live.replace(' data-slot=""', "") == final.split("</style>", 1)[1].removesuffix(
            '<hr class="hermes-end"></div>')
    finally:
        view.close()
