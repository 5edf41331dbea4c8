"""A corpus of secret shapes, built at run time.

No key is written in this file: every vendor prefix is assembled from fragments and every secret
body is drawn from a seeded random generator, so nothing here is a real key and no scanner
(GitHub push protection included) finds one. Each ``Shape`` makes one line of text as it would
appear in a prompt, a config file or a tool's output, and the part of it that is the secret (its
``core``: random characters only, never a known prefix). A sink leaks a planted secret when any
LEAK_WINDOW characters of its core appear in it: a head-and-tail mask (``sk-abc...wxyz``) is a
leak of no more than 7 characters and is not counted; anything longer is.

``python -m tests.secrets_corpus`` prints which shapes detect-secrets' plugins, hermes-agent's
redactor and this project's redactor each catch.
"""
from __future__ import annotations

import base64
import random
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass

LEAK_WINDOW = 8
ALNUM = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase + string.digits
LOWER = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"
PASSWORD = ALNUM + "!#%*+,.:=?@^_~"  # what people put in passwords; no quote, "$" or "-" to start an option
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"


def j(*parts: str) -> str:
    """A literal assembled from fragments, so no scanner reads a key shape in the source."""
    return "".join(parts)


@dataclass(frozen=True)
class Planted:
    shape: str
    family: str
    line: str  # the text as planted
    core: str  # what must never reach the disk

    def leaked_in(self, text: str) -> bool:
        core = self.core
        return any(core[i:i + LEAK_WINDOW] in text for i in range(max(1, len(core) - LEAK_WINDOW + 1)))


@dataclass(frozen=True)
class Shape:
    name: str
    family: str
    make: Callable[[Callable[[str, int], str]], tuple[str, str]]  # rand(alphabet, n) -> (line, core)


def _token(prefix: str, alphabet: str, n: int, template: str = "{}") -> Callable[..., tuple[str, str]]:
    def make(rand: Callable[[str, int], str]) -> tuple[str, str]:
        core = rand(alphabet, n)
        return template.format(prefix + core), core
    return make


def _assign(template: str, alphabet: str = ALNUM, n: int = 24) -> Callable[..., tuple[str, str]]:
    def make(rand: Callable[[str, int], str]) -> tuple[str, str]:
        core = rand(alphabet, n)
        return template.format(core), core
    return make


def _pem(kind: str) -> Callable[..., tuple[str, str]]:
    def make(rand: Callable[[str, int], str]) -> tuple[str, str]:
        body = [rand(B64, 64) for _ in range(4)]
        dashes = "-" * 5
        head, tail = f"{dashes}{j('BEG', 'IN')} {kind}{dashes}", f"{dashes}END {kind}{dashes}"
        return "\n".join([head, *body, tail]), "".join(body)
    return make


def _basic(rand: Callable[[str, int], str]) -> tuple[str, str]:
    core = base64.b64encode(f"{rand(LOWER, 6)}:{rand(ALNUM, 18)}".encode()).decode()
    return f"Authorization: Basic {core}", core


def _jwt(rand: Callable[[str, int], str]) -> tuple[str, str]:
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
    core = rand(URLSAFE, 43)
    payload = base64.urlsafe_b64encode(b'{"sub":"1234567890","name":"nb"}').decode().rstrip("=")
    return f"token {head}.{payload}.{core}", core


def _discord(rand: Callable[[str, int], str]) -> tuple[str, str]:
    core = f"{rand(URLSAFE, 6)}.{rand(URLSAFE, 27)}"
    return f"discord bot: M{rand(ALNUM, 23)}.{core}", core


def _slack_webhook(rand: Callable[[str, int], str]) -> tuple[str, str]:
    core = rand(ALNUM, 24)
    return f"{j('https://hooks.', 'slack.com')}/services/T{rand(UPPER, 8)}/B{rand(UPPER, 8)}/{core}", core


def _discord_webhook(rand: Callable[[str, int], str]) -> tuple[str, str]:
    core = rand(URLSAFE, 68)
    return f"{j('https://discord', '.com')}/api/webhooks/{rand(string.digits, 18)}/{core}", core


def _telegram(rand: Callable[[str, int], str]) -> tuple[str, str]:
    core = "AA" + rand(URLSAFE, 33)
    return f"bot {rand(string.digits, 10)}:{core}", core


