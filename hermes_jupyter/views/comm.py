"""Widget comm details the views rely on: acting on a message while the kernel's main thread is busy."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hermes_jupyter.util.private_api import reply_subshell_router, set_reply_subshell_router

log = logging.getLogger("hermes_jupyter")


def act_early(widget: Any, handler: Callable[[Any], Any]) -> bool:
    """Give `widget`'s custom messages to `handler` as they arrive, even while the main thread runs code.

    ipykernel ≥ 7.4 asks each comm, on its shell-channel thread, which subshell
    handles its messages (``_reply_subshell_for``). We answer as before and call
    `handler` there with the message's content; the message still reaches the
    widget's own handlers later, on the main thread, so `handler` sees it twice
    and must be idempotent and thread-safe. Returns False where the kernel has
    no such hook (messages then wait for the main thread).
    """
    comm = getattr(widget, "comm", None)
    route = reply_subshell_router(comm)
    if route is None:
        return False

    def early(data: Any, default: Any) -> Any:
        try:
            if isinstance(data, dict) and data.get("method") == "custom":
                handler(data.get("content"))
        except Exception:
            log.exception("early message handler failed")
        return route(data, default)

    set_reply_subshell_router(comm, early)
    return True


def act_on_click_early(button: Any, callback: Callable[[], Any]) -> bool:
    """Make clicks on an ipywidgets Button call `callback` at once (see act_early)."""
    def on_message(content: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "click":
            callback()

    return act_early(button, on_message)
