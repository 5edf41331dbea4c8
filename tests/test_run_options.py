"""A turn's options cross from the magic to the engine, the runner and the session as one frozen, typed value."""
from __future__ import annotations

import dataclasses

import pytest

from hermes_jupyter.agent.settings import RunOptions
from hermes_jupyter.engine import Engine


def test_options_are_frozen_and_an_unknown_one_is_refused_before_a_turn_exists():
    options = RunOptions(model="scripted:demo", attachments=["data.csv"])  # type: ignore[arg-type]
    assert options.attachments == ("data.csv",)  # a list given is kept as a tuple: nothing can change it later
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.model = "other"  # type: ignore[misc]
    engine = Engine()
    with pytest.raises(TypeError, match="modle"):
        engine.submit("hello", modle="scripted:demo")
    assert not engine.session().turns


def test_keywords_of_submit_are_laid_over_the_options_and_a_sessions_personality_stays():
    engine = Engine()
    engine.session().personality = "pirate"  # as a turn with --personality pirate leaves it
    turn = engine.submit("hello", options=RunOptions(model="scripted:demo", approvals="deny"), approvals="ask",
                         cwd=".")
    try:
        assert (turn.options.model, turn.options.approvals, turn.options.personality) == \
            ("scripted:demo", "ask", "pirate")
    finally:
        turn.cancel()
        turn.wait(10)
