"""Keep secrets off the disk and off the screen.

Three layers: detect-secrets' vendor patterns (safety/detectors.py), our own patterns for the
shapes it and hermes miss (each replaces the *whole* secret with ``MARKER``), then
hermes-agent's ``agent.redact``. tests/secrets_corpus.py measures each layer on 90 shapes
in 17 families; README "What is redacted where" has the figures.

About hermes-agent's redactor (0.19): ``redact_sensitive_text`` is a no-op
unless the module-level ``_REDACT_ENABLED`` is true, which is a snapshot of
``HERMES_REDACT_SECRETS`` taken at import time (default on; the CLI and the
gateway copy ``security.redact_secrets`` from config.yaml into that variable).
``force=True`` bypasses the switch; we always pass it, because a user's opt-out
of redaction in tool output must not put keys into saved notebooks/sessions.
We also pass ``file_read=True`` (implies ``code_file=True``): it skips hermes'
ENV/JSON/YAML passes, which mask ordinary code such as ``max_tokens=4096`` or
``MAX_TOKENS=4096`` (our own name=value rules cover the real cases with fewer
false positives), and it replaces its ~40 vendor prefixes with a sentinel
(``«redacted:pplx-…»``, which we turn into ``MARKER``) instead of the default
head/tail mask (``pplx-A...7890``: 10 characters of the secret survive). Its
other passes (JWTs, DB URLs, telegram tokens, ...) still mask head/tail, so our
patterns run first and hermes only sees the text between our markers.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from hermes_jupyter.safety.detectors import detect_secrets_patterns, redact_with
from hermes_jupyter.safety.prefilter import Guard, Prefilter, Probe, detect_secrets_guard, literal, literal_i
from hermes_jupyter.safety.structure import RULES as STRUCTURE_RULES
from hermes_jupyter.safety.structure import STRONG, WEAK, Anchored, looks_random, name_tier

__all__ = ["MARKER", "configured_secret_values", "encodable", "is_secret_name", "may_hold_secret",
           "prompt_secret_notice", "redact_obj", "redact_text"]

# No quotes or backslashes: substituting it can never break a JSON string.
MARKER = "[REDACTED]"

try:  # optional second layer; the fallback patterns work without it
    from agent.redact import redact_sensitive_text as _hermes_redact
except Exception:  # pragma: no cover - depends on the installed agent
    _hermes_redact = None

# Not inside a word: "risk-based", "task-list", "pdf_hf_x", "sha_" never match.
# Excluding "-" too means a match never starts inside a token run (no O(n^2)
# rescans on input like "sk-sk-sk-...").
_NB = r"(?<![A-Za-z0-9_-])"

_TOKEN_PATTERNS = [
    # The commonest vendors, which hermes covers too: kept so they are redacted whole when its
    # redactor cannot be imported. sk-, sk-proj-, sk-ant-...; a digit is required so "sk-learn-..." is prose.
    _NB + r"sk-(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{20,}",
    _NB + r"gh[pousr]_[A-Za-z0-9]{20,}",  # GitHub classic/OAuth/app/refresh
    _NB + r"github_pat_[A-Za-z0-9_]{20,}",  # GitHub fine-grained PAT
    _NB + r"(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])",  # AWS access key id
    _NB + r"xox[abprs]-[A-Za-z0-9-]{10,}",  # Slack
    _NB + r"hf_[A-Za-z0-9]{20,}",  # Hugging Face
    # hermes' sentinel in a tool's output, with what it left of a SendGrid key ("«redacted:SG.…».<second>")
    r"«redacted[^»\n]*»(?:\.[A-Za-z0-9_-]{16,})?",
    # SendGrid; also after hermes masked only its first segment ("SG.abc...wxyz.<second>").
    _NB + r"SG\.(?:[A-Za-z0-9_-]{16,}|[A-Za-z0-9_-]*\.\.\.[A-Za-z0-9_-]*)\.[A-Za-z0-9_-]{16,}",
    _NB + r"AIza[A-Za-z0-9_-]{30,}",  # Google API key (35 after the prefix)
    _NB + r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]+)?",  # JWT
    # Vendors that neither detect-secrets nor hermes know (found with the corpus of tests/secrets_corpus.py).
    _NB + r"GOCSPX-[A-Za-z0-9_-]{20,}",  # Google OAuth client secret
    _NB + r"whsec_[A-Za-z0-9]{20,}",  # Stripe webhook signing secret
    _NB + r"shp(?:at|ss|ca|pa)_[A-Fa-f0-9]{32}",  # Shopify
    _NB + r"key-[a-f0-9]{32}(?![A-Za-z0-9])",  # Mailgun
    _NB + r"dckr_pat_[A-Za-z0-9_-]{20,}",  # Docker Hub
    _NB + r"lin_(?:api|oauth)_[A-Za-z0-9]{32,}",  # Linear
    _NB + r"ATATT3x[A-Za-z0-9_=-]{20,}",  # Atlassian API token
    _NB + r"sntry[su]_[A-Za-z0-9_=+/-]{20,}",  # Sentry
    _NB + r"hv[sbr]\.[A-Za-z0-9_-]{20,}",  # HashiCorp Vault
    _NB + r"dapi[a-f0-9]{32}(?:-[0-9]+)?",  # Databricks
    _NB + r"gl(?:sa|c)_[A-Za-z0-9_=+/-]{20,}",  # Grafana
    _NB + r"PMAK-[A-Za-z0-9-]{20,}",  # Postman
    _NB + r"figd_[A-Za-z0-9_-]{20,}",  # Figma
    _NB + r"AGE-SECRET-KEY-1[0-9A-Z]{50,}",  # age
    # Discord webhooks (id and token): the whole URL grants posting.
    r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]{20,}",
    # PEM and PGP private keys; an unterminated block (truncated output) is cut to the end.
    (r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
    r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)"),
]
_TOKEN_RE = re.compile("|".join(f"(?:{p})" for p in _TOKEN_PATTERNS))

# "Authorization: [<scheme>] <credential>" and bare "Bearer <token>". The scheme
# goes too: hermes would otherwise mask a lone "Bearer" left before our marker.
# Only known schemes are consumed (an unknown first word may be the credential)
# and quotes are excluded so a closing quote is never swallowed.
_AUTH_HEADER_RE = re.compile(
    r"((?:Proxy-)?Authorization\s*:\s*)"
    r"((?:(?:Bearer|Basic|Token|Digest|Negotiate|NTLM|OAuth|ApiKey|Key|Bot)\s+)?[^\s\"']+)",
    re.IGNORECASE,
)
# API-key headers carry the key alone ("x-api-key: <key>").
_KEY_HEADER_RE = re.compile(
    r"(\b(?:x-api-key|x-goog-api-key|api-key|x-api-token|x-auth-token|x-access-token)\s*:\s*)([^\s\"']+)",
    re.IGNORECASE,
)
# The password of "scheme://user:password@host" (the user may be empty: redis://:pw@host).
_URL_PASSWORD_RE = re.compile(r"(://[^\s:/?#@\[\]]*:)([^\s/?#@\[\]]+)(?=@)")
# Signed-URL and token query parameters (Azure SAS "sig", S3 presigned, OAuth).
_QUERY_SECRET_RE = re.compile(
    r"([?&](?:sig|signature|x-amz-signature|x-amz-security-token|x-goog-signature|access_token|"
    r"refresh_token|id_token|api_key|apikey|client_secret|password|token|secret)=)([^&\s#\"'<>]+)",
    re.IGNORECASE)
# Cookie headers carry sessions: every value goes.
_COOKIE_RE = re.compile(r"(\b(?:Set-)?Cookie\s*:[ \t]*)([^\n]+)", re.IGNORECASE)
# .netrc: "machine HOST login USER password SECRET".
_NETRC_RE = re.compile(r"(\b(?:machine[ \t]+\S+|default)\b[^\n]*?\bpassword[ \t]+)(\S+)")
# A bare "Bearer x" needs a long token with a digit, so "Bearer authentication" stays.
_BEARER_RE = re.compile(r"(\bBearer\s+)((?=[A-Za-z0-9._~+/-]*[0-9])[A-Za-z0-9._~+/-]{16,}=*)")

# Secret-looking names. Upper case is the env-var convention (OPENAI_API_KEY,
# GH_TOKEN); lower case only for well-known config names, so "max_tokens",
# "sort_key" or "token_count" are left alone.
# "_PASS" and "_PWD" only after a "_" (DB_PASS, MYSQL_PWD): the shell's PWD and OLDPWD are directories.
_UPPER_NAME = (r"(?:[A-Z0-9_]*(?:API_?KEY|_KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?|_AUTH)"
               r"|[A-Z0-9_]*_(?:PASS|PWD))")
_LOWER_NAME = (
    r"(?:[A-Za-z0-9_.-]*[_.-])?"
    r"(?:api[_-]?key|access[_-]?token|refresh[_-]?token|auth[_-]?token|client[_-]?secret"
    r"|secret[_-]?key|private[_-]?key|password|passwd|passphrase|secret|token"
    r"|access[_-]?key|account[_-]?key|session[_-]?token)"
)
_UPPER_NAME_RE = re.compile(_UPPER_NAME)
_LOWER_NAME_RE = re.compile(_LOWER_NAME, re.IGNORECASE)
_VALUE = r"""(?:"(?P<dq>[^"\n]*)"|'(?P<sq>[^'\n]*)'|(?P<bare>[^\s"']+))"""
# NAME=value / NAME: value / "NAME": "value" for env-style names, also as a subscript: config['NAME'] = value.
_UPPER_ASSIGN_RE = re.compile(
    rf"""(?<![A-Za-z0-9_])(?P<head>["']?{_UPPER_NAME}(?:["']\]?)?[ \t]*[:=][ \t]*){_VALUE}"""
)
# Config-style names with a quoted value anywhere ('"password": "x"', 'api_key="x"'): structure._KEYED_RE.
# A line may carry a line number (read_file's "83|api_key: x", grep -n, cat -n) or a list/diff marker, and may
# start after an escaped newline (JSON text that could not be parsed, e.g. a cut tool result) or right after a
# quote: a config pasted into a string literal (r"""api_key: x""") or a backtick span. The name may follow
# the keys of the mappings it is nested in, on the same line ("- db: password: x").
_LINE_START = r"""(?:^|(?<=\\n)|(?<=["'`]))"""
_LINE_PREFIX = r"[ \t]*(?:[0-9]+[|:\t])?[ \t]*(?:[-+*>][ \t]+)?"
# Passwords on command lines. "--password=x" (--db-password=, --passphrase=, ...) is a value in any tool.
_CLI_OPTION_RE = re.compile(r"(?<![\w-])(?P<head>--(?:[a-z0-9]+-)*(?:password|passwd|pass|passphrase)=)" + _VALUE)
# Without "=" only in a command known to take it there: mysql's "-px" (its "-p x" prompts and x is the
# database), sshpass's own "-p x", a registry login's "-p x" or "--password x", curl's "-u user:x" (a user
# without ":" makes curl prompt). psql's --password takes no value (it forces the prompt), so
# "psql --password x" names a database and stays; so do "ssh -p 22" and "docker run -p 80:80".
# The rule matches the whole command (up to | ; & outside quotes, or the line's end) and looks for the
# option inside it: a command without one is consumed, never rescanned from each later word.
_CLI_COMMAND_RE = re.compile(
    r"(?<![\w.-])(?:(?P<mysql>(?:mysql|mariadb)[\w-]*)|(?P<sshpass>sshpass)|(?P<curl>curl)"
    r"|(?P<login>(?:docker|podman|nerdctl|buildah|skopeo|oras|helm[ \t]+registry)[ \t]+login))"
    r"""(?=[ \t])(?:[^\n|;&'"]|'[^'\n]*'|"[^"\n]*")*"""
)
_CLI_PASSWORD = {
    "mysql": re.compile(r"(?<=[ \t])(?P<head>-p)(?=[^\s-])" + _VALUE),
    "sshpass": re.compile(r"^(?P<head>sshpass(?:[ \t]+-[^\sp]\S*)*[ \t]+-p[ \t]*)" + _VALUE),
    "login": re.compile(r"(?<=[ \t])(?P<head>(?:-p|--password)[ \t]+)" + _VALUE),
    "curl": re.compile(r"""(?<=[ \t])(?P<head>(?:-[uU][ \t]*|--(?:proxy-)?user(?:[ \t]+|=))["']?[^\s:"']*:)""" + _VALUE),
}
# fish's and Tcl's assignment, a command where a line starts (as above): "set -gx DB_PASSWORD x". Env-style
# names only, so a line of prose such as "set password rules" is left alone.
_SET_RE = re.compile(
    rf"{_LINE_START}(?P<head>{_LINE_PREFIX}set(?:[ \t]+-[A-Za-z]+)*[ \t]+{_UPPER_NAME}[ \t]+){_VALUE}", re.MULTILINE
)
# Values that name a variable instead of holding one: "KEY=$KEY", "KEY=os.getenv(...)".
_REFERENCE_RE = re.compile(rf"^(?:\$|os\.(?:environ|getenv)|process\.env|{re.escape(MARKER)}$)")
# hermes' file_read sentinel for a vendor-prefixed key.
_HERMES_SENTINEL_RE = re.compile(r"«redacted[^»]*»")


