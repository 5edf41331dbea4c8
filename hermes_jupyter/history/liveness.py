"""Is the kernel that wrote a running turn still alive? A turn whose kernel died stays `running` in the
file until some kernel says otherwise: the next one that opens the file, or saves the session, does.

A running turn's record carries its writer (``kernel``): the engine's instance, a hash of the host's
name, the process id and its start time, and when the record was built (``seen``). The file is shared
by every kernel of the notebook (two tabs, a console), so a running turn is settled only when its
writer is known to be gone:

* this process: its engine is no longer registered here (closed, or dropped without closing);
* another process on this host: no process has that id, or one that started at another time
  (the id was reused);
* another host (a shared folder): no save for STALE_AFTER seconds; its running turns save at
  least every few seconds while events come, so an hour of silence is a kernel that is gone.

A record without a writer (files of earlier versions) counts as gone once it started STALE_AFTER ago.
"""
from __future__ import annotations

import functools
import hashlib
import os
import socket
import threading
import weakref
from datetime import UTC, datetime
from typing import Any

__all__ = ["STALE_AFTER", "alive", "forget", "identity", "register"]

STALE_AFTER = 3600.0

_live: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_live_lock = threading.Lock()


def register(instance: str, owner: Any) -> None:
    """`owner` (an engine) writes turns as `instance` for as long as it lives."""
    with _live_lock:
        _live[instance] = owner


def forget(instance: str) -> None:
    """`instance` writes no more (its engine closed): its running turns are left over."""
    with _live_lock:
        _live.pop(instance, None)


@functools.cache
def _host() -> str:
    # A hash: the history file may go to git, the machine's name need not.
    return hashlib.blake2b(socket.gethostname().encode(), digest_size=4).hexdigest()


def _started(pid: int) -> float | None:
    """The process's start time (seconds since the epoch); None if there is no such process."""
    import psutil
    try:
        return round(float(psutil.Process(pid).create_time()), 2)
    except psutil.NoSuchProcess:
        return None
    except (psutil.Error, OSError):
        return -1.0  # there is one, but we may not look at it: count it as alive


def identity(instance: str) -> dict[str, Any]:
    """The writer of this process's running turns, as a record keeps it (`seen` is added per save)."""
    return {"instance": instance, "host": _host(), "pid": os.getpid(), "since": _started(os.getpid())}


def _age(stamp: Any, now: datetime) -> float:
    """Seconds since ``stamp``; 0 when it is not a time we wrote: with nothing to judge by, a turn is
    not declared dead (a wrong 'interrupted' would hide a turn that is still running)."""
    try:
        then = datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return 0.0
    return (now - then).total_seconds()


def alive(turn: dict[str, Any], now: datetime | None = None) -> bool:
    """Can the kernel that wrote this running turn still finish it?"""
    now = now or datetime.now(UTC)
    kernel = turn.get("kernel")
    if not isinstance(kernel, dict):
        return _age(turn.get("started"), now) < STALE_AFTER
    if kernel.get("host") != _host():
        return _age(kernel.get("seen"), now) < STALE_AFTER
    pid = kernel.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        return _age(kernel.get("seen"), now) < STALE_AFTER
    started = _started(pid)
    if started is None:
        return False
    since = kernel.get("since")
    if started != -1.0 and isinstance(since, (int, float)) and abs(started - since) > 1.0:
        return False  # another process got the id
    if pid == os.getpid():
        with _live_lock:
            return kernel.get("instance") in _live
    return True
