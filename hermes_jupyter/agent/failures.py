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
    # | config | replay | error
    kind: str
    message: str
    hint: str


class ConfigError(Exception):
    """The user's configuration cannot produce a working model (raised before any request)."""


_AUTH = re.compile(r"\b401\b|\b403\b|unauthori[sz]ed|authentication|invalid[ _-]api[ _-]key|"
                   r"incorrect api key|no api key|api key (is )?missing|permission denied", re.I)
_RATE = re.compile(r"\b429\b|rate[ _-]?limit|too many requests|quota|exhausted", re.I)
_NETWORK = re.compile(r"connect(ion)? (error|refused|reset)|connecterror|timed? ?out|"
                      r"name or service not known|nodename nor servname|network is unreachable|"
                      r"failed to establish|remote ?protocol ?error|server disconnected", re.I)
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
        return Failure(kind, f"No reply from {model}{where} in {waited:.0f} s.", (
            "The endpoint took the request but sent nothing back. Check that the server is up and not "
            "overloaded (a local server may still be loading the model), then run the cell again; for a "
            "model that is slow to start, raise `%config Hermes.first_byte_timeout = 600`."))
    if kind == "stalled":
        return Failure(kind, f"The reply from {model} stopped: nothing more for {waited:.0f} s.{kept}", (
            "The provider stopped sending in the middle of the answer. Run the cell again; if this model "
            "pauses for long while it thinks, raise `%config Hermes.stall_timeout = 300`."))
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


def classify(error: BaseException | str | None, *, base_url: str = "", model: str = "") -> Failure:
    """Classify an exception or the agent's error text.

    The agent reports API failures as text (``result["error"]``) rather than
    raising, so classification works on the text and the exception's type name.
    """
    if isinstance(error, ConfigError):
        return Failure("config", one_line(str(error)), CONFIGURE_HINT)
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