def _replace_value(m: re.Match[str]) -> str:
    for group, quote in (("dq", '"'), ("sq", "'"), ("bare", "")):
        value = m.groupdict().get(group)
        if value is not None:
            if not value or _REFERENCE_RE.match(value):
                return m.group(0)
            return f"{m.group('head')}{quote}{MARKER}{quote}"
    return m.group(0)


def _replace_option(m: re.Match[str]) -> str:
    return _CLI_PASSWORD[m.lastgroup or ""].sub(_replace_value, m.group(0))


def _literal_re(extra_secrets: Iterable[str]) -> re.Pattern[str] | None:
    # Longest first, so a secret that contains another one is removed whole.
    values = sorted({s for s in extra_secrets if isinstance(s, str) and len(s) >= 8}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, values))) if values else None


_DETECT_SECRETS = redact_with(detect_secrets_patterns(), MARKER)


def _keep_head(m: re.Match[str]) -> str:
    return m.group(1) + MARKER


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def encodable(text: str) -> str:
    """Text UTF-8 can carry: a lone surrogate (half an emoji from a bad paste) becomes U+FFFD.

    Jupyter's messages and every file are UTF-8; one such character would fail the widget, an
    export or the history save. Everything shown or stored passes through redaction, so here.
    """
    if _SURROGATE_RE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


