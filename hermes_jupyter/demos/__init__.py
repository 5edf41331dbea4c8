"""The demo notebooks and the scripts they read, copied into a folder of yours.

``hermes-jupyter-demos DEST`` (or ``python -m hermes_jupyter.demos DEST``). The wheel carries them
in ``hermes_jupyter/demos/files`` (put there from the repository's ``notebooks/`` when the wheel is
built: setup.py); a clone or an editable install reads ``notebooks/`` itself, the one copy.

Standard library only: setup.py loads this file on its own to know what to ship.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

# What a demo needs, relative to the demos' folder. Not the files running them writes there
# (histories, recordings, scratch folders).
PATTERNS = ("[0-9][0-9]-*.ipynb", "README.md", "nbval-sanitize.cfg", "scripts/*.yaml")
DEFAULT_DEST = "hermes-jupyter-demos"


def demo_files(root: Path) -> list[Path]:
    """The demos' files under root, relative to it."""
    return sorted({p.relative_to(root) for pattern in PATTERNS for p in root.glob(pattern) if p.is_file()})


def source() -> Path:
    """Where the demos are: in the installed package, else in the clone this package runs from."""
    here = Path(__file__).resolve().parent
    for root in (here / "files", here.parents[1] / "notebooks"):
        if demo_files(root):
            return root
    raise FileNotFoundError(f"the demo notebooks are missing from {here / 'files'}: reinstall hermes-jupyter")


def copy_demos(dest: Path, *, overwrite: bool = False) -> list[Path]:
    """Copy every demo file into dest (created if missing); refuse, copying nothing, if one is there already."""
    root = source()
    files = demo_files(root)
    there = [f for f in files if (dest / f).exists()]
    if there and not overwrite:
        names = ", ".join(str(f) for f in there[:3]) + (f" and {len(there) - 3} more" if len(there) > 3 else "")
        raise FileExistsError(f"{dest} already holds {names}: choose another folder, or add --force to "
                              "replace them with the demos as shipped (your changes to them are lost)")
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / f, dest / f)
    return [dest / f for f in files]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hermes-jupyter-demos",
        description="Copy the hermes-jupyter demo notebooks and the scripts they read into a folder. "
                    "They run on the built-in scripted model: no key, no network.")
    parser.add_argument("dest", nargs="?", default=DEFAULT_DEST,
                        help=f"the folder to copy them into (created if missing; default: ./{DEFAULT_DEST})")
    parser.add_argument("--force", action="store_true", help="replace demo files already in the folder")
    args = parser.parse_args(argv)
    dest = Path(args.dest).expanduser()
    try:
        copied = copy_demos(dest, overwrite=args.force)
    except (FileExistsError, FileNotFoundError) as exc:
        print(f"hermes-jupyter-demos: {exc}", file=sys.stderr)
        return 1
    notebooks = sum(p.suffix == ".ipynb" for p in copied)
    print(f"copied {notebooks} notebooks and their scripts into {dest}\n"
          f"open them with:  jupyter lab {dest}   (start with 01-quickstart.ipynb)")
    return 0
