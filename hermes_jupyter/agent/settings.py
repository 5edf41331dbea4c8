"""Configuration: every option is a documented traitlet of ``Hermes``.

Most specific first: flags of the magic, then kernel-wide settings made with
``%config Hermes.<name> = value`` (or ipython_config.py), then environment
variables ``HERMES_JUPYTER_<NAME>``, then the user's Hermes configuration
under HERMES_HOME (``config.yaml``: model, provider, base_url, api_key,
approvals, fallback_model, ...).
"""
from __future__ import annotations

import ast
import functools
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlsplit

from traitlets import Bool, CFloat, Enum, Unicode
from traitlets.config import Configurable

from hermes_jupyter.agent.failures import CONFIGURE_HINT, ConfigError, hermes_cli, hermes_config_file, key_hint
from hermes_jupyter.util.text import env_flag, one_line

APPROVAL_POLICIES = ("ask", "deny", "allow", "smart")
# Patience with a silent model (agent/patience.py): hermes' own limits are 15 to 75 minutes.
FIRST_BYTE_TIMEOUT = 180.0  # hermes' per-attempt wait on a cloud endpoint: slow starters still fit
STALL_TIMEOUT = 60.0
DEFAULT_TOOLSETS = "terminal,file,clarify,todo,notebook"  # notebook: kernel_tools.py
NO_MCP = "no_mcp"  # Hermes' sentinel in a toolset list: no MCP servers at all


