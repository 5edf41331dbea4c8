"""The wheel carries the demo notebooks: notebooks/ (their one copy, in the repository) goes into
hermes_jupyter/demos/files when the package is built, for ``hermes-jupyter-demos DEST``.

Everything else about the package is in pyproject.toml.
"""
import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _demos_module():
    # That file alone (standard library only): importing the package would need its dependencies.
    spec = importlib.util.spec_from_file_location("_hermes_jupyter_demos", HERE / "hermes_jupyter" / "demos" / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithDemos(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads notebooks/ in place
        demos = _demos_module()
        target = Path(self.build_lib) / "hermes_jupyter" / "demos" / "files"
        for name in demos.demo_files(HERE / "notebooks"):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / "notebooks" / name, target / name)


setup(cmdclass={"build_py": BuildPyWithDemos})
