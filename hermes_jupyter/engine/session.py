"""A named conversation: its history, its queue of turns, and an agent kept warm between turns."""
from __future__ import annotations

import collections
import contextvars
import logging
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hermes_jupyter import events as ev
from hermes_jupyter.agent.run import WarmAgent, build_warm_agent
from hermes_jupyter.agent.settings import Hermes, RunConfig, RunOptions, resolve
from hermes_jupyter.engine.runner import TurnRunner
from hermes_jupyter.engine.turn import Turn, runner_of
from hermes_jupyter.history.merge import message_count
from hermes_jupyter.history.records import iso_time, session_usage, turn_record
from hermes_jupyter.prompt import system_prompt
from hermes_jupyter.safety.sanitize import SanitizeCache, unanswered_indices
from hermes_jupyter.util.prefix import common_prefix
from hermes_jupyter.util.scheduler import Scheduled, scheduler

if TYPE_CHECKING:
    from hermes_jupyter.engine.engine import Engine

log = logging.getLogger("hermes_jupyter")


class Session:
    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.key = f"jupyter-{engine.instance}-{name}"
        self.messages: list[dict[str, Any]] = []
        self.turns: list[Turn] = []
        self.saved_turns: list[dict[str, Any]] = []  # turns of earlier kernels, from the history file
        self.title: str | None = None
        self.personality: str | None = None  # chosen with --personality, kept for the session
        self._approved: set[str] = set()
        self._lock = threading.Lock()
        self._active: TurnRunner | None = None
        self._queue: collections.deque[TurnRunner] = collections.deque()
        self._warm: WarmAgent | None = None
        self._sanitize = SanitizeCache()  # a turn's start walks only the messages added since the last one
        self._records: dict[str, dict[str, Any]] = {}  # finished turns' records, built once
        # How many of `messages` each turn of this kernel added (its slice, after the saved turns'
        # slices, in order): the history file merges the messages of two kernels by turn (store.py).
        self._counts: dict[str, int] = {}
        self._usage_total: tuple[list[dict[str, Any]], dict[str, Any] | None] = ([], None)
        self._save_lock = threading.Lock()  # records reach the store in the order they were built
        self.saver = Saver(self)

    # ----- what the turn's runner reads ----------------------------------------------------
    @property
    def instance(self) -> str:
        return self.engine.instance

    @property
    def settings(self) -> Hermes:
        return self.engine.settings

    @property
    def shell(self) -> Any:
        return self.engine.shell

    @property
    def busy(self) -> bool:
        return self._active is not None

    def messages_snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages)

    def sanitized_messages(self) -> list[dict[str, Any]]:
        """The conversation as the next request replays it (sanitize_history, from a cached prefix)."""
        return self._sanitize(self.messages_snapshot())

    def prepare_next_request(self) -> None:
        """Sanitize the conversation for the next turn now that one has ended and nobody waits: the
        next turn's start then only checks it is unchanged (SanitizeCache.prepare)."""
        with self._lock:
            if self._active is not None:  # a queued turn has begun: it sanitizes for itself
                return
            messages = list(self.messages)
        self._sanitize.prepare(messages)

    def approved_patterns(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._approved)

    def approve_patterns(self, patterns: Iterable[str]) -> None:
        """'Allow session' and 'Always allow': these patterns run without asking for the rest of the session."""
        with self._lock:
            self._approved.update(patterns)

    def system_prompt(self, cwd: Path, config: RunConfig) -> str:
        return system_prompt(cwd, config.personality_prompt)

    def take_warm_agent(self) -> WarmAgent | None:
        with self._lock:
            warm, self._warm = self._warm, None
            return warm

    def prepare_agent(self, cwd: Path) -> bool:
        """Build the agent of this session's first turn ahead of it (the warm-up, on its thread),
        with the configuration as it stands; a turn that resolves to another one builds its own."""
        config = resolve(RunOptions(personality=self.personality), self.settings)
        warm = build_warm_agent(config, self.key, self.system_prompt(cwd, config))
        with self._lock:
            if self._warm is not None or self.turns:
                return False  # a turn got here first
            self._warm = warm
            return True

    # ----- turns ---------------------------------------------------------------------------
    def new_turn(self, prompt: str, options: RunOptions, cwd: Path) -> Turn:
        turn = Turn(self, prompt, options, cwd)
        if self.engine.store is not None:
            turn.subscribe(HistoryWriter(self))
        return turn

    def submit(self, turn: Turn) -> None:
        runner = runner_of(turn)
        with self._lock:
            self.turns.append(turn)
            start = self._active is None
            if start:
                self._active = runner
            else:
                self._queue.append(runner)
                position = len(self._queue)
        if start:
            runner.start()
        else:
            runner.queued(position)

    def unqueue(self, runner: TurnRunner) -> bool:
        with self._lock:
            if runner in self._queue:
                self._queue.remove(runner)
                return True
            return False

    def release(self, runner: TurnRunner) -> None:
        """The turn has ended (or was let go after a cancel): start the next queued one."""
        with self._lock:
            if self._active is not runner:
                return
            self._active = self._queue.popleft() if self._queue else None
            following = self._active
        if following is not None:
            following.start()

    def finish_turn(self, messages: list[dict[str, Any]], warm: WarmAgent | None, *,
                    turn_id: str | None = None, history: list[dict[str, Any]] | None = None) -> None:
        """The turn ``turn_id``, started from ``history`` (the sanitized conversation), ended with
        ``messages``: the conversation now. What it added is its slice (``message_count`` in its record)."""
        with self._lock:
            if turn_id is not None and history is not None:
                self._take_slice(turn_id, history, messages)
            self.messages = list(messages)
            if warm is not None:
                self._warm = warm

    def _take_slice(self, turn_id: str, history: list[dict[str, Any]], messages: list[dict[str, Any]]) -> None:
        """Count the turn's slice, and shrink the earlier turns' slices by what sanitizing and dropping
        unanswered prompts took out of them (needs the lock). Per turn: the whole list is walked only
        when a prompt was dropped, or when the agent rewrote the conversation (compression), when
        every message becomes unowned (the file then keeps them as its lead, store.py)."""
        saved = {t["id"]: message_count(t) or 0 for t in self.saved_turns if isinstance(t.get("id"), str)}
        order = [*saved, *(t.id for t in self.turns if t.id in self._counts)]
        counts = [*saved.values(), *(self._counts[t.id] for t in self.turns if t.id in self._counts)]
        base: list[dict[str, Any]] | None = None
        removed: list[int] = []
        if len(messages) >= len(history) and common_prefix(messages, history) == len(history):
            base = history
        else:
            removed = unanswered_indices(history)
            if removed:
                drop = set(removed)
                kept = [m for n, m in enumerate(history) if n not in drop]
                if len(messages) >= len(kept) and common_prefix(messages, kept) == len(kept):
                    base = kept
        if base is not None:
            # Sanitizing changed only the last slices (the rest was sanitized by earlier turns).
            extra = len(self.messages) - len(history)
            for n in range(len(counts) - 1, -1, -1):
                if extra <= 0:
                    break
                cut = min(extra, counts[n])
                counts[n] -= cut
                extra -= cut
            if removed:  # the unanswered prompts, wherever they lay
                ends, at = [], len(history) - sum(counts)
                for c in counts:
                    at += c
                    ends.append(at)
                n = 0
                for index in removed:
                    while n < len(ends) and ends[n] <= index:
                        n += 1
                    if n < len(ends):
                        counts[n] -= 1
            if min(counts, default=0) < 0 or sum(counts) > len(base):
                base = None
        if base is None:  # rewritten: nothing is owned any more
            counts = [0] * len(counts)
        changed = {}
        for key, count in zip(order, counts, strict=True):
            if key in self._counts:
                if count != self._counts[key]:
                    self._counts[key] = count
                    self._records.pop(key, None)  # built again, with the new count
            elif count != saved[key]:
                changed[key] = count
        if changed:
            self.saved_turns = [{**t, "message_count": changed[t["id"]]} if t.get("id") in changed else t
                                for t in self.saved_turns]
        self._counts[turn_id] = len(messages) - len(base) if base is not None else 0
        self._records.pop(turn_id, None)

    # ----- history -------------------------------------------------------------------------
    def record(self) -> dict[str, Any]:
        """This session as the history file stores it (the store sanitizes and redacts)."""
        with self._lock:
            turns = list(self.turns)
            messages = list(self.messages)
            records = list(self.saved_turns)
        frozen = -1  # index of the first record that may still change
        for t in turns:
            rec = self._records.get(t.id)
            if rec is None:
                events = t.events
                rec = turn_record(events, turn_id=t.id, prompt=t.prompt, started=t.started_wall,
                                  attachments=list(t.options.attachments))
                rec["message_count"] = self._counts.get(t.id, 0)  # its slice of `messages`
                if events and isinstance(events[-1], ev.Done):  # nothing changes a finished turn
                    self._records[t.id] = rec
                else:
                    # Who runs it, and when it was last seen: a kernel that opens the file after this one
                    # died marks it interrupted instead of leaving it running forever (liveness.py).
                    rec["kernel"] = {**self.engine.writer, "seen": iso_time()}
                    if frozen < 0:
                        frozen = len(records)
            records.append(rec)
        record: dict[str, Any] = {"name": self.name, "messages": messages, "turns": records,
                                  "usage": self._usage(records, len(records) if frozen < 0 else frozen)}
        if self.title:
            record["title"] = self.title
        return record

    def _usage(self, records: list[dict[str, Any]], frozen: int) -> dict[str, Any]:
        """session_usage(records), continued from the total over the leading records that no longer
        change (saved and finished turns, the same objects each time): a save adds up only the rest."""
        done, total = self._usage_total
        if len(done) > frozen or common_prefix(records, done) < len(done):
            done, total = [], None
        total = session_usage(records[len(done):frozen], total)
        self._usage_total = (records[:frozen], total)
        return session_usage(records[frozen:], total)

    def save(self) -> None:
        """Save now, on this thread (the Saver calls this; so do shutdown and attaching a file)."""
        store = self.engine.store
        if store is None:
            return
        try:
            with self._save_lock:
                store.save_session(self.record())
        except Exception as exc:  # a read-only folder must not break the turn
            log.debug("history not saved to %s: %s", store.path, exc)  # the user is told below
            message = f"history not saved to {store.path}: {exc}"
            if message != self.engine.store_error:  # say it once, in the cell of the turn it hit
                print(f"[hermes] {message}", file=sys.stderr)
            self.engine.store_error = message
        else:
            if store.notice:  # e.g. the file was corrupted while the kernel ran: moved aside
                print(f"[hermes] {store.notice}", file=sys.stderr)
                store.notice = None


