"""The `engine` fixture of the in-process engine tests: a real Engine on tests/scripts/engine.yaml.

A plugin of tests/conftest.py: every test module has it (a module may define its own `engine`).
"""
from __future__ import annotations

from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"


@pytest.fixture
def engine():
    from hermes_jupyter.engine import Engine  # after conftest has set HERMES_HOME

    eng = Engine()
    eng.settings.model = f"scripted:{SCRIPT}"
    yield eng
    for turn in eng.running():  # a failed test must not leave a turn running into the next one
        turn.cancel()
