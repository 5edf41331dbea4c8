"""README.md against what the package does: the quick start, the developers' commands, the options.

Milliseconds to a second: the README is parsed; the configuration it shows is read by hermes-agent
itself in a subprocess with a HERMES_HOME of its own.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from hermes_jupyter.demos import PATTERNS, demo_files
from hermes_jupyter.magic import HermesMagics
from hermes_jupyter.util.private_api import option_takes_value

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
FIRST_SCREEN = "\n".join(README.splitlines()[:60])
SETUP_AND_MAIN_JOB = ("bash .ci/setup && .venv/bin/jupyter nbconvert --to notebook --execute --output-dir artifacts "
                      "notebooks/01-quickstart.ipynb")
TESTS = ".venv/bin/python -m pytest"


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_the_first_screen_is_a_pip_users_quick_start_then_the_developers_two_commands():
    quick_start, developers = FIRST_SCREEN.index("## Quick start"), FIRST_SCREEN.index("## Developers")
    assert quick_start < developers
    user = FIRST_SCREEN[quick_start:developers]
    for step in ('pip install "hermes-jupyter[lab]"', "hermes-jupyter-demos", "%load_ext hermes_jupyter",
                 "%config Hermes.model = 'scripted:demo'", "~/.hermes/config.yaml", "OPENROUTER_API_KEY"):
        assert step in user, f"the quick start does not show {step!r}"
    [commands] = [block for block in fenced(FIRST_SCREEN[developers:], "bash") if TESTS in block]
    assert commands.splitlines() == [SETUP_AND_MAIN_JOB, TESTS]


def test_ci_runs_the_set_up_then_the_readmes_test_command():
    steps = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))]
    assert steps == [".ci/setup", TESTS]


def test_the_quick_starts_configuration_is_what_hermes_reads(tmp_path):
    """The config.yaml and .env lines of the quick start, in a HERMES_HOME of their own: hermes-agent
    loads .env when it is imported (as in the kernel), then the extension resolves the model from them."""
    [config] = fenced(FIRST_SCREEN, "yaml")
    assert yaml.safe_load(config) == {"model": {"default": "anthropic/claude-sonnet-4", "provider": "openrouter"}}
    (tmp_path / "config.yaml").write_text(config)
    key_line = re.search(r"`(OPENROUTER_API_KEY=[^`]+)`", FIRST_SCREEN).group(1)
    name, _, _ = key_line.partition("=")
    (tmp_path / ".env").write_text(f"{name}=sk-or-v1-{'0' * 32}\n")  # the README's value is elided
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERMES_", "OPENROUTER_", "OPENAI_"))}
    code = ("import run_agent\n"  # loads $HERMES_HOME/.env, as the extension's first turn does
            "from hermes_jupyter.agent.settings import Hermes, resolve\n"
            "c = resolve({}, Hermes())\n"
            "print(c.model, c.provider, c.base_url, bool(c.api_key and c.api_key != 'none'))")
    done = subprocess.run([sys.executable, "-c", code], env={**env, "HERMES_HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["anthropic/claude-sonnet-4", "openrouter", "https://openrouter.ai/api/v1", "True"]


def readme_options() -> set[str]:
    """Every option in the first column of the README's option table (under "The magic")."""
    table = README[README.index("| option | meaning |"):]
    table = table[:table.index("\n\n")]
    firsts = [row.replace("\\|", "/").split("|")[1] for row in table.splitlines()[2:]]
    return {opt for first in firsts for opt in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", first)}


def magic_options() -> set[str]:
    """The options of `%hermes?`: the magic's argparse parser."""
    return set(option_takes_value(HermesMagics.hermes.parser)) - {"-h", "--help"}


def test_the_readmes_option_table_is_the_magics_options():
    documented, real = readme_options(), magic_options()
    assert documented - real == set(), "in the README's table but not an option of %hermes"
    assert real - documented == set(), "an option of %hermes the README's table leaves out"
    help_text = HermesMagics.hermes.__doc__
    assert all(opt in help_text for opt in real)  # %hermes? shows the same parser


def test_the_readmes_api_key_env_default_is_the_codes():
    """No key unless named; OPENAI_API_KEY only for api.openai.com (agent/settings.py), in every place that says it."""
    row = next(line for line in README.splitlines() if line.startswith("| `--api-key-env VAR`"))
    assert "Without it an endpoint gets no key" in row and "`OPENAI_API_KEY` goes only to api.openai.com" in row
    demo = (ROOT / "notebooks" / "05-your-own-model.ipynb").read_text()
    assert "default `OPENAI_API_KEY`" not in demo and "the endpoint gets no key" in demo


def test_the_sdist_carries_what_the_wheel_ships():
    """MANIFEST.in names the demo files setup.py copies into the wheel (the demos module's PATTERNS)."""
    manifest = (ROOT / "MANIFEST.in").read_text().split()
    included = {word.removeprefix("notebooks/") for word in manifest if word.startswith("notebooks/")}
    assert included == set(PATTERNS)
    assert len([f for f in demo_files(ROOT / "notebooks") if f.suffix == ".ipynb"]) == 7


def test_the_readmes_kernel_start_config_loads_the_extension_before_the_first_cell(tmp_path):
    """The ipython_config.py lines of "Warm-up: load it at kernel start", in a profile of their own: the kernel
    starts with %hermes (on the scripted model they set), and a notebook's own %load_ext only says so."""
    from .kernel import Kernel

    section = README[README.index("### Warm-up: load it at kernel start"):]
    [config] = fenced(section[:section.index("\n## ")], "python")
    assert 'c.InteractiveShellApp.extensions = ["hermes_jupyter"]' in config
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_config.py").write_text(config + "c.Hermes.plain = True\n")
    kernel = Kernel(tmp_path, {"IPYTHONDIR": str(tmp_path / "ipython")})
    try:
        turn = kernel.run("%hermes --wait hello")  # no %load_ext in this notebook
        assert turn.reply["status"] == "ok", turn.error
        assert "scripted" in turn.stdout and "-- done" in turn.stdout, turn.stdout
        assert "already loaded" in kernel.run("%load_ext hermes_jupyter").stdout
    finally:
        kernel.close()