def _azure_conn(rand: Callable[[str, int], str]) -> tuple[str, str]:
    core = rand(B64, 86) + "=="
    return (f"DefaultEndpointsProtocol=https;AccountName=nbstore;{j('Account', 'Key')}={core};"
            "EndpointSuffix=core.windows.net"), core


def _sas(rand: Callable[[str, int], str]) -> tuple[str, str]:
    core = rand(ALNUM, 43)
    return f"https://nbstore.blob.core.windows.net/data?sv=2022-11-02&sp=r&{j('si', 'g')}={core}%3D", core


def _gcp_json(rand: Callable[[str, int], str]) -> tuple[str, str]:
    core = rand(B64, 64)
    dashes = "-" * 5
    return (f'{{"type": "service_account", "private_key_id": "{rand(HEX, 40)}", "private_key": '
            f'"{dashes}{j("BEG", "IN")} PRIVATE KEY{dashes}\\n{core}\\n{dashes}END PRIVATE KEY{dashes}\\n"}}'), core


def _netrc(rand: Callable[[str, int], str]) -> tuple[str, str]:
    core = rand(ALNUM, 20)
    return f"machine api.example.com login alice password {core}", core


def _url(scheme: str, user: str = "app") -> Callable[..., tuple[str, str]]:
    def make(rand: Callable[[str, int], str]) -> tuple[str, str]:
        core = rand(ALNUM, 20)
        return f"{scheme}://{user}:{core}@db.internal.example:5432/main", core
    return make


def _mailchimp(rand: Callable[[str, int], str]) -> tuple[str, str]:
    core = rand(HEX, 32)
    return f"mailchimp {core}-us12", core


def _pypi(rand: Callable[[str, int], str]) -> tuple[str, str]:
    core = rand(URLSAFE, 80)
    return j("pyp", "i-AgEIcHlwaS5vcmc") + core, core


