"""A real ipykernel driven with jupyter_client, as a notebook frontend would.

Starting a kernel and the agent's first turn in it cost seconds, so a test module shares one
kernel between its tests (`module_kernel` + `Kernel.fresh`); a test that needs a process of
its own (a restart, environment variables, HERMES_HOME) starts its own `Kernel`.
"""
from __future__ import annotations

import contextlib
import os
import queue
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel

STUCK_AFTER = 30  # seconds: a shared kernel that cannot run `fresh`'s reset cell by then is restarted


@dataclass
class Execution:
    msg_id: str
    reply: dict | None = None
    outputs: list[dict] = field(default_factory=list)  # iopub messages addressed to this cell
    idle_after: float = 0.0  # seconds from send to the kernel going idle for this cell

    @property
    def stdout(self) -> str:
        return "".join(m["content"]["text"] for m in self.outputs
                       if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")

    @property
    def stderr(self) -> str:
        return "".join(m["content"]["text"] for m in self.outputs
                       if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")

    @property
    def error(self) -> dict | None:
        return next((m["content"] for m in self.outputs if m["msg_type"] == "error"), None)


class Kernel:
    def __init__(self, cwd: Path, env: dict[str, str] | None = None):
        self.cwd = cwd
        kernel_env = dict(os.environ, **(env or {}))
        self.manager, self.client = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=kernel_env)
        self.cells: dict[str, Execution] = {}
        self.widgets: dict[str, dict] = {}  # comm id -> the widget model's state, as a frontend mirrors it
        self.comm_messages: list[dict] = []

    def send(self, code: str, *, allow_stdin: bool = False, cell_id: str | None = "") -> Execution:
        """Run a cell as JupyterLab does, naming it by a cell id in the request's metadata (a fresh one by
        default); `cell_id=None` runs it as nbclient and papermill do (no id: the kernel sees a headless run)."""
        msg = self.client.session.msg("execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": allow_stdin, "stop_on_error": True})
        if cell_id is not None:
            msg["metadata"]["cellId"] = cell_id or str(uuid.uuid4())
        self.client.shell_channel.send(msg)
        cell = Execution(msg["header"]["msg_id"])
        cell.sent_at = time.monotonic()
        self.cells[cell.msg_id] = cell
        return cell

    def pump(self, until, timeout: float = 60) -> None:
        """Read iopub messages, filing each under its cell, until `until()` is true."""
        deadline = time.monotonic() + timeout
        while not until():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("kernel did not produce the expected messages in time")
            try:
                msg = self.client.get_iopub_msg(timeout=min(remaining, 1))
            except queue.Empty:
                continue
            if msg["msg_type"].startswith("comm_"):
                self._mirror(msg)
            cell = self.cells.get(msg["parent_header"].get("msg_id"))
            if cell is None:
                continue
            if msg["msg_type"] == "status":
                if msg["content"]["execution_state"] == "idle" and not cell.idle_after:
                    cell.idle_after = time.monotonic() - cell.sent_at
            else:
                cell.outputs.append(msg)

    def run(self, code: str, timeout: float = 60, **kw) -> Execution:
        cell = self.send(code, **kw)
        self.pump(lambda: bool(cell.idle_after), timeout)
        self.await_reply(cell, timeout)
        return cell

    def await_reply(self, cell: Execution, timeout: float = 60) -> dict:
        while cell.reply is None:
            msg = self.client.get_shell_msg(timeout=timeout)
            owner = self.cells.get(msg["parent_header"].get("msg_id"))
            if owner is not None:
                owner.reply = msg["content"]
        return cell.reply

    def _mirror(self, msg: dict) -> None:
        self.comm_messages.append(msg)
        content = msg["content"]
        comm_id = content.get("comm_id")
        if msg["msg_type"] == "comm_open":
            self.widgets[comm_id] = dict(content["data"].get("state", {}))
        elif msg["msg_type"] == "comm_msg" and content["data"].get("method") == "update":
            self.widgets.setdefault(comm_id, {}).update(content["data"].get("state", {}))
        elif msg["msg_type"] == "comm_close":
            self.widgets.pop(comm_id, None)

    def find_widgets(self, model: str, **state) -> list[str]:
        """Comm ids of live widgets of a model (e.g. "ButtonModel") whose state matches."""
        return [cid for cid, st in self.widgets.items()
                if st.get("_model_name") == model and all(st.get(k) == v for k, v in state.items())]

    def wait_widget(self, model: str, timeout: float = 30, **state) -> str:
        """A widget as a browser would first see it: created AND placed in a container.

        A widget's comm opens when it is constructed, before its handlers are attached;
        it is shown only once a box holds it, as it is for a user.
        """
        def placed() -> list[str]:
            held = {c for st in self.widgets.values() for c in st.get("children") or ()}
            return [cid for cid in self.find_widgets(model, **state) if f"IPY_MODEL_{cid}" in held]
        self.pump(lambda: bool(placed()), timeout)
        return placed()[0]

    def comm_send(self, comm_id: str, data: dict) -> None:
        msg = self.client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        self.client.shell_channel.send(msg)

    def click(self, comm_id: str) -> None:
        """What a browser sends when the button is clicked."""
        self.comm_send(comm_id, {"method": "custom", "content": {"event": "click"}})

    def set_value(self, comm_id: str, value) -> None:
        self.comm_send(comm_id, {"method": "update", "state": {"value": value}, "buffer_paths": []})

    def fresh(self, folder: Path, setup: str, timeout: float = 60) -> Execution:
        """Make a shared kernel as good as new for the next test, and run that test's `setup`.

        The extension is unloaded (it cancels running turns and closes its servers, so a fresh
        load gets new sessions and a new scripted server with no requests), the %config values
        and the user's variables are dropped, and the kernel moves to the test's own `folder`:
        the agent works there and the new history is kept there. The mirrored widgets and comm
        traffic start empty. `setup` loads the extension again (and sets the test's %config).
        """
        # %config values live on in the shell's configuration, and a new load would read them.
        code = ("%unload_ext hermes_jupyter\n%reset -f\nget_ipython().config.pop('Hermes', None)\n"
                f"import os as _os\n_os.chdir({str(folder)!r})\ndel _os")
        try:
            reset: Execution | None = self.run(code, STUCK_AFTER)
        except TimeoutError:
            reset = None
        if reset is None or reset.reply["status"] != "ok":
            # An earlier test failed and left the kernel busy or broken: the next test gets a new
            # process rather than that test's failure.
            self.restart()
            reset = self.run(code, timeout)
        assert reset.reply["status"] == "ok", reset.error
        self.cwd = folder
        self.cells.clear()
        self.widgets.clear()
        self.comm_messages.clear()
        return self.run(setup, timeout)

    def restart(self, timeout: float = 60) -> None:
        self.manager.restart_kernel(now=True)
        self.client.wait_for_ready(timeout=timeout)
        self.cells.clear()

    def model_url(self, script: Path) -> str:
        """The base URL of the scripted model (`scripted:SCRIPT`) that serves this kernel's turns."""
        cell = self.run("from hermes_jupyter.models.scripted import shared_server as _shared\n"
                        f"print(_shared({str(script)!r}).base_url)\ndel _shared")
        assert cell.reply["status"] == "ok", cell.error
        return cell.stdout.strip()

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@contextlib.contextmanager
def module_kernel(folder: Path):
    """One kernel for a test module; each test starts with `Kernel.fresh`."""
    kernel = Kernel(folder)
    try:
        yield kernel
    finally:
        kernel.close()


def fresh_kernel_fixtures(setup: str, then: str = "", folder: str = ""):
    """The `shared_kernel` (one per test module) and `kernel` fixtures: each test gets the module's kernel made
    fresh (`Kernel.fresh` in the test's tmp_path, or in its subfolder `folder`, with `setup` run, then `then`
    if given). In a test module: ``shared_kernel, kernel = fresh_kernel_fixtures(SETUP)``."""
    @pytest.fixture(scope="module")
    def shared_kernel(tmp_path_factory):
        with module_kernel(tmp_path_factory.mktemp("kernel")) as k:
            yield k

    @pytest.fixture
    def kernel(shared_kernel, tmp_path):
        where = tmp_path / folder if folder else tmp_path
        where.mkdir(exist_ok=True)
        ran = shared_kernel.fresh(where, setup)  # a new scripted server too: its request log starts empty
        assert ran.reply["status"] == "ok", ran.error
        if then:
            more = shared_kernel.run(then)
            assert more.reply["status"] == "ok", more.error
        return shared_kernel

    return shared_kernel, kernel