class Hermes(Configurable):
    """Kernel-wide settings of the %hermes magic. Set with ``%config Hermes.<name> = value``."""

    model = Unicode(None, allow_none=True, config=True, help=(
        "Model to use. 'scripted:demo' or 'scripted:PATH' runs the built-in scripted model "
        "(no key, no network); 'replay:PATH' replays a recording (see record); any other name "
        "is passed to the provider. "
        "Default: model.default from ~/.hermes/config.yaml."))
    provider = Unicode(None, allow_none=True, config=True, help=(
        "Hermes provider name (as in `hermes model`). Default: from the Hermes config."))
    base_url = Unicode(None, allow_none=True, config=True, help=(
        "Base URL of any OpenAI-compatible endpoint; overrides the Hermes provider."))
    api_key_env = Unicode(None, allow_none=True, config=True, help=(
        "Name of the environment variable that holds the key for base_url "
        "(keys never go on the command line). Unset: OPENAI_API_KEY for api.openai.com, no key for any "
        "other endpoint."))
    toolsets = Unicode(None, allow_none=True, config=True, help=(
        f"Comma-separated Hermes toolsets for notebook turns. Default: {DEFAULT_TOOLSETS}."))
    approvals = Enum(APPROVAL_POLICIES, None, allow_none=True, config=True, help=(
        "Who decides on dangerous commands. 'ask' (default): a human, with buttons or a "
        "prompt; unanswered requests are denied after approval_timeout. 'deny': deny all "
        "without asking. 'allow': allow each once without asking (opt-out, be careful). "
        "'smart': let Hermes' smart mode (the model itself) decide."))
    approval_timeout = CFloat(None, allow_none=True, config=True, help=(
        "Seconds before an unanswered approval is denied. Default: approvals.timeout "
        "from the Hermes config (60)."))
    personality = Unicode(None, allow_none=True, config=True, help=(
        "A Hermes personality (agent.personalities in ~/.hermes/config.yaml, or a built-in one "
        "such as 'concise' or 'teacher') for every session; --personality sets it per session."))
    clarify_timeout = CFloat(None, allow_none=True, config=True, help=(
        "Seconds before an unanswered clarify question is given up. Default: "
        "agent.clarify_timeout from the Hermes config (3600)."))
    notebook = Unicode(None, allow_none=True, config=True, help=(
        "Path of this notebook, when the kernel cannot find it (nbclient, papermill, a kernel behind "
        "a gateway; also HERMES_JUPYTER_NOTEBOOK). It sets the agent's working folder and where the "
        "history is stored; set after %load_ext, it moves this kernel's history beside the notebook "
        "and resumes what that file holds. Without it such a kernel starts a fresh conversation."))
    history_dir = Unicode(None, allow_none=True, config=True, help=(
        "Folder for the history and recordings of notebooks this kernel cannot keep them beside: an "
        "unknown notebook, or one whose folder is not on the kernel's machine (a kernel behind a gateway). "
        "Default: .hermes-jupyter in the kernel's working folder; also HERMES_JUPYTER_HISTORY_DIR. "
        "~ and $VARS are expanded on the kernel's machine (e.g. '~/hermes-history'). Set before %load_ext."))
    plain = Bool(None, allow_none=True, config=True, help=(
        "Render turns as plain text instead of widgets (default in terminal IPython)."))
    wait = Bool(None, allow_none=True, config=True, help=(
        "Block the cell until the turn ends (default in terminal IPython). Use for "
        "headless runs and Run All."))
    record = Bool(None, allow_none=True, config=True, help=(
        "Record every model call and its reply (secrets redacted) into a file beside the "
        "notebook, NAME.hermes-recording.yaml (or record_to), to replay it later offline with "
        "model = 'replay:PATH'. OpenAI chat-completions providers and endpoints only."))
    record_to = Unicode(None, allow_none=True, config=True, help=(
        "File to record into; setting it turns recording on (record = False turns it off)."))
    sync_insights = Bool(None, allow_none=True, config=True, help=(
        "Record each turn's token usage in Hermes' own state database (HERMES_HOME/state.db, "
        "source 'jupyter'), so `hermes insights` counts notebook work. Off by default."))
    first_byte_timeout = CFloat(None, allow_none=True, config=True, help=(
        "Seconds to wait for the first byte of a model's reply (reasoning counts) before the turn "
        f"fails with 'no reply'; 0 leaves it to Hermes (15 to 75 minutes). Default: {FIRST_BYTE_TIMEOUT:g}. "
        "From 20 s on, the turn says how long it has waited."))
    stall_timeout = CFloat(None, allow_none=True, config=True, help=(
        "Seconds a reply may pause between chunks once it has started before the turn fails with "
        f"'stalled' (the partial answer is kept); 0 leaves it to Hermes. Default: {STALL_TIMEOUT:g}."))
    warmup = Bool(True, config=True, help=(
        "Pay hermes-agent's one-time cost (imports, the environment probe) on a background thread "
        "right after %load_ext, so the first answer comes about as fast as later ones. Set before "
        "%load_ext (e.g. in ipython_config.py) to turn it off."))
    release_memory = Bool(True, config=True, help=(
        "When a turn has ended, hand the memory it freed back to the operating system (glibc's "
        "malloc_trim, about a millisecond on the turn's own thread). Without it the kernel's RSS grows "
        "by a few hundred KiB a turn that the kernel no longer uses. No effect off Linux."))
    replay_timing = Enum(("recorded", "fast"), None, allow_none=True, config=True, help=(
        "How a 'replay:PATH' model streams: 'recorded' (default) pauses as the real model did, "
        "'fast' sends everything at once."))


ENV_PREFIX = "HERMES_JUPYTER_"


class Common(TypedDict):
    """What every turn's configuration has, wherever its model comes from."""
    toolsets: tuple[str, ...]
    approvals: str
    approval_timeout: float
    clarify_timeout: float
    personality: str | None
    personality_prompt: str | None
    sync_insights: bool
    first_byte_timeout: float
    stall_timeout: float


@dataclass(frozen=True)
class RunOptions:
    """One turn's options, from the magic's flags or Engine.submit's keywords. None: the settings decide."""

    model: str | None = None
    provider: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    toolsets: str | None = None
    personality: str | None = None
    approvals: str | None = None
    approval_timeout: float | None = None
    clarify_timeout: float | None = None
    record: bool | None = None
    record_to: str | None = None
    replay_timing: str | None = None
    record_default: str | None = None  # where --record writes without --record-to: only the magic knows
    context: str = ""  # summaries of the variables given with --vars, added to the prompt
    attachments: tuple[str, ...] = ()  # files given with --attach, relative to the notebook's folder

    def __post_init__(self) -> None:
        object.__setattr__(self, "attachments", tuple(self.attachments))  # a list given stays frozen too


