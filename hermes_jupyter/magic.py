"""The %hermes / %%hermes magic.

    %hermes [options] PROMPT          ask (line)
    %%hermes [options]                ask (the cell body is the prompt)
    %hermes /COMMAND [ARGS]           manage turns and sessions (see /help)

Options come first; everything after them is the prompt, verbatim (quotes and
dashes included). A prompt that itself starts with "/" or "-" goes after "--".
"""
from __future__ import annotations

import asyncio
import contextlib
import keyword
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from hermes_jupyter.agent.settings import APPROVAL_POLICIES, RunOptions
from hermes_jupyter.cell_commands import CellCommands, frontend
from hermes_jupyter.engine import APPROVAL_CHOICES, CANCEL_GRACE, Engine, NothingPending, SessionNameError, Turn
from hermes_jupyter.history.paths import Location, find_notebook, locate, working_folder
from hermes_jupyter.safety.paths import PathRefused, inside_folder, writable_export
from hermes_jupyter.session_commands import SessionCommands
from hermes_jupyter.util.private_api import kernel_allows_stdin, option_takes_value
from hermes_jupyter.util.scheduler import scheduler
from hermes_jupyter.views import text as text_view
from hermes_jupyter.views.prompter import Prompter

COMMANDS = """\
Commands (%hermes /NAME ...):
  /help                      this text
  /stop [all]                stop the running and queued turns of the current session (or all)
  /config                    show the configuration the next turn will use
  /sessions                  list the sessions of this kernel
  /new [NAME]                start a new session and make it current
  /use NAME                  make NAME the current session (created if new)
  /rename [OLD] NEW          rename a session (the current one if OLD is left out)
  /delete NAME               delete a session and its history
  /title TEXT                retitle the current session (the first prompt by default)
  /export [md|html] [PATH]   write the current session as Markdown or HTML, redacted
  /show [TURN]               a turn again, by its id (the last one by default), from this kernel or the history
  /cells [TURN] [--ran]      the Python blocks of a turn's answer (the last finished turn by default;
                             a number, a variable from -o, or an id) as new cells below this one;
                             --ran: the code the agent ran in the kernel, in order
  /approve [once|session|always]   answer the oldest pending approval
  /deny                      deny the oldest pending approval
  /answer TEXT               answer the oldest pending clarify question
Kernel-wide settings: %config Hermes (list), %config Hermes.model = 'scripted:demo'"""


