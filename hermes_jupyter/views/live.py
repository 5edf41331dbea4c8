"""The live view's widget and its protocol: one anywidget per turn, a snapshot when a view connects,
small numbered deltas after it.

The widget carries no state but a tiny loader (assets/loader.js). Messages:

* view → kernel ``{"type": "hello", "page", "have", "mid"}`` when a view renders (and after it
  missed a message); the kernel answers with a *boot*: ``{"type": "boot", "n", "v", "doc"}``,
  the whole turn so far as operations, plus ``"js"`` and ``"css"`` (the view's code and
  stylesheet, version ``v``) if the page does not have them yet.
* kernel → view ``{"n", "ops"}``: numbered batches of operations, one message per flush. A view
  skips batches already in its snapshot and asks again if one is missing.
* view → kernel ``{"type": "act", "part", "action", "value", "mid"}``: a click (approve, deny,
  answer with the typed text, stop). It is handled on the shell channel's thread as it arrives
  (comm.act_early), so it works while a cell keeps the kernel busy, and once more on the main
  thread later: ``mid`` makes the second a no-op.

Operations (JSON lists; ``html`` is built from escaped text and sanitized Markdown only):
``["add", part, html]`` a new part before the foot; ``["set", part, html]`` replace a part;
``["append", part, html]`` append inside a part; ``["state", "head", text]`` the head's state line; ``["open", part, container, tail_tag]``,
``["grow", part, html]``, ``["tail", part, html]``, ``["settle", part, html]`` the open block of an
answer (stream.py); ``["ctl", part, spec]`` the live controls of a part (None removes them);
``["done"]`` the turn ended.

Nothing is sent before a view has said hello: a kernel without a frontend (nbclient) sends no
deltas at all, and a view that connects late gets everything in its boot.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets
from ipywidgets import Layout
from ipywidgets.widgets.widget import widget_serialization

from hermes_jupyter.util.scheduler import Scheduled, scheduler
from hermes_jupyter.views import assets
from hermes_jupyter.views.comm import act_early

log = logging.getLogger("hermes_jupyter")

Op = list[Any]


class TurnWidget(anywidget.AnyWidget):
    """The widget of one turn: the loader, and `final_html` for a page that can no longer get the output."""

    _esm = assets.loader_js()
    final_html = traitlets.Unicode("").tag(sync=True)
    turn = traitlets.Unicode("").tag(sync=True)  # its id: the view hides the turn's saved-so-far output (snapshot.py)
    gone_note = traitlets.Unicode("").tag(sync=True)  # what the view says once its kernel is gone
    # No Layout model: one comm (and one saved model) per turn instead of two; frontends skip a null layout.
    layout = traitlets.Instance(Layout, allow_none=True, default_value=None).tag(sync=True, **widget_serialization)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data["text/plain"] = ""  # stable for headless runs that diff outputs (nbval)
        return bundle


class Channel:
    """Numbered messages to the views of one widget; `lock` is the view's, held by every caller of send."""

    def __init__(self, widget: TurnWidget, lock: threading.RLock, snapshot: Callable[[], list[Op]],
                 flush: Callable[[], None], act: Callable[[dict[str, Any]], None]) -> None:
        self.widget: TurnWidget | None = widget  # None once closed: a finished turn keeps no widget alive
        self._lock = lock
        self._snapshot = snapshot
        self._flush = flush
        self._act = act
        self._n = 0
        self._pages: list[str] = []
        self._seen: deque[str] = deque(maxlen=256)
        self._seen_lock = threading.Lock()
        self.closed = False
        widget.on_msg(lambda _widget, content, _buffers: self.receive(content))
        act_early(widget, self.receive)

    @property
    def connected(self) -> bool:
        return bool(self._pages)

    @property
    def reconnected(self) -> bool:
        """A second page connected (a reload): it may never see the display update that ends the turn."""
        return len(self._pages) > 1

    def send(self, ops: list[Op]) -> None:
        if not ops or not self._pages or self.widget is None or self.closed:
            return
        self._n += 1
        self.widget.send({"n": self._n, "ops": ops})

    def receive(self, content: Any) -> None:
        """A message from a view, on the shell channel's thread or on the main thread (whichever is first)."""
        if not isinstance(content, dict) or self.closed:
            return
        mid = content.get("mid")
        with self._seen_lock:
            if not isinstance(mid, str) or mid in self._seen:
                return
            self._seen.append(mid)
        if content.get("type") == "hello":
            self._boot(content)
        elif content.get("type") == "act":
            self._act(content)

    def _boot(self, hello: dict[str, Any]) -> None:
        page = str(hello.get("page", ""))
        have = hello.get("have")
        with self._lock:
            if self.closed or self.widget is None:
                return
            # Changes not sent yet are already in the snapshot: the views that have them first,
            # numbered before the boot (a new view skips them), so nothing is applied twice.
            self._flush()
            if page not in self._pages:
                self._pages.append(page)
            boot: dict[str, Any] = {"type": "boot", "n": self._n, "v": assets.version(), "doc": self._snapshot()}
            if not isinstance(have, list) or assets.version() not in have:
                boot.update(js=assets.view_js(), css=assets.css())
            self.widget.send(boot)

    def close(self, final_html: str | None = None) -> None:
        """Close the widget, or, for a page that reconnected, leave it showing the final rendering."""
        with self._lock:
            widget = self.widget
            if self.closed or widget is None:
                return
            self.closed = True
        self._seen.clear()
        if final_html is not None and self.reconnected:
            widget.final_html = final_html
            return
        widget.close()
        self.widget = None


class Coalescer:
    """Calls `flush` at most once per interval while marks come, the first soon after a quiet spell.

    While marks keep coming, one tick on the shared scheduler flushes every interval and
    schedules the next itself; it stops after an interval with nothing new. A call scheduled
    from the marking thread instead woke the scheduler's thread twice a flush (to read the new
    deadline, then to run it), each a thread switch and a GIL hand-off in a busy kernel.
    """

    def __init__(self, interval: float, flush: Callable[[], None]) -> None:
        self.interval = interval
        self._flush = flush
        self._lock = threading.Lock()
        self._dirty = False  # marked since the last flush
        self._tick: Scheduled | None = None  # the next tick, while ticking
        self._ticks = 0  # numbers the ticks: one already due when `now` cancelled it must not start a second chain
        self._last = 0.0

    def mark(self) -> None:
        if self._dirty:  # the common case, read without the lock: a tick will flush it
            return
        with self._lock:
            self._dirty = True
            if self._tick is None:
                self._schedule(max(0.0, self._last + self.interval - time.monotonic()))

    def _schedule(self, delay: float) -> None:
        """The next tick (under the lock)."""
        self._ticks += 1
        self._tick = scheduler.call_later(delay, functools.partial(self._run, self._ticks))

    def _run(self, tick: int) -> None:
        with self._lock:
            if tick != self._ticks:  # cancelled by `now` after it was due: a newer tick carries on
                return
            if not self._dirty:  # an interval with nothing new: stop until the next mark
                self._tick = None
                return
            self._dirty = False
            self._last = time.monotonic()
            self._schedule(self.interval)  # from the scheduler's own thread: no wake-up
        self._flush()

    def now(self) -> None:
        """Flush at once (the end of the turn)."""
        with self._lock:
            if self._tick is not None:
                self._tick.cancel()
                self._tick = None
            self._ticks += 1
            self._dirty = False
            self._last = time.monotonic()
        self._flush()
