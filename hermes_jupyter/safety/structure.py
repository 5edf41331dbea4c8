"""Secrets found by where they sit, not by which vendor issued them.

A list of vendor patterns always trails what people paste. These rules read structure instead:

* a value in a key-like position of any common format (JSON, YAML, TOML, INI, .env, shell, CLI
  flags, HTTP headers, query parameters, connection strings, keyword arguments) whose key's
  name says secret (``name_tier``), in three strengths of context: a quoted value, a bare value
  where a line starts (config files), a bare value inside a line (then the value must look like
  a secret, ``secretish``, so ``password=password`` in code or "password reset" in prose stay);
* a token with a short prefix in one to four parts, then ``_``, ``-`` or ``.``, then at least 20
  characters that look random (``looks_random``), whatever the prefix;
* a random-looking run a few words after a secret-ish word ("my token is ...");
* the last string argument of a login/auth call or tuple (``auth=("user", "pw")``);
* base64 that decodes to ``user:password`` (Basic auth, docker ``auth`` fields, npm ``_auth``);
* ``.netrc`` entries over several lines and ``.pgpass`` lines.

The shapes and their false-positive corpus are tests/secret_shapes.py and tests/ordinary_strings.py.
gitleaks' rule set was not used: no package on PyPI ships it; the key words and the prefix shape
follow its ``generic-api-key`` rule in spirit (a keyword, an assignment, an entropy check).
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from itertools import pairwise

__all__ = ["RULES", "looks_random", "name_tier", "secretish"]

Replace = Callable[[re.Match[str]], str]

NOT, WEAK, STRONG = 0, 1, 2

# A name's parts: "dbPassword" -> db, password; "X-Hub-Signature-256" -> x, hub, signature, 256.
_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_STRONG_LAST = frozenset({
    "password", "passwd", "passphrase", "pass", "pwd", "secret", "token", "credential", "credentials",
    "signature", "apikey", "accesskey", "secretkey", "privatekey", "authtoken", "accesstoken", "authorization",
})
# Glued lower case ("identitytoken", "pgpassword", "_authtoken"); "pass" and "pwd" are not glued ("bypass").
_GLUED = ("password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey", "secretkey", "privatekey")
# "key" alone is anything ("sort_key", {"key": "value"}); after these words it is a credential.
_KEY_QUALIFIERS = frozenset({
    "api", "access", "secret", "private", "account", "master", "encryption", "signing", "client", "license",
    "subscription", "app", "auth", "shared", "storage", "admin", "deploy", "service", "webhook", "consumer",
    "session", "sas", "hmac", "ssh", "gpg", "pgp", "root", "write", "management", "primary", "secondary",
})
_WEAK_LAST = frozenset({"key", "auth", "sig"})


# Letters that re's IGNORECASE matches to ASCII ones (long s, Kelvin sign, dotless and dotted i): the
# patterns find "paſſword", so the name reads as "password" too.
_FOLDS = str.maketrans({"\u017f": "s", "\u212a": "K", "\u0131": "i", "\u0130": "I"})


def name_tier(name: str) -> int:
    """How surely a key's name says its value is a secret: STRONG, WEAK (only a random value), NOT."""
    bare = name.strip("-_$@.").translate(_FOLDS)
    parts = [p.lower() for p in _PARTS.findall(bare)]
    while parts and parts[-1].isdigit():  # X-Hub-Signature-256
        parts.pop()
    if not parts:
        return NOT
    last = parts[-1]
    if last in _STRONG_LAST or last.endswith(_GLUED):
        return STRONG
    if last == "key" and len(parts) > 1 and (parts[-2] in _KEY_QUALIFIERS or (bare.isupper() and "_" in bare)):
        return STRONG  # OPENAI_KEY, SIGNING_KEY: the env-var convention
    if last == "auth" and bare.isupper():
        return STRONG  # SENTRY_AUTH
    return WEAK if last in _WEAK_LAST else NOT


