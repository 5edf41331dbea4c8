"""Turn a failed turn into one line that says what happened and a hint that says what to do."""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from hermes_jupyter.models.recording import RECORD_PROTOCOL, REPLAY_DRIFT
from hermes_jupyter.util.text import one_line


def hermes_cli() -> str:
    """The `hermes` command of the kernel's own environment, as a user types it in a terminal:
    a bare `hermes` may be another install, or none, when the kernel runs in a virtualenv."""
    beside = Path(sys.executable).parent / "hermes"
    return str(beside) if beside.exists() else "hermes"


def hermes_config_file() -> str:
    """The config.yaml Hermes reads in this kernel (HERMES_HOME's, else ~/.hermes'), as a user would type it."""
    home = os.environ.get("HERMES_HOME")
    if not home:
        return "~/.hermes/config.yaml"
    path = Path(home).expanduser() / "config.yaml"
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


CONFIGURE_HINT = (
    f"In a terminal, run `{hermes_cli()} model` to choose a provider and key, or try the extension "
    "without a key: `%config Hermes.model = 'scripted:demo'`. Any OpenAI-compatible "
    "endpoint works too: `%hermes --base-url URL --model NAME --api-key-env VAR ...`."
)


@dataclass(frozen=True)
class Failure:
    # auth | rate_limit | no_response | no_reply | stalled | dropped | malformed | network | provider
    # | rejected | config | replay | error
    kind: str
    message: str
    hint: str


