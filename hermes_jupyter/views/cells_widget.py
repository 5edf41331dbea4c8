"""The one-shot widget of %hermes /cells in JupyterLab 4 and Notebook 7 (assets/cells.js).

Those frontends insert only the first set_next_input payload of a reply; the widget inserts the
other cells below that one (leaving out, and taking the payload's back, any already below: a cell
/cells made, with the same code), says how many, and is closed: the cell's output becomes one line of
text, so a reopened notebook holds nothing that could insert them again.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets
from ipywidgets import Layout
from ipywidgets.widgets.widget import widget_serialization

from hermes_jupyter.views import assets


class CellsWidget(anywidget.AnyWidget):
    _esm = assets.cells_js()
    cells = traitlets.List(traitlets.Unicode()).tag(sync=True)  # every cell, the payload's first
    marker = traitlets.Unicode("").tag(sync=True)  # the last line of the payload's cell, unique to this command
    state = traitlets.Unicode("pending").tag(sync=True)  # pending | done
    layout = traitlets.Instance(Layout, allow_none=True, default_value=None).tag(sync=True, **widget_serialization)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data["text/plain"] = ""  # nothing to show where widgets do not render
        return bundle


def first_payload(cells: list[str]) -> tuple[str, str]:
    """The text of the one payload JupyterLab applies, and its marker: the first cell, with a last line
    that tells the widget which cell is the payload's and goes once the others are in."""
    rest, tag = len(cells) - 1, secrets.token_hex(4)
    if rest:
        marker = f"# hermes: {rest} more cell{'s go' if rest != 1 else ' goes'} below this one [{tag}]"
    else:
        marker = f"# hermes: this line goes once the page has checked the cells below [{tag}]"
    return f"{cells[0]}\n{marker}", marker


def insert_rest(cells: list[str], marker: str, where: str, show: Callable[[CellsWidget], Any]) -> CellsWidget:
    """Show the widget in the running cell (``show`` displays it, returning its display handle); when the
    page has inserted the cells, say so in its place and close it."""
    widget = CellsWidget(cells=cells, marker=marker)
    handle = show(widget)

    def answered(_: Any, content: Any, buffers: Any) -> None:
        if widget.state != "pending" or not isinstance(content, dict):
            return
        widget.state = "done"
        if content.get("type") == "inserted":
            line = inserted_line(len(cells), int(content.get("count") or 0), int(content.get("present") or 0), where)
        else:
            line = (f"[hermes] the page did not insert the other cells below {where} (it missed the reply, "
                    "or it cannot insert cells): run the command again")
        if handle is not None:
            handle.update({"text/plain": line}, raw=True)
        widget.close()

    widget.on_msg(answered)
    return widget


def inserted_line(total: int, count: int, present: int, where: str) -> str:
    """What the page did: `count` cells inserted besides the payload's, `present` found below already."""
    if not present:
        if total == 1:  # the payload was the whole of it
            return f"[hermes] the cell is in, below {where}"
        return f"[hermes] the page inserted the other {count} cell{'s' * (count != 1)} below {where}"
    if present >= total:
        return f"[hermes] {'these cells were' if total > 1 else 'the cell was'} below {where} already: nothing inserted"
    return (f"[hermes] {present} of the {total} cells {'were' if present > 1 else 'was'} below {where} already; "
            f"the page inserted the other {total - present}")
