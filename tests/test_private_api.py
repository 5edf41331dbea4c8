"""Every private name of ipykernel and argparse the package uses, checked against the installed releases.

hermes_jupyter/util/private_api.py is the only module that touches them. A release that removes or
renames one fails its test here, loudly, rather than leaving the extension on its fallback
unnoticed (clicks that wait for the main thread, agent code unserialized with async cells...).
The kernel's names are checked in a real kernel, where ipykernel sets them.
"""
from __future__ import annotations

import argparse
import ast
import inspect
from pathlib import Path

import ipykernel
import pytest

from hermes_jupyter.magic import HermesMagics
from hermes_jupyter.util import private_api
from hermes_jupyter.util.private_api import (
    NAMES,
    kernel_allows_stdin,
    main_asyncio_lock,
    option_takes_value,
    reply_subshell_router,
)

from .kernel import Kernel

PACKAGE = Path(__file__).resolve().parents[1] / "hermes_jupyter"
IPYKERNEL = tuple(int(p) for p in ipykernel.__version__.split(".")[:2])


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    k = Kernel(tmp_path_factory.mktemp("private-api"))
    try:
        k.run("from hermes_jupyter.util.private_api import *")
        yield k
    finally:
        k.close()


def printed(kernel: Kernel, code: str, **kw) -> str:
    cell = kernel.run(code, **kw)
    assert cell.error is None, cell.error
    return cell.stdout.strip()


def test_allow_stdin_is_the_running_cells(kernel):
    assert printed(kernel, "print(kernel_allows_stdin(get_ipython().kernel))", allow_stdin=True) == "True"
    assert printed(kernel, "print(kernel_allows_stdin(get_ipython().kernel))", allow_stdin=False) == "False"


@pytest.mark.skipif(IPYKERNEL < (7, 0), reason="ipykernel 6 has no main asyncio lock (the fallback is its behaviour)")
def test_main_asyncio_lock_is_held_while_a_cell_runs(kernel):
    held = printed(kernel, "lock = main_asyncio_lock(get_ipython().kernel)\nprint(type(lock).__name__, lock.locked())")
    assert held == "Lock True"


@pytest.mark.skipif(IPYKERNEL < (7, 4), reason="ipykernel asks comms for a subshell since 7.4")
def test_comms_are_asked_for_a_subshell_on_the_shell_channel_thread(kernel):
    found = printed(kernel, "import inspect, ipywidgets\nroute = reply_subshell_router(ipywidgets.Button().comm)\n"
                            "print(*inspect.signature(route).parameters)")
    assert found == "data default"  # what the replacement in views/comm.py takes and passes on
    # The hook matters only while ipykernel's shell-channel thread calls it.
    from ipykernel import kernelbase
    assert "_reply_subshell_for" in inspect.getsource(kernelbase)


def test_the_option_map_of_argparse_is_read_and_its_fallback_agrees():
    plain = argparse.ArgumentParser(add_help=False)
    plain.add_argument("-m", "--model")
    plain.add_argument("--wait", action="store_true")
    assert isinstance(vars(plain).get("_option_string_actions"), dict)
    assert option_takes_value(plain) == {"-m": True, "--model": True, "--wait": False}

    magic = HermesMagics.hermes.parser
    read = option_takes_value(magic)
    assert read["--model"] and read["-s"] and not read["--wait"] and not read["--plain"]
    # The fallback, asking the parser through its public API, finds the same map.
    assert private_api._probe_options(magic) == read


def test_without_the_names_the_fallbacks_answer():
    nothing = object()
    assert kernel_allows_stdin(None) is False and kernel_allows_stdin(nothing) is False
    assert main_asyncio_lock(nothing) is None
    assert reply_subshell_router(None) is None and reply_subshell_router(nothing) is None


def test_no_other_module_touches_these_names():
    names = {name for _, _, name in NAMES}
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "private_api.py" and path.parent.name == "util":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            used = (node.attr if isinstance(node, ast.Attribute)
                    else node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None)
            if used in names:
                offences.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} uses {used}")
    assert not offences, "use hermes_jupyter/util/private_api.py:\n" + "\n".join(offences)
