"""The scripted model: a local OpenAI-compatible server that answers from a script.

    srv = ScriptedServer(load_script("my.yaml")).start()
    agent = AIAgent(provider="custom", api_mode="chat_completions",
                    base_url=srv.base_url, api_key="scripted", model=srv.model)

See ``hermes_jupyter.models.scripted.script`` for the script format, gates included
(``srv.open_gate(NAME)``, or ``open_gate(base_url, NAME)`` and ``wait_held(base_url, NAME)``
from another process).
"""
from .script import BUILTIN_DEMO, Script, ScriptError, load_script
from .server import ScriptedServer, open_gate, shared_server, wait_held

__all__ = [
    "BUILTIN_DEMO", "Script", "ScriptError", "ScriptedServer", "load_script", "open_gate", "shared_server", "wait_held",
]
