"""hermes-agent's per-request provider clients share one TLS context per CA source (agent/tls.py).

It built a new OpenAI client, httpx client and ssl.SSLContext for every model request: ~25 ms of
CPU and ~1 MB of C heap each, three a request with httpx's default ``verify=True``. With the
real AIAgent; only the model is scripted.
"""
from __future__ import annotations

import shutil
import ssl

import pytest

TIMEOUT = 60
CA_VARIABLES = ("HERMES_CA_BUNDLE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_DIR")


@pytest.fixture
def contexts_made(monkeypatch):
    """Every ssl.create_default_context call (hermes' CA file path and httpx's default both use it)."""
    made: list[ssl.SSLContext] = []
    real = ssl.create_default_context

    def counted(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ssl, "create_default_context", counted)
    return made


@pytest.fixture
def resolve():
    from hermes_jupyter.agent import hosting
    hosting.ensure_installed()
    import agent.ssl_verify as ssl_verify
    assert hasattr(ssl_verify.resolve_httpx_verify, "__wrapped__"), "hermes-agent's resolve_httpx_verify changed: read it again"
    return ssl_verify.resolve_httpx_verify


def certifi_copy(tmp_path):
    import certifi
    path = tmp_path / "ca.pem"
    shutil.copyfile(certifi.where(), path)
    return path


@pytest.mark.parametrize("ca", ["httpx default", "CA file"])
def test_the_requests_of_later_turns_make_no_tls_context(engine, tmp_path, monkeypatch, contexts_made, ca):
    for name in CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if ca == "CA file":
        monkeypatch.setenv("SSL_CERT_FILE", str(certifi_copy(tmp_path)))
    from hermes_jupyter.agent import tls
    monkeypatch.setattr(tls, "_contexts", {})  # as in a fresh kernel
    first = engine.submit("say hello", cwd=tmp_path)
    assert first.wait(TIMEOUT) and first.status == "done", first.status
    assert contexts_made  # (building an agent makes a few: hermes checks the CA bundle and probes the endpoint)
    contexts_made.clear()
    texts = []
    for prompt in ("say hello", "run echo", "say hello"):  # "run echo": two requests (a tool call, then the answer)
        turn = engine.submit(prompt, cwd=tmp_path)
        assert turn.wait(TIMEOUT) and turn.status == "done", (prompt, turn.status)
        texts.append(turn.text)
    assert "tool-output-ok" in texts[1]  # the tool ran and its result went back in a second request
    assert contexts_made == [], f"{len(contexts_made)} TLS contexts built by 4 requests"


def test_a_shared_context_is_the_one_hermes_or_httpx_would_build(resolve, tmp_path, monkeypatch):
    import httpx

    for name in CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    default = resolve()
    assert isinstance(default, ssl.SSLContext) and resolve() is default
    fresh = httpx.create_ssl_context(verify=True)
    ca = certifi_copy(tmp_path)
    monkeypatch.setenv("HERMES_CA_BUNDLE", str(ca))
    from_file = resolve()
    assert from_file is not default and resolve() is from_file
    assert resolve(ca_bundle=str(ca)) is from_file  # the same file by argument: the same context
    hermes_own = ssl.create_default_context(cafile=str(ca))  # what hermes-agent builds for a CA file
    for mine, theirs in ((default, fresh), (from_file, hermes_own)):
        assert mine.verify_mode == theirs.verify_mode == ssl.CERT_REQUIRED
        assert mine.check_hostname and theirs.check_hostname
        assert mine.cert_store_stats() == theirs.cert_store_stats()
        assert mine.options == theirs.options and mine.minimum_version == theirs.minimum_version


def test_a_changed_ca_file_gets_a_new_context_and_insecure_mode_stays_hermes_own(resolve, tmp_path, monkeypatch,
                                                                                  caplog):
    for name in CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    ca = certifi_copy(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    before = resolve()
    ca.write_text(ca.read_text().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")  # one CA left
    after = resolve()
    assert after is not before and after.cert_store_stats()["x509_ca"] == 1
    assert resolve(ssl_verify=False) is False and resolve(ssl_verify="off") is False
    assert "verification DISABLED" in caplog.text  # hermes' own warning, still given
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    fallback = resolve()  # hermes warns and falls back to the default certificates
    assert isinstance(fallback, ssl.SSLContext) and fallback.cert_store_stats()["x509_ca"] > 1
    assert "CA bundle path does not exist" in caplog.text