@dataclass(frozen=True)
class RunConfig:
    """What one turn runs with, fully resolved. ``api_key`` never appears in repr."""

    model: str
    provider: str
    base_url: str
    api_mode: str | None
    api_key: str = field(repr=False)
    toolsets: tuple[str, ...]
    approvals: str
    approval_timeout: float
    clarify_timeout: float
    fallback_model: dict | list | None = None  # Hermes' fallback chain (a list) or one entry
    personality: str | None = None
    personality_prompt: str | None = field(default=None, repr=False)
    sync_insights: bool = False
    source: str = ""  # where the model came from, for /config
    endpoint: str = ""  # the user's endpoint when base_url is the extension's own proxy
    recording: str = ""  # the file a recording turn writes
    local: bool = False  # served by the extension itself in the kernel (scripted model, replay)
    first_byte_timeout: float = FIRST_BYTE_TIMEOUT  # 0: Hermes' own limits
    stall_timeout: float = STALL_TIMEOUT
    key_source: str = ""  # where the key comes from (never the key), or why none is sent: for /config

    @property
    def display_url(self) -> str:
        """The endpoint to name to the user: theirs, never a loopback proxy of the extension."""
        return self.endpoint or self.base_url

    def describe(self) -> dict[str, Any]:
        return {
            # The extension's own servers (scripted, replay) listen on the kernel's loopback: a URL of
            # theirs shown in a cell would be a link to the wrong machine for a remote kernel.
            "model": self.model, "provider": self.provider,
            "base_url": "in the kernel (loopback)" if self.local else self.display_url,
            "api_key": self.key_source or ("sent" if self.api_key and self.api_key != "none" else "none sent"),
            "toolsets": ",".join(self.toolsets),
            "approvals": self.approvals, "approval_timeout": self.approval_timeout,
            "clarify_timeout": self.clarify_timeout, "source": self.source,
            "fallback": _fallback_names(self.fallback_model), "sync_insights": self.sync_insights,
            "patience": f"first byte {_seconds(self.first_byte_timeout)}, stall {_seconds(self.stall_timeout)}",
        }


def _seconds(limit: float) -> str:
    return f"{limit:g} s" if limit > 0 else "Hermes' own"


def _fallback_names(fallback: Any) -> str:
    entries = fallback if isinstance(fallback, list) else [fallback] if isinstance(fallback, dict) else []
    return ", ".join(f"{e.get('model')} ({e.get('provider')})" for e in entries) or "none"


# How specific each place of a setting is: the more specific one wins where two settings conflict.
_SPECIFICITY = {"flag": 3, "%config": 2, "env": 1, "": 0}


def where(name: str, source: str) -> str:
    """The place a setting came from, as the user would write it there."""
    if source == "flag":
        return "--" + name.replace("_", "-")
    if source == "%config":
        return f"%config Hermes.{name}"
    return ENV_PREFIX + name.upper() if source == "env" else name


def _clear(name: str, source: str) -> str:
    """How to remove a setting where it was made."""
    if source == "flag":
        return f"leave out --{name.replace('_', '-')}"
    if source == "%config":
        return f"run `%config Hermes.{name} = None`"
    return f"unset {ENV_PREFIX}{name.upper()} (then restart the kernel)"


def _pick(name: str, flags: RunOptions, settings: Hermes) -> tuple[Any, str]:
    value = getattr(flags, name, None)  # a setting with no flag (sync_insights...) is the settings' alone
    if value is not None:
        return value, "flag"
    value = getattr(settings, name)
    if value is not None:
        return value, "%config"
    value = os.environ.get(ENV_PREFIX + name.upper())
    if value:
        return value, "env"
    return None, ""


def hermes_config() -> dict[str, Any]:
    try:
        from hermes_cli.config import load_config
        cfg = load_config()
        return cfg if isinstance(cfg, dict) else {}
    except Exception:  # a broken config file must not stop a scripted run
        return {}


def mcp_servers_configured() -> dict[str, Any]:
    """``mcp_servers`` of the user's Hermes configuration, as written (cheap: no MCP import)."""
    servers = hermes_config().get("mcp_servers")
    return dict(servers) if isinstance(servers, dict) else {}


