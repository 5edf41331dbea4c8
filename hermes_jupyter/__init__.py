"""hermes-jupyter: the Hermes agent in Jupyter. ``%load_ext hermes_jupyter``, then ``%hermes PROMPT``."""
from __future__ import annotations

import atexit
import re
from typing import Any

__version__ = "0.1.0"
__all__ = ["load_ipython_extension", "unload_ipython_extension", "get_engine", "__version__"]

_engine = None


def get_engine() -> Any:
    """The kernel's Engine (sessions, turns) once the extension is loaded."""
    return _engine


def load_ipython_extension(ip: Any) -> None:
    # Cheap on purpose: hermes-agent is imported by the first turn, on its worker thread.
    global _engine
    from .engine import Engine
    from .magic import HermesMagics
    from .settings import Hermes

    if _engine is None:
        settings = Hermes(parent=ip)
        ip.configurables.append(settings)
        ip._hermes_settings = settings
        _engine = Engine(settings)
        atexit.register(_engine.save_all)  # a kernel shutdown keeps running turns' prompts and partial answers
    magics = HermesMagics(ip, _engine)
    ip.register_magics(magics)
    if keep_questions not in ip.input_transformers_cleanup:
        ip.input_transformers_cleanup.append(keep_questions)
    magics.attach_history()


def unload_ipython_extension(ip: Any) -> None:
    if keep_questions in ip.input_transformers_cleanup:
        ip.input_transformers_cleanup.remove(keep_questions)
    if _engine is not None:
        for turn in _engine.running():
            turn.cancel()


_QUESTION = re.compile(r"^(\s*)%hermes(\s+.*\?)\s*$")


def keep_questions(lines: list[str]) -> list[str]:
    """IPython reads a line ending in "word?" as a help request (``%pinfo word``), so
    ``%hermes what is in this folder?`` would never reach the magic. Make such a line an explicit
    magic call before that happens (``%hermes?`` itself, and ``%%hermes`` cells, are left alone)."""
    if not lines or lines[0].lstrip().startswith("%%"):
        return lines
    return [f"{m.group(1)}get_ipython().run_line_magic('hermes', {m.group(2).strip()!r})\n"
            if (m := _QUESTION.match(line)) else line for line in lines]
