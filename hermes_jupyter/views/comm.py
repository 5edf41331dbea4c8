"""Widget comm details the views rely on."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("hermes_jupyter")


def act_on_click_early(button: Any, callback: Callable[[], Any]) -> bool:
    """Make clicks on `button` call `callback` at once, even while the main thread runs code.

    ipykernel ≥ 7.4 asks each comm, on its shell-channel thread, which subshell
    handles its messages (``_reply_subshell_for``). We answer as before and call
    `callback` there for a click; the click still reaches the button's own
    handlers later, so `callback` must be idempotent and thread-safe (Turn.cancel is).
    Returns False where the kernel has no such hook (the click then waits for the main thread).
    """
    comm = getattr(button, "comm", None)
    route = getattr(comm, "_reply_subshell_for", None)
    if comm is None or route is None:
        return False

    def early(data: Any, default: Any) -> Any:
        try:
            content = data.get("content") if isinstance(data, dict) else None
            if isinstance(content, dict) and data.get("method") == "custom" and content.get("event") == "click":
                callback()
        except Exception:
            log.exception("early click handler failed")
        return route(data, default)

    comm._reply_subshell_for = early
    return True
