"""The first minute of a new user: a fast first answer, waiting cells that don't ask on stdin
where buttons answer, a typo that is asked again."""
from __future__ import annotations

import queue
from pathlib import Path

from hermes_jupyter import Engine
from hermes_jupyter import events as ev
from hermes_jupyter.views.prompter import Prompter

from .kernel import Kernel

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"


def test_load_ext_returns_at_once_and_warms_up_hermes_on_a_thread(tmp_path):
    k = Kernel(tmp_path)
    try:
        loaded = k.run(f"%config Hermes.notebook = 'x.ipynb'\n%config Hermes.model = 'scripted:{SCRIPT}'\n"
                       "%load_ext hermes_jupyter")
        assert loaded.reply["status"] == "ok", loaded.error
        assert loaded.idle_after < 1.5, f"%load_ext blocked the cell for {loaded.idle_after:.2f}s"
        done = k.run("import sys, hermes_jupyter\n"
                     "w = hermes_jupyter._loaded[id(get_ipython())].warmup\n"
                     "print(w.join(120), w.error, sorted(w.timings))\n"
                     "print('run_agent' in sys.modules, 'openai' in sys.modules)", timeout=150)
        first, second = done.stdout.splitlines()
        assert first == ("True None ['a first agent and request', 'import hermes-agent', 'import the OpenAI client', "
                         "'probe the environment', \"the session's agent\"]"), first
        assert second == "True True"
        # The session's agent was built ahead: a first turn with that configuration just asks.
        turn = k.run("%hermes --plain --wait -o t say hello", timeout=120)
        assert "Hello from the scripted model, streamed in small chunks." in turn.stdout, turn.stdout
        phases = k.run("print([e.text for e in t.events if e.kind == 'phase'])").stdout.strip()
        assert phases == "['waiting for the first token']", phases
    finally:
        k.close()


def test_a_starting_turn_says_what_it_waits_for(tmp_path):
    engine = Engine()
    turn = engine.submit("hello", cwd=tmp_path, model=f"scripted:{SCRIPT}")
    assert turn.wait(120)
    events = turn.events
    phases = [e.text for e in events if isinstance(e, ev.Phase)]
    assert phases[-2:] == [f"connecting to {turn.config.model}", "waiting for the first token"], phases
    last_phase = max(e.seq for e in events if isinstance(e, ev.Phase))
    first_token = min(e.seq for e in events if isinstance(e, ev.Token))
    assert last_phase < first_token
    # A warm agent skips the connecting phase.
    again = engine.submit("hello again", cwd=tmp_path, model=f"scripted:{SCRIPT}")
    assert again.wait(120)
    assert [e.text for e in again.events if isinstance(e, ev.Phase)] == ["waiting for the first token"]


def test_a_typo_at_the_approval_prompt_is_asked_again(tmp_path):
    (tmp_path / "victim").mkdir()
    engine = Engine()
    turn = engine.submit("delete victim", cwd=tmp_path, model=f"scripted:{SCRIPT}")
    answers, said = iter(["maybe", "deny"]), []
    Prompter(turn, ask=lambda prompt: next(answers), say=said.append).wait()
    resolved = [e for e in turn.events if isinstance(e, ev.ApprovalResolved)]
    assert [(r.choice, r.by) for r in resolved] == [("deny", "user")]
    assert any("'maybe'" in line for line in said), said
    assert (tmp_path / "victim").exists()


def test_a_waiting_cell_with_widgets_never_asks_on_stdin(tmp_path):
    (tmp_path / "victim").mkdir()
    k = Kernel(tmp_path)
    try:
        k.run(f"%config Hermes.notebook = 'x.ipynb'\n%load_ext hermes_jupyter\n%config Hermes.model = 'scripted:{SCRIPT}'")
        # A frontend that has a stdin (allow_stdin, as JupyterLab sends) and shows widgets: the card's
        # buttons answer. Nobody clicks here, so the request is denied when its time is up.
        cell = k.run("%hermes --wait --approval-timeout 2 -o t delete victim", allow_stdin=True, timeout=120)
        assert cell.reply["status"] == "ok", cell.error
        try:
            asked = k.client.get_stdin_msg(timeout=0.1)
        except queue.Empty:
            asked = None
        assert asked is None, asked
        result = k.run("print([(e.choice, e.by) for e in t.events if e.kind == 'approval_resolved'])").stdout
        assert result.strip() == "[('deny', 'timeout')]"
        assert (tmp_path / "victim").exists()
    finally:
        k.close()


def test_an_unknown_personality_is_not_kept_for_the_session(tmp_path):
    engine = Engine()
    bad = engine.submit("say hello", cwd=tmp_path, session="odd", personality="nobody-knows", model=f"scripted:{SCRIPT}")
    assert bad.wait(120) and bad.status == "failed"
    after = engine.submit("say hello", cwd=tmp_path, session="odd", model=f"scripted:{SCRIPT}")
    assert after.wait(120) and after.status == "done", after.error


def test_the_users_personalities_add_to_the_built_in_ones(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text("agent:\n  personalities:\n    terse: You answer in five words.\n")
    k = Kernel(tmp_path, env={"HERMES_HOME": str(home)})
    try:
        k.run(f"%config Hermes.notebook = 'x.ipynb'\n%load_ext hermes_jupyter\n"
              f"%config Hermes.model = 'scripted:{SCRIPT}'\n%config Hermes.plain = True")
        for name in ("terse", "pirate"):  # the user's own, and a built-in one
            cell = k.run(f"%hermes --wait -s {name} --personality {name} say hello", timeout=120)
            assert "-- done" in cell.stdout, cell.stdout
    finally:
        k.close()


def test_help_starts_with_a_sentence_and_a_missing_script_stops_the_cell_at_once(tmp_path, capsys):
    import pytest
    from IPython.core.error import UsageError

    from hermes_jupyter.magic import check_model_spec

    with pytest.raises(UsageError, match=r"no such file .*missing\.yaml.*'scripted:demo' is the built-in one"):
        check_model_spec("scripted:missing.yaml", tmp_path)
    with pytest.raises(UsageError, match="record it first"):
        check_model_spec(f"replay:{tmp_path / 'none.yaml'}", tmp_path)
    for fine in (None, "scripted:demo", f"scripted:{SCRIPT}", "gpt-4o"):
        check_model_spec(fine, tmp_path)

    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("config", "Hermes.notebook = 'x.ipynb'")
    shell.run_line_magic("load_ext", "hermes_jupyter")
    try:
        capsys.readouterr()
        shell.run_line_magic("hermes", "/help")
        text = capsys.readouterr().out
        assert text.startswith("Ask the Hermes agent.") and "::" not in text, text
    finally:
        shell.run_line_magic("unload_ext", "hermes_jupyter")
