"""Parity with the Hermes Web UI's engine: the configured fallback model, and usage in `hermes insights`."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from hermes_jupyter import events as ev
from hermes_jupyter.models.scripted import ScriptedServer

from .conftest import hermes_home
from .kernel import Kernel

SCRIPTS = Path(__file__).parent / "scripts"
TIMEOUT = 60


def rows(db: Path, sql: str, *args) -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def test_fallback_model_answers_and_the_user_sees_which(tmp_path):
    """The primary is always rate limited; Hermes' fallback_model (from config.yaml) answers."""
    with ScriptedServer(SCRIPTS / "parity-primary.yaml").start() as primary, \
            ScriptedServer(SCRIPTS / "parity-fallback.yaml").start() as fallback:
        home = tmp_path / "home"
        home.mkdir()
        (home / "config.yaml").write_text(
            f"model:\n  default: {primary.model}\n  provider: custom\n  base_url: {primary.base_url}\n"
            "  api_key: primary-key-1234\n"
            f"fallback_model:\n  provider: custom\n  model: {fallback.model}\n  base_url: {fallback.base_url}\n"
            "  api_key: fallback-key-5678\n")
        k = Kernel(tmp_path, env={"HERMES_HOME": str(home)})
        try:
            k.run("%load_ext hermes_jupyter\n%config Hermes.plain = True\n%config Hermes.sync_insights = True")
            config = k.run("%hermes /config")
            assert "parity-fallback (custom)" in config.stdout
            answer = k.run("%hermes -o t --wait hello there")
            assert "The fallback model answered: hello there" in answer.stdout
            notice = "answered by fallback model parity-fallback (primary parity-primary failed: rate limit)"
            assert f"[warn] {notice}" in answer.stdout
            footer = k.run("from hermes_jupyter.views import static\n"
                           "print(t.usage.model)\n"
                           "print(static.usage_line(t.usage, t.status, None))")
            model, line = footer.stdout.splitlines()
            assert model == "parity-fallback"
            assert line.startswith("done · parity-fallback · ")  # the footer names the model that answered
            session_id = k.run("print(t.session.key)").stdout.strip()
        finally:
            k.close()
        assert primary.requests and fallback.requests
    # Insights attribute the tokens to the model that answered.
    usage = rows(home / "state.db", "SELECT model, input_tokens FROM session_model_usage WHERE session_id = ?",
                 session_id)
    assert [m for m, _ in usage] == ["parity-fallback"] and usage[0][1] > 0


def run(engine, prompt, tmp_path):
    turn = engine.submit(prompt, cwd=tmp_path)
    assert turn.wait(TIMEOUT), f"turn did not end: {turn.events[-5:]}"
    assert turn.status == "done", turn.events[-3:]
    return turn


def test_usage_goes_to_hermes_insights_when_opted_in(engine, tmp_path):
    from agent.insights import InsightsEngine

    from hermes_jupyter.agent.insights import state_db

    engine.settings.sync_insights = True
    first = run(engine, "say hello", tmp_path)
    second = run(engine, "run echo", tmp_path)
    db = hermes_home() / "state.db"
    session_id = first.session.key
    (source, model, tokens_in, tokens_out, messages, tool_calls), = rows(
        db, "SELECT source, model, input_tokens, output_tokens, message_count, tool_call_count "
            "FROM sessions WHERE id = ?", session_id)
    usages = [t.usage for t in (first, second)]
    assert (source, model) == ("jupyter", "scripted-test")
    # Per-turn deltas add up: each turn counted once, even though the warm agent's totals grow.
    assert tokens_in == sum(u.input_tokens for u in usages) > 0
    assert tokens_out == sum(u.output_tokens for u in usages) > 0
    assert messages == len(second.session.messages) and tool_calls == 1
    report = InsightsEngine(state_db()).generate(days=1, source="jupyter")
    assert not report["empty"] and report["overview"]["total_input_tokens"] >= tokens_in


def test_nothing_is_written_without_opting_in(engine, tmp_path):
    turn = run(engine, "say hello", tmp_path)
    assert isinstance(turn.events[-2], ev.Usage)
    assert rows(hermes_home() / "state.db", "SELECT id FROM sessions WHERE id = ?", turn.session.key) == []