@magics_class
class HermesMagics(Magics, SessionCommands, CellCommands):
    def __init__(self, shell: Any, engine: Engine):
        super().__init__(shell)
        self.engine = engine
        self.location: Location | None = None  # where the history goes, once attached
        self._unsaid: list[str] = []  # what attach_history said before any cell ran
        engine.shell = shell  # whose variables the notebook tools see
        self.interrupts = InterruptStops(shell, engine)

    def attach_history(self) -> None:
        """Keep the sessions in the file `locate` chooses and resume it (again if the notebook is named later).

        Where that file is not beside the notebook (unknown, or on another machine), the cell says so once.
        """
        location = locate(self.shell, self.engine.instance, settings=self.engine.settings)
        if self.location is not None and location.history == self.location.history:
            return
        try:
            unnamed = self.location.history if self.location is not None and not self.location.known else None
            notice = self.engine.attach_history(location.history, moved_from=unnamed)
        except Exception as exc:  # e.g. a file written by a newer version: keep it, run without history
            print(f"[hermes] history not loaded: {exc}", file=sys.stderr)
            return
        self.location = location
        if notice:
            print(f"[hermes] {notice}", file=sys.stderr)
        if location.notice:
            self._say(location.notice)
        if not location.known:
            return  # an unnamed file is never resumed
        session = self.engine.sessions.get(self.engine.current)
        if session is not None and session.saved_turns and not session.turns:
            self._say(f"[hermes] resuming session {session.name!r} ({len(session.saved_turns)} earlier turns) "
                      f"from {location.label(location.history)}")

    def _say(self, line: str) -> None:
        """Print in the running cell. Loaded at kernel start (c.InteractiveShellApp.extensions) no cell
        runs and the line would show nowhere: the next %hermes cell says it instead."""
        kernel = getattr(self.shell, "kernel", None)
        if kernel is not None and not kernel.get_parent():
            self._unsaid.append(line)
        else:
            print(line)

    def _recording_default(self) -> str:
        """Where --record and Hermes.record write: beside the notebook (or beside this kernel's history)."""
        return str(self._location().recording)

    def _location(self) -> Location:
        if self.location is None:
            self.attach_history()
        while self._unsaid:
            print(self._unsaid.pop(0))
        return self.location or locate(self.shell, self.engine.instance, settings=self.engine.settings)

    def _history_label(self) -> str | None:
        store = self.engine.store
        return self._location().label(store.path) if store is not None else None

    @magic_arguments()
    @argument("-s", "--session", metavar="NAME", help="Run in session NAME (created if new) and make it current.")
    @argument("-m", "--model", help="Model: 'scripted:demo', 'scripted:PATH', 'replay:PATH' or a provider's model name.")
    @argument("--provider", help="Hermes provider to use (as in `hermes model`).")
    @argument("--base-url", dest="base_url", metavar="URL", help="Any OpenAI-compatible endpoint.")
    @argument("--api-key-env", dest="api_key_env", metavar="VAR",
              help="Environment variable that holds the key for --base-url.")
    @argument("--toolsets", metavar="A,B", help="Comma-separated Hermes toolsets for this turn.")
    @argument("--attach", metavar="PATHS",
              help="Comma-separated files to attach (relative to the notebook's folder).")
    @argument("--personality", metavar="NAME",
              help="A Hermes personality for this session (built-in or from agent.personalities).")
    @argument("--approvals", choices=APPROVAL_POLICIES,
              help="Who decides on dangerous commands: ask (default), deny, allow, smart.")
    @argument("--approval-timeout", dest="approval_timeout", type=float, metavar="SECONDS",
              help="Deny an unanswered approval after SECONDS.")
    @argument("--clarify-timeout", dest="clarify_timeout", type=float, metavar="SECONDS",
              help="Give up on an unanswered question after SECONDS.")
    @argument("-w", "--wait", action="store_true", default=None,
              help="Block until the turn ends (headless runs, Run All). Interrupt the kernel to stop it.")
    @argument("--no-wait", dest="wait", action="store_false",
              help="Return at once even in terminal IPython.")
    @argument("-o", "--out", metavar="NAME", help="Store the turn's handle in the variable NAME.")
    @argument("--plain", action="store_true", default=None, help="Render as plain text, not widgets.")
    @argument("--record", action="store_true", default=None,
              help="Record the model's replies beside the notebook (NAME.hermes-recording.yaml), "
                   "to replay offline with --model replay:PATH.")
    @argument("--no-record", dest="record", action="store_false", help="Do not record this turn.")
    @argument("--record-to", dest="record_to", metavar="PATH", help="Record into PATH (implies --record).")
    @argument("--replay-timing", dest="replay_timing", choices=("recorded", "fast"),
              help="For --model replay:PATH: stream as recorded (default) or at once.")
    @argument("--vars", metavar="A,B", help="Attach summaries of these variables (DataFrames...) to the prompt.")
    @argument("prompt", nargs="*", help="The prompt, or a /command (see %%hermes /help).")
    @line_cell_magic
    def hermes(self, line: str, cell: str | None = None) -> None:
        """Ask the Hermes agent. The cell returns at once; the turn streams into its output."""
        options, prompt, literal = split_options(line, self.hermes.parser)
        args = parse_argstring(self.hermes, options)
        if cell is not None:
            prompt = f"{prompt}\n{cell}".strip() if prompt else cell.strip()
        try:
            if args.session:
                self.engine.use(args.session)
            if prompt.startswith("/") and not literal:
                self._command(prompt[1:])
            elif not prompt and args.session:
                print(f"[hermes] session {args.session!r} is current")
            elif not prompt:
                raise UsageError("Nothing to ask: %hermes PROMPT, or %%hermes with the prompt in the cell "
                                 "body. %hermes /help lists the commands.")
            else:
                self._ask(prompt, args, cell_magic=cell is not None)
        except SessionNameError as exc:
            raise UsageError(str(exc)) from None

    # ----- asking ---------------------------------------------------------------------------
    def _ask(self, prompt: str, args: Any, cell_magic: bool = False) -> Turn:
        in_kernel = getattr(self.shell, "kernel", None) is not None
        settings = self.engine.settings
        flags = {k: getattr(args, k) for k in ("model", "provider", "base_url", "api_key_env", "toolsets", "personality",
                                               "approvals", "approval_timeout", "clarify_timeout",
                                               "record", "record_to", "replay_timing")}
        check_model_spec(args.model or settings.model, notebook_dir(self.shell, self.engine.settings))
        flags["record_default"] = self._recording_default()
        if args.vars:
            from hermes_jupyter.notebook.tools import attached_variables
            flags["context"] = attached_variables(self.shell, args.vars.split(","))  # UsageError if unknown
        if args.attach:
            flags["attachments"] = tuple(attachments(args.attach, notebook_dir(self.shell, self.engine.settings)))
        for option, seconds in (("--approval-timeout", args.approval_timeout), ("--clarify-timeout", args.clarify_timeout)):
            if seconds is not None and not seconds > 0:  # (not NaN either) it timed out at once
                raise UsageError(f"{option} {seconds:g}: give the seconds to wait for an answer, more than 0")
        if args.out and (not args.out.isidentifier() or keyword.iskeyword(args.out)):
            raise UsageError(f"-o {args.out}: not a Python variable name; try -o t")
        shell = self.shell
        assert shell is not None  # a magic is always registered on a shell
        headless = in_kernel and frontend(shell) == "headless"
        wait = _first(args.wait, settings.wait, (headless and (cell_magic or not code_follows(shell))) or not in_kernel)
        plain = _first(args.plain, settings.plain, not in_kernel)
        ended = cell_ended(shell)
        with self.engine.starts_held(ended):  # the turn's work begins once its cell has returned
            turn = self.engine.submit(prompt, cwd=notebook_dir(shell, self.engine.settings), options=RunOptions(**flags))
            if args.out:
                shell.user_ns[args.out] = turn
            shell.user_ns["_hermes"] = turn
            if plain:
                text_view.attach(turn, label=args.out or "_hermes", blocking=wait)
            else:
                view, handle, saved = show(shell, turn, self._history_label(), wait, headless)
        if wait:
            ended.set()  # this cell now waits for the turn
        if plain:
            if wait:
                self._wait(turn)
            return turn
        if wait:
            # A frontend with a stdin shows the widgets: their buttons answer. Headless runs have neither.
            self._wait(turn, buttons=self._frontend_has_stdin())
            # Leave the static rendering as its own output, and blank the live one, in a way
            # nbclient (which applies display updates) and nbval (which ignores them) both record alike.
            from IPython.display import display

            from hermes_jupyter.views import static
            handle.update({"text/plain": ""}, raw=True)
            display(static.bundle(turn, self._history_label()), raw=True)
            if saved is not None:
                saved.update({"text/plain": ""}, raw=True)
            view.close()
        return turn

    def _wait(self, turn: Turn, *, buttons: bool = False) -> None:
        """Block until the turn ends, running its code on this (main) thread; answers come from the
        view's buttons (`buttons`) or are asked on stdin where there is one."""
        try:
            # This cell holds the kernel until the turn ends: it runs the turn's code itself.
            from hermes_jupyter.notebook.runner import wait_serving
            wait_serving(Prompter(turn, buttons=buttons), self.shell)
        except KeyboardInterrupt:
            turn.cancel(INTERRUPTED)
            turn.wait(CANCEL_GRACE + 2)
            print("\n[hermes] stopped (kernel interrupt)")

    def _frontend_has_stdin(self) -> bool:
        # True in JupyterLab, Notebook 7 and VS Code; False under nbclient, papermill and nbval (nobody can answer there).
        return kernel_allows_stdin(getattr(self.shell, "kernel", None))

    # ----- commands -------------------------------------------------------------------------
    def _command(self, text: str) -> None:
        name, _, rest = text.strip().partition(" ")
        rest = rest.strip()
        handler = COMMAND_HANDLERS.get(name.lower())
        if handler is None:
            raise UsageError(f"Unknown command /{name}. %hermes /help lists the commands; "
                             "to ask something that starts with '/', write %hermes -- /...")
        handler(self, rest)

    def _cmd_help(self, rest: str) -> None:
        # magic_arguments rewrote the docstring into "::" + usage: print our own first line.
        print("Ask the Hermes agent. The cell returns at once; the turn streams into its output.")
        usage = self.hermes.parser.format_usage()
        print("\n".join(line for line in usage.splitlines() if line.strip() not in ("", "::")))
        print("Options: %hermes?")
        print(COMMANDS)

    def _cmd_stop(self, rest: str) -> None:
        if rest not in ("", "all"):
            raise UsageError("/stop takes no argument, or 'all'")
        sessions = list(self.engine.sessions.values()) if rest == "all" else [self.engine.session()]
        stopped = [t for s in sessions for t in s.turns if not t.done and t.cancel()]
        print(f"[hermes] stopped {len(stopped)} turn(s)" if stopped else "[hermes] nothing is running")

    def _cmd_config(self, rest: str) -> None:
        from hermes_jupyter.agent.failures import ConfigError
        from hermes_jupyter.agent.settings import resolve

        print(f"[hermes] session {self.engine.current!r}, working in {notebook_dir(self.shell, self.engine.settings)}")
        store = self.engine.store
        location = self._location()
        where = location.label(store.path) if store is not None else "not saved"
        if not location.known:
            where += " (this kernel cannot tell its notebook: %config Hermes.notebook = 'NAME.ipynb')"
        print(f"  {'history':17} {where}")
        if self.engine.store_error:
            print(f"  {'history error':17} {self.engine.store_error}")
        try:
            config = resolve(RunOptions(record_default=self._recording_default()), self.engine.settings)
        except ConfigError as exc:
            home = os.environ.get("HERMES_HOME") or str(Path.home() / ".hermes")
            print(f"  {'model':17} not configured: {exc}")
            print(f"  {'looked in':17} %config Hermes.model, HERMES_JUPYTER_MODEL, {home}/config.yaml")
            print(f"  {'without a key':17} %config Hermes.model = 'scripted:demo' (the built-in scripted model)")
            return
        for key, value in config.describe().items():
            print(f"  {key:17} {value}")
        from hermes_jupyter.agent import mcp_servers
        for key, value in mcp_servers.describe():  # the user's MCP servers, and why one is unavailable
            print(f"  {key:17} {value}")

    def _cmd_export(self, rest: str) -> None:
        from hermes_jupyter.views.export import session_html, session_markdown

        parts = rest.split(maxsplit=1)
        kind = parts[0].lower() if parts else "md"
        if kind not in ("md", "html"):
            raise UsageError("/export [md|html] [PATH]: Markdown (default) or HTML")
        session = self.engine.session()
        folder = notebook_dir(self.shell, self.engine.settings).resolve()
        name = parts[1] if len(parts) > 1 else f"{_stem(self.shell, self.engine.settings)}-{session.name}.{kind}"
        try:  # inside the notebook's folder only (safety/paths.py), like --attach
            path = writable_export(name, folder)
        except PathRefused as exc:
            raise UsageError(f"Cannot export to {name!r}: {exc}. Nothing was written.") from None
        text = session_markdown(session) if kind == "md" else session_html(session)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"Cannot export to {name!r}: {exc.strerror or exc}. Nothing was written.") from None
        print(f"[hermes] exported session {session.name!r} to {path.relative_to(folder)}")

    def _cmd_approve(self, rest: str) -> None:
        choice = rest or "once"
        if choice not in APPROVAL_CHOICES:
            raise UsageError(f"/approve takes one of {', '.join(APPROVAL_CHOICES[:3])}")
        self._answer_oldest(lambda t: t.approve(choice))

    def _cmd_deny(self, rest: str) -> None:
        self._answer_oldest(lambda t: t.deny())

    def _cmd_answer(self, rest: str) -> None:
        if not rest:
            raise UsageError("/answer TEXT: what is the answer?")
        self._answer_oldest(lambda t: t.answer(rest))

    def _answer_oldest(self, act: Callable[[Turn], object]) -> None:
        for turn in self.engine.session().turns:
            if turn.done:
                continue
            try:
                act(turn)
                return
            except NothingPending:
                continue
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        raise UsageError("Nothing is waiting for an answer in the current session.")


