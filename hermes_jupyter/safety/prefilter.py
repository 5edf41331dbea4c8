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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Guard", "Prefilter", "Probe", "detect_secrets_guard", "literal", "literal_i", "run"]

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


@dataclass(frozen=True)
class Guard:
    """A necessary condition of a pattern's match: one of `words` is in the text, or one of `words_i`
    in its lowered form (IGNORECASE patterns), or (`run`) it has a run of 16 word characters, or
    `pattern` is found in it."""

    words: tuple[str, ...] = ()
    words_i: tuple[str, ...] = ()
    run: bool = False
    pattern: re.Pattern[str] | None = None  # a cheap pattern found in every text the rule changes
    within: tuple[str, ...] = ()  # lowercase words one of which every match of `pattern` starts with


def literal(*words: str) -> Guard:
    return Guard(words=words)


def literal_i(*words: str) -> Guard:
    """For an IGNORECASE pattern: `words` in lower case."""
    return Guard(words_i=words)


run = Guard(run=True)


def _found(pattern: re.Pattern[str], within: tuple[str, ...], probe: Probe) -> bool:
    """pattern.search(text), tried only where one of `within` starts when it must start with one of them
    (ASCII text: the lowered text's positions are the text's)."""
    if not within:
        return pattern.search(probe.text) is not None
    low = probe.low
    if not probe.text.isascii():
        return any(w in low for w in within) and pattern.search(probe.text) is not None
    for word in within:
        at = low.find(word)
        while at != -1:
            if pattern.match(probe.text, at):
                return True
            at = low.find(word, at + 1)
    return False


class Prefilter:
    """Which of a list of rules may match a text: the words of all their guards looked up once.

    A rule without a guard is always a candidate.
    """

    def __init__(self, guards: Sequence[Guard | None]) -> None:
        self._always = [i for i, g in enumerate(guards) if g is None]
        self._by_word: dict[str, list[int]] = {}
        self._by_word_i: dict[str, list[int]] = {}
        self._by_run: list[int] = []
        self._by_pattern: dict[re.Pattern[str], tuple[tuple[str, ...], list[int]]] = {}
        for i, g in enumerate(guards):
            if g is None:
                continue
            for w in g.words:
                self._by_word.setdefault(w, []).append(i)
            for w in g.words_i:
                self._by_word_i.setdefault(w, []).append(i)
            if g.run:
                self._by_run.append(i)
            if g.pattern is not None:
                self._by_pattern.setdefault(g.pattern, (g.within, []))[1].append(i)

    def candidates(self, probe: Probe, after: int = -1) -> list[int]:
        """The rules (by index, in order, past `after`) whose guard the text passes."""
        found = set(self._always)
        text = probe.text
        for word, rules in self._by_word.items():
            if word in text:
                found.update(rules)
        if self._by_word_i:
            low = probe.low
            for word, rules in self._by_word_i.items():
                if word in low:
                    found.update(rules)
        if self._by_run and probe.run:
            found.update(self._by_run)
        for pattern, (within, rules) in self._by_pattern.items():
            if not found.issuperset(rules) and _found(pattern, within, probe):
                found.update(rules)
        return sorted(i for i in found if i > after)

    def apply(self, text: str, step: Callable[[int, str], str], probe: Probe | None = None) -> str:
        """text after step(i, text) for each candidate rule i, in order; a step that changes the text
        asks the guards again for the rules after it (a replacement may add or remove their words).
        `probe`: one already made for this very text (what it found is reused)."""
        todo = self.candidates(probe if probe is not None and probe.text == text else Probe(text))
        while todo:
            i = todo.pop(0)
            new = step(i, text)
            if new != text:
                text = new
                todo = self.candidates(Probe(text), after=i)
        return text


# detect-secrets 1.5's slow patterns (the others start with a literal, which re finds fast).
# Each was read by hand: the guard is in every match.
# The IBM, Cloudant and SoftLayer patterns (IGNORECASE) try a long optional prefix at every position:
# each needs a key word, an assignment and 24+ characters of its value, which this finds far faster.
_KEYWORD_VALUE = Guard(pattern=re.compile(r"""(?i)(?:key|pwd|pw|password|pass|token)["'\]]{0,3} *(?:=|:|:=|=>| +|::) *["']?"""
                                          r"[a-z0-9_-]{24}"), within=("key", "pw", "pass", "token"))