# ----- what a value looks like ---------------------------------------------------------------------

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# The commonest letter pairs of English (about 200 of 676): most pairs of a word or a name made of words
# ("resnet50_imagenet", "MyClassName", "bert-base-uncased") are among them, about a third of a random run's.
_COMMON_PAIRS = frozenset("""
th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le ve co me de hi ri ro
ic ne ea ra ce li ch ll be ma si om ur ca el ta la ns di fo ho pe ec pr no ct us ac ot il tr ly nc et ut ss so
rs un lo wa ge ie wh ee wi em ad ol rt po we na ul ni ts mo ow pa im mi ai sh ir su id os iv ia am fi ci vi pl
ig tu ev ld ry mp fe bl ab gh ty op wo sa ay ex ke fr oo av ag if ap gr od bo sp rd do uc bu ei ov by rm ep tt
oc fa ef cu rn sc gi da yo cr cl du ga qu ue ff ba ey ls va um pp ua up lu go ht ru ug ds lt pi rc rr eg au ck
ew mu br bi pt ak pu ui rg ib tl ny ki rk ys ob mm fu ph og ms ye ud mb ip ub oi rl gu dr
""".split())


_HEX = re.compile(r"[0-9a-f]+")


def _kind(c: str) -> int:
    return 0 if c.islower() else 1 if c.isupper() else 2 if c.isdigit() else 3


def looks_random(value: str, least: int = 16) -> bool:
    """A run of characters that reads as generated, not written: kinds of characters (lower, upper,
    digit, other) that change often, and letter pairs that are mostly not English ones. CamelCase
    names, dates, model names and identifiers fail; base62, hex and base64 past `least` pass."""
    core = value.replace("-", "").replace("_", "").replace(".", "")
    n = len(core)
    if n < least or _UUID.fullmatch(value):
        return False
    kinds = [_kind(c) for c in core]
    switches = sum(a != b for a, b in pairwise(kinds))
    if len(set(kinds)) < 2 or switches < 0.2 * (n - 1):
        return False
    if n >= 24 and {0, 1, 2} <= set(kinds) and switches >= 0.4 * (n - 1):
        return True  # long, all three kinds, changing at every other character: no name reads so
    low = core.lower()
    if _HEX.fullmatch(low):  # hex letters pair as English does ("be", "ad", "ce"): kinds decide
        return True
    pairs = [low[i:i + 2] for i in range(n - 1) if low[i].isalpha() and low[i + 1].isalpha()]
    return len(pairs) < 4 or sum(p in _COMMON_PAIRS for p in pairs) < 0.65 * len(pairs)


# Values that name a secret instead of holding one, or hold none.
_REFERENCE = re.compile(
    r"""(?:\$|%[A-Za-z_]+%|\{\{|<[^>]*>$|os\.(?:environ|getenv)|getenv|process\.env|ENV\[|Sys\.getenv|env\(|secrets\.|"""
    r"""\[REDACTED\]|REDACTED|«redacted)""", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"(?i)(?:your|my|the|some|enter|insert)[_ -]|_here$|^(?:x+|\*+|\.+|#+|-+|_+|0+)$")