# Every /command and its handler, given the rest of the line. /help (COMMANDS) lists exactly these.
COMMAND_HANDLERS: dict[str, Callable[[HermesMagics, str], None]] = {
    "help": HermesMagics._cmd_help, "stop": HermesMagics._cmd_stop, "config": HermesMagics._cmd_config,
    "sessions": HermesMagics._cmd_sessions, "new": HermesMagics._cmd_new, "use": HermesMagics._cmd_use,
    "rename": HermesMagics._cmd_rename, "delete": HermesMagics._cmd_delete, "title": HermesMagics._cmd_title,
    "export": HermesMagics._cmd_export, "show": HermesMagics._cmd_show, "cells": HermesMagics._cmd_cells,
    "approve": HermesMagics._cmd_approve, "deny": HermesMagics._cmd_deny, "answer": HermesMagics._cmd_answer,
}


def cell_ended(shell: Any) -> threading.Event:
    """An event set when the running cell has finished and, in a kernel, its reply has been sent.

    IPython's post_run_cell comes before ipykernel flushes the cell's output and sends its reply;
    a turn starting its work then (its history, a request that grows with the session) held the
    GIL against that last stretch of the cell. The kernel's event loop runs a callback queued
    there once the execute handler has returned, after the reply (ipykernel 7.4: the handler
    does not yield after the cell). Without a running loop (terminal IPython) it is set at once.
    """
    ended = threading.Event()

    def once(*_: Any) -> None:
        shell.events.unregister("post_run_cell", once)
        try:
            asyncio.get_running_loop().call_soon(ended.set)
        except RuntimeError:  # no event loop runs this cell
            ended.set()

    shell.events.register("post_run_cell", once)
    return ended


