"""Run the agent's Python in the kernel: on the main thread, between the user's cells.

Why a run is serialized with the user's cells (ipykernel 7.x)
------------------------------------------------------------
ipykernel handles each shell message of the main shell in ``Kernel.shell_main``
on the main thread's asyncio loop and holds ``kernel._main_asyncio_lock`` for
the whole ``dispatch_shell``: for an ``execute_request`` that is the whole cell,
``await``s of an async cell included (only comm messages skip the lock, so
widgets keep working). A run is a coroutine scheduled on that same loop with
``call_soon_threadsafe``; it takes the same lock, then runs the code
synchronously on the main thread. So:

* no cell runs while agent code runs: the cell's execute_request waits for the
  lock (asyncio locks are FIFO), exactly like a second queued cell;
* agent code never starts while a cell runs: it waits for the lock (and a
  synchronous cell blocks the loop anyway);
* it runs where a cell runs, on the main thread, so signals, matplotlib and
  libraries that insist on the main thread behave as they do in a cell.

(ipykernel 6 has no such lock; there the coroutine still runs only when the
loop is free, i.e. between cells, except during the ``await`` of an async cell.)

A cell that blocks on its own turn (``%hermes --wait``, terminal IPython) holds
the lock until the turn ends, so the coroutine cannot run before then. That
cell's wait loop (the Prompter, see ``wait_serving``) runs the turn's jobs
itself, on the main thread, inside the very cell that asked: again never next
to another cell. A job is claimed once, under ``Runner._lock``, by whichever
path comes first; the other finds nothing to do.

Stopping: ``cancel`` drops a job that has not started and interrupts a running
one with SIGINT sent to the main thread (``signal.pthread_kill``): the
KeyboardInterrupt a kernel interrupt raises in a cell, which also breaks a
``time.sleep``. Our handler raises only while the agent's code runs ("armed"),
so a late signal can never land in the user's next cell. The kernel's own
interrupt button stops agent code the same way.

The turn's Stop button is a comm message, handled by the main thread, which is
busy running the code. ipykernel 7.4's shell-channel thread asks every comm
where its messages go (``_reply_subshell_for``); ``act_on_click_early`` hooks
that for one button so its click acts at once, from that thread.

Output: while a run is on, ``sys.stdout``/``sys.stderr`` and the shell's
display publisher are routers; what the run's own context writes goes to the
run's ``Capture`` (events for the turn's views, bounded text for the model),
everything else (other threads: the views, other turns) passes through.
"""
from __future__ import annotations

import ast
import asyncio
import contextlib
import contextvars
import logging
import signal
import threading
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from hermes_jupyter.notebook.capture import Capture, RoutedStream, active_capture, routed_publisher_class
from hermes_jupyter.util.private_api import main_asyncio_lock
from hermes_jupyter.util.text import cut

log = logging.getLogger("hermes_jupyter")

RESULT_CHARS = 2_000
TRACEBACK_CHARS = 2_500
CODE_NAME = "<agent code>"



class Job:
    """One notebook_run_python call: code, where its output goes, and how it ended."""

    def __init__(self, code: str, *, emit: Callable[[dict[str, Any]], None], clean: Callable[[str], str] | None = None,
                 turn: str = "", wake: Callable[[], None] | None = None):
        self.id = uuid.uuid4().hex[:8]
        self.code = code
        self.emit = emit
        self.clean = clean or (lambda s: s)
        self.turn = turn  # the id of the turn whose agent asked
        self.wake = wake
        # Runs in a copy of the asking thread's context: the kernel's parent header in it is
        # the %hermes cell's, so anything that escapes the capture lands in that cell.
        self.context = contextvars.copy_context()
        self.state = "pending"  # pending | running | done | cancelled
        self.cancel_requested = False
        self.signalled = False
        self.result: dict[str, Any] | None = None
        self.started = threading.Event()
        self.finished = threading.Event()


class _Failed(Exception):
    def __init__(self, info: dict[str, str]):
        super().__init__(info.get("error", ""))
        self.info = info


