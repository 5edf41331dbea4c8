"""A real ipykernel driven with jupyter_client, recording every iopub message as received.

Unlike tests/kernel.py it reads the iopub socket itself, so it knows each
message's size on the wire (the sum of its ZMQ frames: identities, signature,
header, parent header, metadata, content, buffers) and its arrival time.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
from jupyter_client.manager import start_new_kernel


@dataclass
class Message:
    msg_type: str
    parent: str | None  # msg_id of the request it answers (the cell), if any
    size: int  # bytes as received
    at: float  # time.monotonic() on arrival
    content: dict  # kept for stream and error messages only


@dataclass
class Cell:
    msg_id: str
    code: str
    sent: float
    idle: float | None = None  # time.monotonic() of its idle status
    error: dict | None = None

    @property
    def return_time(self) -> float:
        """Seconds from sending the execute_request to the cell's idle status."""
        assert self.idle is not None
        return self.idle - self.sent


class BenchKernel:
    def __init__(self, cwd: Path, env: dict[str, str]):
        self.manager, self.client = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=env)
        self.process = psutil.Process(self.manager.provisioner.pid)
        self.messages: list[Message] = []
        self.cells: dict[str, Cell] = {}
        self._iopub = self.client.iopub_channel.socket
        self._drain(0.2)

    # ----- sending and receiving ------------------------------------------------------------
    def send(self, code: str) -> Cell:
        # As JupyterLab sends it: the cell's id in the metadata (without one the kernel sees a headless run).
        msg = self.client.session.msg("execute_request", {
            "code": code, "silent": False, "store_history": False, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True})
        msg["metadata"]["cellId"] = str(uuid.uuid4())
        self.client.shell_channel.send(msg)
        msg_id = msg["header"]["msg_id"]
        cell = Cell(msg_id, code, time.monotonic())
        self.cells[msg_id] = cell
        return cell

    def run(self, code: str, timeout: float = 600) -> Cell:
        """Execute and wait for idle; raise if the cell failed."""
        cell = self.send(code)
        self.wait_idle(cell, timeout)
        if cell.error:
            raise RuntimeError(f"cell failed: {code!r}\n" + "\n".join(cell.error.get("traceback", [])))
        return cell

    def wait_idle(self, cell: Cell, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while cell.idle is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no idle status for {cell.code!r} in {timeout}s")
            self._receive(1.0)

    def _receive(self, timeout: float) -> bool:
        if not self._iopub.poll(int(timeout * 1000)):
            return False
        frames = self._iopub.recv_multipart(copy=True)
        at = time.monotonic()
        _, parts = self.client.session.feed_identities(frames)
        msg = self.client.session.deserialize(parts, content=True)
        parent = (msg.get("parent_header") or {}).get("msg_id")
        kept = msg["content"] if msg["msg_type"] in ("stream", "error") else {}  # widget states can be huge
        self.messages.append(Message(msg["msg_type"], parent, sum(len(f) for f in frames), at, kept))
        cell = self.cells.get(parent)
        if cell is not None:
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle" and cell.idle is None:
                cell.idle = at
            elif msg["msg_type"] == "error":
                cell.error = msg["content"]
        return True

    def _drain(self, quiet: float) -> None:
        """Read until no message has come for `quiet` seconds."""
        while self._receive(quiet):
            pass

    def settle(self, quiet: float = 0.3) -> None:
        self._drain(quiet)

    # ----- the kernel process ---------------------------------------------------------------
    def cpu(self) -> float:
        """User + system CPU seconds of the kernel process so far."""
        t = self.process.cpu_times()
        return t.user + t.system

    def rss(self) -> int:
        return self.process.memory_info().rss

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    def __enter__(self) -> BenchKernel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def window(messages: list[Message], start: int, exclude: set[str] = frozenset()) -> list[Message]:
    """The messages received since index `start`, except the cells' own in `exclude`.

    Comm messages are always kept: ipykernel gives a message sent from a thread
    without a cell context (a timer) the parent of the cell running at the time.
    """
    return [m for m in messages[start:] if m.parent not in exclude or m.msg_type.startswith("comm_")]


def hermes_kernel(server, folder: Path, *, warm: bool = True) -> BenchKernel:
    """A fresh kernel in its own folder (so no history to resume), pointed at the scripted server.

    `warm`: run one short turn first, so hermes-agent is imported, the session's
    agent is built and ipywidgets is loaded, as after the first prompt of a notebook.
    """
    from common import kernel_env

    folder.mkdir(parents=True, exist_ok=True)
    kernel = BenchKernel(folder, kernel_env(folder / ".hermes-home"))
    kernel.run(server.setup_code())
    if warm:
        kernel.run("%hermes --wait [ping]")
        kernel.settle()
    return kernel
