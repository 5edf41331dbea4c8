"""Every private name of another package that hermes-jupyter relies on, each behind one accessor.

ipykernel and argparse offer no public way to do a few things the extension needs; this module is
the only place that reaches into them, so a release that renames one breaks one function here,
not a view or the magic. Each accessor has a fallback that keeps the extension working (with the
loss named in its docstring) when the name is gone, and tests/test_private_api.py checks every
name against the installed releases, so that such a release fails the suite loudly instead.

``NAMES`` lists them all: (package, owner, private name).
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

NAMES = (
    ("ipykernel", "Kernel", "_allow_stdin"),
    ("ipykernel", "Kernel", "_main_asyncio_lock"),
    ("ipykernel", "comm.Comm", "_reply_subshell_for"),
    ("argparse", "ArgumentParser", "_option_string_actions"),
)


def kernel_allows_stdin(kernel: Any) -> bool:
    """Does the running cell's frontend answer ``input()``? ipykernel records the execute request's
    ``allow_stdin``: True in JupyterLab, Notebook 7 and VS Code, False under nbclient, papermill and nbval.

    Fallback (no kernel, or the name is gone): False, as if headless: a waiting cell then answers
    with the view's buttons or not at all, and /cells prints instead of inserting cells.
    """
    return bool(getattr(kernel, "_allow_stdin", False))


def main_asyncio_lock(kernel: Any) -> Any | None:
    """The asyncio lock ipykernel ≥ 7 holds on its main thread for a whole shell message (a cell).

    Fallback (ipykernel 6, or the name is gone): None. Code then runs whenever the main loop is
    free, which between cells is the same; during the ``await`` of an async cell it is not serialized.
    """
    return getattr(kernel, "_main_asyncio_lock", None)


def reply_subshell_router(comm: Any) -> Callable[[Any, Any], Any] | None:
    """ipykernel ≥ 7.4 asks each comm, on the shell-channel thread, which subshell handles a message
    (``comm._reply_subshell_for(data, default)``): the one moment a comm message is seen while the
    main thread is busy. Returns that method, or None.

    Fallback (no comm, older ipykernel, or the name is gone): None. Clicks then wait for the main
    thread, so a Stop click during agent code acts when that code ends (the kernel's interrupt still works).
    """
    route = getattr(comm, "_reply_subshell_for", None) if comm is not None else None
    return route if callable(route) else None


def set_reply_subshell_router(comm: Any, router: Callable[[Any, Any], Any]) -> None:
    """Install `router` in place of the comm's own (see reply_subshell_router); it must call the old one."""
    comm._reply_subshell_for = router


def option_takes_value(parser: argparse.ArgumentParser) -> Mapping[str, bool]:
    """Every option string of `parser` ("-m", "--model"...) and whether it takes a value.

    argparse keeps this map as ``parser._option_string_actions``; it has no public reader.
    Fallback (the name is gone): ask the parser itself, one option at a time (see _probe_options).
    """
    actions = getattr(parser, "_option_string_actions", None)
    if not isinstance(actions, Mapping):
        return _probe_options(parser)
    return {flag: action.nargs != 0 for flag, action in actions.items()}


def _probe_options(parser: argparse.ArgumentParser) -> Mapping[str, bool]:
    """The option strings `parser` prints in its help, each parsed alone through the public API:
    a flag parses cleanly, an option that needs a value fails. Slower, and an option whose value
    is optional (nargs="?") reads as a flag."""
    import re

    found: dict[str, bool] = {}
    named = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", parser.format_help()))
    # A name the help wrapped at a hyphen ("--base-") would parse as an abbreviation of the whole one.
    for flag in {n for n in named if not n.endswith("-")}:
        if flag in ("-h", "--help"):  # parsing it would print the help and exit
            found[flag] = False
            continue
        try:
            _, rest = parser.parse_known_args([flag])
        except (Exception, SystemExit):  # argparse exits, IPython's magic parser raises UsageError
            found[flag] = True
            continue
        if flag not in rest:
            found[flag] = False
    return found