_LITERALS = frozenset({"none", "null", "nil", "true", "false", "yes", "no", "undefined", "required", "optional",
                       "empty", "default", "string", "str", "bytes", "secret", "password", "token", "redacted"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MIXED = re.compile(r"(?=[^a-z]*[a-z])(?=[^A-Z]*[A-Z])(?=[^0-9]*[0-9]).{8,}")  # upper, lower and a digit
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_NUMBERISH = re.compile(r"[\d.,:/+\-]+")
_PATHISH = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://|/|\./|\.\./|~/)")


def is_reference(value: str) -> bool:
    v = value.strip()
    return (not v or bool(_REFERENCE.match(v)) or "[REDACTED]" in v or v.lower() in _LITERALS
            or bool(_PLACEHOLDER.search(v)))


def secretish(value: str, tier: int = STRONG) -> bool:
    """Could this bare value (no quotes, inside a line) be a secret rather than code or prose?"""
    if len(value) < 6 or is_reference(value):
        return False
    if tier == WEAK:
        return looks_random(value)
    if _IDENTIFIER.fullmatch(value):  # a variable in code, or a word: only if it reads as generated
        return looks_random(value, 10) or bool(_MIXED.match(value))
    if _DOTTED.fullmatch(value) and not looks_random(value, 10):  # self.password, cfg.db.token
        return False
    if _NUMBERISH.fullmatch(value) or _PATHISH.match(value) or "(" in value:
        return False
    return True


def _quoted_ok(value: str, tier: int) -> bool:
    if is_reference(value):
        return False
    return tier == STRONG or looks_random(value)


# ----- the rules -----------------------------------------------------------------------------------

MARKER = "[REDACTED]"
_STEMS = ("pass", "pwd", "secret", "token", "key", "auth", "credential", "sig")  # in every name that can be secret
_STEM = rf"(?i:{'|'.join(_STEMS)})"
_NAME = rf"(?=[A-Za-z_$@])[\w.$@-]*{_STEM}[\w.$@-]*"

# A value after a secret name inside a line, quoted or bare, after ":", "=", ":=", "=>", a space or (a tuple)
# a comma: '"password": "v"', "api_key='v'", "os.environ['NAME'] = 'v'", '("password", "v")', "--api-key=v",
# "?api_key=v&", ";Password=v;", "Pwd={v}", "pass:v", "--token v", "setenv NAME v", "password v" (.netrc).
_KEYED_RE = re.compile(
    rf"""(?<![\w.$@/-])(?P<kq>["'`]?)(?P<name>-{{0,2}}{_NAME})(?P=kq)\]?"""
    r"""(?:(?P<sep>[ \t]*(?::=|=>|[:=,])[ \t]*)|(?P<space>[ \t]+))"""
    r"""(?:"(?P<dq>[^"\n]*)"|'(?P<sq>[^'\n]*)'|(?P<v>\{[^}\n]*\}|[^\s"'`,;&<>(){}\[\]|]+))""")


def _replace_keyed(m: re.Match[str]) -> str:
    tier = name_tier(m.group("name"))
    sep = m.group("sep")
    if tier == NOT or (sep is not None and sep.strip() == "," and not m.group("kq")):
        return m.group(0)
    quoted = m.group("dq") if m.group("dq") is not None else m.group("sq")
    if quoted is not None:
        if not quoted:
            return m.group(0)
        if m.group("space") is not None or sep.strip() == ",":  # --password "v"; ("password", "v") or a list
            ok = secretish(quoted, tier)
        else:
            ok = _quoted_ok(quoted, tier)
        if not ok:
            return m.group(0)
        start = m.start("dq") if m.group("dq") is not None else m.start("sq")
        return m.group(0)[: start - m.start()] + MARKER + m.group(0)[start - 1 - m.start()]
    value = m.group("v")
    if sep is not None and sep.strip() == ",":
        return m.group(0)  # a bare value after a comma is code: f("password", pw)
    if m.group("space") is not None:
        ok = not value.startswith("-") and secretish(value, tier)
    elif value.startswith("{") and value.endswith("}"):  # ODBC quotes a value in braces: Pwd={v}
        ok = _quoted_ok(value[1:-1], tier)
    else:
        ok = secretish(value, tier)
    if not ok:
        return m.group(0)
    return m.group(0)[: m.start("v") - m.start()] + MARKER


_STEMS_RE = re.compile(_STEM)


def stem_hits(text: str) -> list[int]:
    """Where the stems of secret names start, in order: str.find on the lowered text, far faster than an
    IGNORECASE alternation, and the same for ASCII (re also folds long s and the Kelvin sign: asked then)."""
    if not text.isascii():
        return [m.start() for m in _STEMS_RE.finditer(text)]
    low, found = text.lower(), []
    for word in _STEMS:
        at = low.find(word)
        while at != -1:
            found.append(at)
            at = low.find(word, at + 1)
    return sorted(found)


class Anchored:
    """`pattern.sub` with the same result, trying the pattern only at the positions a match can start at
    (`starts`: ascending, found from the stems), not at every character: a match of these patterns holds
    a stem at a known distance from its start. tests/test_redact_structure.py compares the two."""

    def __init__(self, pattern: re.Pattern[str], starts: Callable[[str], list[int]]) -> None:
        self.pattern, self.starts = pattern, starts

    def sub(self, replace: Replace, text: str) -> str:
        out: list[str] = []
        done = 0
        for pos in self.starts(text):
            if pos < done:
                continue
            m = self.pattern.match(text, pos)
            if m is not None:
                out += [text[done:pos], replace(m)]
                done = m.end()
        return "".join(out) + text[done:] if out else text


_NAME_CHARS = "_.$@-"


def name_starts(text: str) -> list[int]:
    """Where each name holding a stem starts, and its opening quote if it has one."""
    found: list[int] = []
    for at in stem_hits(text):
        start = at
        while start and (text[start - 1].isalnum() or text[start - 1] in _NAME_CHARS):
            start -= 1
        if found and found[-1] >= start:
            continue
        if start and text[start - 1] in "\"'`":
            found.append(start - 1)
        found.append(start)
    return found


def line_starts(text: str) -> list[int]:
    """Where a line rule's match can start on the lines holding a stem: the line's start, after an
    escaped newline, after a quote."""
    found: list[int] = []
    end = 0
    for at in stem_hits(text):
        if at < end:
            continue
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        end = len(text) if end == -1 else end
        found.append(start)
        found += [start + i + 1 for i, c in enumerate(text[start:end])
                  if c in "\"'`" or (c == "n" and i and text[start + i - 1] == "\\")]
    return found


def word_starts(text: str) -> list[int]:
    """Where a secret-ish word can start: at a stem, or 3, 4, 6 or 7 characters before one ("apikey",
    "api key", "accesskey", "access key")."""
    return sorted({at - back for at in stem_hits(text) for back in (0, 3, 4, 6, 7) if at >= back})


# A bare value where a line starts: YAML, INI, .env, properties ("  db_password: x", "- db: password: x",
# "83|api_key: x" from read_file, "export api_token=x"); any value for a strong name, a random one for
# "key"/"auth". Also after an escaped newline (JSON text that could not be parsed) or a quote.
_LINE_RE = re.compile(
    r"""(?:^|(?<=\\n)|(?<=["'`]))(?P<head>[ \t]*(?:[0-9]+[|:\t])?[ \t]*(?:[-+*>][ \t]+)?"""
    r"""(?:(?:export|set|setenv)[ \t]+)?(?:[A-Za-z0-9_.-]+:[ \t]+)*"""
    rf"""(?P<name>(?=[A-Za-z_])[\w.-]*{_STEM}[\w.-]*)[ \t]*[:=][ \t]*)"""
    r"""(?P<v>[^\s"'`()\[\]{}\\]+)(?=\s|\\|$|["'`])""",
    re.MULTILINE)


def _replace_line(m: re.Match[str]) -> str:
    tier, value = name_tier(m.group("name")), m.group("v")
    if tier == NOT or is_reference(value) or (tier == WEAK and not looks_random(value)):
        return m.group(0)
    if m.group("name").lower().endswith("pwd") and _PATHISH.match(value):
        return m.group(0)  # the shell's PWD is a directory
    return m.group("head") + MARKER


# A .netrc entry over several lines: "machine h\n  login u\n  password v".
_NETRC_RE = re.compile(r"(\b(?:machine[ \t]+\S+|default)(?:\s+(?:login|account|port)[ \t]+\S+)*\s+password[ \t]+)(\S+)")
# A .pgpass line: host:port:database:user:password.
_PGPASS_RE = re.compile(r"^([ \t]*[^\s:#]+:(?:\d{1,5}|\*):[^\s:]+:[^\s:]+:)(\S+)[ \t]*$", re.MULTILINE)


def _keep_head(m: re.Match[str]) -> str:
    return m.group(1) + MARKER


# The last string argument of a login/auth call or tuple: server.login("me", "pw"), auth=("me", "pw"),
# HTTPBasicAuth("me", "pw"), keyring.set_password("svc", "me", "pw").
_CALL_RE = re.compile(
    r"""(?P<head>(?i:login|auth|credentials?|password)(?:[ \t]*\(|[ \t]*[:=][ \t]*[(\[])[ \t]*"""
    r"""(?:(?:"[^"\n]*"|'[^'\n]*')[ \t]*,[ \t]*)+)(?:"(?P<dq>[^"\n]+)"|'(?P<sq>[^'\n]+)')(?=[ \t]*[,)\]])""")


def _replace_call(m: re.Match[str]) -> str:
    value = m.group("dq") if m.group("dq") is not None else m.group("sq")
    if len(value) < 4 or is_reference(value):
        return m.group(0)
    quote = '"' if m.group("dq") is not None else "'"
    return f"{m.group('head')}{quote}{MARKER}{quote}"


# A vendor-style token: a short prefix in one to four parts, a separator, 20+ random characters.
_WORD_RE = re.compile(r"(?<![\w.-])[A-Za-z][A-Za-z0-9]{1,9}(?:[_-][A-Za-z0-9]{1,9}){0,3}[_.-][\w-]{20,}[\w.-]*")
_PREFIX_RE = re.compile(r"[A-Za-z][A-Za-z0-9]{1,9}(?:[_-][A-Za-z0-9]{1,9}){0,3}")
# Prefixes of digests and ids, which are random by design and public: "sha256-<b64>", "run-<hex>".
_ID_PREFIXES = frozenset({
    "sha", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3", "md5", "blake2b", "blake2s", "crc32", "xxh64",
    "commit", "rev", "hash", "digest", "uuid", "guid", "id", "run", "job", "cell", "exp", "build", "task", "node",
    "object", "oid", "msg", "req", "request", "trace", "span", "doi", "arxiv", "orcid", "sri", "etag", "nonce",
})


def _replace_vendor(m: re.Match[str]) -> str:
    word = m.group(0).rstrip(".")
    if _UUID.search(word):
        return m.group(0)
    for sep in re.finditer(r"[_.-]", word[:40]):
        head, body = word[:sep.start()], word[sep.end():]
        if len(body) < 20:
            break
        if not _PREFIX_RE.fullmatch(head) or head.lower().split("_")[0].split("-")[0] in _ID_PREFIXES:
            continue
        if looks_random(body):
            return MARKER + m.group(0)[len(word):]
    return m.group(0)


# A random run a few words after a secret-ish word: "my token is v", "the API key: v", "password for the db is v".
_NEAR_RE = re.compile(
    r"(?i)\b(?:pass(?:word|wd|phrase)?|pwd|secrets?|tokens?|api[ _-]?keys?|access[ _-]?keys?|keys?|credentials?|"
    r"auth|signature)\b(?P<after>[^\n]{1,100})")
_NEAR_TOKEN = re.compile(r"""[^\s()\[\]{}<>"'`,;]+""")
_NEAR_EDGE = ".:!?="


def _replace_near(m: re.Match[str]) -> str:
    after = m.group("after")
    for i, tok in enumerate(_NEAR_TOKEN.finditer(after)):
        if i >= 6:
            break
        word = tok.group(0).strip(_NEAR_EDGE)
        if looks_random(word) and not is_reference(word):
            start = tok.start() + tok.group(0).index(word)
            cut = m.start("after") - m.start()
            whole = m.group(0)
            return whole[:cut + start] + MARKER + whole[cut + start + len(word):]
    return m.group(0)


# base64 of "user:password" (Basic auth, docker's "auth", npm's "_auth", a credentials field) in a text that
# says what it is: one of _B64_WORDS (which keeps the rule off ordinary text, where it would cost a scan).
_B64_RE = re.compile(r"(?<![\w+/=])[A-Za-z0-9+/]{12,}={0,2}(?![\w+/=])")
_B64_WORDS = ("auth", "basic", "cred", "login", "pass", "token", "user", "registr", "secret")
_USER_PASSWORD = re.compile(r"[\w.@+-]{1,64}:[\x21-\x7e]{4,}")


def _replace_b64(m: re.Match[str]) -> str:
    text = m.group(0)
    if len(text) % 4 or not any(w in m.string.lower() for w in _B64_WORDS):
        return text
    try:
        decoded = base64.b64decode(text, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return text
    return MARKER if _USER_PASSWORD.fullmatch(decoded) else text


# (pattern, replacement, what every match holds: literals (lower case), "run" (16 word characters), or a
# pattern of its own; prefilter.py skips a rule whose text lacks it).
RULES: list[tuple[re.Pattern[str] | Anchored, Replace, tuple[str, ...] | str | re.Pattern[str]]] = [
    (_NETRC_RE, _keep_head, ("password",)),
    (_PGPASS_RE, _keep_head, (":",)),
    (_CALL_RE, _replace_call, ("login", "auth", "credential", "password")),
    (Anchored(_LINE_RE, line_starts), _replace_line, _STEMS),
    (Anchored(_KEYED_RE, name_starts), _replace_keyed, _STEMS),
    (Anchored(_NEAR_RE, word_starts), _replace_near, _STEMS),
    (_WORD_RE, _replace_vendor, "run"),
    (_B64_RE, _replace_b64, _B64_WORDS),
]