def show(shell: Any, turn: Turn, history: str | None, wait: bool, headless: bool) -> tuple[Any, Any, Any]:
    """Display the turn's live view and, beside it, the turn so far for a save mid-turn (views/snapshot.py);
    without --wait the view becomes the static rendering when the turn ends, and the second output blank."""
    from IPython.display import display

    from hermes_jupyter.views import static
    from hermes_jupyter.views.snapshot import Snapshots
    from hermes_jupyter.views.widget import TurnView

    view = TurnView(turn, history=history)
    handle = display(view.root, display_id=True)
    saved = None
    if not headless:  # a headless run saves the notebook at its end, with the final rendering
        saved = display(static.snapshot_bundle(turn, history), raw=True, display_id=True)
        view.snapshots = Snapshots(lambda: saved.update(static.snapshot_bundle(turn, history), raw=True))
    if not wait:
        # The cell has returned; the view becomes its static rendering when the turn ends.
        later = LaterCells(shell) if headless else None
        def final(_view: Any) -> None:
            with later.sending() if later is not None else contextlib.nullcontext():
                handle.update(static.bundle(turn, history), raw=True)
            if saved is not None:
                saved.update({"text/plain": ""}, raw=True)
        view.on_done = final
    turn.subscribe(view)
    return view, handle, saved