# Each rule with a necessary condition of its match (prefilter.py): a rule whose guard fails is skipped.
_TOKEN_GUARDS = [re.compile(p.removeprefix(_NB)) for p in _TOKEN_PATTERNS]  # without the lookbehind: a superset
_NAME_WORDS = ("key", "token", "secret", "pass")  # in every _LOWER_NAME


def _structure_guard(need: tuple[str, ...] | str | re.Pattern[str]) -> Guard:
    if isinstance(need, re.Pattern):
        return Guard(pattern=need)
    return Guard(run=True) if need == "run" else literal_i(*need)


_RULES: list[tuple[re.Pattern[str] | Anchored, Callable[[re.Match[str]], str], Guard]] = [
    (_AUTH_HEADER_RE, _keep_head, literal_i("authorization")),
    (_KEY_HEADER_RE, _keep_head, literal_i("api-key", "-token")),
    (_BEARER_RE, _keep_head, literal("Bearer")),
    (_URL_PASSWORD_RE, _keep_head, literal("://")),
    (_QUERY_SECRET_RE, _keep_head, literal("=")),
    (_COOKIE_RE, _keep_head, literal_i("cookie")),
    (_NETRC_RE, _keep_head, literal("password")),
    (_CLI_OPTION_RE, _replace_value, literal("pass")),
    (_CLI_COMMAND_RE, _replace_option, literal("mysql", "mariadb", "sshpass", "login", "curl")),
    (_SET_RE, _replace_value, literal("set")),
    (_UPPER_ASSIGN_RE, _replace_value, literal("KEY", "TOKEN", "SECRET", "PASS", "_PWD", "CREDENTIAL", "_AUTH")),
    # By structure (structure.py): what no list of vendors or names above covers.
    *((pattern, replace, _structure_guard(need)) for pattern, replace, need in STRUCTURE_RULES),
]
_DETECT_SECRETS_ALL = redact_with(detect_secrets_patterns(), MARKER, guarded=False)
_RULE_FILTER = Prefilter([guard for _, _, guard in _RULES])
_DETECT_SECRETS_FILTER = Prefilter([detect_secrets_guard(p) for p in detect_secrets_patterns()])
_NO_FILTER = Prefilter([None] * len(_RULES))