def _age(rand: Callable[[str, int], str]) -> tuple[str, str]:
    core = rand("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)
    return j("AGE-SECRET", "-KEY-1") + core, core


SHAPES: list[Shape] = [
    # LLM providers
    Shape("openai", "llm", _token(j("s", "k-"), ALNUM, 48)),
    Shape("openai-project", "llm", _token(j("s", "k-proj-"), URLSAFE, 64)),
    Shape("anthropic", "llm", _token(j("s", "k-ant-api03-"), URLSAFE, 80)),
    Shape("openrouter", "llm", _token(j("s", "k-or-v1-"), HEX, 64)),
    Shape("groq", "llm", _token(j("gs", "k_"), ALNUM, 52)),
    Shape("huggingface", "llm", _token(j("h", "f_"), ALNUM, 34)),
    Shape("replicate", "llm", _token(j("r", "8_"), ALNUM, 37)),
    Shape("perplexity", "llm", _token(j("ppl", "x-"), ALNUM, 48)),
    Shape("xai", "llm", _token(j("xa", "i-"), ALNUM, 80)),
    Shape("mistral-by-name", "llm", _assign("MISTRAL_API_KEY={}", ALNUM, 32)),
    # GitHub
    Shape("github-classic", "github", _token(j("gh", "p_"), ALNUM, 36)),
    Shape("github-oauth", "github", _token(j("gh", "o_"), ALNUM, 36)),
    Shape("github-app", "github", _token(j("gh", "s_"), ALNUM, 36)),
    Shape("github-fine-grained", "github", _token(j("github", "_pat_"), ALNUM + "_", 82)),
    # GitLab
    Shape("gitlab-pat", "gitlab", _token(j("glp", "at-"), URLSAFE, 20)),
    Shape("gitlab-deploy", "gitlab", _token(j("gld", "t-"), URLSAFE, 20)),
    Shape("gitlab-runner", "gitlab", _token(j("glr", "t-"), URLSAFE, 20)),
    # AWS
    Shape("aws-access-key-id", "aws", _token(j("AK", "IA"), UPPER, 16)),
    Shape("aws-secret-access-key", "aws", _assign("aws_secret_access_key = {}", B64, 40)),
    Shape("aws-session-token", "aws", _assign("AWS_SESSION_TOKEN={}", B64, 120)),
    # Google
    Shape("google-api-key", "google", _token(j("AI", "za"), URLSAFE, 35)),
    Shape("google-oauth-secret", "google", _token(j("GOC", "SPX-"), URLSAFE, 28)),
    Shape("gcp-service-account", "google", _gcp_json),
    # Azure
    Shape("azure-storage-connection", "azure", _azure_conn),
    Shape("azure-sas-url", "azure", _sas),
    Shape("azure-client-secret", "azure", _assign("AZURE_CLIENT_SECRET={}", URLSAFE + "~.", 40)),
    # Slack and Discord
    Shape("slack-bot", "chat", _token(j("xo", "xb-") + "1234567890-1234567890123-", ALNUM, 24)),
    Shape("slack-user", "chat", _token(j("xo", "xp-") + "1234567890-1234567890123-1234567890123-", HEX, 32)),
    Shape("slack-app", "chat", _token(j("xa", "pp-") + "1-A01BC2DEF3G-1234567890123-", HEX, 64)),
    Shape("slack-webhook", "chat", _slack_webhook),
    Shape("discord-bot", "chat", _discord),
    Shape("discord-webhook", "chat", _discord_webhook),
    Shape("telegram-bot", "chat", _telegram),
    # payments and commerce
    Shape("stripe-secret", "payments", _token(j("sk", "_live_"), ALNUM, 24)),
    Shape("stripe-restricted", "payments", _token(j("rk", "_live_"), ALNUM, 24)),
    Shape("stripe-webhook", "payments", _token(j("wh", "sec_"), ALNUM, 32)),
    Shape("square-oauth", "payments", _token(j("sq0", "csp-"), URLSAFE, 43)),
    Shape("shopify-admin", "payments", _token(j("shp", "at_"), HEX, 32)),
    Shape("shopify-shared", "payments", _token(j("shp", "ss_"), HEX, 32)),
    # mail and messaging services
    Shape("sendgrid", "mail", lambda rand: ((lambda a, b: (j("S", "G.") + a + "." + b, a + "." + b))(
        rand(URLSAFE, 22), rand(URLSAFE, 43)))),
    Shape("mailgun", "mail", _token(j("ke", "y-"), HEX, 32)),
    Shape("mailchimp", "mail", _mailchimp),
    Shape("twilio-key", "mail", _token(j("S", "K"), HEX, 32)),
    # developer platforms
    Shape("npm", "devtools", _token(j("np", "m_"), ALNUM, 36)),
    Shape("pypi", "devtools", _pypi),
    Shape("docker-hub", "devtools", _token(j("dckr", "_pat_"), URLSAFE, 27)),
    Shape("linear", "devtools", _token(j("lin", "_api_"), ALNUM, 40)),
    Shape("notion", "devtools", _token(j("nt", "n_"), ALNUM, 46)),
    Shape("atlassian", "devtools", _token(j("ATA", "TT3x"), URLSAFE, 180)),
    Shape("sentry", "devtools", _token(j("sntr", "ys_"), URLSAFE, 60)),
    Shape("digitalocean", "devtools", _token(j("do", "p_v1_"), HEX, 64)),
    Shape("vault", "devtools", _token(j("hv", "s."), URLSAFE, 90)),
    Shape("databricks", "devtools", _token(j("da", "pi"), HEX, 32)),
    Shape("grafana", "devtools", _token(j("gl", "sa_"), ALNUM, 32)),
    Shape("postman", "devtools", _token(j("PM", "AK-"), HEX, 24)),
    Shape("figma", "devtools", _token(j("fi", "gd_"), URLSAFE, 40)),
    # credentials in URLs
    Shape("postgres-url", "url", _url("postgresql")),
    Shape("mysql-url", "url", _url("mysql")),
    Shape("mongodb-url", "url", _url("mongodb+srv")),
    Shape("redis-url", "url", _url("redis", "")),
    Shape("amqp-url", "url", _url("amqp")),
    Shape("https-userinfo", "url", _url("https", "deploy")),
    # HTTP headers
    Shape("bearer-header", "header", _assign("Authorization: Bearer {}", URLSAFE, 40)),
    Shape("basic-header", "header", _basic),
    Shape("x-api-key-header", "header", _assign("x-api-key: {}", ALNUM, 32)),
    Shape("cookie-session", "header", _assign("Cookie: sessionid={}; csrftoken=abc", LOWER, 32)),
    # private keys
    Shape("rsa-private-key", "private-key", _pem("RSA PRIVATE KEY")),
    Shape("openssh-private-key", "private-key", _pem("OPENSSH PRIVATE KEY")),
    Shape("pgp-private-key", "private-key", _pem("PGP PRIVATE KEY BLOCK")),
    Shape("age-secret-key", "private-key", _age),
    # tokens without a vendor
    Shape("jwt", "jwt", _jwt),
    # configuration
    Shape("json-password", "config", _assign('{{"user": "alice", "password": "{}"}}', ALNUM, 20)),
    Shape("yaml-api-key", "config", _assign("api_key: {}", ALNUM, 32)),
    Shape("env-db-password", "config", _assign("DB_PASSWORD={}", ALNUM, 20)),
    Shape("export-token", "config", _assign("export API_TOKEN={}", ALNUM, 32)),
    Shape("python-client-secret", "config", _assign('client_secret = "{}"', ALNUM, 32)),
    Shape("netrc", "config", _netrc),
    # passwords by name: the env-var spellings besides *_PASSWORD, subscripts, nested YAML, fish's set
    Shape("env-db-pass", "password", _assign("DB_PASS={}", ALNUM, 18)),
    Shape("env-smtp-pass", "password", _assign("export SMTP_PASS='{}'", PASSWORD, 18)),
    Shape("env-mysql-pwd", "password", _assign("MYSQL_PWD={}", ALNUM, 18)),
    Shape("env-passphrase", "password", _assign('PASSPHRASE="{}"', PASSWORD, 24)),
    Shape("flask-secret-key", "password", _assign("app.config['SECRET_KEY'] = '{}'", PASSWORD, 32)),
    Shape("yaml-nested-password", "password", _assign("- db: password: {}", ALNUM, 16)),
    Shape("fish-set-password", "password", _assign("set -gx DB_PASSWORD {}", ALNUM, 20)),
    # passwords on command lines
    Shape("mysql-password-option", "command-line", _assign("mysql -u root --password={} prod", ALNUM, 16)),
    Shape("mysql-p-attached", "command-line", _assign("mysql -h db -u root -p{} prod", ALNUM, 16)),
    Shape("wget-password", "command-line", _assign("wget --user=bob --password='{}' https://files.example.com/a",
                                                   PASSWORD, 16)),
    Shape("curl-user", "command-line", _assign("curl -u admin:{} https://api.example.com/v1", ALNUM, 16)),
    Shape("docker-login", "command-line", _assign("docker login -u me -p {} registry.example.com", ALNUM, 20)),
    Shape("sshpass", "command-line", _assign("sshpass -p '{}' ssh root@host", PASSWORD, 14)),
]


def corpus(seed: int | str, shapes: Iterable[Shape] = SHAPES) -> list[Planted]:
    """One secret of each shape, different for every seed (a seed per place they are planted)."""
    rng = random.Random(str(seed))

    def rand(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    return [Planted(s.name, s.family, *s.make(rand)) for s in shapes]


def families() -> set[str]:
    return {s.family for s in SHAPES}


def _detect_secrets_redact() -> Callable[[str], str]:
    from hermes_jupyter.safety.detectors import detect_secrets_patterns, redact_with

    return redact_with(detect_secrets_patterns(), "[REDACTED]")


def compare() -> dict[str, dict[str, bool]]:
    """Shape -> {detector: caught} for detect-secrets' regex plugins, hermes-agent's redactor and
    ours (the whole pipeline of safety/redact.py, which uses the other two)."""
    from agent.redact import redact_sensitive_text

    from hermes_jupyter.safety.redact import redact_text

    detectors: dict[str, Callable[[str], str]] = {
        "detect-secrets": _detect_secrets_redact(),
        "hermes": lambda text: redact_sensitive_text(text, force=True),
        "ours": redact_text,
    }
    return {p.shape: {name: not p.leaked_in(fn(p.line)) for name, fn in detectors.items()}
            for p in corpus("compare")}


if __name__ == "__main__":
    table = compare()
    names = list(next(iter(table.values())))
    print(f"{len(table)} shapes in {len(families())} families")
    print("| shape | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for shape, caught in table.items():
        print(f"| {shape} | " + " | ".join("yes" if caught[n] else "**no**" for n in names) + " |")
    print("| caught | " + " | ".join(str(sum(c[n] for c in table.values())) for n in names) + " |")
    own = [shape for shape, c in table.items() if not (c["detect-secrets"] or c["hermes"])]
    print(f"caught by neither detect-secrets nor hermes ({len(own)}, our own patterns): {', '.join(own)}")