INTERRUPTED = "Stopped by the kernel's Interrupt"


class InterruptStops:
    """The kernel's Interrupt stops this kernel's running and queued turns, as Stop does, when no cell runs.

    While a cell runs, Interrupt raises KeyboardInterrupt in it, as always (a --wait cell then stops
    its turn). Between cells ipykernel ignores SIGINT: the handler it restores after each message is
    `kernel.saved_sigint_handler` (SIG_IGN), which this replaces with one that stops the turns and then
    does what the one before did. A kernel with interrupt_mode "message" sends itself SIGINT: the same.
    """

    def __init__(self, shell: Any, engine: Engine) -> None:
        self.engine = engine
        self.kernel = getattr(shell, "kernel", None)
        self.previous: Any = None
        if self.kernel is None or threading.current_thread() is not threading.main_thread():
            self.kernel = None
            return
        self.previous = getattr(self.kernel, "saved_sigint_handler", signal.SIG_IGN)
        self.kernel.saved_sigint_handler = self._interrupted
        if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:  # loaded at kernel start, outside any message
            signal.signal(signal.SIGINT, self._interrupted)

    def _interrupted(self, signum: int, frame: Any) -> None:
        # Not here: a signal handler runs between two bytecodes of the main thread, which may hold a turn's lock.
        scheduler.call_later(0, self._stop_all)
        if callable(self.previous):
            self.previous(signum, frame)

    def _stop_all(self) -> None:
        for turn in self.engine.running():
            turn.cancel(INTERRUPTED)

    def close(self) -> None:
        kernel = self.kernel
        if kernel is None:
            return
        if getattr(kernel, "saved_sigint_handler", None) == self._interrupted:
            kernel.saved_sigint_handler = self.previous
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) == self._interrupted:
            signal.signal(signal.SIGINT, self.previous if self.previous is not None else signal.SIG_IGN)
        self.kernel = None


def code_follows(shell: Any) -> bool:
    """Does the running cell have code after its %hermes line (code that may answer or wait for the turn)?

    A headless runner (nbclient, papermill) keeps only what reaches a cell while it runs: there a turn waits
    in its own cell, unless code after the magic drives it (its handle)."""
    kernel = getattr(shell, "kernel", None)
    code = str(((kernel.get_parent() if kernel is not None else None) or {}).get("content", {}).get("code") or "")
    lines = [ln.strip() for ln in code.splitlines()]
    last = max((n for n, ln in enumerate(lines) if ln.startswith("%hermes")), default=len(lines))
    return any(ln and not ln.startswith("#") for ln in lines[last + 1:])