def may_hold_secret(text: str) -> bool:
    """The prefilter's verdict: False only when no rule of ours can change the text (hermes' own
    layer aside), and then redaction without it is the identity (tests/test_redact_structure.py)."""
    probe = Probe(encodable(text))
    return (any(g.search(probe.text) for g in _TOKEN_GUARDS) or bool(_RULE_FILTER.candidates(probe))
            or bool(_DETECT_SECRETS_FILTER.candidates(probe)))


def _redact(text: str, literal: re.Pattern[str] | None, guarded: bool = True) -> str:
    text = encodable(text)
    if literal is not None:
        text = literal.sub(MARKER, text)
    # First: whole PEM blocks and JWTs, which detect-secrets cuts short.
    if not guarded or any(g.search(text) for g in _TOKEN_GUARDS):
        text = _TOKEN_RE.sub(MARKER, text)
    probe = Probe(text)  # what the guards ask of the text, found once for both layers while it is unchanged
    text = _DETECT_SECRETS(text, probe) if guarded else _DETECT_SECRETS_ALL(text)
    text = (_RULE_FILTER if guarded else _NO_FILTER).apply(text, lambda i, t: _RULES[i][0].sub(_RULES[i][1], t),
                                                           probe)
    if _hermes_redact is not None:
        # Only between our markers, so hermes never re-masks "[REDACTED]" as "***".
        try:
            text = MARKER.join(_hermes_redact(p, force=True, file_read=True) for p in text.split(MARKER))
            text = _HERMES_SENTINEL_RE.sub(MARKER, text)
        except Exception:  # a bug in the extra layer must not lose the text
            pass
    return text


