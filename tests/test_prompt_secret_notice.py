"""A prompt that holds a secret: the turn says once that only the history is redacted (the cell is not)."""
from __future__ import annotations

from hermes_jupyter import events as ev
from hermes_jupyter.safety.redact import PROMPT_SECRET_NOTICE
from hermes_jupyter.views.static import bundle

from .secret_shapes import DEV, build

TIMEOUT = 60


def notices(turn) -> list[str]:
    return [e.text for e in turn.events if isinstance(e, ev.Status) and e.text == PROMPT_SECRET_NOTICE]


def test_a_prompt_with_a_secret_gets_one_notice_and_the_notice_holds_no_secret(engine, tmp_path):
    planted = build(DEV, "notice")
    prompt = "say hello, and connect with\n" + "\n".join(p.line for p in planted[:6])
    turn = engine.submit(prompt, cwd=tmp_path)
    assert turn.wait(TIMEOUT), turn.events[-5:]
    assert notices(turn) == [PROMPT_SECRET_NOTICE]
    assert "--api-key-env" in PROMPT_SECRET_NOTICE and "environment variable" in PROMPT_SECRET_NOTICE
    assert not any(p.leaked_in(PROMPT_SECRET_NOTICE) for p in planted)
    started = next(i for i, e in enumerate(turn.events) if isinstance(e, ev.TurnStarted))
    assert isinstance(turn.events[started + 1], ev.Status)  # right under the prompt, before the answer
    saved = bundle(turn)  # what the notebook keeps: the static HTML and the text view's transcript
    assert "input history" in saved["text/html"] and saved["text/plain"].count(PROMPT_SECRET_NOTICE) == 1


def test_a_prompt_without_a_secret_gets_none(engine, tmp_path):
    turn = engine.submit("say hello about passwords, tokens and the sort_key of df.groupby('region')", cwd=tmp_path)
    assert turn.wait(TIMEOUT)
    assert notices(turn) == []