class LaterCells:
    """Where a headless runner still listens once the turn's own cell has ended: the cell running now.

    nbclient applies only messages whose parent is the cell it runs, but it applies a display update
    to every output with that display id, whichever cell holds it: sent under a later cell's request
    (``t.wait()`` in it, or any cell still running), the final rendering replaces the turn's live view.
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.parent: dict[str, Any] | None = None
        shell.events.register("pre_run_cell", self._started)
        shell.events.register("post_run_cell", self._ended)

    def _started(self, *_: Any) -> None:
        self.parent = self.shell.kernel.get_parent()  # the main thread's: the cell that starts now

    def _ended(self, *_: Any) -> None:
        self.parent = None

    @contextlib.contextmanager
    def sending(self) -> Iterator[None]:
        for name, hook in (("pre_run_cell", self._started), ("post_run_cell", self._ended)):
            with contextlib.suppress(ValueError):
                self.shell.events.unregister(name, hook)
        publisher = self.shell.display_pub
        token = publisher.set_thread_parent(self.parent) if self.parent and hasattr(publisher, "set_thread_parent") else None
        try:
            yield
        finally:
            if token is not None:
                publisher.reset_thread_parent(token)


def check_model_spec(model: str | None, folder: Path) -> None:
    """A script or recording that is not there stops the cell at once, saying which file."""
    kind, _, path = str(model or "").partition(":")
    if kind not in ("scripted", "replay") or not path or path == "demo":
        return
    found = Path(path).expanduser()
    if not found.is_absolute():
        found = Path.cwd() / found  # the kernel resolves it from its working folder
    if not found.is_file():
        hint = "record it first with --record" if kind == "replay" else "'scripted:demo' is the built-in one"
        raise UsageError(f"--model {model}: no such file {str(found)!r}; {hint}")


def split_options(line: str, parser: Any) -> tuple[str, str, bool]:
    """Split a magic line into (options, prompt, literal).

    Only the leading options are parsed; the prompt is kept verbatim and is
    never shell-split, so apostrophes and dashes in a question are just text.
    ``literal`` is True when "--" ended the options (the prompt is not a /command).
    """
    rest = line.strip()
    taken: list[str] = []
    takes_value = option_takes_value(parser)
    while rest.startswith("-"):
        token, rest = _take_word(rest)
        if token == "--":
            return " ".join(taken), rest, True
        flag = token.split("=", 1)[0]
        if flag not in takes_value:
            raise UsageError(f"Unknown option {flag}. See %hermes? for the options; to ask something "
                             "that starts with '-', write %hermes -- ...")
        taken.append(token)
        if takes_value[flag] and "=" not in token:
            value, rest = _take_word(rest)
            if not value:
                raise UsageError(f"Option {flag} needs a value")
            taken.append(shlex.quote(value))
    return " ".join(taken), rest, False


def _take_word(text: str) -> tuple[str, str]:
    """One shell-like word (optionally quoted) from the front of text, and what follows."""
    text = text.lstrip()
    if text[:1] in ("'", '"'):
        close = text.find(text[0], 1)
        if close == -1:
            raise UsageError(f"Unbalanced quote in {text!r}")
        return text[1:close], text[close + 1:].lstrip()
    word, _, after = text.partition(" ")
    return word, after.lstrip()


def notebook_dir(shell: Any, settings: Any) -> Path:
    """The agent's working folder: the notebook's folder where this kernel sees it, else the kernel's own."""
    return working_folder(shell, settings=settings)


def attachments(spec: str, folder: Path) -> list[str]:
    """The files to attach, relative to the notebook's folder; a missing or unreadable one, or one outside
    that folder (safety/paths.py), stops the turn before it is sent."""
    found = []
    for name in (n.strip() for n in spec.split(",")):
        if not name:
            continue
        try:
            path = inside_folder(name, folder)
        except PathRefused as exc:
            raise UsageError(f"Cannot attach {name!r}: {exc}. Nothing was sent.") from None
        if not path.is_file():
            raise UsageError(f"Cannot attach {name!r}: no such file in {folder}")
        if not os.access(path, os.R_OK):
            raise UsageError(f"Cannot attach {name!r}: it is not readable")
        found.append(path.relative_to(folder.resolve()).as_posix())
    return found


def _stem(shell: Any, settings: Any) -> str:
    found = find_notebook(shell, settings)
    return found.stem if found is not None else "hermes"


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)
