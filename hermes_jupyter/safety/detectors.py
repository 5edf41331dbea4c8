"""detect-secrets' vendor patterns, used to redact rather than to scan.

detect-secrets (Yelp, maintained) ships a regex plugin per vendor: AWS, Azure storage keys,
credentials in URLs, Discord, GitHub, GitLab, JWTs, Mailchimp, npm, OpenAI, PyPI, SendGrid,
Slack (tokens and webhooks), Square, Stripe, Telegram, Twilio and more. Its scanner reports the
first capture group of a match, which for several plugins is only the prefix (``ghp``), so the
plugins' ``denylist`` patterns are applied here directly: a capture group of 8 characters or
more is the secret (the password in ``://user:pw@``), otherwise the whole match is.

Left out: the entropy and keyword plugins (they flag hashes, ids and ordinary code) and the
public-IP plugin (an address is not a credential). Without detect-secrets installed this layer
is empty and the other layers still run.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from hermes_jupyter.safety.prefilter import Prefilter, Probe, detect_secrets_guard

__all__ = ["detect_secrets_patterns", "redact_with"]

_SKIP = frozenset({"Base64HighEntropyString", "HexHighEntropyString", "KeywordDetector", "IPPublicDetector"})
# Context some plugins match around a token ("(?:\s|=|:|"|^)AKC...") that must survive.
_EDGE = " \t\r\n=:\"'"


def detect_secrets_patterns() -> list[re.Pattern[str]]:
    try:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
        classes: Iterable[Any] = list(get_mapping_from_secret_type_to_class().values())
    except Exception:  # not installed, or its plugin registry changed: this layer is off
        return []
    found: list[re.Pattern[str]] = []
    for cls in sorted(classes, key=lambda c: str(c.__name__)):
        if cls.__name__ in _SKIP:
            continue
        try:
            found += [p for p in getattr(cls(), "denylist", ()) if isinstance(p, re.Pattern)]
        except Exception:
            continue
    return found


def _span(m: re.Match[str]) -> tuple[int, int]:
    if m.re.groups and m.group(1) and len(m.group(1)) >= 8:
        return m.span(1)
    start, end = m.span()
    text = m.group(0)
    return start + (len(text) - len(text.lstrip(_EDGE))), end - (len(text) - len(text.rstrip(_EDGE)))


def redact_with(patterns: list[re.Pattern[str]], marker: str, *,
                guarded: bool = True) -> Callable[..., str]:
    """`guarded`: only the patterns whose necessary condition (prefilter.py) the text passes; same result.
    The function takes the text and, optionally, a Probe of it that other layers share."""
    prefilter = Prefilter([detect_secrets_guard(p) if guarded else None for p in patterns])

    def step(i: int, text: str) -> str:
        spans = [_span(m) for m in patterns[i].finditer(text)]
        for start, end in reversed([s for s in spans if s[1] > s[0]]):
            text = text[:start] + marker + text[end:]
        return text

    def run(text: str, probe: Probe | None = None) -> str:
        return prefilter.apply(text, step, probe)

    return run
