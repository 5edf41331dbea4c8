"""%hermes /cells [TURN] [--ran]: a turn's code as new cells below the cell that ran the command.

The cells (views/cells.py) travel as IPython ``set_next_input`` payloads in the cell's reply;
what a frontend does with them differs (README "The agent's work as cells"):

* JupyterLab 4 and Notebook 7 insert the first payload only: the first cell goes as the one payload
  (with a marker line) and a one-shot widget (views/cells_widget.py) inserts the others below it,
  leaving out the cells already below (made by /cells, same code): running the command again inserts nothing.
* VS Code inserts every payload at the cell's index + 1 (vscode-jupyter,
  src/kernels/execution/cellExecutionMessageHandler.ts, handleSetNextInput), so the last one sent
  ends up first: they are sent in reverse.
* Terminal IPython fills the next prompt with one text; nbclient, papermill and nbval ignore
  payloads: one line says so.
"""
from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError

from hermes_jupyter.engine import Engine, Turn
from hermes_jupyter.safety.redact import MARKER, configured_secret_values
from hermes_jupyter.util.private_api import kernel_allows_stdin
from hermes_jupyter.views.cells import Cells, TurnSource, answer_cells, from_record, from_turn, ran_cells

USAGE = ("/cells [TURN] [--ran]: TURN is a turn number of the current session (the last finished turn if "
         "left out), a variable holding a turn (-o NAME), or a turn's id")
VSCODE_CELL = "vscode-notebook-cell:"


class CellCommands:
    """Mixed into HermesMagics: /cells."""

    engine: Engine
    shell: Any

    def _cmd_cells(self, rest: str) -> None:
        words = rest.split()
        ran = "--ran" in words
        words = [w for w in words if w != "--ran"]
        if len(words) > 1 or any(w.startswith("-") for w in words):
            raise UsageError(USAGE)
        source = self._turn_source(words[0] if words else "")
        made = (ran_cells if ran else answer_cells)(source, configured_secret_values())
        where = f"session {source.session!r}, turn {source.number}"
        if not made.cells:
            what = "no code the agent ran in the kernel" if ran else "no Python code blocks"
            skipped = f" (skipped: {made.skipped_text()})" if made.skipped else ""
            raise UsageError(f"{where} has {what}{skipped}")
        deliver(self.shell, made, where)

    # ----- which turn -----------------------------------------------------------------------
    def _turn_source(self, spec: str) -> TurnSource:
        if spec and not spec.isdigit():
            value = (getattr(self.shell, "user_ns", None) or {}).get(spec)
            if isinstance(value, Turn):
                return self._source_of(value.session.name, lambda e: e is value, f"the turn in {spec}")
            for name in list(self.engine.sessions):
                found = self._find(name, lambda e: _id_of(e) == spec)
                if found is not None:
                    return found
            raise UsageError(f"No turn {spec!r}: not a variable holding a turn, nor a turn id. {USAGE}")
        name = self.engine.current
        entries = _entries(self.engine, name)
        if spec:
            number = int(spec)
            if not 0 < number <= len(entries):
                raise UsageError(f"Session {name!r} has {len(entries)} turn{'s' * (len(entries) != 1)}: "
                                 f"there is no turn {number}")
            target = entries[number - 1]
        else:
            finished = [e for e in entries if not isinstance(e, Turn) or e.done]
            if not finished:
                raise UsageError(f"No finished turn in session {name!r} yet")
            target = finished[-1]
        return self._source_of(name, lambda e: e is target, "such turn")

    def _source_of(self, name: str, pick: Any, label: str) -> TurnSource:
        found = self._find(name, pick)
        if found is None:  # a turn the engine let go of (a deleted session)
            raise UsageError(f"Session {name!r} has no {label} any more")
        return found

    def _find(self, name: str, pick: Any) -> TurnSource | None:
        session = self.engine.sessions.get(name)
        for number, entry in enumerate(_entries(self.engine, name), 1):
            if not pick(entry):
                continue
            if isinstance(entry, Turn):
                if not entry.done:
                    raise UsageError(f"turn {number} is still running; wait for it or %hermes /stop")
                return from_turn(entry, number)
            assert session is not None  # it holds the entry
            return from_record(entry, name, number, session.messages_snapshot())
        return None


def _entries(engine: Engine, name: str) -> list[Any]:
    """The turns of a session, numbered as /cells counts them: earlier kernels' records, then this kernel's."""
    session = engine.sessions.get(name)
    return [] if session is None else [*session.saved_turns, *session.turns]


def _id_of(entry: Any) -> str:
    return entry.id if isinstance(entry, Turn) else str(entry.get("id"))


# ----- delivery ---------------------------------------------------------------------------------
def frontend(shell: Any) -> str:
    """terminal | vscode | jupyterlab | headless | other, from what the running cell's request says."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return "terminal"
    parent = kernel.get_parent() or {}
    cell_id = str((parent.get("metadata") or {}).get("cellId") or "")
    if cell_id.startswith(VSCODE_CELL):
        return "vscode"
    if cell_id:
        return "jupyterlab"  # JupyterLab 4 and Notebook 7 send the cell's id (a UUID)
    if not kernel_allows_stdin(kernel):
        return "headless"  # nbclient, papermill, nbval: nobody can answer, nobody inserts cells
    return "other"


def write_payloads(shell: Any, texts: list[str]) -> None:
    # set_next_input writes with single=True (each call replaces the last): several need single=False.
    for text in texts:
        shell.payload_manager.write_payload({"source": "set_next_input", "text": text, "replace": False},
                                            single=False)


def deliver(shell: Any, made: Cells, where: str) -> None:
    cells = made.cells
    n = len(cells)
    what = f"{n} cell{'s' * (n != 1)} from {where}"
    notes = [f"skipped: {made.skipped_text()}"] if made.skipped else []
    if made.redacted:
        notes.append(f"{made.redacted} with a secret replaced by {MARKER}: fill it in")
    tail = f" ({'; '.join(notes)})" if notes else ""
    go = "go" if n != 1 else "goes"
    kind = frontend(shell)
    if kind == "terminal":
        code = "\n\n".join(cells)
        if getattr(shell, "simple_prompt", False):  # --simple-prompt (Emacs, TERM=dumb): no prompt to fill
            print(f"[hermes] {what}, to copy (terminal IPython has no cells, and this prompt cannot be filled){tail}:")
            print(code)
            return
        shell.set_next_input(code)
        print(f"[hermes] {what}: in the next prompt (terminal IPython has no cells){tail}")
        return
    if kind == "vscode":
        write_payloads(shell, cells[::-1])  # each goes right below this cell: the last sent ends up first
        print(f"[hermes] {what} {go} in below this cell{tail}")
        return
    if kind == "jupyterlab":
        from IPython.display import display

        from hermes_jupyter.views.cells_widget import first_payload, insert_rest

        # One payload (JupyterLab and Notebook 7 apply the first only); the widget inserts the rest, and
        # only what is not below already (a second Run All inserts nothing): the kernel cannot see the page.
        text, marker = first_payload(cells)
        write_payloads(shell, [text])
        print(f"[hermes] {what} {go} in below this cell{tail}")
        insert_rest(cells, marker, "this cell", lambda widget: display(widget, display_id=True))
        return
    write_payloads(shell, cells)
    if kind == "headless":
        print(f"[hermes] {what} sent as new cells; this runner (nbclient, papermill, nbval) does not insert "
              f"cells{tail}")
        return
    print(f"[hermes] {what} {go} in below this cell{tail}")
    if kind == "other" and n > 1:
        print("[hermes] a frontend that applies only one payload shows the first of them only")
