"""The view's browser side, shipped in the package (no build step): read once, versioned by content."""
from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import resources


def _read(name: str) -> str:
    return (resources.files("hermes_jupyter.views") / "assets" / name).read_text(encoding="utf-8")


@cache
def loader_js() -> str:
    """The widget's own ES module: tiny (comments dropped), because nbclient saves it with every turn it runs."""
    return "\n".join(line for line in _read("loader.js").splitlines() if not line.lstrip().startswith("//"))


@cache
def view_js() -> str:
    return _read("view.js")


@cache
def css(live: bool = True) -> str:
    """The stylesheet, without comments and line breaks; without its live-only rules for a saved turn,
    which carries a copy of it."""
    text = _read("turn.css")
    if not live:
        text = text.split("/* @live:", 1)[0]
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"\s*\n\s*", "", text).strip()


@cache
def version() -> str:
    """Changes whenever the code or the stylesheet does: a page caches them under it."""
    return hashlib.blake2b((view_js() + css()).encode(), digest_size=5).hexdigest()


@cache
def cells_js() -> str:
    """The one-shot widget of %hermes /cells (views/cells_widget.py)."""
    return _read("cells.js")
