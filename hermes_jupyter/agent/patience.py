"""Patience with the model: say when it keeps the notebook waiting, and give up in time.

hermes-agent's limits suit a process nobody watches: a silent endpoint on loopback is waited on
for 900 s per attempt over five attempts (75 minutes), a cloud one for about 15 minutes, and a
stream that breaks mid-answer is "continued" up to four times, each continuation's text glued
to the last and its "[System: ...continue]" prompt kept in the conversation. A notebook user is
watching the cell, so each model call of a run is watched here:

- when a call has produced nothing for NOTICE_AFTER seconds (or half its limit, if shorter), a
  ``Waiting`` event says so, again every NOTICE_EVERY seconds;
- no first byte within ``first_byte_timeout`` seconds, or no chunk for ``stall_timeout`` seconds
  once the answer has started, ends the run (kind no_reply or stalled);
- a stream that breaks after some text (hermes hands back its partial-stream stub) ends the run
  at once (kind dropped or malformed), keeping the text that arrived, once.

The agent is stopped with ``interrupt()``; ``AgentRun`` turns that into the failure. Time spent
outside model calls (tools, approvals, hermes' back-off between retries) is not counted. Any
chunk counts as life, not only text: hermes marks each one it reads (``_touch_activity("receiving
stream response")``), so a long tool call streaming its arguments is not taken for a stall.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hermes_jupyter.util.scheduler import Repeating, scheduler

NOTICE_AFTER = 20.0  # seconds of silence before the view says so
NOTICE_EVERY = 10.0
TICK = 0.25  # how often the clock is read

# hermes' stub for a stream that broke after some text (hermes_constants.PARTIAL_STREAM_STUB_ID)
PARTIAL_STREAM_STUB_ID = "partial-stream-stub"
_CHUNK_READ = "receiving stream response"  # hermes' activity note for each chunk it reads
# hermes logs the error behind a partial-stream stub on the calling thread, and keeps it nowhere else.
_HELPERS_LOGGER = "agent.chat_completion_helpers"


@dataclass(frozen=True)
class Fault:
    kind: str  # no_reply | stalled | dropped | malformed
    waited: float  # seconds of silence (no_reply, stalled)
    chars: int  # visible characters that arrived before it
    detail: str = ""


def fault_kind(error: BaseException | None) -> str:
    """dropped or malformed, from the error hermes met mid-stream."""
    if error is None:
        return "dropped"
    name = type(error).__name__
    text = str(error).lower()
    if isinstance(error, (json.JSONDecodeError, UnicodeDecodeError)) or any(
            word in text for word in ("json", "decode", "parse", "malformed", "expecting")):
        return "malformed"
    if "ReadTimeout" in name:
        return "stalled"
    return "dropped"


class _ErrorCatcher(logging.Handler):
    """Keeps the exception hermes logs with its partial-stream stub, on one thread."""

    def __init__(self, thread: int) -> None:
        super().__init__(logging.WARNING)
        self.thread = thread
        self.error: BaseException | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread and isinstance(record.args, tuple):
            found = [a for a in record.args if isinstance(a, BaseException)]
            if found:
                self.error = found[-1]


class Watch:
    """Watches the model calls of one run. Thread-safe: callbacks come from hermes' streaming thread."""

    def __init__(self, *, model: str, first_byte: float, stall: float,
                 on_wait: Callable[[float, float, bool], None]) -> None:
        self.model = model
        self.first_byte = first_byte
        self.stall = stall
        self._on_wait = on_wait
        self._lock = threading.Lock()
        self._agent: Any = None
        self._calls = 0  # model calls in flight (0 or 1 in practice)
        self._since = 0.0  # the last sign of life of the call in flight (wall clock, as hermes keeps it)
        self._started = False  # the call in flight has produced something
        self._noticed = 0.0  # silence already announced, in seconds
        self._quiet_since: float | None = None  # start of the first model call since the last sign of life
        self._chars = 0
        self._ticker: Repeating | None = None
        self.fault: Fault | None = None

    # ----- wiring ------------------------------------------------------------------------------
    def attach(self, agent: Any) -> None:
        """Wrap the agent's model calls (per instance; a warm agent is wrapped again for each run)."""
        self._agent = agent
        for name in ("_interruptible_streaming_api_call", "_interruptible_api_call"):
            original = getattr(type(agent), name, None)
            if original is not None:
                setattr(agent, name, self._watched(original.__get__(agent)))
        self._ticker = scheduler.every(TICK, self._tick)

    def detach(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()

    def release(self) -> None:
        """The run is over: let go of the agent and the ticker (a finished turn still holds its Watch)."""
        self.detach()
        self._agent, self._ticker = None, None

    def _watched(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def watched(*args: Any, **kwargs: Any) -> Any:
            catcher = _ErrorCatcher(threading.get_ident())
            helpers = logging.getLogger(_HELPERS_LOGGER)
            helpers.addHandler(catcher)
            with self._lock:
                self._calls += 1
                self._since, self._started, self._noticed = time.time(), False, 0.0
                if self._quiet_since is None:
                    self._quiet_since = self._since
            try:
                response = call(*args, **kwargs)
            finally:
                helpers.removeHandler(catcher)
                with self._lock:
                    self._calls -= 1
                    silent = time.time() - self._last_sign_of_life()
            if getattr(response, "id", None) == PARTIAL_STREAM_STUB_ID and not getattr(
                    response, "_content_filter_terminated", False):  # a filter is hermes' to route
                # hermes' own read timeout can end a stream before ours: it waited as long as it was silent
                self._give_up(fault_kind(catcher.error), silent, str(catcher.error or ""))
            return response
        return watched

    # ----- signs of life (agent or streaming thread) ---------------------------------------------
    def alive(self, chars: int = 0, *, reply: bool = True) -> bool:
        """Something arrived; False once the run has been given up (drop what comes after).
        ``reply``: it came from the model (not hermes closing a segment)."""
        with self._lock:
            if self.fault is not None:
                return False
            self._since, self._started, self._noticed = time.time(), True, 0.0
            if reply:
                self._quiet_since = None
            self._chars += chars
            return True

    def _last_sign_of_life(self) -> float:
        """When the call in flight last received something (needs the lock): a chunk hermes read
        counts even if no callback of ours saw it."""
        chunk_read = getattr(self._agent, "_last_activity_ts", 0.0) \
            if getattr(self._agent, "_last_activity_desc", "") == _CHUNK_READ else 0.0
        return max(self._since, chunk_read) if isinstance(chunk_read, float) else self._since

    def unanswered_for(self) -> float:
        """Seconds the run's model calls have gone without any reply (0 once something arrived):
        what hermes' own give-up on a silent provider waited."""
        with self._lock:
            return time.time() - self._quiet_since if self._quiet_since is not None else 0.0

    # ----- the clock (scheduler thread) ------------------------------------------------------------
    def _tick(self) -> bool:
        chunk_read = getattr(self._agent, "_last_activity_ts", 0.0) \
            if getattr(self._agent, "_last_activity_desc", "") == _CHUNK_READ else 0.0
        with self._lock:
            if self.fault is not None:
                return False
            if not self._calls:
                return True
            if isinstance(chunk_read, float) and chunk_read > self._since:
                self._since, self._started, self._noticed = chunk_read, True, 0.0
                self._quiet_since = None
            silent = time.time() - self._since
            started = self._started
            limit = self.stall if started else self.first_byte
            after = min(NOTICE_AFTER, limit / 2) if limit > 0 else NOTICE_AFTER
            notice = silent >= after and silent - self._noticed >= min(NOTICE_EVERY, after)
            if notice:
                self._noticed = silent
        if limit > 0 and silent >= limit:
            self._give_up("stalled" if started else "no_reply", silent, "")
            return False
        if notice:
            self._on_wait(silent, limit, started)
        return True

    def _give_up(self, kind: str, waited: float, detail: str) -> None:
        with self._lock:
            if self.fault is not None:
                return
            self.fault = Fault(kind, waited, self._chars, detail)
        try:
            self._agent.interrupt()
        except Exception:
            logging.getLogger("hermes_jupyter").exception("agent.interrupt failed")
