"""The engine with the real AIAgent, talking HTTP to the scripted model (the only fake)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hermes_jupyter import events as ev
from hermes_jupyter.engine import NO_ANSWER, Engine, NothingPending
from hermes_jupyter.models.scripted import shared_server

from .conftest import ONE_ATTEMPT, hermes_config, turn_jobs_done

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"
MODEL = f"scripted:{SCRIPT}"
TIMEOUT = 60


def of(turn, kind):
    return [e for e in turn.events if isinstance(e, kind)]


def run(engine, prompt, **kw):
    turn = engine.submit(prompt, **kw)
    assert turn.wait(TIMEOUT), f"turn did not end: {turn.events[-5:]}"
    return turn


def on_event(kind, action):
    """A subscriber that acts on the turn (through its handle) when an event of `kind` arrives."""
    def subscriber(event):
        if isinstance(event, kind):
            action(event)
    return subscriber


def test_streamed_answer_arrives_in_order(engine, tmp_path):
    turn = run(engine, "say hello", cwd=tmp_path)
    tokens = of(turn, ev.Token)
    assert len(tokens) > 3  # streamed, not one block
    assert "".join(t.text for t in tokens) == "Hello from the scripted model, streamed in small chunks."
    assert turn.text == "Hello from the scripted model, streamed in small chunks."
    seqs = [e.seq for e in turn.events]
    assert seqs == sorted(seqs) == list(range(1, len(seqs) + 1))
    assert isinstance(turn.events[0], ev.TurnStarted) and isinstance(turn.events[-1], ev.Done)
    assert turn.status == "done"
    usage = of(turn, ev.Usage)[0]
    assert usage.input_tokens > 0 and usage.output_tokens > 0 and usage.context_length == 128000


def test_reasoning_is_its_own_stream(engine, tmp_path):
    turn = run(engine, "think first", cwd=tmp_path)
    assert "".join(e.text for e in of(turn, ev.Reasoning)) == "Let me reason about this carefully."
    assert turn.text == "The answer is 42."


def test_tool_call_runs_and_is_matched_by_id(engine, tmp_path):
    turn = run(engine, "run echo", cwd=tmp_path)
    started, completed = of(turn, ev.ToolStarted), of(turn, ev.ToolCompleted)
    assert len(started) == len(completed) == 1
    assert started[0].call_id == completed[0].call_id and started[0].name == "terminal"
    assert started[0].args["command"] == "echo tool-output-ok"
    assert "tool-output-ok" in completed[0].result and not completed[0].is_error
    assert started[0].seq < completed[0].seq
    assert "tool-output-ok" in turn.text


@pytest.fixture
def victim(tmp_path):
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "data.txt").write_text("precious")
    return folder


def test_denied_command_does_not_run(engine, victim):
    turn = engine.submit("delete victim", cwd=victim.parent,
                         subscribers=[on_event(ev.ApprovalRequested, lambda e: turn.deny(e.request_id))])
    assert turn.wait(TIMEOUT)
    request = of(turn, ev.ApprovalRequested)[0]
    assert "rm -rf ./victim" in request.command and request.description
    assert [(r.choice, r.by) for r in of(turn, ev.ApprovalResolved)] == [("deny", "user")]
    assert victim.exists() and (victim / "data.txt").read_text() == "precious"
    assert "BLOCKED" in of(turn, ev.ToolCompleted)[0].result


def test_command_allowed_once_runs(engine, victim):
    turn = engine.submit("delete victim", cwd=victim.parent,
                         subscribers=[on_event(ev.ApprovalRequested, lambda e: turn.approve("once", e.request_id))])
    assert turn.wait(TIMEOUT)
    assert [(r.choice, r.by) for r in of(turn, ev.ApprovalResolved)] == [("once", "user")]
    assert not victim.exists()


def test_allow_session_covers_the_same_pattern_later(engine, victim):
    (victim.parent / "other").mkdir()
    turn = engine.submit("two dangerous", cwd=victim.parent,
                         subscribers=[on_event(ev.ApprovalRequested, lambda e: turn.approve("session", e.request_id))])
    assert turn.wait(TIMEOUT)
    assert len(of(turn, ev.ApprovalRequested)) == 1  # the second rm -rf was covered by the session answer
    assert not victim.exists() and not (victim.parent / "other").exists()


def test_unanswered_approval_is_denied_after_the_timeout(engine, victim):
    turn = run(engine, "delete victim", cwd=victim.parent, approval_timeout=0.5)
    assert [(r.choice, r.by) for r in of(turn, ev.ApprovalResolved)] == [("deny", "timeout")]
    assert victim.exists()


@pytest.mark.parametrize("policy,choice,survives", [("deny", "deny", True), ("allow", "once", False)])
def test_explicit_policy_answers_without_asking(engine, victim, policy, choice, survives):
    turn = run(engine, "delete victim", cwd=victim.parent, approvals=policy)
    assert [(r.choice, r.by) for r in of(turn, ev.ApprovalResolved)] == [(choice, "policy")]
    assert victim.exists() is survives


def test_approve_rejects_bad_choices_and_nothing_pending(engine, tmp_path):
    turn = run(engine, "say hello", cwd=tmp_path)
    with pytest.raises(NothingPending):
        turn.approve("once")
    with pytest.raises(ValueError, match="once, session, always, deny"):
        turn.approve("maybe")


def test_clarify_answer_reaches_the_model(engine, tmp_path):
    turn = engine.submit("ask me", cwd=tmp_path,
                         subscribers=[on_event(ev.ClarifyRequested, lambda e: turn.answer("blue", e.request_id))])
    assert turn.wait(TIMEOUT)
    question = of(turn, ev.ClarifyRequested)[0]
    assert question.question == "Which colour?" and question.choices == ("red", "blue")
    assert [(r.answer, r.by) for r in of(turn, ev.ClarifyResolved)] == [("blue", "user")]
    assert turn.text.startswith("You chose:") and "blue" in turn.text  # the model got the answer back


def test_unanswered_clarify_times_out_and_the_agent_is_told(engine, tmp_path):
    turn = run(engine, "ask me", cwd=tmp_path, clarify_timeout=0.5)
    assert [(r.answer, r.by) for r in of(turn, ev.ClarifyResolved)] == [(None, "timeout")]
    assert NO_ANSWER[:40] in turn.text


def test_cancel_mid_stream_keeps_the_partial_answer(engine, tmp_path):
    turn = engine.submit("gated story", cwd=tmp_path)  # its answer is held at the gate: it cannot end first
    assert turn.wait_for(lambda: len(of(turn, ev.Token)) >= 5, TIMEOUT)
    assert turn.cancel()
    assert turn.wait(10)
    assert turn.status == "cancelled" and of(turn, ev.Cancelled)
    assert 0 < len(turn.text) < 3000 * 4
    assert not turn.session.busy
    user_messages = [m for m in turn.session.messages if m["role"] == "user"]
    assert user_messages[-1]["content"] == "gated story"  # the prompt is kept


def test_a_turn_after_a_cancelled_one_runs_uninterrupted_on_the_same_threads(engine, tmp_path):
    """Turns run on long-lived threads (util/workers.py): a cancel must not carry over to the next job."""
    first = engine.submit("gated story", cwd=tmp_path)
    assert first.wait_for(lambda: len(of(first, ev.Token)) >= 5, TIMEOUT)
    threads = {t for t in threading.enumerate() if t.name.endswith(first.id)}
    assert threads and first.cancel() and first.wait(10) and first.status == "cancelled"
    turn_jobs_done(first.id)  # its worker goes back to waiting once it has let go of the turn
    second = engine.submit("say hello", cwd=tmp_path)
    assert second.wait(TIMEOUT) and second.status == "done" and second.text
    assert threads & set(threading.enumerate())  # still there, for the turns to come


def test_cancel_during_approval_denies_it(engine, victim):
    turn = engine.submit("delete victim", cwd=victim.parent)
    assert turn.wait_for(lambda: bool(turn.pending_approvals), TIMEOUT)
    turn.cancel()
    assert turn.wait(10)
    assert [(r.choice, r.by) for r in of(turn, ev.ApprovalResolved)] == [("deny", "cancel")]
    assert turn.status == "cancelled" and victim.exists()


def test_cancel_during_clarify_wakes_it(engine, tmp_path):
    turn = engine.submit("ask me", cwd=tmp_path)
    assert turn.wait_for(lambda: bool(turn.pending_questions), TIMEOUT)
    turn.cancel()
    assert turn.wait(10)
    assert [(r.answer, r.by) for r in of(turn, ev.ClarifyResolved)] == [(None, "cancel")]
    assert turn.status == "cancelled"


@pytest.mark.parametrize("prompt,kind,hint,attempts", [
    ("fail auth", "auth", "hermes model", ONE_ATTEMPT),
    ("fail rate", "rate_limit", "fallback_model", ONE_ATTEMPT),
    ("fail server", "provider", "Try again", ""),  # hermes' own retries and back-off, as users have them
], ids=["auth", "rate", "server"])
def test_provider_errors_have_a_kind_and_a_hint(engine, tmp_path, prompt, kind, hint, attempts):
    with hermes_config(attempts):
        turn = run(engine, prompt, cwd=tmp_path)
    error = of(turn, ev.Error)[0]
    assert (error.error_kind, turn.status) == (kind, "failed")
    assert hint in error.hint and error.message and "\n" not in error.message
    # hermes' own "❌ ..." lifecycle lines said it again above the error card (found by a newcomer): the turn's log keeps them.
    assert not [e.text for e in of(turn, ev.Status) if e.text.lstrip().startswith("❌")]
    assert turn.session.messages[-1] == {"role": "user", "content": prompt} or any(
        m.get("content") == prompt for m in turn.session.messages)


def test_missing_configuration_is_a_clear_error(tmp_path):
    engine = Engine()  # no model anywhere: the test HERMES_HOME has no config.yaml
    turn = run(engine, "hello", cwd=tmp_path)
    error = of(turn, ev.Error)[0]
    assert error.error_kind == "config" and "scripted:demo" in error.hint
    assert turn.session.messages == [{"role": "user", "content": "hello"}]
    # A model name that no provider serves is named in the error (it was not; found by a newcomer).
    named = run(engine, "hello", cwd=tmp_path, model="nosuch-model")
    assert "'nosuch-model'" in of(named, ev.Error)[0].message


def test_an_unset_api_key_variable_is_named_before_any_request(tmp_path, monkeypatch):
    """--api-key-env NAME with NAME unset sent "Bearer none" and came back as a 401 (found by a newcomer)."""
    monkeypatch.delenv("HERMES_TEST_NO_SUCH_KEY", raising=False)
    model = shared_server(str(SCRIPT))
    engine = Engine()
    engine.settings.base_url, engine.settings.model = model.base_url, "some-model"
    engine.settings.api_key_env = "HERMES_TEST_NO_SUCH_KEY"
    seen = len(model.requests)
    turn = run(engine, "hello", cwd=tmp_path)
    error = of(turn, ev.Error)[0]
    assert error.error_kind == "config" and "HERMES_TEST_NO_SUCH_KEY is not set" in error.message
    assert len(model.requests) == seen  # nothing went out
    assert turn.session.messages == [{"role": "user", "content": "hello"}]  # the prompt is kept


@pytest.mark.parametrize("base_url,named,sent", [
    ("http://127.0.0.1:8000/v1", None, "none"),  # a local or third-party endpoint: OpenAI's key stays home
    ("https://openrouter.example/api/v1", None, "none"),
    ("https://api.openai.com/v1", None, "sk-openai-test-0001"),
    ("https://openrouter.example/api/v1", "OPENAI_API_KEY", "sk-openai-test-0001"),  # named: sent
    ("https://openrouter.example/api/v1", "HERMES_TEST_ROUTER_KEY", "sk-or-test-0002"),
])
def test_openai_key_goes_only_where_it_belongs(monkeypatch, base_url, named, sent):
    """--base-url sent OPENAI_API_KEY to whatever endpoint was named (found by a newcomer)."""
    from hermes_jupyter.agent.settings import Hermes, RunOptions, resolve

    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-test-0001")
    monkeypatch.setenv("HERMES_TEST_ROUTER_KEY", "sk-or-test-0002")
    settings = Hermes()
    settings.base_url, settings.model, settings.api_key_env = base_url, "m", named
    assert resolve(RunOptions(), settings).api_key == sent


def test_an_unknown_toolset_is_named_before_any_request(engine, tmp_path):
    """--toolsets bogus ran the turn with no tools and no word about it (found by a newcomer)."""
    model = shared_server(str(SCRIPT))
    seen = len(model.requests)
    turn = run(engine, "say hello", cwd=tmp_path, toolsets="terminal,bogus")
    error = of(turn, ev.Error)[0]
    assert error.error_kind == "config" and "unknown toolset 'bogus'" in error.message and "known: " in error.message
    assert len(model.requests) == seen
    assert run(engine, "say hello", cwd=tmp_path, toolsets="terminal,file,notebook,no_mcp").status == "done"


def test_a_base_url_beside_the_scripted_model_is_an_error_not_ignored(engine, tmp_path):
    """`%hermes --base-url URL ...` with Hermes.model = 'scripted:...' answered from the script (found by a newcomer)."""
    turn = run(engine, "say hello", cwd=tmp_path, base_url="http://127.0.0.1:9/v1")
    error = of(turn, ev.Error)[0]
    assert error.error_kind == "config" and "--base-url is not used" in error.message and "--model NAME" in error.hint


@pytest.mark.parametrize("url", ["not-a-url", "localhost:8000/v1", "ftp://host/v1", "http://host:port/v1"])
def test_a_base_url_that_is_not_a_web_url_is_refused_at_once(tmp_path, url):
    """It was retried for ~15 s, then reported as "Connection error." (found by a newcomer)."""
    engine = Engine()
    engine.settings.model = "some-model"
    turn = run(engine, "hello", cwd=tmp_path, base_url=url)
    error = of(turn, ev.Error)[0]
    assert error.error_kind == "config" and "is not an http(s) URL" in error.message and repr(url) in error.message


def test_a_busy_session_queues_the_next_prompt(engine, tmp_path):
    model = shared_server(str(SCRIPT))
    first = engine.submit("gated story", cwd=tmp_path)
    second = engine.submit("say hello", cwd=tmp_path)
    third = engine.submit("think first", cwd=tmp_path)
    assert [e.position for e in of(second, ev.TurnQueued)] == [1]
    assert third.cancel()  # a queued turn can be cancelled before it runs
    assert third.wait(5) and third.status == "cancelled" and not of(third, ev.TurnStarted)
    assert model.wait_held("story", timeout=TIMEOUT)  # the first turn is running, held by its gate
    assert not first.done and not of(second, ev.TurnStarted)  # ... and the second waits for it
    assert model.open_gate("story") == 1
    assert first.wait(TIMEOUT) and second.wait(TIMEOUT)
    assert first.status == second.status == "done"
    assert second.text.startswith("Hello from the scripted model")
    prompts = [m["content"] for m in second.session.messages if m["role"] == "user"]
    assert prompts == ["gated story", "say hello"]  # the cancelled queued prompt was never sent


def test_cancelling_a_queued_turn_with_history_attached_returns_and_the_session_goes_on(engine, tmp_path):
    """Cancel on a queued turn delivers its Done on the cancelling thread, to the history writer that waits
    for a save: that froze the kernel while the save waited for the turn's lock (found by a newcomer)."""
    engine.attach_history(tmp_path / "q.hermes.json")
    model = shared_server(str(SCRIPT))
    first = engine.submit("gated story", cwd=tmp_path)
    queued = engine.submit("say hello", cwd=tmp_path)
    assert model.wait_held("story", timeout=TIMEOUT)
    cancelling = threading.Thread(target=queued.cancel)
    cancelling.start()
    cancelling.join(TIMEOUT)
    assert not cancelling.is_alive(), "cancel() of a queued turn did not return"
    assert queued.wait(5) and queued.status == "cancelled"
    assert model.open_gate("story") == 1
    assert first.wait(TIMEOUT) and first.status == "done"
    after = run(engine, "say hello", cwd=tmp_path)
    assert after.status == "done"
    saved = (tmp_path / "q.hermes.json").read_text()
    assert "gated story" in saved and "say hello" in saved  # the cancelled prompt too: nothing sent is lost


