"""The extension's process state, in one object: loaded by ``%load_ext``, closed by ``%unload_ext``.

``Extension`` owns the engine and its settings, the magics, the input
transformer and the exit hook, and on unload closes everything the extension
started in the process: running turns, the shell's kernel-code runner, the
scripted, replay and recording servers, and the scheduler thread. Loading it
again afterwards starts with no sessions, threads or servers of the old one. The
settings are the exception, on purpose: ``%config Hermes.x = ...`` writes the
shell's configuration (as ipython_config.py does), which IPython keeps for every
configurable across reloads; clearing them on unload would also drop
the user's profile settings.
"""
from __future__ import annotations

import atexit
import re
from typing import Any

from hermes_jupyter.agent.failures import ConfigError
from hermes_jupyter.agent.settings import Hermes
from hermes_jupyter.agent.warmup import Warmup
from hermes_jupyter.engine import CANCEL_GRACE, Engine
from hermes_jupyter.magic import HermesMagics, notebook_dir

_QUESTION = re.compile(r"^(\s*)%hermes(\s+.*\?)\s*$")


def keep_questions(lines: list[str]) -> list[str]:
    """IPython reads a line ending in "word?" as a help request (``%pinfo word``), so
    ``%hermes what is in this folder?`` would never reach the magic. Make such a line an explicit
    magic call before that happens (``%hermes?`` itself, and ``%%hermes`` cells, are left alone)."""
    if not lines or lines[0].lstrip().startswith("%%"):
        return lines
    return [f"{m.group(1)}get_ipython().run_line_magic('hermes', {m.group(2).strip()!r})\n"
            if (m := _QUESTION.match(line)) else line for line in lines]


class Extension:
    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.settings = Hermes(parent=shell)
        self.engine = Engine(self.settings)
        self.warmup = Warmup(then=self._prepare_agent)
        self.magics = HermesMagics(shell, self.engine)

    def load(self) -> None:
        # Cheap on purpose: hermes-agent is imported by the first turn, on its worker thread.
        self.shell.configurables.append(self.settings)
        self.shell.register_magics(self.magics)
        if keep_questions not in self.shell.input_transformers_cleanup:
            self.shell.input_transformers_cleanup.append(keep_questions)
        atexit.register(self.engine.save_all)  # a kernel shutdown keeps running turns' prompts and partial answers
        self.magics.attach_history()
        if self.settings.warmup:
            self.warmup.start()  # hermes-agent's one-time cost, while the user types the first prompt
        # Naming the notebook later (%config Hermes.notebook = ...) moves the history beside it.
        self.settings.observe(self._notebook_named, names=["notebook", "history_dir"])

    def _prepare_agent(self) -> None:
        try:
            self.engine.prepare_agent(notebook_dir(self.shell, self.settings))
        except ConfigError:
            pass  # nothing configured yet: the first turn says so

    def _notebook_named(self, change: Any) -> None:
        self.magics.attach_history()

    def unload(self) -> None:
        shell = self.shell
        self.settings.unobserve(self._notebook_named, names=["notebook", "history_dir"])
        if keep_questions in shell.input_transformers_cleanup:
            shell.input_transformers_cleanup.remove(keep_questions)
        self.warmup.join(30)  # an import half done on another thread must not race the unload
        self.magics.interrupts.close()
        turns = self.engine.running()
        for turn in turns:
            turn.cancel()
        for turn in turns:
            turn.wait(CANCEL_GRACE + 2)
        self.engine.save_all()
        atexit.unregister(self.engine.save_all)
        magics = shell.magics_manager.magics
        for kind in ("line", "cell"):
            if magics[kind].get("hermes") is not None:
                del magics[kind]["hermes"]
        if self.settings in shell.configurables:
            shell.configurables.remove(self.settings)
        close_process_state(shell)


def close_process_state(shell: Any) -> None:
    """Stop every server and thread the extension started in this process."""
    from hermes_jupyter.models.record import close_proxies
    from hermes_jupyter.models.replay import close_replays
    from hermes_jupyter.models.scripted.server import close_shared
    from hermes_jupyter.notebook.runner import close_runner
    from hermes_jupyter.util import workers
    from hermes_jupyter.util.scheduler import scheduler

    close_runner(shell)
    close_proxies()
    close_replays()
    close_shared()
    scheduler.shutdown()
    workers.shared.shutdown()