class Saver:
    """Saves one session on a thread of its own, so a save never holds up the turn's events.

    Requests that arrive while a save runs are covered by one more save (of the state
    then); the thread ends when nothing is asked, and each save runs in the context of
    the latest request (its cell gets the message if the history cannot be written).
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._cond = threading.Condition()
        self._asked = 0  # requests so far
        self._saved = 0  # requests covered by a finished save
        self._context: contextvars.Context | None = None
        self._thread: threading.Thread | None = None

    def request(self) -> int:
        """Ask for a save; returns the ticket to wait for."""
        with self._cond:
            self._asked += 1
            self._context = contextvars.copy_context()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"hermes-history-{self.session.name}",
                                                daemon=True)
                self._thread.start()
            return self._asked

    def wait(self, ticket: int, timeout: float | None = None) -> bool:
        """Block until a save that started after request ``ticket`` has finished."""
        with self._cond:
            return self._cond.wait_for(lambda: self._saved >= ticket, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._saved >= self._asked:
                    self._thread = None
                    return
                target, context = self._asked, self._context
            try:
                (context or contextvars.copy_context()).run(self.session.save)
            finally:
                with self._cond:
                    self._saved = target
                    self._cond.notify_all()


class HistoryWriter:
    """Saves the session just after a turn starts, every SAVE_EVERY seconds while it runs, and when it ends.

    The saves run on the session's Saver thread; at Done this subscriber waits for the
    save, so when ``Turn.wait()`` returns the finished turn is on disk. The first save waits
    START_SAVE_DELAY: a save holds the GIL for a time that grows with the session (the file's
    bytes are built in C), and made then it would hold up the cell that asked, still drawing
    its view and returning. (A kernel killed in that moment loses that turn's prompt only.)
    """

    SAVE_EVERY = 5.0
    START_SAVE_DELAY = 0.3

    def __init__(self, session: Session) -> None:
        self.session = session
        self._last = 0.0
        self._start_save: Scheduled | None = None

    def __call__(self, event: ev.Event) -> None:
        now = time.monotonic()
        saver = self.session.saver
        if isinstance(event, ev.Done):
            if self._start_save is not None:
                self._start_save.cancel()  # a turn shorter than the delay: the save at its end is enough
            saver.wait(saver.request())
        elif isinstance(event, ev.TurnStarted):
            self._last = now
            context = contextvars.copy_context()  # the cell's: it hears of a history that cannot be written
            self._start_save = scheduler.call_later(self.START_SAVE_DELAY, lambda: context.run(saver.request))
        elif now - self._last >= self.SAVE_EVERY:
            self._last = now
            saver.request()
