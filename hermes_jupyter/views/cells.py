"""A turn as notebook cells (%hermes /cells): the Python blocks of its answer, or the code the agent ran.

Pure: no IPython. The caller delivers the cells (cell_commands.py). Every cell starts with a comment
naming its session and turn, and its text passes the history's redaction: a secret becomes
``[REDACTED]`` (inside a string literal the cell still parses) and a second comment says so.
"""
from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hermes_jupyter import events as ev
from hermes_jupyter.safety.markdown import fenced_blocks
from hermes_jupyter.safety.redact import MARKER, redact_text

if TYPE_CHECKING:
    from hermes_jupyter.engine import Turn

# Info strings taken as Python. A block without one is skipped (and counted): a directory listing or
# a shell transcript also parses as Python, and nothing is inserted that the user did not ask for.
PYTHON_INFO = frozenset({"python", "py", "python3", "py3", "ipython", "ipython3"})
RUN_TOOL = "notebook_run_python"
SECRET_NOTE = f"# hermes: a secret was replaced by {MARKER}; fill it in before running this cell"
# Some secrets run to the end of their line (a cookie header, a key block): the closing quote goes too.
BROKEN_NOTE = f"# hermes: the replaced secret took the rest of its line; restore the code around {MARKER}"
# Why a run of the agent's code is not a cell: its tool result's "status".
NOT_RUN = {"error": "that raised an error", "denied": "that you denied", "cancelled": "that was stopped",
           "interrupted": "that was stopped"}
GONE = "no longer in the conversation (compressed)"


@dataclass(frozen=True)
class TurnSource:
    """What the cells of one finished turn are made from, for a live turn and a saved one alike."""

    session: str
    number: int  # 1-based, in its session (the turns of earlier kernels first)
    answer: str
    runs: tuple[str, ...]  # the ids of the turn's notebook_run_python calls, in order
    messages: Sequence[Mapping[str, Any]]  # the session's conversation: the full code of each call


@dataclass
class Cells:
    cells: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "1 bash block", "1 run that raised an error"
    redacted: int = 0  # cells in which a secret was replaced

    def skipped_text(self) -> str:
        return "; ".join(self.skipped)


def from_turn(turn: Turn, number: int) -> TurnSource:
    ids = tuple(e.call_id for e in turn.events if isinstance(e, ev.ToolStarted) and e.name == RUN_TOOL)
    return TurnSource(turn.session.name, number, turn.text, ids, turn.session.messages_snapshot())


def from_record(record: Mapping[str, Any], session: str, number: int,
                messages: Sequence[Mapping[str, Any]]) -> TurnSource:
    """A turn of an earlier kernel, as the history file keeps it (redacted there already)."""
    ids = tuple(str(t.get("id")) for t in record.get("tools") or []
                if isinstance(t, Mapping) and t.get("name") == RUN_TOOL)
    return TurnSource(session, number, str(record.get("answer") or ""), ids, messages)


def has_python_blocks(answer: str) -> bool:
    return any(info.split()[0].lower() in PYTHON_INFO for info, _ in fenced_blocks(answer) if info)


def hint_for(turn: Turn, answer: str) -> str | None:
    """Under a finished answer with Python blocks, the /cells command that makes them cells: the turn's
    number in its session, and the session too where it is not the current one."""
    session = turn.session
    if not has_python_blocks(answer) or turn not in session.turns:
        return None
    number = len(session.saved_turns) + session.turns.index(turn) + 1
    other = "" if session.engine.current == session.name else f"-s {session.name} "
    return f"Python code above: %hermes {other}/cells {number} puts it into new cells below the cell you run it in"


def answer_cells(source: TurnSource, secrets: Iterable[str] = ()) -> Cells:
    """The answer's Python code blocks; blocks in other languages or without one are counted, not taken."""
    found = Cells()
    codes: list[str] = []
    other: dict[str, int] = {}
    for info, content in fenced_blocks(source.answer):
        language = info.split()[0].lower() if info else ""
        if language in PYTHON_INFO:
            if content.strip():
                codes.append(content)
        else:
            other[language] = other.get(language, 0) + 1
    for language, n in other.items():
        found.skipped.append(f"{n} {language + ' ' if language else ''}block{'s' * (n > 1)}"
                             f"{'' if language else ' without a language'}")
    _fill(found, source, codes, "block", secrets)
    return found


def ran_cells(source: TurnSource, secrets: Iterable[str] = ()) -> Cells:
    """The code the agent ran in the kernel (approved notebook_run_python calls that finished), in order."""
    calls: dict[str, Mapping[str, Any]] = {}
    results: dict[str, str] = {}
    for message in source.messages:
        for call in message.get("tool_calls") or []:
            if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
                calls[str(call.get("id"))] = call["function"]
        if message.get("role") == "tool":
            results[str(message.get("tool_call_id"))] = str(message.get("content") or "")
    found = Cells()
    codes: list[str] = []
    why: dict[str, int] = {}
    for call_id in source.runs:
        function = calls.get(call_id)
        code = _argument(function.get("arguments"), "code") if function is not None else ""
        status = _argument(results.get(call_id), "status")
        if status == "ok" and code.strip():
            codes.append(code)
            continue
        reason = NOT_RUN.get(status, "that did not run") if function is not None else GONE
        why[reason] = why.get(reason, 0) + 1
    found.skipped = [f"{n} run{'s' * (n > 1)} {reason}" for reason, n in why.items()]
    _fill(found, source, codes, "run", secrets)
    return found


def _argument(text: Any, key: str) -> str:
    try:
        data = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return ""
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, str) else ""


def _fill(found: Cells, source: TurnSource, codes: list[str], what: str, secrets: Iterable[str]) -> None:
    secrets = list(secrets)
    for i, code in enumerate(codes, 1):
        head = f"# hermes: session {_one_line(source.session)!r}, turn {source.number} ({what} {i} of {len(codes)})"
        body = code.rstrip("\n")
        clean = redact_text(body, secrets)
        lines = [head]
        if clean != body:
            found.redacted += 1
            lines.append(SECRET_NOTE)
            if _parses(body) and not _parses(clean):
                lines.append(BROKEN_NOTE)
        found.cells.append("\n".join([*lines, clean]))


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):  # IPython syntax (%magic, !shell) too: then nothing is said
        return False
    return True


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