class Runner:
    """Runs jobs on the kernel's main thread, one at a time, between cells. One per shell."""

    def __init__(self, shell: Any):
        self.shell = shell
        self.kernel = getattr(shell, "kernel", None)
        self._lock = threading.Lock()
        self._pending: list[Job] = []
        self._serving: dict[Any, int] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self._armed = False
        self._missed = False
        main_ident = threading.main_thread().ident
        assert main_ident is not None  # the main thread has always started
        self._main_ident = main_ident
        self._publisher_class: type | None = None

    # ----- any thread ---------------------------------------------------------------------------
    def loop(self) -> asyncio.AbstractEventLoop | None:
        io_loop = getattr(self.kernel, "io_loop", None)
        return getattr(io_loop, "asyncio_loop", None)

    def can_run(self, turn: str | None) -> bool:
        """Is there a way to run this turn's jobs: the kernel's loop, or a cell blocked on the turn?"""
        with self._lock:
            served = self._serving.get(turn, 0) > 0
        return served or self.loop() is not None

    def submit(self, job: Job) -> None:
        with self._lock:
            self._pending.append(job)
        if job.wake is not None:
            job.wake()  # wakes a cell blocked on the turn (wait_serving)
        loop = self.loop()
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._spawn)
            except RuntimeError:  # the loop is closed: the kernel is going away
                self.cancel(job)

    def close(self) -> None:
        """Cancel what has not started; nothing new runs through this runner."""
        with self._lock:
            pending = list(self._pending)
        for job in pending:
            self.cancel(job)

    def cancel(self, job: Job) -> None:
        """Drop the job if it has not started; interrupt it if it runs (KeyboardInterrupt)."""
        with self._lock:
            job.cancel_requested = True
            if job.state == "pending":
                if job in self._pending:
                    self._pending.remove(job)
                job.state = "cancelled"
                job.result = {"status": "cancelled"}
                job.finished.set()
                return
            if job.state != "running" or job.signalled:
                return
            job.signalled = True
            # Under the lock: the job cannot be marked done (and the handler disarmed) meanwhile.
            try:
                signal.pthread_kill(self._main_ident, signal.SIGINT)
            except (OSError, ValueError, AttributeError):
                log.exception("could not interrupt the kernel's main thread")

    def pending_for(self, turn: str | None) -> bool:
        with self._lock:
            return any(job.turn == turn for job in self._pending)

    @contextlib.contextmanager
    def serving(self, turn: str | None) -> Iterator[None]:
        with self._lock:
            self._serving[turn] = self._serving.get(turn, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._serving[turn] -= 1
                if not self._serving[turn]:
                    del self._serving[turn]

    # ----- the main thread ----------------------------------------------------------------------
    def _spawn(self) -> None:
        task = asyncio.ensure_future(self._drain())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        try:
            lock = main_asyncio_lock(self.kernel)
            if lock is None:
                self._run_one(None)
            else:
                async with lock:  # no cell of the main shell runs while we hold it
                    self._run_one(None)
        except BaseException:  # nothing may escape into the kernel's event loop
            log.exception("running agent code failed")

    def run_pending_here(self, turn: str | None) -> None:
        """Run the turn's jobs now, on this (main) thread, inside the cell that blocks on the turn."""
        while True:
            job = self._run_one(turn)
            if job is None:
                return
            if job.result and job.result.get("status") == "interrupted" and not job.cancel_requested:
                raise KeyboardInterrupt  # the user interrupted the waiting cell: stop the turn too

    def _claim(self, turn: str | None) -> Job | None:
        with self._lock:
            for job in self._pending:
                if turn is None or job.turn == turn:
                    self._pending.remove(job)
                    job.state = "running"
                    return job
        return None

    def _run_one(self, turn: str | None) -> Job | None:
        job = self._claim(turn)
        if job is None:
            return None
        try:
            job.context.run(self._execute, job)
        except KeyboardInterrupt:  # a late interrupt, after the code ended
            pass
        finally:
            if not job.finished.is_set():
                self._finish(job, job.result or {"status": "interrupted"})
        return job

    def _finish(self, job: Job, result: dict[str, Any]) -> None:
        with self._lock:
            job.result = result
            job.state = "done"
        job.finished.set()

    def _execute(self, job: Job) -> None:
        capture = Capture(job.emit, job.clean)
        token = active_capture.set(capture)
        undo = self._redirect()
        previous = self._take_sigint()
        job.started.set()
        status, value, error = "ok", None, None
        try:
            try:
                value = self._exec(job, capture)
            except KeyboardInterrupt:
                status = "interrupted"
            except _Failed as failed:
                status, error = "error", failed.info
        finally:
            self._armed = False
            result: dict[str, Any] = {"status": "interrupted" if job.cancel_requested else status}
            self._finish_fields(result, capture, value, error)
            with self._lock:  # from here on cancel() sends no signal
                job.state = "done"
            self._give_back_sigint(previous)
            undo()
            active_capture.reset(token)
            capture.close()
            self._finish(job, result)

    @staticmethod
    def _finish_fields(result: dict[str, Any], capture: Capture, value: str | None, error: dict[str, Any] | None) -> None:
        capture.flush()
        result["output"] = capture.model.text()
        if value is not None:
            result["result"] = value
        if error:
            result.update(error)

    def _exec(self, job: Job, capture: Capture) -> str | None:
        shell = self.shell
        # Compile everything first: a syntax error runs nothing.
        try:
            source = shell.transform_cell(job.code)
            filename = shell.compile.cache(source, raw_code=job.code)
            tree = shell.transform_ast(shell.compile.ast_parse(source, filename=filename))
            nodes = list(tree.body)
            last = nodes.pop() if nodes and isinstance(nodes[-1], ast.Expr) else None
            body = shell.compile(ast.Module(nodes, type_ignores=[]), filename, "exec") if nodes else None
            tail = shell.compile(ast.Expression(last.value), filename, "eval") if last is not None else None
        except Exception as exc:  # SyntaxError mostly; nothing ran
            info = _error_info(exc, "")
            capture.error(type(exc).__name__, str(exc), info["traceback"].splitlines())
            raise _Failed(info) from None
        namespace, local_ns = shell.user_global_ns, shell.user_ns
        value = None
        self._armed = True
        try:
            if job.cancel_requested or self._missed:
                raise KeyboardInterrupt
            if body is not None:
                exec(body, namespace, local_ns)
            if tail is not None:
                value = eval(tail, namespace, local_ns)
        except KeyboardInterrupt:
            self._armed = False
            raise
        except BaseException as exc:  # SystemExit too: the kernel must survive exit() in agent code
            self._armed = False
            info = _error_info(exc, filename)
            capture.error(type(exc).__name__, str(exc), info["traceback"].splitlines())
            _flush_figures()
            raise _Failed(info) from None
        finally:
            self._armed = False
            self._missed = False
        text = None
        if value is not None:
            try:
                data, metadata = shell.display_formatter.format(value)
            except Exception as exc:
                data, metadata = {"text/plain": f"<{type(value).__name__}: repr failed: {exc}>"}, {}
            capture.display(data, metadata, for_model=False)
            text = cut(str(data.get("text/plain", "")), RESULT_CHARS)
        _flush_figures()
        return text

    # ----- SIGINT --------------------------------------------------------------------------------
    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._armed:
            raise KeyboardInterrupt
        self._missed = True  # arrived just before the code started: checked once armed

    def _take_sigint(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None
        self._missed = False
        previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._on_sigint)
        return previous

    def _give_back_sigint(self, previous: Any) -> None:
        if previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)

    # ----- output routing ------------------------------------------------------------------------
    def _redirect(self) -> Callable[[], None]:
        import sys

        shell = self.shell
        out, err = RoutedStream(sys.stdout, "stdout"), RoutedStream(sys.stderr, "stderr")
        sys.stdout, sys.stderr = out, err
        publisher = None
        original_pub = getattr(shell, "display_pub", None)
        if original_pub is not None:
            if self._publisher_class is None:
                self._publisher_class = routed_publisher_class()
            try:
                publisher = self._publisher_class(original_pub)
                shell.display_pub = publisher
            except Exception:
                log.exception("could not capture displays")
                publisher = None

        def undo() -> None:
            if sys.stdout is out:
                sys.stdout = out._original
            if sys.stderr is err:
                sys.stderr = err._original
            if publisher is not None and shell.display_pub is publisher:
                shell.display_pub = original_pub

        return undo


