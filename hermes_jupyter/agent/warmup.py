"""Pay hermes-agent's one-time cost in the background while the user types.

In a fresh kernel the first turn used to wait ~5 s before its first token:
importing hermes-agent (~0.9 s), the OpenAI client library (~0.7 s, on the first
``AIAgent()``), the environment probe of the system prompt (~1.2 s of
subprocesses), and first-time setup inside the first agent and its first streamed
request (~1 s). All of it is process-wide and cached, so ``%load_ext`` starts it on
a daemon thread: the imports, the probe, then one throwaway agent that asks a
stand-in model of its own (a scripted server on 127.0.0.1 that answers "ok", closed
afterwards). No call leaves the machine, nothing of the user's is read or written
beyond hermes-agent's own logs, and nothing runs on the kernel's main thread. A
failure here is kept quiet: the first turn does the same work again and reports it
as that turn's error.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("hermes_jupyter")


class Warmup:
    def __init__(self, then: Callable[[], object] | None = None) -> None:
        self._then = then  # e.g. build the current session's agent, once the imports are done
        self.timings: dict[str, float] = {}  # step -> seconds, for /config and the benchmark
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self.done = threading.Event()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hermes-warmup", daemon=True)
            self._thread.start()

    def _step(self, name: str, fn: object) -> None:
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        self.timings[name] = round(time.perf_counter() - started, 3)

    def _run(self) -> None:
        from hermes_jupyter.agent import hosting

        try:
            self._step("import hermes-agent", hosting.ensure_installed)
            self._step("import the OpenAI client", _import_openai)
            self._step("probe the environment", _probe_environment)
            self._step("a first agent and request", _first_conversation)
            if self._then is not None:
                self._step("the session's agent", self._then)
        except Exception as exc:  # the first turn meets it again and says so
            self.error = f"{type(exc).__name__}: {exc}"
            log.debug("warm-up failed: %s", self.error)
        finally:
            self.done.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is None:  # never started (warmup off): nothing to wait for (%unload_ext waited 30 s)
            return True
        return self.done.wait(timeout)

    def describe(self) -> str:
        """One line for /config: where the one-time cost went."""
        if self._thread is None:
            return "not started"
        if not self.done.is_set():
            return "running"
        steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.timings.items())
        if self.error:
            return f"failed ({self.error}); the first turn will say why" + (f" (done: {steps})" if steps else "")
        return f"done in {sum(self.timings.values()):.1f} s ({steps})"


def _import_openai() -> None:
    import openai  # noqa: F401  (what the first AIAgent() imports)


def _probe_environment() -> None:
    # The system prompt's "Python toolchain" line: subprocesses, cached for the process.
    from tools.env_probe import get_environment_probe_line
    get_environment_probe_line()


def _first_conversation() -> None:
    from hermes_jupyter.agent import hosting
    from hermes_jupyter.agent.settings import DEFAULT_TOOLSETS, RunConfig
    from hermes_jupyter.models.scripted import ScriptedServer

    stand_in = {"model": "warm-up", "rules": [{"default": True, "steps": [{"text": "ok"}]}]}
    with ScriptedServer(stand_in) as server:
        config = RunConfig(model=server.model, provider="custom", base_url=server.base_url,
                           api_mode="chat_completions", api_key="warm-up", toolsets=tuple(DEFAULT_TOOLSETS.split(",")),
                           approvals="deny", approval_timeout=1.0, clarify_timeout=1.0)
        agent = hosting.build_agent(config, session_id="hermes-jupyter-warm-up", callbacks={},
                                    ephemeral_system_prompt="Answer ok.")
        agent.run_conversation("ok?", conversation_history=[], task_id="hermes-jupyter-warm-up")