def redact_text(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """Replace secrets in ``text`` with ``MARKER`` (names in NAME=value are kept).

    JSON text (a tool's result) is redacted value by value, so line rules see real lines.
    """
    if not isinstance(text, str) or not text:
        return text
    literal = _literal_re(extra_secrets)
    return _redact_string(text, lambda s: _redact(s, literal) if s else s)


_SECRET_KEYS = frozenset({"authorization", "proxy-authorization"})  # header dicts


def is_secret_name(name: str) -> bool:
    """True for keys such as OPENAI_API_KEY, api_key, password; not max_tokens."""
    return bool(
        _UPPER_NAME_RE.fullmatch(name)
        or _LOWER_NAME_RE.fullmatch(name)
        or name.lower() in _SECRET_KEYS
        or name_tier(name) == STRONG
    )


def _redact_string(text: str, red: Callable[[str], str]) -> str:
    # JSON text (tool arguments, tool results) is redacted value by value and
    # dumped again, so it stays valid JSON with the same keys.
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            parsed = json.loads(stripped)
            cleaned = _redact_value(parsed, red)
        except (ValueError, RecursionError):  # not JSON, or absurdly nested
            pass
        else:
            return text if cleaned == parsed else json.dumps(cleaned, ensure_ascii=False)
    return red(text)


def _redact_value(obj: Any, red: Callable[[str], str]) -> Any:
    if isinstance(obj, str):
        return _redact_string(obj, red)
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            new_key = red(key) if isinstance(key, str) else key
            if (
                isinstance(key, str)
                and isinstance(value, (str, int, float))
                and not isinstance(value, bool)
                and value != ""
                and (is_secret_name(key)
                     # "auth", "key": a secret only when the value reads as generated (docker's "auth")
                     or (isinstance(value, str) and name_tier(key) == WEAK and looks_random(value)))
            ):
                # The key says what the value is, even when the value looks innocent.
                out[new_key] = MARKER
            else:
                out[new_key] = _redact_value(value, red)
        return out
    if isinstance(obj, list):
        return [_redact_value(v, red) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_redact_value(v, red) for v in obj)
    return obj


def redact_obj(obj: Any, extra_secrets: Iterable[str] = ()) -> Any:
    """Deep-redacted copy of dicts/lists/tuples/strings (keys included).

    Strings holding JSON, such as tool-call ``arguments`` or a tool message's
    ``content``, stay valid JSON with the same keys.
    """
    literal = _literal_re(extra_secrets)
    return _redact_value(obj, lambda s: _redact(s, literal) if s else s)


_SECRET_ENV_SUFFIXES = ("_API_KEY", "_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_PASSWD", "_PASS", "_PWD", "PASSPHRASE")


def _is_secret_env(name: str, value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value.strip()) >= 8
        and name.upper().endswith(_SECRET_ENV_SUFFIXES)
    )


