"""Provider faults end well: the right kind, a hint, the prompt kept, nothing resent.

The real AIAgent talks HTTP to tests/faulty_provider.py, which fails as real providers do. The
patience settings are set low so a silent or stalled provider surfaces in seconds.
"""
from __future__ import annotations

import json
import re
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


# ----- requests the provider refuses, hermes' own give-up, retries -------------------------------
@pytest.mark.parametrize(("said", "status", "names"), [
    ("anthropic/claude-nope is not a valid model ID", 400, "does not serve a model"),  # OpenRouter
    ("The model `gpt-9` does not exist or you do not have access to it.", 404, "does not serve a model"),  # OpenAI
    ("Unrecognized request argument supplied: reasoning_effort", 400, "refused a parameter"),
    ("This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
     400, "context window"),
], ids=["unknown-model-400", "unknown-model-404", "bad-parameter", "context-too-long"])
def test_a_refused_request_names_the_model_and_what_the_provider_said(engine, provider, tmp_path, said,
                                                                      status, names):
    """An HTTP 400 was "This looks like a bug or an unusual provider reply" (found by a newcomer)."""
    provider.fault = f"status:{status}:{said}"
    turn, _ = ask(engine, "a question", tmp_path)
    error = error_of(turn)
    assert (turn.status, error.error_kind) == ("failed", "rejected")
    assert names in error.hint and repr(MODEL) in error.hint and "report it" not in error.hint
    if status == 400 and "context" not in said:  # hermes compresses and tries again on a long context
        assert said in error.hint and said in error.message
    assert engine.session().record()["turns"][-1]["prompt"] == "a question"


def test_hermes_own_give_up_is_no_reply_with_the_seconds_it_waited(engine, provider, tmp_path, monkeypatch):
    """hermes' circuit breaker ("Provider has been unresponsive (no response received) for N consecutive
    stale attempts") read as a generic error and a bug to report."""
    for name, value in (("HERMES_STREAM_STALE_TIMEOUT", "1"), ("HERMES_STREAM_READ_TIMEOUT", "1"),
                        ("HERMES_STREAM_STALE_GIVEUP", "1")):
        monkeypatch.setenv(name, value)
    engine.settings.first_byte_timeout = 0  # hermes' own limits: its give-up ends the turn, not ours
    provider.fault = "silent"
    turn, _ = ask(engine, "anyone?", tmp_path)
    error = error_of(turn)
    assert (turn.status, error.error_kind) == ("failed", "no_reply"), error
    assert "Hermes stopped" in error.message and "first_byte_timeout" in error.hint
    waited = re.search(r" in (\d+) s", error.message)
    assert waited and int(waited.group(1)) >= 1, error.message
    provider.fault = "ok"  # the provider is back: the next turn is answered
    assert ask(engine, "and now?", tmp_path)[0].status == "done"


def test_hermes_own_give_up_text_is_classified_from_hermes_itself():
    """The words come from hermes-agent's own circuit breaker, raised as it raises them."""
    from types import SimpleNamespace

    from agent.chat_completion_helpers import _check_stale_giveup

    from hermes_jupyter.agent.failures import classify

    with pytest.raises(RuntimeError) as raised:
        _check_stale_giveup(SimpleNamespace(_consecutive_stale_streams=99))
    failure = classify(str(raised.value), model="m", base_url="http://h/v1", waited=42.4)
    assert failure.kind == "no_reply" and failure.message.startswith("No reply from m at http://h/v1 in 42 s")


def test_a_stall_hermes_ended_says_the_seconds_it_really_waited(engine, provider, tmp_path, monkeypatch):
    """With hermes' read timeout ending the stream first, the message said "nothing more for 0 s"."""
    monkeypatch.setenv("HERMES_STREAM_READ_TIMEOUT", "2")
    engine.settings.stall_timeout = 0  # hermes' own limits
    provider.fault = "stall"
    turn, _ = ask(engine, "go on", tmp_path)
    error = error_of(turn)
    assert error.error_kind == "stalled"
    waited = re.search(r"nothing more for (\d+) s", error.message)
    assert waited and int(waited.group(1)) >= 2, error.message
    assert "HERMES_STREAM_READ_TIMEOUT" in error.hint  # the limit that ended it, not ours


def test_retries_are_counted_once_without_internal_labels(engine, provider, tmp_path):
    """hermes replays its buffered retry lines when it gives up: "lifecycle: ⏳ Retrying… (attempt 1/3),
    (2/3), (1/3), (2/3)" in the card (found by a newcomer)."""
    from .conftest import hermes_home

    config = hermes_home() / "config.yaml"
    kept = config.read_text()
    config.write_text("")  # hermes' own retries, as users have them
    try:
        provider.fault = "status:500"
        turn, _ = ask(engine, "retry me", tmp_path)
    finally:
        config.write_text(kept)
    statuses = [e for e in turn.events if isinstance(e, ev.Status)]
    assert len(provider.requests) >= 2  # it did retry
    assert [e.text for e in statuses] == [f"Hermes retried the request {len(provider.requests) - 1} times, then gave up"]
    from hermes_jupyter.views.static import segments
    notices = [seg for kind, seg in segments(turn.events) if kind == "notice"]
    assert notices and not any("lifecycle" in n or "attempt" in n for n in notices)


@pytest.mark.parametrize("how", ["dropped", "network", "cancelled"])
def test_a_prompt_that_was_sent_stays_in_the_messages(engine, provider, tmp_path, how):
    """A failed or stopped turn's prompt stays in the history's messages (with its message_count) after
    the next turn is answered, and is not sent again. It vanished from them (message_count 0)."""
    if how == "cancelled":
        provider.fault = "silent"
        provider.arrived.clear()
        turn = engine.submit("the first question", cwd=tmp_path)
        assert provider.arrived.wait(TIMEOUT)
        turn.cancel()
        assert turn.wait(TIMEOUT) and turn.status == "cancelled"
    else:
        provider.fault = "drop"
        flags = {"base_url": "http://127.0.0.1:9/v1"} if how == "network" else {}
        turn = engine.submit("the first question", cwd=tmp_path, **flags)
        assert turn.wait(TIMEOUT) and turn.status == "failed" and turn.error.error_kind == how
    provider.fault = "ok"
    seen = len(provider.requests)
    assert ask(engine, "the next question", tmp_path)[0].status == "done"
    record = engine.session().record()
    assert [(t["prompt"], t["message_count"]) for t in record["turns"]] == [
        ("the first question", 1), ("the next question", 2)]
    assert [m["content"] for m in record["messages"] if m["role"] == "user"] == [
        "the first question", "the next question"]
    sent = [m for body in provider.requests[seen:] for m in body["messages"] if m["role"] == "user"]
    assert all("the first question" not in str(m["content"]) for m in sent)
