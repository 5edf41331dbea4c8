"""One TLS context per CA source, shared by every provider client hermes-agent builds.

hermes-agent makes a new OpenAI client, with a new httpx client, for every model request
(its per-request clients), and with it new ``ssl.SSLContext`` objects. Loading a CA bundle
into one costs ~25 ms of CPU and about a megabyte of C allocations; with the default
``verify=True`` httpx builds three per client (its own transport and the two plain mounts
hermes adds). In a kernel that was most of a turn's wait for its first token, and churn in
the C heap that a finished turn left behind as RSS.

``resolve_httpx_verify`` decides what a client verifies with; ``reusing`` wraps it so the
same decision hands out one context per CA source, built the way hermes (a CA file) or
httpx (``verify=True``: SSL_CERT_FILE, SSL_CERT_DIR, else certifi) builds it, and built
again when the file changes. A context is safe to share between clients and threads;
httpcore sets ALPN on it per connection, the same value for every HTTP/1.1 client hermes
makes. Insecure mode (``ssl_verify: false``) and anything unexpected are left to hermes.
"""
from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_contexts: dict[tuple[Any, ...], ssl.SSLContext] = {}
_KEEP = 8  # CA sources remembered (a file that changes leaves its old context behind)
_CA_VARIABLES = ("HERMES_CA_BUNDLE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")  # hermes' order


def _stamp(path: str | None) -> tuple[Any, ...]:
    """What identifies a CA source's contents: its path, modification time and size."""
    if not path:
        return (None,)
    try:
        st = os.stat(path)
    except OSError:
        return (path, None)
    return (path, st.st_mtime_ns, st.st_size)


def shared(key: tuple[Any, ...], make: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """The context for key, made once (two threads may both make it; one is kept)."""
    with _lock:
        context = _contexts.get(key)
    if context is not None:
        return context
    context = make()
    with _lock:
        if key not in _contexts and len(_contexts) >= _KEEP:
            _contexts.pop(next(iter(_contexts)))
        return _contexts.setdefault(key, context)


def httpx_default() -> ssl.SSLContext | None:
    """What ``httpx`` builds for ``verify=True`` (trust_env on, as hermes' clients have it)."""
    try:
        import certifi
        import httpx
        make = httpx.create_ssl_context
    except (ImportError, AttributeError):
        return None
    key = ("httpx", _stamp(os.environ.get("SSL_CERT_FILE")), os.environ.get("SSL_CERT_DIR"), _stamp(certifi.where()))
    return shared(key, lambda: make(verify=True))


def reusing(real: Callable[..., Any], insecure: Callable[[Any], bool]) -> Callable[..., Any]:
    """``resolve_httpx_verify`` handing out shared contexts (its checked source decides in the same order)."""

    def resolve_httpx_verify(*, ca_bundle: str | None = None, ssl_verify: Any = None, base_url: str = "") -> Any:
        if insecure(ssl_verify):
            return real(ca_bundle=ca_bundle, ssl_verify=ssl_verify, base_url=base_url)  # False, and its warning
        effective = (ca_bundle or "").strip() or next(
            (value for value in (os.getenv(name, "").strip() for name in _CA_VARIABLES) if value), "")
        if effective:
            path = str(Path(effective).expanduser())
            if os.path.isfile(path):
                return shared(("cafile", *_stamp(path)), lambda: ssl.create_default_context(cafile=path))
        verify = real(ca_bundle=ca_bundle, ssl_verify=ssl_verify, base_url=base_url)  # (warns of a missing file)
        if verify is True:
            return httpx_default() or True
        return verify

    resolve_httpx_verify.__wrapped__ = real  # type: ignore[attr-defined]
    return resolve_httpx_verify
