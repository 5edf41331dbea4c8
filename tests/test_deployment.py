"""What a JupyterHub admin sets for everyone (README, "Remote kernels and JupyterHub"): defaults in a
system-wide ipython_config.py, honoured by every user's kernel, and still overridable by the user.

The system-wide file is a real one: `{sys.prefix}/etc/ipython/ipython_config.py` of a throwaway
environment (its own sys.prefix, borrowing this one's packages), so this environment stays untouched.
"""
from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

from hermes_jupyter.history.paths import HISTORY_SUFFIX

from .conftest import hermes_home
from .kernel import Kernel

SCRIPT = Path(__file__).parent / "scripts" / "engine.yaml"
ADMIN_CONFIG = """\
# What an admin puts in the single-user image: defaults for every user's kernel.
c.InteractiveShellApp.extensions = ['hermes_jupyter']  # loaded in every kernel, before any cell
c.Hermes.approvals = 'deny'
c.Hermes.sync_insights = False
c.Hermes.first_byte_timeout = 120
c.Hermes.stall_timeout = 30
c.Hermes.approval_timeout = 30
c.Hermes.history_dir = '$HERMES_HOME/notebook-history'
"""
USER_CONFIG = "c.Hermes.approval_timeout = 15  # the user's own profile wins over the admin's default\n"


def image(tmp_path: Path, monkeypatch) -> Path:
    """A throwaway environment with its own sys.prefix, whose python3 kernel is the one Kernel() starts."""
    prefix = tmp_path / "image"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    site_packages = next(prefix.glob("lib/python3*/site-packages"))
    (site_packages / "borrow.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    spec = tmp_path / "share" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(prefix / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (image)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share"))  # searched before this environment's kernels
    return prefix


def test_a_system_wide_ipython_config_sets_every_kernels_defaults(tmp_path, monkeypatch):
    prefix = image(tmp_path, monkeypatch)
    system = prefix / "etc" / "ipython"
    system.mkdir(parents=True)
    (system / "ipython_config.py").write_text(ADMIN_CONFIG)
    profile = tmp_path / "user-ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_config.py").write_text(USER_CONFIG)
    work = tmp_path / "work"
    work.mkdir()
    (work / "victim").mkdir()

    k = Kernel(work, env={"IPYTHONDIR": str(tmp_path / "user-ipython"), "HERMES_JUPYTER_HISTORY_DIR": ""})
    try:
        prefix_seen = k.run("import sys; print(sys.prefix)").stdout.strip()
        assert prefix_seen == str(prefix)
        first = k.run(f"%config Hermes.model = 'scripted:{SCRIPT}'\n%config Hermes.plain = True")
        assert first.stdout == ""
        # Loaded before any cell ran, so the first %hermes cell says where the history goes.
        config = k.run("%hermes /config").stdout
        history_dir = hermes_home() / "notebook-history"
        assert len([line for line in config.splitlines() if "cannot tell which notebook" in line]) == 1, config
        assert f"kept in {history_dir}/unnamed-" in config and "(Hermes.history_dir)" in config
        for line in ("approvals         deny", "sync_insights     False",
                     "patience          first byte 120 s, stall 30 s",
                     "approval_timeout  15.0"):  # the user's profile over the admin's 30
            assert line in config, config
        denied = k.run("%hermes --wait delete victim", timeout=120)
        assert "denied" in denied.stdout.lower(), denied.stdout
        assert "cannot tell" not in denied.stdout  # said once
        assert (work / "victim").exists()  # the admin's 'deny' held: nobody was asked, nothing ran
    finally:
        k.close()
    assert [p.name.endswith(HISTORY_SUFFIX) for p in history_dir.iterdir()] == [True]  # the one unnamed history


def test_the_documented_system_wide_folders_are_where_ipython_looks():
    from IPython.core.application import ENV_CONFIG_DIRS, SYSTEM_CONFIG_DIRS
    assert str(Path(sys.prefix) / "etc" / "ipython") in ENV_CONFIG_DIRS
    assert "/etc/ipython" in SYSTEM_CONFIG_DIRS and "/usr/local/etc/ipython" in SYSTEM_CONFIG_DIRS
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "/etc/ipython/ipython_config.py" in readme and "{sys.prefix}/etc/ipython/" in readme
