"""Cheap necessary conditions that let the redactor skip a pattern that cannot match.

Redaction runs on everything shown or stored, and the live view redacts the open end of an
answer on every flush: ~60 patterns over prose cost ~1.1 µs a character, most of it spent
proving that nothing matches. Each guard here is a *necessary* condition of its pattern, so
skipping a pattern whose guard fails gives the very same text (tests/test_redact.py compares
guarded and unguarded redaction on the secrets corpus and on generated text):

* a literal the pattern must contain (``"Bearer"``); for IGNORECASE patterns it is looked up in
  the text lowered as ``re`` compares letters (see ``Probe.low``);
* a run of 16 word characters, for patterns whose secret is a long run of letters and digits.

A pattern without a guard always runs. The detect-secrets guards are keyed by the pattern's exact
text: a detect-secrets release that changes a pattern loses its guard, never its match.
"""
from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["Guard", "Probe", "detect_secrets_guard", "literal", "literal_i", "run"]

# \w, not [A-Za-z0-9]: \d and IGNORECASE letter classes match more than ASCII (a Unicode digit;
# the Kelvin sign, dotless i and long s), and every such character is a \w.
_RUN = re.compile(r"[\w-]{16}")


class Probe:
    """One text and what the guards ask of it, each computed once and only when asked."""

    __slots__ = ("_low", "_run", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._low: str | None = None
        self._run: bool | None = None

    @property
    def low(self) -> str:
        """The text lowered so that a lowercase literal is in it wherever an IGNORECASE pattern finds it.

        ``re`` matches a letter case-insensitively by its simple lowercase, plus two extra pairs
        (re._casefix: i ~ dotless i, s ~ long s). ``str.lower`` uses the full mapping, which turns
        the dotted capital I into "i" + a combining dot. All three are mapped back to the ASCII
        letter: the guard may then pass where the pattern fails, never the other way.
        """
        if self._low is None:
            low = self.text.lower()
            if not low.isascii():
                low = low.replace("i\u0307", "i").replace("\u0131", "i").replace("\u017f", "s")
            self._low = low
        return self._low

    @property
    def run(self) -> bool:
        if self._run is None:
            self._run = _RUN.search(self.text) is not None
        return self._run


Guard = Callable[[Probe], bool]


def literal(*words: str) -> Guard:
    """The pattern (case-sensitive) contains one of `words`."""
    return lambda probe: any(w in probe.text for w in words)


def literal_i(*words: str) -> Guard:
    """The IGNORECASE pattern contains one of `words` (given in lower case)."""
    return lambda probe: any(w in probe.low for w in words)


def run(probe: Probe) -> bool:
    """The pattern's secret is a run of at least 16 word characters (or hyphens)."""
    return probe.run


# detect-secrets 1.5's slow patterns (the others start with a literal, which re finds fast).
# Each was read by hand: the guard is in every match.
_DETECT_SECRETS_GUARDS: dict[str, Guard] = {
    r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}": run,
    r"aws.{0,20}?(?:key|pwd|pw|password|pass|token).{0,20}?[\'\"]([0-9a-zA-Z/+]{40})[\'\"]": literal_i("aws"),
    r'(?:\s|=|:|"|^)AKC[a-zA-Z0-9]{10,}(?:\s|"|$)': literal("AKC"),
    r'(?:\s|=|:|"|^)AP[\dABCDEF][a-zA-Z0-9]{8,}(?:\s|"|$)': literal("AP"),
    r"AccountKey=[a-zA-Z0-9+\/=]{88}": literal("AccountKey="),
    r"://[^:/\?\#\[\]@!\$\&'\(\)\*\+,;=\s]+:([^:/\?\#\[\]@!\$\&'\(\)\*\+,;=\s]+)@": literal("://"),
    (r'(?:(?<=\W)|(?<=^))(?:\[|)(?:"|\'|)(?:cloudant|cl|clou)(?:_|-|)(?:api|)(?:key|pwd|pw|password|pass|token)'
     r'(?:"|\'|)(?:\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:"|\'|)([0-9a-f]{64})(?:"|\'|)'): run,
    (r'(?:(?<=\W)|(?<=^))(?:\[|)(?:"|\'|)(?:cloudant|cl|clou)(?:_|-|)(?:api|)(?:key|pwd|pw|password|pass|token)'
     r'(?:"|\'|)(?:\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:"|\'|)([a-z]{24})(?:"|\'|)'): run,
    r"(?:https?\:\/\/)[\w\-]+\:([0-9a-f]{64})\@[\w\-]+\.cloudant\.com": literal_i("cloudant"),
    r"(?:https?\:\/\/)[\w\-]+\:([a-z]{24})\@[\w\-]+\.cloudant\.com": literal_i("cloudant"),
    r"[MNO][a-zA-Z\d_-]{23,25}\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27}": run,
    (r'(?:(?<=\W)|(?<=^))(?:\[|)(?:"|\'|)(?:ibm(?:_|-|)cloud(?:_|-|)iam|cloud(?:_|-|)iam|ibm(?:_|-|)cloud|ibm(?:_|-|)iam'
     r'|ibm|iam|cloud|)(?:_|-|)(?:api|)(?:_|-|)(?:key|pwd|password|pass|token)(?:"|\'|)(?:\]|)(?: *)'
     r'(?:=|:|:=|=>| +|::)(?: *)(?:"|\'|)([a-zA-Z0-9_\-]{44}(?![a-zA-Z0-9_\-]))(?:"|\'|)'): run,
    (r'(?:(?<=\W)|(?<=^))(?:\[|)(?:"|\'|)(?:(?:ibm)?[-_]?cos[-_]?(?:hmac)?|)(?:_|-|)(?:secret[-_]?(?:access)?[-_]?key)'
     r'(?:"|\'|)(?:\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:"|\'|)([a-f0-9]{48}(?![a-f0-9]))(?:"|\'|)'): run,
    r"[0-9a-z]{32}-us[0-9]{1,2}": run,
    r"xox(?:a|b|p|o|s|r)-(?:\d+-)+[a-z0-9]+": literal_i("xox"),
    r"https://hooks\.slack\.com/services/T[a-zA-Z0-9_]+/B[a-zA-Z0-9_]+/[a-zA-Z0-9_]+": literal_i("hooks.slack.com"),
    (r'(?:(?<=\W)|(?<=^))(?:\[|)(?:"|\'|)(?:softlayer|sl)(?:_|-|)(?:api|)(?:_|-|)(?:key|pwd|password|pass|token)'
     r'(?:"|\'|)(?:\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:"|\'|)([a-z0-9]{64})(?:"|\'|)'): run,
    r"(?:http|https)://api.softlayer.com/soap/(?:v3|v3.1)/([a-z0-9]{64})": literal_i("softlayer"),
    r"(?:r|s)k_live_[0-9a-zA-Z]{24}": literal("k_live_"),
    r"\d{8,10}:[0-9A-Za-z_-]{35}": run,
    r"AC[a-z0-9]{32}": run,
    r"SK[a-z0-9]{32}": run,
}


def detect_secrets_guard(pattern: re.Pattern[str]) -> Guard | None:
    return _DETECT_SECRETS_GUARDS.get(pattern.pattern)