class ConfigError(Exception):
    """The user's configuration cannot produce a working model (raised before any request).
    ``hint``: the one thing to do about it, when the message alone does not say it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def key_hint(variable: str, provider: str) -> str:
    """What to do when the key of a Hermes provider is missing: the variable hermes reads."""
    return (f"Set {variable} for this kernel: add `{variable}=...` to {hermes_env_file()} (or export it where "
            f"Jupyter starts), then restart the kernel. Or, in a terminal, run `{hermes_cli()} model` to "
            f"set up {provider}.")


def hermes_env_file() -> str:
    """The .env file beside the config.yaml Hermes reads: where hermes looks for keys."""
    return hermes_config_file().rpartition("/")[0] + "/.env"


_AUTH = re.compile(r"\b401\b|\b403\b|unauthori[sz]ed|authentication|invalid[ _-]api[ _-]key|"
                   r"incorrect api key|no api key|api key (is )?missing|permission denied", re.I)
_RATE = re.compile(r"\b429\b|rate[ _-]?limit|too many requests|quota|exhausted", re.I)
_NETWORK = re.compile(r"connect(ion)? (error|refused|reset)|connecterror|timed? ?out|"
                      r"name or service not known|nodename nor servname|network is unreachable|"
                      r"failed to establish|remote ?protocol ?error|server disconnected", re.I)
# A request the provider refused as such (4xx other than auth and rate limits): retrying cannot help.
_REJECTED = re.compile(r"\bHTTP (400|404|405|409|413|415|422)\b|BadRequestError|NotFoundError|"
                       r"UnprocessableEntityError|invalid_request_error", re.I)
_UNKNOWN_MODEL = re.compile(r"model.{0,80}(not a valid|does not exist|not found|unknown|not supported|"
                            r"no such|invalid)|(invalid|unknown|unsupported|not a valid) model|model_not_found", re.I)
_TOO_LONG = re.compile(r"context.{0,3}length|context window|maximum context|too many tokens|prompt is too long|"
                       r"request too large|context_length_exceeded|payload too large|\bHTTP 413\b", re.I)
# hermes' own circuit breaker for a provider that sent nothing (agent/chat_completion_helpers.py).
_HERMES_GAVE_UP = re.compile(r"unresponsive \(no response received\)|consecutive stale attempts", re.I)
# What hermes' AIAgent says when the chosen provider has no key (raised while it is built).
_NO_PROVIDER = re.compile(r"No LLM provider configured|no API key was found|"
                          r"No (usable )?(inference provider|credentials) (configured|found)", re.I)
_KEY_VARIABLE = re.compile(r"\b([A-Z][A-Z0-9]*_(?:API_KEY|TOKEN|KEY))\b")

_PROVIDER = re.compile(r"\b5\d\d\b|internal server error|bad gateway|service unavailable|"
                       r"overloaded", re.I)


def provider_fault(kind: str, *, model: str, base_url: str = "", waited: float = 0.0, chars: int = 0,
                   detail: str = "") -> Failure:
    """The commonest real faults (agent/patience.py sees them): a reply that never came, stopped,
    broke off or could not be read."""
    where = f" at {base_url}" if base_url else ""
    kept = f" The {chars} characters that arrived are kept." if chars else ""
    why = f" ({one_line(detail)[:160]})" if detail else ""
    if kind == "no_reply":
        within = f" in {waited:.0f} s" if waited >= 1 else ""
        return Failure(kind, f"No reply from {model}{where}{within}{why}.", (
            "The endpoint took the request but sent nothing back. Check that the server is up and not "
            "overloaded (a local server may still be loading the model), then run the cell again; for a "
            "model that is slow to start, raise `%config Hermes.first_byte_timeout = 600`."))
    if kind == "stalled":
        # detail: the read error with which hermes' own timeout ended the stream, before ours
        raise_it = ("set HERMES_STREAM_READ_TIMEOUT=300 where Jupyter starts (Hermes' read timeout ended it)"
                    if detail else "raise `%config Hermes.stall_timeout = 300`")
        return Failure(kind, f"The reply from {model} stopped: nothing more for {waited:.0f} s.{kept}", (
            "The provider stopped sending in the middle of the answer. Run the cell again; if this model "
            f"pauses for long while it thinks, {raise_it}."))
    if kind == "malformed":
        return Failure(kind, f"{model}{where} sent streaming data that could not be read{why}.{kept}", (
            "The endpoint does not speak the OpenAI streaming format correctly (often a proxy in between, or "
            "a server that is not OpenAI-compatible). Check --base-url (it usually ends in /v1), then run "
            "the cell again."))
    return Failure("dropped", f"The connection to {model}{where} closed in the middle of the answer{why}.{kept}", (
        "The provider or something in between (a proxy, a VPN, a load balancer) cut the stream. Run the "
        "cell again; if it keeps happening, check the network path or the provider's status page."))


def _replay_failure(text: str) -> Failure | None:
    start = text.find(REPLAY_DRIFT)
    if start != -1:  # drop the agent's "HTTP 409: " prefix: the message says it all
        return Failure("replay", one_line(text[start:]), (
            "The notebook no longer asks what was recorded. Restore the prompt (or give the same "
            "answers to approvals and questions), run it in a new session (`%hermes /new`) if the "
            "recording started there, or record it again against the real model with `--record`."))
    if RECORD_PROTOCOL in text:
        return Failure("config", one_line(text), (
            "Record against a provider or endpoint that speaks OpenAI chat completions, e.g. "
            "`--base-url URL --model NAME`, or run this model without `--record`."))
    return None


def classify(error: BaseException | str | None, *, base_url: str = "", model: str = "",
             waited: float = 0.0) -> Failure:
    """Classify an exception or the agent's error text.

    The agent reports API failures as text (``result["error"]``) rather than
    raising, so classification works on the text and the exception's type name.
    ``waited``: seconds the turn's model calls went without a reply (for hermes' own give-up).
    """
    if isinstance(error, ConfigError):
        return Failure("config", one_line(str(error)), error.hint or CONFIGURE_HINT)
    replay = _replay_failure(str(error or ""))
    if replay is not None:
        return replay
    name = type(error).__name__ if isinstance(error, BaseException) else ""
    text = str(error or "").strip()
    probe = f"{name} {text}"
    where = f" at {base_url}" if base_url else ""

    if not text and not name:
        return Failure(
            "no_response",
            "The model returned no answer.",
            f"Check that the model {model!r} exists and is available to your account"
            f"{where}; `%hermes /config` shows what this notebook uses.",
        )
    if _HERMES_GAVE_UP.search(text):  # hermes stopped waiting on its own: the same fault as ours
        return provider_fault("no_reply", model=model, base_url=base_url, waited=waited,
                              detail="Hermes stopped after attempts that received nothing")
    if _NO_PROVIDER.search(text):
        return config_failure(text, model=model)
    if "AuthError" in name or _AUTH.search(probe):
        return Failure(
            "auth",
            one_line(text or "Authentication failed."),
            f"The provider rejected the credentials. In a terminal, run `{hermes_cli()} model` (or "
            f"`{hermes_cli()} login`) to update them, or point --api-key-env at the variable that holds your key.",
        )
    if "RateLimit" in name or _RATE.search(probe):
        return Failure(
            "rate_limit",
            one_line(text or "Rate limit reached."),
            "The provider is throttling requests. Wait a moment and run the cell again, or set a "
            f"fallback_model in {hermes_config_file()} so Hermes can switch when this happens.",
        )
    if _REJECTED.search(probe) or _TOO_LONG.search(text):
        return rejected(text, model=model, base_url=base_url)
    if "Connection" in name or "Timeout" in name or _NETWORK.search(probe):
        return Failure(
            "network",
            one_line(text or "Could not reach the model."),
            f"Could not talk to the model{where}. Check the network, a proxy, or that the "
            "server is running; then run the cell again.",
        )
    if _PROVIDER.search(probe):
        return Failure(
            "provider",
            one_line(text),
            "The provider failed even after Hermes retried. Try again in a minute, or choose "
            "another model with --model.",
        )
    return Failure(
        "error",
        one_line(f"{name}: {text}" if name and name not in text else text),
        "This looks like a bug or an unusual provider reply. The turn's log (`turn.log`) has "
        "the details; please report it with that log.",
    )


def rejected(text: str, *, model: str, base_url: str = "") -> Failure:
    """The provider refused the request itself (HTTP 400, 404, 413, 422): an unknown model, a bad
    parameter, a conversation too long. Asking again the same way fails the same way."""
    said = one_line(re.sub(r"^(Error code|HTTP)[: ]*\d{3}\s*[-:]?\s*", "", text.strip()), 200)
    where = f" at {base_url}" if base_url else ""
    message = f"{model or 'The model'}{where} refused the request: {said}"
    if _TOO_LONG.search(text):
        return Failure("rejected", message, (
            f"The conversation no longer fits the context window of {model!r} (the provider said: {said}). "
            "Start a new session with `%hermes /new`, or attach fewer or smaller files and variables."))
    if _UNKNOWN_MODEL.search(text) or re.search(r"\bHTTP 404\b|NotFoundError", text):
        return Failure("rejected", message, (
            f"The provider does not serve a model named {model!r} (it said: {said}). Check the exact id in "
            "the provider's model list and pass it with --model (`%hermes /config` shows what this notebook uses)."))
    return Failure("rejected", message, (
        f"The provider refused a parameter of the request to {model!r} (it said: {said}). Change that setting "
        f"(a model option in {hermes_config_file()}, or --model for a model that accepts it), then run the "
        "cell again."))


def config_failure(text: str, *, model: str = "") -> Failure:
    """hermes' AIAgent refused to start: no provider, or the chosen one has no key."""
    variable = _KEY_VARIABLE.search(text)
    if variable:
        return Failure("config", one_line(text), key_hint(variable.group(1), "the provider"))
    return Failure("config", one_line(text), CONFIGURE_HINT)


def agent_config_error(error: BaseException) -> ConfigError | None:
    """hermes' AIAgent refusing to start for want of a provider or key, as the configuration error it is."""
    if not _NO_PROVIDER.search(str(error)):
        return None
    failure = config_failure(str(error))
    return ConfigError(failure.message, failure.hint)