_DETECT_SECRETS_GUARDS: dict[str, Guard] = {
    r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}": run,
    r"aws.{0,20}?(?:key|pwd|pw|password|pass|token).{0,20}?[\'\"]([0-9a-zA-Z/+]{40})[\'\"]": literal_i("aws"),
    r'(?:\s|=|:|"|^)AKC[a-zA-Z0-9]{10,}(?:\s|"|$)': literal("AKC"),
    r'(?:\s|=|:|"|^)AP[\dABCDEF][a-zA-Z0-9]{8,}(?:\s|"|$)': literal("AP"),
    r"AccountKey=[a-zA-Z0-9+\/=]{88}": literal("AccountKey="),
    r"://[^:/\?\#\[\]@!\$\&'\(\)\*\+,;=\s]+:([^:/\?\#\[\]@!\$\&'\(\)\*\+,;=\s]+)@": literal("://"),
    (r'(?:(?<=\W)|(?<=^))(?:\[|)(?:"|\'|)(?:cloudant|cl|clou)(?:_|-|)(?:api|)(?:key|pwd|pw|password|pass|token)'
     r'(?:"|\'|)(?:\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:"|\'|)([0-9a-f]{64})(?:"|\'|)'): _KEYWORD_VALUE,
    (r'(?:(?<=\W)|(?<=^))(?:\[|)(?:"|\'|)(?:cloudant|cl|clou)(?:_|-|)(?:api|)(?:key|pwd|pw|password|pass|token)'
     r'(?:"|\'|)(?:\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:"|\'|)([a-z]{24})(?:"|\'|)'): _KEYWORD_VALUE,
    r"(?:https?\:\/\/)[\w\-]+\:([0-9a-f]{64})\@[\w\-]+\.cloudant\.com": literal_i("cloudant"),
    r"(?:https?\:\/\/)[\w\-]+\:([a-z]{24})\@[\w\-]+\.cloudant\.com": literal_i("cloudant"),
    r"[MNO][a-zA-Z\d_-]{23,25}\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27}": run,
    (r'(?:(?<=\W)|(?<=^))(?:\[|)(?:"|\'|)(?:ibm(?:_|-|)cloud(?:_|-|)iam|cloud(?:_|-|)iam|ibm(?:_|-|)cloud|ibm(?:_|-|)iam'
     r'|ibm|iam|cloud|)(?:_|-|)(?:api|)(?:_|-|)(?:key|pwd|password|pass|token)(?:"|\'|)(?:\]|)(?: *)'
     r'(?:=|:|:=|=>| +|::)(?: *)(?:"|\'|)([a-zA-Z0-9_\-]{44}(?![a-zA-Z0-9_\-]))(?:"|\'|)'): _KEYWORD_VALUE,
    (r'(?:(?<=\W)|(?<=^))(?:\[|)(?:"|\'|)(?:(?:ibm)?[-_]?cos[-_]?(?:hmac)?|)(?:_|-|)(?:secret[-_]?(?:access)?[-_]?key)'
     r'(?:"|\'|)(?:\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:"|\'|)([a-f0-9]{48}(?![a-f0-9]))(?:"|\'|)'): _KEYWORD_VALUE,
    r"[0-9a-z]{32}-us[0-9]{1,2}": literal("-us"),
    r"xox(?:a|b|p|o|s|r)-(?:\d+-)+[a-z0-9]+": literal_i("xox"),
    r"https://hooks\.slack\.com/services/T[a-zA-Z0-9_]+/B[a-zA-Z0-9_]+/[a-zA-Z0-9_]+": literal_i("hooks.slack.com"),
    (r'(?:(?<=\W)|(?<=^))(?:\[|)(?:"|\'|)(?:softlayer|sl)(?:_|-|)(?:api|)(?:_|-|)(?:key|pwd|password|pass|token)'
     r'(?:"|\'|)(?:\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:"|\'|)([a-z0-9]{64})(?:"|\'|)'): _KEYWORD_VALUE,
    r"(?:http|https)://api.softlayer.com/soap/(?:v3|v3.1)/([a-z0-9]{64})": literal_i("softlayer"),
    r"(?:r|s)k_live_[0-9a-zA-Z]{24}": literal("k_live_"),
    r"\d{8,10}:[0-9A-Za-z_-]{35}": run,
    r"AC[a-z0-9]{32}": run,
    # Alternations, and a pattern that starts with an escape: each has a run or a literal all the same.
    r"(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{36}": run,
    r"(glpat|gldt|glft|glsoat|glrt)-[A-Za-z0-9_\-]{20,50}(?!\w)": run,
    r"\/\/.+\/:_authToken=\s*((npm_.+)|([A-Fa-f0-9-]{36})).*": literal("/:_authToken="),
    r"SK[a-z0-9]{32}": run,
}


_LITERAL_HEAD = re.compile(r"[A-Za-z0-9_ -]+")


def detect_secrets_guard(pattern: re.Pattern[str]) -> Guard | None:
    """The guard read by hand, else the literal the pattern starts with ("BEGIN RSA PRIVATE KEY", "eyJ")."""
    guard = _DETECT_SECRETS_GUARDS.get(pattern.pattern)
    if guard is not None or pattern.flags & (re.IGNORECASE | re.VERBOSE) or _alternates(pattern.pattern):
        return guard
    head = _LITERAL_HEAD.match(pattern.pattern)
    if head is None:
        return None
    word = head.group()
    if pattern.pattern[head.end():head.end() + 1] in ("?", "*", "{", "+"):
        word = word[:-1]  # the last letter is quantified: it may be absent or repeated
    return literal(word) if len(word) >= 2 else None


def _alternates(text: str) -> bool:
    """Has the pattern a top-level "|" (then its head is only one branch's)?"""
    depth, escaped, in_class = 0, False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return True
    return False