def _error_info(exc: BaseException, filename: str) -> dict[str, str]:
    """Type, message and a short traceback of the agent's code only (none of our frames)."""
    tb = exc.__traceback__
    while tb is not None and filename and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    frames = traceback.extract_tb(tb)[-8:] if tb is not None else []
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    text = "".join(lines)
    if filename:
        text = text.replace(filename, CODE_NAME)
    text = "Traceback (most recent call last):\n" + text if frames else text
    message = str(exc)
    return {"error": cut(f"{type(exc).__name__}: {message}" if message else type(exc).__name__, 500),
            "traceback": cut(text.rstrip(), TRACEBACK_CHARS, keep_end=True)}


def _flush_figures() -> None:
    """Show the figures the code drew, as a cell's end does with the inline backend."""
    import sys

    inline = sys.modules.get("matplotlib_inline.backend_inline")
    if inline is None or "matplotlib.pyplot" not in sys.modules:
        return
    try:
        import matplotlib

        backend = str(matplotlib.rcParams._get("backend"))  # never triggers backend resolution
        if "inline" in backend:
            inline.flush_figures()
    except Exception:
        log.exception("could not show the figures")


# ----- one runner per shell ------------------------------------------------------------------------
# Kept here, not as an attribute of the shell: nothing of ours is hung on IPython's objects.
_runners_lock = threading.Lock()
_runners: weakref.WeakKeyDictionary[Any, Runner] = weakref.WeakKeyDictionary()


def runner_for(shell: Any) -> Runner:
    with _runners_lock:
        runner = _runners.get(shell)
        if runner is None:
            runner = _runners[shell] = Runner(shell)
        return runner


def wait_serving(prompter: Any, shell: Any) -> None:
    """``prompter.wait()`` that also runs the turn's code jobs on this thread (a cell blocked on its turn)."""
    runner = runner_for(shell)
    turn = prompter.turn.id
    unprompted, prompt_pending = prompter.unprompted, prompter.prompt_pending

    def run_then_prompt() -> None:
        runner.run_pending_here(turn)
        prompt_pending()

    prompter.unprompted = lambda: runner.pending_for(turn) or unprompted()
    prompter.prompt_pending = run_then_prompt
    with runner.serving(turn):
        prompter.wait()


def close_runner(shell: Any) -> None:
    """Forget the shell's runner (the extension is unloaded); a pending job is cancelled."""
    with _runners_lock:
        runner = _runners.pop(shell, None)
    if runner is not None:
        runner.close()
