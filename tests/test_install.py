"""From a pip install, not a clone: what a newcomer gets from the package index.

The wheel is built from this checkout once (through its sdist, as a release is), then installed, with the extra that README.md's quick
start names, into a fresh virtualenv per Python version (3.11, 3.12, 3.13; a version this machine
lacks is skipped). In each: `hermes-jupyter-demos DEST` copies the demos, and the quickstart from
that copy runs headless with `jupyter nbconvert --execute` (nbclient) on the scripted model. The
newest of those Pythons also runs every demo from the copy under strict nbval, as in the repository.

Nothing of this checkout leaks in: no PYTHONPATH, a fresh HERMES_HOME, Jupyter and IPython folders.
The virtualenvs are made with uv (seconds each, its download cache shared by versions and runs;
pip takes ~40 s a version).
"""
from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from .test_notebooks import NOTEBOOKS, ROOT, check

pytestmark = pytest.mark.install

VERSIONS = ("3.11", "3.12", "3.13")


def find_python(version: str) -> str | None:
    """An interpreter of that version: on PATH, else a pyenv install (its shims may not point at it)."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = [shutil.which(f"python{version}"),
                  *sorted(str(p) for p in pyenv.glob(f"versions/{version}.*/bin/python{version}"))]
    for candidate in filter(None, candidates):
        run = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True)
        if run.returncode == 0 and run.stdout.strip() == version:
            return candidate
    return None


def first_screen() -> str:
    return "\n".join((ROOT / "README.md").read_text().splitlines()[:60])


def quick_start_extra() -> str:
    """The extra of the README's `pip install "hermes-jupyter[...]"` in its quick start (its first screen)."""
    found = re.search(r'pip install "hermes-jupyter\[(\w+)\]"', first_screen())
    assert found, "the README's quick start does not say pip install \"hermes-jupyter[EXTRA]\""
    return found.group(1)


def uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def run(args: list, cwd: Path, env: dict[str, str], timeout: float = 280) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args[:3]} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # A copy of the sources: the build writes build/ and *.egg-info beside them.
    src = out / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "artifacts", "build", "*.egg-info", "__pycache__", ".*_cache", "*.hermes.json",
        "*.hermes-recording.yaml", "scratch", "06-tmp", ".hermes-jupyter"))
    # As a release is built (python -m build): the sdist, then the wheel from the sdist, so what MANIFEST.in
    # leaves out of the sdist is missing from the wheel too.
    run([uv(), "build", "--out-dir", out, src], cwd=out, env=dict(os.environ))
    (built,) = out.glob("hermes_jupyter-*.whl")
    return built


class Installed:
    """A fresh virtualenv with the wheel and the quick start's extra, and a clean environment to run in."""

    def __init__(self, python: str, wheel: Path, folder: Path):
        self.folder = folder
        self.venv = folder / "venv"
        self.bin = self.venv / "bin"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HERMES_", "JUPYTER", "IPYTHON", "PYTHON", "VIRTUAL_ENV", "JPY_"))}
        for name in ("hermes-home", "jupyter-data", "jupyter-config", "ipython"):
            (folder / name).mkdir()
        env.update(HERMES_HOME=str(folder / "hermes-home"), JUPYTER_DATA_DIR=str(folder / "jupyter-data"),
                   JUPYTER_CONFIG_DIR=str(folder / "jupyter-config"), IPYTHONDIR=str(folder / "ipython"),
                   PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}", UV_PYTHON_DOWNLOADS="never")
        self.env = env
        run([uv(), "venv", "--quiet", "--python", python, self.venv], cwd=folder, env=env)
        self.pip_install(f"{wheel}[{quick_start_extra()}]")

    def pip_install(self, *requirements: str) -> None:
        run([uv(), "pip", "install", "--quiet", "--python", self.bin / "python", *requirements],
            cwd=self.folder, env=self.env)


@pytest.fixture(scope="session")
def installed(wheel, tmp_path_factory):
    made: dict[str, Installed] = {}

    def get(version: str) -> Installed:
        if version not in made:
            python = find_python(version)
            if python is None:
                pytest.skip(f"no python{version} on this machine")
            made[version] = Installed(python, wheel, tmp_path_factory.mktemp(f"py{version}"))
        return made[version]

    return get


@pytest.mark.parametrize("version", VERSIONS)
def test_the_quickstart_runs_headless_from_a_pip_install(version, installed):
    env = installed(version)
    demos = env.folder / "demos"
    said = run([env.bin / "hermes-jupyter-demos", demos], cwd=env.folder, env=env.env)
    assert "copied 7 notebooks" in said.stdout
    shipped = sorted(str(p.relative_to(demos)) for p in demos.rglob("*") if p.is_file())
    assert "scripts/01-quickstart.yaml" in shipped and "01-quickstart.ipynb" in shipped
    _, differ, missing = filecmp.cmpfiles(NOTEBOOKS, demos, shipped, shallow=False)
    assert not differ and not missing, f"the wheel's demos are not the repository's: {differ or missing}"

    # The quick start's headless command, on the copy (a bound on each cell added): the executed notebook
    # and the history go beside it.
    headless = re.search(r"`(jupyter nbconvert --to notebook --execute [^`]+)`", first_screen()).group(1).split()
    assert headless[-1] == "hermes-demos/01-quickstart.ipynb"
    run([env.bin / headless[0], *headless[1:-1], "--ExecutePreprocessor.timeout=120", demos / "01-quickstart.ipynb"],
        cwd=env.folder, env=env.env)
    check("01-quickstart", nbformat.read(demos / "01-quickstart.nbconvert.ipynb", as_version=4))
    assert (demos / "01-quickstart.hermes.json").exists()


def test_the_demos_command_never_overwrites_silently(installed):
    env = installed(next((v for v in reversed(VERSIONS) if find_python(v)), VERSIONS[-1]))
    demos = env.folder / "mine"
    run([env.bin / "python", "-m", "hermes_jupyter.demos", demos], cwd=env.folder, env=env.env)
    edited = demos / "01-quickstart.ipynb"
    edited.write_text("my own changes")
    again = subprocess.run([env.bin / "hermes-jupyter-demos", demos], cwd=env.folder, env=env.env,
                           capture_output=True, text=True)
    assert again.returncode == 1
    assert "already holds 01-quickstart.ipynb" in again.stderr and "--force" in again.stderr
    assert edited.read_text() == "my own changes"
    run([env.bin / "hermes-jupyter-demos", "--force", demos], cwd=env.folder, env=env.env)
    assert edited.read_bytes() == (NOTEBOOKS / "01-quickstart.ipynb").read_bytes()


def test_every_demo_passes_strict_nbval_from_a_pip_install(installed):
    """The newest Python here: the copy's notebooks, under nbval as notebooks/README.md runs them."""
    env = installed(next((v for v in reversed(VERSIONS) if find_python(v)), VERSIONS[-1]))
    demos = env.folder / "nbval-demos"
    run([env.bin / "hermes-jupyter-demos", demos], cwd=env.folder, env=env.env)
    env.pip_install("nbval", "pandas", "matplotlib")  # the test runner, and what 03-data-science uses
    done = run([env.bin / "python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval", "--nbval-current-env",
                "--nbval-sanitize-with", "nbval-sanitize.cfg", "."], cwd=demos, env=env.env, timeout=290)
    summary = done.stdout.strip().splitlines()[-1]
    assert "failed" not in summary and "error" not in summary and " passed" in summary, summary
    for notebook in sorted(demos.glob("0*.ipynb")):
        assert notebook.with_suffix(".hermes.json").exists(), f"{notebook.name}: no history beside it"
