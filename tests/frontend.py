"""What a browser does with a turn's widget, done from a test over a real kernel's messages.

The live view (hermes_jupyter/views/live.py) talks to its views with custom comm messages: a view
says hello, gets a boot (the document so far) and numbered batches of operations. `Frontend`
plays one such view against `tests.kernel.Kernel`: it sends hello and clicks, and rebuilds the
document from the operations, enough to read the text, the parts and their controls.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from .kernel import Execution, Kernel

_mids = itertools.count()


@dataclass
class Open:
    container: str
    pieces: list[str] = field(default_factory=list)
    tail: str = ""


class Frontend:
    def __init__(self, kernel: Kernel, cell: Execution, *, page: str = "page-1", have: tuple[str, ...] = ()):
        self.kernel = kernel
        self.page, self.have = page, list(have)
        displays = [m for m in cell.outputs if m["msg_type"] == "display_data"
                    and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]
        self.comm_id = displays[0]["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
        self.display_id = (displays[0]["content"].get("transient") or {}).get("display_id")
        self.cell = cell
        self.read = len(kernel.comm_messages)  # comm messages of the kernel applied so far
        self.n = -1
        self.boots: list[dict] = []
        self.batches: list[dict] = []
        self.parts: dict[str, str] = {}
        self.opens: dict[str, Open] = {}
        self.controls: dict[str, dict] = {}
        self.done = False
        self.closed = False

    # ----- sending ------------------------------------------------------------------------
    def send(self, content: dict) -> None:
        content = {**content, "mid": f"m{next(_mids)}"}
        self.kernel.comm_send(self.comm_id, {"method": "custom", "content": content})

    def hello(self) -> None:
        self.send({"type": "hello", "page": self.page, "have": self.have})

    def act(self, part: str, action: str, value: str | None = None) -> None:
        self.send({"type": "act", "part": part, "action": action, "value": value})

    def click(self, label: str, timeout: float = 60) -> None:
        """Click the button labelled `label` in whichever part shows it."""
        part, button = self.wait_button(label, timeout)
        self.act(part, button[1], button[2])

    # ----- receiving ----------------------------------------------------------------------
    def pump(self, until, timeout: float = 60) -> None:
        def check() -> bool:
            self._apply()
            return bool(until())
        self.kernel.pump(check, timeout)

    def _apply(self) -> None:
        for msg in self.kernel.comm_messages[self.read:]:
            content = msg["content"]
            if content.get("comm_id") != self.comm_id:
                continue
            if msg["msg_type"] == "comm_close":
                self.closed = True
            data = content.get("data") or {}
            if msg["msg_type"] != "comm_msg" or data.get("method") != "custom":
                continue
            body = data["content"]
            if body.get("type") == "boot":
                self.boots.append(body)
                self.parts, self.opens, self.controls = {}, {}, {}
                self.n = body["n"]
                for op in body["doc"]:
                    self._op(op)
            elif self.n >= 0 and body["n"] > self.n:
                assert body["n"] == self.n + 1, f"batch {body['n']} after {self.n}"
                self.n = body["n"]
                self.batches.append(body)
                for op in body["ops"]:
                    self._op(op)
        self.read = len(self.kernel.comm_messages)

    def _op(self, op: list) -> None:
        kind, part = op[0], op[1] if len(op) > 1 else None
        if kind == "add" and "foot" in self.parts:  # a new part goes before the foot, as in the browser
            foot = self.parts.pop("foot")
            self.parts[part] = op[2]
            self.parts["foot"] = foot
        elif kind in ("add", "set"):
            self.parts[part] = op[2]
        elif kind == "append":
            self.parts[part] = re.sub(r"(</\w+>)+$", lambda m: op[2] + m.group(0), self.parts[part], count=1)
        elif kind == "state":
            self.parts[part] = re.sub(r'(<span class="hermes-state">)[^<]*', lambda m: m.group(1) + op[2],
                                      self.parts[part])
        elif kind == "open":
            self.opens[part] = Open(op[2])
        elif kind == "grow":
            self.opens[part].pieces.append(op[2])
        elif kind == "tail":
            self.opens[part].tail = op[2]
        elif kind == "settle":
            self.opens.pop(part, None)
            self.parts[part] = self.parts[part][: -len("</div>")] + op[2] + "</div>"
        elif kind == "ctl":
            if op[2] is None:
                self.controls.pop(part, None)
            else:
                self.controls[part] = op[2]
        elif kind == "done":
            self.done = True

    # ----- reading ------------------------------------------------------------------------
    def html(self) -> str:
        """The document as a browser shows it (open blocks drawn where they are)."""
        self._apply()
        out = []
        for part, html in self.parts.items():
            if part in self.opens:
                o = self.opens[part]
                html = html[: -len("</div>")] + o.container + "".join(o.pieces) + o.tail + "</div>"
            out.append(html)
        return "".join(out)

    def text(self) -> str:
        return re.sub(r"<[^>]+>", "", self.html())

    def wait_button(self, label: str, timeout: float = 60) -> tuple[str, list]:
        def find():
            for part, spec in self.controls.items():
                for button in spec.get("buttons") or []:
                    if button[0] == label:
                        return part, button
            return None
        self.pump(lambda: find() is not None, timeout)
        return find()

    def wait_text(self, text: str, timeout: float = 60) -> None:
        self.pump(lambda: text in self.text(), timeout)

    def final(self, timeout: float = 60) -> dict:
        """The static rendering that replaces the view when the turn ends (the display update)."""
        def update():
            return next((m["content"]["data"] for m in self.cell.outputs if m["msg_type"] == "update_display_data"
                         and "text/html" in m["content"]["data"]
                         and m["content"]["transient"]["display_id"] == self.display_id), None)
        self.pump(lambda: update() is not None, timeout)
        return update()
