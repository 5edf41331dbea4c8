"""Every configuration fault a newcomer meets is a configuration card with the one thing to do.

A corpus of misconfigurations, each run as a cell of an in-process IPython shell (the kernel does not
matter here: the configuration is resolved on the turn's thread either way) through the real
settings, hermes' own provider resolution and, where it gets that far, the real AIAgent construction.
Each is checked for the error's kind, the hint's one action, and no traceback or "bug" in the output.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest

from .conftest import hermes_config

DEAD_URL = "http://127.0.0.1:9/v1"  # nothing listens: a request that went out would fail as 'network'


@dataclass(frozen=True)
class Misconfig:
    name: str
    cell: str  # after %hermes --wait --plain
    kind: str  # the error card's kind ('usage': the magic refuses the cell before anything runs)
    action: str  # what the hint (or the usage error) must say to do
    env: dict[str, str] = field(default_factory=dict)
    settings: tuple[str, ...] = ()  # %config lines of the notebook
    config_yaml: str = ""


CORPUS = [
    Misconfig("openrouter-without-key", "--provider openrouter -m anthropic/claude-sonnet-4 Hello!", "config",
              "Set OPENROUTER_API_KEY"),
    Misconfig("openrouter-in-config-yaml-without-key", "Hello!", "config", "Set OPENROUTER_API_KEY",
              config_yaml="model:\n  default: anthropic/claude-sonnet-4\n  provider: openrouter\n"),
    Misconfig("deepseek-without-key", "--provider deepseek -m deepseek-chat Hello!", "config", "Set DEEPSEEK_API_KEY"),
    Misconfig("anthropic-without-key", "--provider anthropic -m claude-sonnet-4 Hello!", "config",
              "Set ANTHROPIC_API_KEY"),
    Misconfig("unknown-provider", "--provider openroutr -m gpt-4o Hello!", "config",
              "Use a provider Hermes knows (--provider NAME)"),
    Misconfig("nothing-configured", "Hello!", "config", "%config Hermes.model = 'scripted:demo'"),
    Misconfig("model-no-provider-serves", "-m nosuch-model Hello!", "config", "%config Hermes.model = 'scripted:demo'"),
    Misconfig("base-url-without-model", f"--base-url {DEAD_URL} Hello!", "config", "add --model NAME"),
    Misconfig("base-url-not-a-url", "--base-url localhost:8000 -m llama Hello!", "config",
              "e.g. http://localhost:8000/v1"),
    Misconfig("api-key-env-unset", f"--base-url {DEAD_URL} -m llama --api-key-env HJ_TEST_NO_SUCH_KEY Hello!",
              "config", "Set HJ_TEST_NO_SUCH_KEY"),
    Misconfig("api-key-env-from-the-environment-unset", f"--base-url {DEAD_URL} -m llama Hello!", "config",
              "unset HERMES_JUPYTER_API_KEY_ENV", env={"HERMES_JUPYTER_API_KEY_ENV": "HJ_TEST_NO_SUCH_KEY"}),
    Misconfig("scripted-model-and-base-url-in-one-cell", f"--base-url {DEAD_URL} -m scripted:demo Hello!",
              "config", "leave out --base-url"),
    Misconfig("notebook-base-url-over-a-scripted-model-from-the-environment", "Hello!", "config",
              "run `%config Hermes.base_url = None`", env={"HERMES_JUPYTER_MODEL": "scripted:demo"},
              settings=(f"Hermes.base_url = '{DEAD_URL}'",)),
    Misconfig("approvals-from-the-environment-unknown", "-m scripted:demo Hello!", "config",
              "Set HERMES_JUPYTER_APPROVALS to one of ask, deny, allow, smart",
              env={"HERMES_JUPYTER_APPROVALS": "sometimes"}),
    Misconfig("unknown-toolset", "--toolsets terminal,notebok -m scripted:demo Hello!", "config",
              "Use only known toolsets"),
    Misconfig("unknown-personality", "--personality pirat -m scripted:demo Hello!", "config",
              "Pick one of the known personalities"),
    Misconfig("script-file-missing", "-m scripted:no-such-script.yaml Hello!", "usage",
              "'scripted:demo' is the built-in one"),
]


@pytest.fixture
def shell(tmp_path, monkeypatch):
    """IPython in process, the notebook named, no warm-up; no Hermes model or key from anywhere."""
    from IPython.core.interactiveshell import InteractiveShell

    for name in ("HERMES_JUPYTER_MODEL", "HERMES_JUPYTER_BASE_URL", "HERMES_JUPYTER_PROVIDER",
                 "HERMES_JUPYTER_API_KEY_ENV", "HERMES_JUPYTER_APPROVALS", "HJ_TEST_NO_SUCH_KEY",
                 "DEEPSEEK_API_KEY", "ANTHROPIC_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    shell.run_line_magic("config", "Hermes.notebook = 'faults.ipynb'")
    shell.run_line_magic("config", "Hermes.warmup = False")
    shell.run_line_magic("load_ext", "hermes_jupyter")
    yield shell
    shell.run_line_magic("unload_ext", "hermes_jupyter")
    shell.config.pop("Hermes", None)


def run_cell(shell, line: str) -> object:
    """Run `%hermes --wait --plain LINE` as a cell does: the turn, or the usage error that refused it."""
    from IPython.core.error import UsageError

    try:
        shell.run_line_magic("hermes", f"--wait --plain {line}")
    except UsageError as exc:
        return exc
    return shell.user_ns["_hermes"]


@pytest.mark.parametrize("fault", CORPUS, ids=[f.name for f in CORPUS])
def test_a_misconfiguration_is_a_card_with_the_one_thing_to_do(shell, fault, monkeypatch, capsys, caplog):
    for name, value in fault.env.items():
        monkeypatch.setenv(name, value)
    for line in fault.settings:
        shell.run_line_magic("config", line)
    caplog.set_level(logging.WARNING, logger="hermes_jupyter")
    with hermes_config(fault.config_yaml):
        outcome = run_cell(shell, fault.cell)
    shown = capsys.readouterr()
    output = shown.out + shown.err
    if fault.kind == "usage":
        assert fault.action in str(outcome), outcome
    else:
        turn = outcome
        error = turn.error  # type: ignore[attr-defined]
        assert turn.status == "failed" and error is not None, output  # type: ignore[attr-defined]
        assert error.error_kind == fault.kind, error
        assert fault.action in error.hint, error.hint
        assert f"[error: {fault.kind}] " in output and f"hint: {error.hint[:40]}" in output
        assert turn.session.messages[-1] == {"role": "user", "content": "Hello!"}  # the prompt is kept
    assert "Traceback" not in output and "report it" not in output and "looks like a bug" not in output
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


# ----- settings that conflict: the more specific one wins ------------------------------------------
@pytest.mark.parametrize("notebook", ["%config", "flag"])
def test_the_notebook_scripted_model_wins_over_an_endpoint_in_the_environment(shell, monkeypatch, capsys, notebook):
    """With HERMES_JUPYTER_BASE_URL and HERMES_JUPYTER_MODEL set (a documented way to configure), every demo
    failed with "the scripted model ... serves itself, so --base-url is not used", though nobody typed it."""
    monkeypatch.setenv("HERMES_JUPYTER_BASE_URL", DEAD_URL)
    monkeypatch.setenv("HERMES_JUPYTER_MODEL", "gpt-4o")
    if notebook == "%config":
        shell.run_line_magic("config", "Hermes.model = 'scripted:demo'")
        turn = run_cell(shell, "Hello!")
    else:
        turn = run_cell(shell, "-m scripted:demo Hello!")
    assert turn.status == "done", capsys.readouterr().out  # type: ignore[attr-defined]
    assert "scripted demo model" in turn.text  # type: ignore[attr-defined]


def test_a_provider_in_the_cell_wins_over_an_endpoint_in_the_environment(shell, monkeypatch):
    from hermes_jupyter.agent.settings import RunOptions, resolve

    monkeypatch.setenv("HERMES_JUPYTER_BASE_URL", DEAD_URL)
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test-not-a-real-key")
    from hermes_jupyter.agent.settings import Hermes

    config = resolve(RunOptions(provider="openrouter", model="anthropic/claude-sonnet-4"), Hermes())
    assert (config.provider, config.base_url) == ("openrouter", "https://openrouter.ai/api/v1")
    assert config.describe()["api_key"] == "from OPENROUTER_API_KEY"
    # The same endpoint set in the notebook itself is as specific as a provider there: the URL is used.
    notebook = Hermes()
    notebook.base_url = DEAD_URL
    assert resolve(RunOptions(model="llama"), notebook).base_url == DEAD_URL


# ----- /config says where the key comes from -------------------------------------------------------
@pytest.mark.parametrize(("flags", "env", "says"), [
    ({"model": "scripted:demo"}, {}, "none needed (the model runs in the kernel)"),
    ({"model": "llama", "base_url": DEAD_URL}, {}, "none sent"),
    ({"model": "llama", "base_url": DEAD_URL, "api_key_env": "HJ_TEST_KEY"}, {"HJ_TEST_KEY": "k"},
     "from HJ_TEST_KEY (--api-key-env)"),
    ({"model": "gpt-4o", "base_url": "https://api.openai.com/v1"}, {"OPENAI_API_KEY": "sk-test"}, "from OPENAI_API_KEY"),
])
def test_config_says_where_the_key_comes_from(monkeypatch, flags, env, says):
    """/config said "api_key set" with no key configured (the scripted model's stand-in was taken for one)."""
    from hermes_jupyter.agent.settings import Hermes, RunOptions, resolve

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert resolve(RunOptions(**flags), Hermes()).describe()["api_key"].startswith(says)


def test_a_warm_up_that_never_started_is_not_waited_for():
    """With `Hermes.warmup = False`, %unload_ext waited 30 s for a warm-up that never ran."""
    from hermes_jupyter.agent.warmup import Warmup

    assert Warmup(then=lambda: None).join(0)


def test_the_agent_refusing_to_start_is_a_configuration_card_too():
    """What the settings cannot foresee, the real AIAgent says while it is built ("No LLM provider
    configured", a RuntimeError with a traceback in the cell): it becomes a configuration error."""
    from hermes_jupyter.agent import hosting
    from hermes_jupyter.agent.failures import CONFIGURE_HINT, agent_config_error, classify
    from hermes_jupyter.agent.settings import RunConfig

    hosting.ensure_installed()
    config = RunConfig(model="m", provider="custom", base_url="https://llm.example/v1", api_mode="chat_completions",
                       api_key="", toolsets=("todo",), approvals="ask", approval_timeout=60, clarify_timeout=60)
    with pytest.raises(RuntimeError) as raised:
        hosting.build_agent(config, session_id="s", callbacks={}, ephemeral_system_prompt="")
    error = agent_config_error(raised.value)
    assert error is not None
    failure = classify(error)
    assert failure.kind == "config" and failure.hint == CONFIGURE_HINT and "hermes model" in failure.message
    # hermes' own wording when a provider named in config.yaml has no key: the variable is the action
    named = agent_config_error(RuntimeError("Provider 'zai' is set in config.yaml but no API key was found. Set the "
                                            "GLM_API_KEY environment variable, or switch to a different provider."))
    assert named is not None and named.hint.startswith("Set GLM_API_KEY for this kernel")
    assert agent_config_error(RuntimeError("something else")) is None