def test_conversation_continues_across_turns(engine, tmp_path):
    run(engine, "remember the number 7", cwd=tmp_path)
    turn = run(engine, "remember the colour green", cwd=tmp_path)
    request = shared_server(str(SCRIPT)).requests[-1]
    sent = [m.get("content") for m in request["messages"] if m["role"] in ("user", "assistant")]
    assert "remember the number 7" in sent and "remember the colour green" in sent
    assert turn.text == "I will remember: remember the colour green"


def test_two_sessions_at_once_do_not_cross_talk(engine, tmp_path):
    dirs = {}
    for name in ("left", "right"):
        dirs[name] = tmp_path / name
        (dirs[name] / "victim").mkdir(parents=True)
    turns = {name: engine.submit("delete victim", session=name, cwd=dirs[name]) for name in dirs}
    for turn in turns.values():
        assert turn.wait_for(lambda t=turn: bool(t.pending_approvals), TIMEOUT)
    turns["left"].approve("once")
    turns["right"].deny()
    for turn in turns.values():
        assert turn.wait(TIMEOUT)
    assert not (dirs["left"] / "victim").exists()
    assert (dirs["right"] / "victim").exists()
    for name, turn in turns.items():
        assert {e.session for e in of(turn, ev.TurnStarted)} == {name}
        assert len(of(turn, ev.ApprovalRequested)) == 1


