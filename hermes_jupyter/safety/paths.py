"""One policy for the paths a user names: inside the notebook's folder.

``--attach`` names files the agent is told to read (and the history records), ``/export`` a
file the extension writes. Both are resolved against the notebook's folder (``~`` expanded,
``..`` and symbolic links followed) and must land inside it: ``/etc/shadow``, ``../outside.txt``
or a link that points out are refused, so an attachment never sends (or records) a file from
elsewhere, and an export never writes elsewhere. Inside the folder, paths are kept relative to
it: the history holds ``data/notes.txt``, not the user's home folder. To use a file from
elsewhere, copy it into the folder; to export elsewhere, move the file afterwards.

An export never replaces the notebook or its history (``*.ipynb``, ``*.hermes.json``).
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["PathRefused", "inside_folder", "writable_export"]

_PROTECTED = (".ipynb", ".hermes.json", ".hermes.json.lock")


class PathRefused(ValueError):
    """The path breaks the policy; the message (one line, for the user) says why: "it is outside ..."."""


def inside_folder(name: str, folder: Path) -> Path:
    """The resolved path of ``name`` (relative to ``folder``), which must lie inside ``folder``."""
    base = folder.resolve()
    path = (base / Path(name).expanduser()).resolve()
    if path != base and base not in path.parents:
        raise PathRefused(f"it is outside the notebook's folder ({base}), and only paths inside it are used "
                          "(copy the file in, or move the export afterwards)")
    return path


def writable_export(name: str, folder: Path) -> Path:
    """Where an export may be written: inside ``folder``, in a folder that exists, never over the notebook."""
    path = inside_folder(name, folder)
    if path.is_dir():
        raise PathRefused(f"it is a folder; name a file, e.g. {name.rstrip('/')}/session.md")
    if path.name.endswith(_PROTECTED):
        raise PathRefused("it is a notebook or its history; choose another name (.md or .html)")
    if not path.parent.is_dir():
        raise PathRefused(f"the folder {path.parent.relative_to(folder.resolve())!s} does not exist "
                          "(create it first, or choose another path)")
    return path
