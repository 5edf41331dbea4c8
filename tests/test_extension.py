"""Loading and unloading the extension: one object owns its process state, and unloading closes all of it."""
from __future__ import annotations

from .kernel import Kernel

OURS = ("hermes-", "scripted-model", "recording-proxy", "replay")

THREADS = "import threading; print(sorted(t.name for t in threading.enumerate()))"


def test_load_turn_unload_load_leaves_no_threads_or_servers_behind(tmp_path):
    k = Kernel(tmp_path)
    try:
        k.run("%config Hermes.notebook = 'x.ipynb'\n%load_ext hermes_jupyter\n%config Hermes.plain = True")
        first = k.run("%hermes --wait --model scripted:demo hello")
        assert "done" in first.stdout, first.stdout
        during = k.run(THREADS).stdout
        assert "scripted-model" in during  # the check can fail: our threads are visible while loaded
        # The extension's state lives on the Extension: nothing is hung on IPython's shell or kernel,
        # also after a --wait turn (it runs the turn's code jobs through the shell's runner).
        hung = k.run("ip = get_ipython()\n"
                     "print([n for o in (ip, ip.kernel) for n in vars(o) if 'hermes' in n.lower()])").stdout
        assert hung.strip() == "[]", hung

        unloaded = k.run("%unload_ext hermes_jupyter")
        assert unloaded.error is None, unloaded.error
        after = k.run(THREADS).stdout
        assert not [name for name in eval(after) if name.startswith(OURS)], after
        state = k.run("from hermes_jupyter.models.scripted import server\n"
                      "from hermes_jupyter.notebook import runner\n"
                      "print(len(server._shared), 'hermes' in get_ipython().magics_manager.magics['line'],\n"
                      "      get_ipython() in runner._runners)").stdout
        assert state.split() == ["0", "False", "False"], state
        gone = k.run("%hermes hello")
        assert gone.reply["status"] == "error" and "`%hermes` not found" in gone.stderr, gone.stderr

        k.run("%load_ext hermes_jupyter")
        # A new engine (the notebook's history resumed, no live turn), but the settings stay:
        # %config writes the shell's configuration.
        kept = k.run("from hermes_jupyter import get_engine\ne = get_engine()\n"
                     "print([(len(s.turns), len(s.saved_turns)) for s in e.sessions.values()], e.settings.plain)").stdout
        assert kept.strip() == "[(0, 1)] True", kept
        again = k.run("%hermes --wait --model scripted:demo hello again")
        assert "done" in again.stdout and "Hello" in again.stdout, again.stdout
    finally:
        k.close()