def _read_dotenv(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:  # inline comment after an unquoted value
            value = value.split(" #", 1)[0].rstrip()
        found[name.strip()] = value
    return found


def _config_secrets(node: Any, out: set[str]) -> None:
    # Walk the whole tree: api_key lives under model, providers.*, fallback_model,
    # auxiliary.*, custom_providers[...] and more, depending on the version.
    if isinstance(node, dict):
        for key, value in node.items():
            if (
                isinstance(key, str)
                and is_secret_name(key)
                and isinstance(value, str)
                and len(value.strip()) >= 8
                and not value.strip().startswith("$")  # "${OPENAI_API_KEY}" is a reference
            ):
                out.add(value.strip())
            else:
                _config_secrets(value, out)
    elif isinstance(node, list):
        for value in node:
            _config_secrets(value, out)


def configured_secret_values(
    environ: Mapping[str, str] = os.environ, hermes_home: str | os.PathLike[str] | None = None
) -> set[str]:
    """Secret values configured for this user: env, $HERMES_HOME/.env, config.yaml."""
    home = Path(hermes_home or environ.get("HERMES_HOME") or Path.home() / ".hermes")
    found = {v.strip() for k, v in environ.items() if _is_secret_env(k, v)}
    found |= {v.strip() for k, v in _read_dotenv(home / ".env").items() if _is_secret_env(k, v)}
    try:
        import yaml

        with open(home / "config.yaml", encoding="utf-8") as fh:
            _config_secrets(yaml.safe_load(fh), found)
    except Exception:  # missing, unreadable or broken config: nothing to add
        pass
    return found


_DISPLAY_SECRETS: tuple[float, frozenset[str]] = (0.0, frozenset())


def redact_for_display(text: str) -> str:
    """redact_text with the configured keys, read at most every 30 s (it reads files)."""
    global _DISPLAY_SECRETS
    import time

    stamp, secrets = _DISPLAY_SECRETS
    if time.monotonic() - stamp > 30:
        secrets = frozenset(configured_secret_values())
        _DISPLAY_SECRETS = (time.monotonic(), secrets)
    return redact_text(text, secrets)


PROMPT_SECRET_NOTICE = (
    "your prompt holds a secret: the history keeps it [REDACTED], but this cell and IPython's input history "
    "still hold it; keep it in an environment variable (os.environ['NAME'] in code, --api-key-env NAME for a "
    "model's key)")


def prompt_secret_notice(prompt: str) -> str | None:
    """The one line a turn says when its prompt holds a secret: redaction cannot reach the cell itself."""
    return PROMPT_SECRET_NOTICE if redact_for_display(prompt) != encodable(prompt) else None


class StreamRedactor:
    """Redacts text that arrives in pieces, so a secret is never split across two outputs.

    Text is released a line at a time: the patterns that span words ("Authorization: Bearer x",
    '"password": "x"', "x-api-key: x") all end within their line, and a word-by-word release let
    them through. A line longer than LONG_LINE is released up to a space that ends no name
    (not after ":" or "=") and that leaves HOLD_CHARS behind; an unfinished PEM block is held whole.
    """

    LONG_LINE = 600
    HOLD_CHARS = 300

    def __init__(self, redact: Callable[[str], str] = redact_for_display):
        self._redact = redact
        self._pending = ""

    def feed(self, text: str) -> str:
        self._pending += text
        cut = self._safe_cut(self._pending)
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return self._redact(ready) if ready else ""

    def flush(self) -> str:
        ready, self._pending = self._pending, ""
        return self._redact(ready) if ready else ""

    def _safe_cut(self, text: str) -> int:
        begin = text.rfind("-----BEGIN")
        if begin != -1 and text.find("-----END", begin) == -1:
            text = text[:begin]
        cut = text.rfind("\n") + 1
        if len(text) - cut <= self.LONG_LINE:
            return cut
        for m in reversed(list(_SAFE_SPACE_RE.finditer(text, cut, len(text) - self.HOLD_CHARS))):
            return m.end()
        return cut


# A space that ends a word which is not a name ("key:", "token=") nor a quoted one.
_SAFE_SPACE_RE = re.compile(r"""(?<=[^\s:=,"'])[ \t]+(?=[^\s:=])""")
