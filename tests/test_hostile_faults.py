"""Provider faults end well: the right kind, a hint, the prompt kept, nothing resent.

The real AIAgent talks HTTP to tests/faulty_provider.py, which fails as real providers do. The
patience settings are set low so a silent or stalled provider surfaces in seconds.
"""
from __future__ import annotations

import json
import time

import pytest

from hermes_jupyter import Engine
from hermes_jupyter import events as ev

from .conftest import ONE_ATTEMPT, hermes_config
from .faulty_provider import FRAGMENT, MODEL, FaultyProvider

PATIENCE = 2.0  # first byte and stall, in seconds
TIMEOUT = 90


@pytest.fixture(autouse=True, scope="module")
def one_attempt():
    """What the user is told, not hermes' retry back-off (covered in test_engine), is tested here."""
    with hermes_config(ONE_ATTEMPT):
        yield


@pytest.fixture
def provider():
    with FaultyProvider() as fp:
        yield fp


@pytest.fixture
def engine(provider):
    eng = Engine()
    eng.settings.base_url = provider.base_url
    eng.settings.model = MODEL
    eng.settings.first_byte_timeout = PATIENCE
    eng.settings.stall_timeout = PATIENCE
    yield eng
    for turn in eng.running():
        turn.cancel()


def ask(engine, prompt, tmp_path):
    """Run a turn; answer it with the time from the provider's first request to the turn's error."""
    errors: list[float] = []
    turn = engine.submit(prompt, cwd=tmp_path, subscribers=[
        lambda e: errors.append(time.monotonic()) if isinstance(e, ev.Error) else None])
    assert turn.wait(TIMEOUT), f"turn did not end: {turn.events[-5:]}"
    return turn, errors


def error_of(turn) -> ev.Error:
    found = [e for e in turn.events if isinstance(e, ev.Error)]
    assert len(found) == 1, turn.events[-5:]
    return found[0]


@pytest.mark.parametrize(("fault", "kind"), [
    ("status:401", "auth"), ("status:429", "rate_limit"), ("status:500", "provider"),
    ("status:503", "provider"), ("html", "provider"),
])
def test_http_errors_have_their_kind_a_hint_and_keep_the_prompt(engine, provider, tmp_path, fault, kind):
    provider.fault = fault
    turn, _ = ask(engine, f"what about {fault}?", tmp_path)
    error = error_of(turn)
    assert turn.status == "failed" and error.error_kind == kind and error.hint
    assert "\n" not in error.message and "<html" not in error.message.lower()
    record = engine.session().record()
    assert record["turns"][-1]["prompt"] == f"what about {fault}?"


def test_a_2mb_reply_is_an_answer(engine, provider, tmp_path):
    provider.fault = "huge"
    turn, _ = ask(engine, "say a lot", tmp_path)
    assert turn.status == "done" and len(turn.text) >= 2 * 1024 * 1024


@pytest.mark.parametrize(("fault", "kind", "text"), [
    ("silent", "no_reply", ""),
    ("stall", "stalled", FRAGMENT),
    ("malformed", "malformed", FRAGMENT),
    ("drop", "dropped", FRAGMENT),
])
def test_stream_faults_have_their_own_kind_and_surface_in_time(engine, provider, tmp_path, fault, kind, text):
    provider.fault = fault
    turn, errors = ask(engine, f"and {fault}?", tmp_path)
    error = error_of(turn)
    assert (turn.status, error.error_kind) == ("failed", kind)
    assert "report it" not in error.hint  # not the generic "looks like a bug"
    # The partial answer is what arrived, once: no continuation attempts glued to it.
    assert turn.text == text
    took = errors[0] - provider.arrival_times[-1]
    assert took < PATIENCE + 3, f"{fault} surfaced after {took:.1f}s"
    assert engine.session().record()["turns"][-1]["prompt"] == f"and {fault}?"


def test_the_wait_is_shown_before_the_turn_gives_up(engine, provider, tmp_path):
    provider.fault = "silent"
    turn, _ = ask(engine, "anyone there?", tmp_path)
    waits = [e for e in turn.events if isinstance(e, ev.Waiting)]
    assert waits and not waits[0].started and waits[0].model == MODEL and waits[0].limit == PATIENCE
    assert waits[0].seq < error_of(turn).seq


def test_patience_is_in_the_configuration(engine):
    from hermes_jupyter.agent.settings import RunOptions, resolve

    engine.settings.stall_timeout = 0
    assert resolve(RunOptions(), engine.settings).describe()["patience"] == "first byte 2 s, stall Hermes' own"


@pytest.mark.parametrize("fault", ["status:401", "drop"])
def test_a_failed_prompt_is_kept_but_not_sent_again(engine, provider, tmp_path, fault):
    provider.fault = fault
    ask(engine, "the failed question", tmp_path)
    provider.fault = "ok"
    seen = len(provider.requests)
    turn, _ = ask(engine, "the next question", tmp_path)
    assert turn.status == "done"
    sent = [m for body in provider.requests[seen:] for m in body["messages"] if m["role"] == "user"]
    assert sent and all("the failed question" not in str(m["content"]) for m in sent)
    assert all("cut off" not in str(m["content"]) for m in sent)  # no hermes continuation prompt either
    prompts = [t["prompt"] for t in engine.session().record()["turns"]]
    assert prompts == ["the failed question", "the next question"]  # kept as a record


KERNEL_FAULTS = [("status:401", "auth"), ("status:429", "rate_limit"), ("status:500", "provider"),
                 ("status:503", "provider"), ("html", "provider"), ("huge", None), ("silent", "no_reply"),
                 ("stall", "stalled"), ("malformed", "malformed"), ("drop", "dropped")]


def test_every_fault_ends_well_in_a_real_kernel(provider, tmp_path):
    """The text view says what happened and what to do, the prompt is kept, the kernel answers."""
    from .kernel import Kernel

    kernel = Kernel(tmp_path)
    try:
        setup = kernel.run("%load_ext hermes_jupyter\n%config Hermes.notebook = 'nb.ipynb'\n"
                           f"%config Hermes.first_byte_timeout = {PATIENCE}\n%config Hermes.stall_timeout = {PATIENCE}")
        assert setup.reply["status"] == "ok", setup.error
        for fault, kind in KERNEL_FAULTS:
            provider.fault = fault
            cell = kernel.run(f"%hermes --wait --plain --base-url {provider.base_url} --model {MODEL} try {fault}",
                              timeout=TIMEOUT)
            assert cell.reply["status"] == "ok" and cell.error is None, (fault, cell.error)
            if kind is None:
                assert cell.stdout.rstrip().endswith("done") or "-- done" in cell.stdout, fault
                continue
            assert f"[error: {kind}]" in cell.stdout and "\n  hint: " in cell.stdout, (fault, cell.stdout[-500:])
            if fault == "silent":
                assert f"no reply from {MODEL} for" in cell.stdout and "keep waiting" in cell.stdout
        assert kernel.run("print(6 * 7)").stdout.strip() == "42"  # the kernel is alive
        history = json.loads((tmp_path / "nb.hermes.json").read_text())
        prompts = [t["prompt"] for t in history["sessions"]["main"]["turns"]]
        assert prompts == [f"try {fault}" for fault, _ in KERNEL_FAULTS]
    finally:
        kernel.close()
