"""Nothing is dropped silently on its way to a handler: every event kind reaches a handler in each
view (or is ignored on purpose, listed here), and every /command is in the magic's table and its help.

The views dispatch an event by its kind to ``_on_<kind>``, and a kind with no such method is skipped:
a new or renamed event would vanish from a view without a word. These tests make it fail instead.
"""
from __future__ import annotations

import re
import sys
import typing
from typing import Any

import pytest
from IPython.core.error import UsageError

from hermes_jupyter import events as ev
from hermes_jupyter.magic import COMMAND_HANDLERS
from hermes_jupyter.notebook import outputs
from hermes_jupyter.views.text import TextView
from hermes_jupyter.views.widget import TurnView

# Kinds a view leaves alone on purpose, with why.
IGNORED: dict[type, dict[str, str]] = {
    TurnView: {},
    TextView: {"phase": "what a starting turn waits for lives in the live header; printed text has no header"},
}


def event_classes() -> list[type[ev.Event]]:
    """Every concrete event type: those of events.py and any defined elsewhere (notebook.outputs.CodeOutput)."""
    found, todo = [], list(ev.Event.__subclasses__())
    while todo:
        cls = todo.pop()
        # @dataclass(slots=True) makes a new class; the one it replaced still counts as a subclass
        if getattr(sys.modules[cls.__module__], cls.__name__, None) is cls:
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_event_type_is_seen_with_a_kind_of_its_own():
    classes = event_classes()
    assert ev.Done in classes and outputs.CodeOutput in classes  # the walk can fail: these must be found
    kinds = [c.kind for c in classes]
    assert len(kinds) == len(set(kinds)), sorted(kinds)
    assert "event" not in kinds  # every type names its kind


@pytest.mark.parametrize("view", [TurnView, TextView], ids=lambda v: v.__name__)
def test_every_event_kind_has_a_handler_in_each_view(view):
    kinds = {c.kind for c in event_classes()}
    handled = {name.removeprefix("_on_") for name in dir(view) if name.startswith("_on_")}
    ignored = set(IGNORED[view])
    missing = kinds - handled - ignored
    assert not missing, f"{view.__name__} has no _on_<kind> for {sorted(missing)}: add one, or list it in IGNORED"
    stale = handled - kinds
    assert not stale, f"{view.__name__} handles kinds no event has (renamed?): {sorted(stale)}"
    assert not ignored & handled, f"{view.__name__} both handles and ignores {sorted(ignored & handled)}"
    assert ignored <= kinds, f"IGNORED names kinds no event has: {sorted(ignored - kinds)}"


@pytest.mark.parametrize("view", [TurnView, TextView], ids=lambda v: v.__name__)
def test_a_typed_handler_takes_the_event_of_its_kind(view):
    by_kind = {c.kind: c for c in event_classes()}
    wrong = []
    for kind, cls in by_kind.items():
        handler = getattr(view, f"_on_{kind}", None)
        if handler is None:
            continue
        hints = typing.get_type_hints(handler, {**vars(ev), "ev": ev, "Any": Any})
        taken = next(v for k, v in hints.items() if k != "return")
        if taken is not Any and taken is not cls:
            wrong.append(f"_on_{kind} takes {taken.__name__}, its events are {cls.__name__}")
    assert not wrong, "\n".join(wrong)


# ----- the magic's /commands --------------------------------------------------------------------------

@pytest.fixture
def magics():
    from IPython.core.interactiveshell import InteractiveShell

    from hermes_jupyter.engine import Engine
    from hermes_jupyter.magic import HermesMagics

    return HermesMagics(InteractiveShell.instance(), Engine())


def test_help_lists_exactly_the_commands_of_the_table(magics, capsys):
    magics._command("help")
    listed = re.findall(r"^  /(\w+)", capsys.readouterr().out, re.MULTILINE)
    table = COMMAND_HANDLERS
    assert listed and len(listed) == len(set(listed))
    only_help, only_table = sorted(set(listed) - set(table)), sorted(set(table) - set(listed))
    assert not only_help and not only_table, f"only in /help: {only_help}; only in the table: {only_table}"
    # A handler left out of the table would be unreachable.
    handlers = {name.removeprefix("_cmd_") for name in dir(magics) if name.startswith("_cmd_")}
    assert handlers == set(table), sorted(handlers ^ set(table))


def test_a_command_reaches_its_handler_and_an_unknown_one_is_a_usage_error(magics, capsys, monkeypatch):
    seen = []
    for name in COMMAND_HANDLERS:
        monkeypatch.setitem(COMMAND_HANDLERS, name, lambda _self, rest, name=name: seen.append((name, rest)))
    magics._command("Stop  all ")
    magics._command("answer forty two")
    assert seen == [("stop", "all"), ("answer", "forty two")]
    for unknown in ("frobnicate", "cmd_help", "", "help!"):
        with pytest.raises(UsageError, match=r"Unknown command /.*%hermes /help lists the commands"):
            magics._command(unknown)
    assert len(seen) == 2