def test_subscribers_see_every_event_in_order_even_when_late(engine, tmp_path):
    seen_early: list = []
    turn = engine.submit("run echo", cwd=tmp_path, subscribers=[seen_early.append])
    assert turn.wait(TIMEOUT)
    seen_late: list = []
    turn.subscribe(seen_late.append)
    assert seen_early == seen_late == turn.events


def test_stdout_is_not_replaced_by_the_agent(engine, tmp_path):
    import sys
    before = (sys.stdout, sys.stderr)
    run(engine, "say hello", cwd=tmp_path)
    assert (sys.stdout, sys.stderr) == before


def test_subscriber_failure_does_not_break_the_turn(engine, tmp_path):
    def broken(event):
        raise RuntimeError("view bug")
    turn = engine.submit("say hello", cwd=tmp_path, subscribers=[broken])
    assert turn.wait(TIMEOUT) and turn.status == "done"


def test_cancel_from_another_thread_is_safe_to_repeat(engine, tmp_path):
    turn = engine.submit("gated story", cwd=tmp_path)
    assert turn.wait_for(lambda: bool(of(turn, ev.Token)), TIMEOUT)
    results = []
    threads = [threading.Thread(target=lambda: results.append(turn.cancel())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    assert turn.wait(10) and len(of(turn, ev.Done)) == 1


def test_each_pending_approval_is_answered_by_its_own_id(engine, victim):
    other = victim.parent / "other"
    other.mkdir()

    def decide(event):
        turn.approve("deny" if "victim" in event.command else "once", event.request_id)

    turn = engine.submit("parallel dangerous", cwd=victim.parent,
                         subscribers=[on_event(ev.ApprovalRequested, decide)])
    assert turn.wait(TIMEOUT)
    assert victim.exists() and not other.exists()
    decisions = {r.request_id: r.choice for r in of(turn, ev.ApprovalResolved)}
    commands = {r.request_id: r.command for r in of(turn, ev.ApprovalRequested)}
    assert {commands[i]: c for i, c in decisions.items()} == {"rm -rf ./victim": "deny", "rm -rf ./other": "once"}


def test_a_personality_is_sent_as_hermes_sends_it_and_sticks_to_the_session(engine, tmp_path):
    run(engine, "say hello", cwd=tmp_path, session="crew", personality="pirate")
    run(engine, "say hello", cwd=tmp_path, session="crew")
    server = shared_server(str(SCRIPT))
    for request in server.requests[-2:]:
        system = " ".join(str(m.get("content")) for m in request["messages"] if m["role"] == "system")
        assert "Captain Hermes" in system  # Hermes' built-in 'pirate' personality


def test_an_unknown_personality_lists_the_known_ones(engine, tmp_path):
    turn = run(engine, "say hello", cwd=tmp_path, session="odd", personality="nobody-knows")
    error = of(turn, ev.Error)[0]
    assert error.error_kind == "config" and "unknown personality 'nobody-knows'" in error.message
    assert "pirate" in error.message and "teacher" in error.message


def _held_at_gate(thread_name: str) -> bool:
    """The worker thread of that name is inside TurnRunner._work, waiting on its start gate."""
    import sys
    import traceback

    for thread in threading.enumerate():
        if thread.name == thread_name and thread.ident in sys._current_frames():
            names = [f.name for f in traceback.extract_stack(sys._current_frames()[thread.ident])]
            return "_work" in names and names[-1] == "wait"
    return False


def test_a_turn_submitted_in_starts_held_begins_when_the_block_ends(engine, tmp_path):
    """The magic submits in this block: the cell draws its view and returns before the turn's start work."""
    from hermes_jupyter.engine.turn import runner_of

    with engine.starts_held():
        turn = engine.submit("say hello", cwd=tmp_path)
        name = f"hermes-turn-{runner_of(turn).turn_id}"
        deadline = time.monotonic() + TIMEOUT
        while not _held_at_gate(name):  # polls for the state, no fixed wait
            assert time.monotonic() < deadline, "the turn's worker never reached its start gate"
            time.sleep(0.005)
        # The worker sits at the gate, having done nothing.
        assert not of(turn, ev.TurnStarted) and runner_of(turn).status == "new"
    assert turn.wait(TIMEOUT) and turn.status == "done"
    assert turn.text.startswith("Hello from the scripted model")
    later = run(engine, "say hello", cwd=tmp_path)  # outside the block nothing waits
    assert later.status == "done"