def _float(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def personalities() -> dict[str, Any]:
    """Hermes' built-in personalities, overlaid with the user's agent.personalities.

    hermes-agent merges config.yaml's ``agent`` section into its defaults one level deep, so a user
    who defines one personality loses every built-in one; the built-ins are merged back here.
    """
    try:
        from cli import load_cli_config
        found = (load_cli_config().get("agent") or {}).get("personalities") or {}
    except Exception:
        found = (hermes_config().get("agent") or {}).get("personalities") or {}
    return {**builtin_personalities(), **(dict(found) if isinstance(found, dict) else {})}


@functools.cache
def builtin_personalities() -> dict[str, Any]:
    """The personalities hermes-agent ships, read from its CLI defaults without running them
    (loading the CLI config with the user's file left out would mean changing the process env)."""
    try:
        import cli
        tree = ast.parse(Path(cli.__file__).read_text(encoding="utf-8"))
    except Exception:
        return {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "personalities":
                    try:
                        found = ast.literal_eval(value)
                    except ValueError:
                        return {}
                    return dict(found) if isinstance(found, dict) else {}
    return {}


def personality_prompt(name: str) -> str:
    """The system prompt of a personality, built the way the Hermes CLI builds it."""
    known = personalities()
    value = known.get(name) or known.get(str(name).lower())
    if value is None:
        raise ConfigError(f"unknown personality {name!r}; known: {', '.join(sorted(known)) or 'none'}",
                          "Pick one of the known personalities (--personality NAME), or define yours under "
                          f"agent.personalities in {hermes_config_file()}.")
    if isinstance(value, dict):
        parts = [value.get("system_prompt", "") or value.get("prompt", "")]
        parts += [f"{label}: {value[key]}" for key, label in (("tone", "Tone"), ("style", "Style")) if value.get(key)]
        return "\n".join(p for p in parts if p)
    return str(value)


def resolve(flags: RunOptions, settings: Hermes) -> RunConfig:
    """Resolve the configuration of one turn. Runs on the worker thread (imports Hermes)."""
    record, _ = _pick("record", flags, settings)
    record_to, _ = _pick("record_to", flags, settings)
    if isinstance(record, str):  # from the environment
        record = env_flag(record)
    if record is False or (not record and not record_to):
        return _resolve_model(flags, settings)
    if str(_pick("model", flags, settings)[0] or "").startswith("replay:"):
        raise ConfigError("a replay cannot be recorded: drop --record (or set Hermes.record = False)")
    # record_default: the file beside the notebook, which only the magic knows.
    path = record_to or flags.record_default
    if not path:
        raise ConfigError("--record needs to know where to write: name the notebook with "
                          "`%config Hermes.notebook = 'NAME.ipynb'`, or use --record-to PATH")
    return record_through_proxy(_resolve_model(flags, settings), path)


def record_through_proxy(config: RunConfig, path: Path | str) -> RunConfig:
    """The RunConfig that records `config`'s model calls into `path` through a loopback proxy."""
    from hermes_jupyter.models.record import recording_proxy
    from hermes_jupyter.models.recording import RecordingError

    path = Path(path).expanduser().resolve()
    if config.api_mode not in (None, "chat_completions"):
        raise ConfigError(
            f"--record supports only the OpenAI chat-completions protocol; provider "
            f"{config.provider or '?'!r} uses api_mode {config.api_mode!r}. Record with an "
            "OpenAI-compatible endpoint (--base-url URL --model NAME) or a provider that uses chat completions.")
    if not config.base_url:
        raise ConfigError(f"--record needs the model's base URL; provider {config.provider or '?'!r} has none")
    try:
        proxy = recording_proxy(config.base_url, path, config.api_key)
    except RecordingError as exc:
        raise ConfigError(str(exc)) from None
    # A fallback model would answer around the proxy, and the replay would miss those replies.
    # Errors name the user's endpoint (endpoint), never the proxy.
    return replace(config, base_url=proxy.base_url, endpoint=config.display_url, api_mode="chat_completions",
                   fallback_model=None, recording=str(path), source=f"{config.source}; recording to {path}")


def _replay(spec: str, *, fast: bool, source: str, common: Common) -> RunConfig:
    from hermes_jupyter.models.recording import RecordingError
    from hermes_jupyter.models.replay import replay_server

    if not spec.strip():
        raise ConfigError("replay needs a recording: --model replay:PATH")
    try:
        server = replay_server(spec.strip(), fast=fast)
    except RecordingError as exc:
        raise ConfigError(str(exc)) from None
    return RunConfig(model=server.model, provider="custom", base_url=server.base_url,
                     api_mode="chat_completions", api_key="replay", key_source=NO_KEY_IN_KERNEL,
                     source=f"{source}, {'fast' if fast else 'recorded timing'}", local=True, **common)


NO_KEY_IN_KERNEL = "none needed (the model runs in the kernel)"


def _check_served_in_kernel(model: str, model_src: str, flags: RunOptions, settings: Hermes) -> None:
    """A scripted model serves itself: a base URL beside it would be ignored. One made in a less specific
    place (the environment, under a notebook's own %config) gives way; one as specific as the model, or
    more, is a contradiction the user must resolve."""
    url, url_src = _pick("base_url", flags, settings)
    if not url or _SPECIFICITY[url_src] < _SPECIFICITY[model_src]:
        return
    raise ConfigError(
        f"the scripted model {model!r} ({where('model', model_src)}) serves itself, so {where('base_url', url_src)} "
        f"is not used ({str(url)!r})",
        f"For this model, {_clear('base_url', url_src)}; to use the endpoint instead, name its model "
        f"({where('model', url_src if url_src != 'env' else 'flag')} NAME).")


def _resolve_model(flags: RunOptions, settings: Hermes) -> RunConfig:
    cfg = hermes_config()
    model, model_src = _pick("model", flags, settings)
    toolsets, _ = _pick("toolsets", flags, settings)
    approvals, approvals_src = _pick("approvals", flags, settings)
    approval_timeout, _ = _pick("approval_timeout", flags, settings)
    clarify_timeout, _ = _pick("clarify_timeout", flags, settings)
    personality, _ = _pick("personality", flags, settings)
    sync_insights, _ = _pick("sync_insights", flags, settings)
    first_byte, _ = _pick("first_byte_timeout", flags, settings)
    stall, _ = _pick("stall_timeout", flags, settings)
    if isinstance(sync_insights, str):  # from the environment
        sync_insights = env_flag(sync_insights)
    if approvals is not None and approvals not in APPROVAL_POLICIES:
        raise ConfigError(f"approvals must be one of {', '.join(APPROVAL_POLICIES)}, not {approvals!r} "
                          f"({where('approvals', approvals_src)})",
                          f"Set {where('approvals', approvals_src)} to one of {', '.join(APPROVAL_POLICIES)} "
                          "('ask' is the default).")
    if toolsets:
        _check_toolsets([t.strip() for t in str(toolsets).split(",") if t.strip()])
    common = Common(
        toolsets=tuple(t.strip() for t in (toolsets or DEFAULT_TOOLSETS).split(",") if t.strip()),
        approvals=approvals or "ask",
        approval_timeout=_float(approval_timeout, _float((cfg.get("approvals") or {}).get("timeout"), 60.0)),
        clarify_timeout=_float(clarify_timeout, _float((cfg.get("agent") or {}).get("clarify_timeout"), 3600.0)),
        personality=personality or None,
        personality_prompt=personality_prompt(personality) if personality else None,
        sync_insights=bool(sync_insights),
        first_byte_timeout=max(0.0, _float(first_byte, FIRST_BYTE_TIMEOUT)),
        stall_timeout=max(0.0, _float(stall, STALL_TIMEOUT)),
    )

    # "scripted" or "scripted:PATH" only: a served script's own model id ("scripted-demo") is a
    # model name like any other, e.g. with --base-url pointing at `python -m hermes_jupyter.models.scripted`.
    if model and (str(model) == "scripted" or str(model).startswith("scripted:")):
        _check_served_in_kernel(str(model), model_src, flags, settings)
        from hermes_jupyter.models.scripted import ScriptError, shared_server
        _, _, path = str(model).partition(":")
        try:
            server = shared_server(path or "demo")
        except (ScriptError, OSError) as exc:
            raise ConfigError(f"cannot load the script {path or 'demo'!r}: {exc}",
                              "Check the script's path (relative to the kernel's working folder), or use the "
                              "built-in one: `--model scripted:demo`.") from exc
        return RunConfig(model=server.model, provider="custom", base_url=server.base_url,
                         api_mode="chat_completions", api_key="scripted", key_source=NO_KEY_IN_KERNEL,
                         source=f"scripted model ({model_src})", local=True, **common)

    if model and str(model).startswith("replay:"):  # beside the base URL it was recorded from: that stays set
        timing, _ = _pick("replay_timing", flags, settings)
        return _replay(str(model)[len("replay:"):], fast=timing == "fast",
                       source=f"replay of a recording ({model_src})", common=common)

    base_url, url_src = _pick("base_url", flags, settings)
    provider, provider_src = _pick("provider", flags, settings)
    if base_url and provider and _SPECIFICITY[provider_src] > _SPECIFICITY[url_src]:
        base_url = None  # e.g. --provider in a cell over HERMES_JUPYTER_BASE_URL: the more specific wins
    if base_url:
        if not model:
            raise ConfigError(f"the base URL {str(base_url)!r} ({where('base_url', url_src)}) needs a model name "
                              "too", f"Name the endpoint's model: add --model NAME (or {_clear('base_url', url_src)}).")
        if not _is_web_url(str(base_url)):  # else the client retried it for ~15 s, then said "Connection error."
            raise ConfigError(f"the base URL {str(base_url)!r} ({where('base_url', url_src)}) is not an http(s) URL",
                              "Write it whole, e.g. http://localhost:8000/v1.")
        key_env, key_env_src = _pick("api_key_env", flags, settings)
        if key_env:
            key = os.environ.get(str(key_env), "")
            if not key:  # else "Bearer none" went out, and a 401 came back
                raise ConfigError(
                    f"{key_env} is not set in this kernel's environment ({where('api_key_env', key_env_src)})",
                    f"Set {key_env} where Jupyter starts, then restart the kernel; for an endpoint that needs no "
                    f"key, {_clear('api_key_env', key_env_src)}.")
            key_source = f"from {key_env} ({where('api_key_env', key_env_src)})"
        else:
            # OPENAI_API_KEY is OpenAI's key: another party's endpoint gets it only when named (--api-key-env).
            key = os.environ.get("OPENAI_API_KEY", "") if _is_openai(str(base_url)) else ""
            key_source = "from OPENAI_API_KEY" if key else "none sent (--api-key-env VAR sends the key in VAR)"
        return RunConfig(model=str(model), provider="custom", base_url=str(base_url),
                         api_mode="chat_completions", api_key=key or "none", key_source=key_source,
                         source=f"OpenAI-compatible endpoint ({url_src})", **common)

    model_cfg = cfg.get("model")
    if isinstance(model_cfg, str):
        model_cfg = {"default": model_cfg}
    model_cfg = model_cfg if isinstance(model_cfg, dict) else {}
    model = model or model_cfg.get("default") or ""
    requested = provider or model_cfg.get("provider") or None
    try:
        from hermes_cli.runtime_provider import resolve_runtime_provider
        runtime = resolve_runtime_provider(requested=requested, target_model=model or None)
    except Exception as exc:
        asked = f" for the model {model!r}" if model else ""  # the name the user typed is the likely culprit
        raise ConfigError(f"no usable model configuration{asked}: {exc}", _provider_hint(str(exc), requested)) from exc
    if not model:
        raise ConfigError(f"no model is configured (model.default in {hermes_config_file()})")
    name = str(runtime.get("provider") or requested or "")
    key = str(runtime.get("api_key") or "")
    if not key:  # hermes' AIAgent would refuse to start ("No LLM provider configured"), with a traceback
        variable = provider_key_variable(name)
        if variable:
            raise ConfigError(f"no key for the provider {name!r}: {variable} is not set", key_hint(variable, name))
        raise ConfigError(f"the provider {name!r} has no key configured", (
            f"In a terminal, run `{hermes_cli()} model` to set it up, or use an endpoint that needs no key: "
            "`%hermes --base-url URL --model NAME ...`."))
    fallback = _fallback_chain(cfg)
    return RunConfig(model=str(model), provider=str(runtime.get("provider") or ""),
                     base_url=str(runtime.get("base_url") or ""), api_mode=runtime.get("api_mode"),
                     api_key=key, key_source=_key_origin(name, key),
                     fallback_model=fallback,
                     source="Hermes configuration" + (f" ({model_src})" if model_src else ""), **common)


def _registry() -> dict[str, Any]:
    try:
        from hermes_cli.auth import PROVIDER_REGISTRY
        return dict(PROVIDER_REGISTRY)
    except Exception:  # an older or newer hermes-agent: the hints get vaguer, nothing breaks
        return {}


def provider_key_variable(provider: str) -> str:
    """The environment variable hermes reads for a provider's API key ('' if it has none of its own)."""
    if provider == "openrouter":  # hermes' default provider, kept outside its registry
        return "OPENROUTER_API_KEY"
    entry = _registry().get(provider)
    names = tuple(getattr(entry, "api_key_env_vars", ()) or ())
    return str(names[0]) if names and getattr(entry, "auth_type", "api_key") == "api_key" else ""


def _key_origin(provider: str, key: str) -> str:
    """Where a provider's key came from, for /config: the variable that holds it, or Hermes' own store."""
    entry = _registry().get(provider)
    names = ["OPENROUTER_API_KEY"] if provider == "openrouter" else list(getattr(entry, "api_key_env_vars", ()) or ())
    for name in names:
        if os.environ.get(name) == key:
            return f"from {name}"
    return f"from Hermes' configuration for {provider or 'the provider'} ({hermes_config_file()}, .env or `hermes auth`)"


def _provider_hint(error: str, requested: str | None) -> str:
    """The one thing to do when hermes cannot resolve a provider."""
    variable = re.search(r"\b([A-Z][A-Z0-9]*_(?:API_KEY|TOKEN))\b", error)
    if variable and requested:  # hermes names the variables it tried: the provider's own comes first
        return key_hint(provider_key_variable(requested) or variable.group(1), requested)
    if requested and "unknown provider" in error.lower():
        known = sorted({"openrouter", "custom", *(str(getattr(e, "id", n)) for n, e in _registry().items())})
        return one_line(f"Use a provider Hermes knows (--provider NAME): {', '.join(known)}; or any OpenAI-compatible "
                        "endpoint: `%hermes --base-url URL --model NAME`.", 600)
    return CONFIGURE_HINT


def _fallback_chain(cfg: dict) -> list | None:
    """fallback_providers and the legacy fallback_model, merged as hermes-agent merges them."""
    try:
        from hermes_cli.fallback_config import get_fallback_chain
        chain = get_fallback_chain(cfg)
    except Exception:
        entry = cfg.get("fallback_model")
        chain = [entry] if isinstance(entry, dict) and entry.get("model") and entry.get("provider") else []
    return chain or None


def with_overrides(config: RunConfig, **changes: Any) -> RunConfig:
    return replace(config, **changes)


def _is_web_url(url: str) -> bool:
    """http(s) with a host, and a port that is a number if there is one."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _is_openai(base_url: str) -> bool:
    host = (urlsplit(base_url).hostname or "").lower()
    return host == "openai.com" or host.endswith(".openai.com")


def _check_toolsets(names: list[str]) -> None:
    """A toolset name hermes does not know gave a turn without those tools, and no word about it."""
    try:
        from toolsets import get_toolset_names, validate_toolset
    except ImportError:  # hermes-agent not importable: the turn reports that itself
        return
    # Ours, and the MCP servers' (registered only once a turn connects them): a server's name, mcp-NAME, no_mcp.
    servers = set(mcp_servers_configured())
    known = {*DEFAULT_TOOLSETS.split(","), NO_MCP, *servers, *(f"mcp-{name}" for name in servers)}
    unknown = [name for name in names if name not in known and not validate_toolset(name)]
    if unknown:
        raise ConfigError(one_line(f"unknown toolset{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; "
                                   f"known: {', '.join(sorted(get_toolset_names()))}", 400),
                          f"Use only known toolsets (--toolsets A,B), or leave --toolsets out for the default, "
                          f"{DEFAULT_TOOLSETS}.")
