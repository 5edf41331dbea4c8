"""redact_text / redact_obj / configured_secret_values: no secret on disk or screen."""
import json
import os

import pytest

from hermes_jupyter.safety import redact
from hermes_jupyter.safety.redact import MARKER, configured_secret_values, redact_obj, redact_text

# Planted secrets: one or more per pattern. None of these may survive.
SK = "sk-A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0UvWx"
SK_PROJ = "sk-proj-Xy9Zt8Wq7Vr6Us5Tp4Oo3Nn2Mm1Ll0KkJjIiHhGg_-FfEe"
SK_ANT = "sk-ant-api03-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp-abcdEFGH"
GHP = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
GHO = "gho_16C7e42F292c6912E7710c838347Ae178B4b"
GHU = "ghu_16C7e42F292c6912E7710c838347Ae178B4c"
GHS = "ghs_16C7e42F292c6912E7710c838347Ae178B4d"
GHR = "ghr_16C7e42F292c6912E7710c838347Ae178B4e"
GITHUB_PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01"
AWS = "AKIAIOSFODNN7EXAMPLE"
SLACK = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_USER = "xoxp-123456789012-1234567890123-ZyXwVuTsRqPoNmLkJiHgFeDc"
HF = "hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"
SENDGRID = "SG.abcdefghijABCDEFGHIJ12.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"
GOOGLE = "AIzaSyA1234567890abcdefghijklmnopqrstuvw"
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
X_API_KEY = "anthropicStyleOpaqueKey42"
HEADER_TOKEN = "opaqueTok3n_ABCDEF"
BARE_BEARER = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
KEY_VALUE = "plainvalue_12345"
TOKEN_VALUE = "zzTopSecretDeployTok"
SECRET_VALUE = "clientSecretValue77"
PASSWORD_VALUE = "correct horse battery staple"
YAML_PASSWORD = "hunter2hunter2"
JSON_API_KEY = "opaque-api-key-value"
PEM_BODY = "MIIEpAIBAAKCAQEA7bq98Zc0aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV1wX2yZ3"
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\nAbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/==\n-----END RSA PRIVATE KEY-----"
OPENSSH_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB"
EXTRA = "my-own-opaque-secret-0001"  # no pattern: only extra_secrets can catch it

PLANTED = [SK, SK_PROJ, SK_ANT, GHP, GHO, GHU, GHS, GHR, GITHUB_PAT, AWS, SLACK, SLACK_USER, HF, SENDGRID,
           GOOGLE, JWT, X_API_KEY, HEADER_TOKEN, BARE_BEARER, KEY_VALUE, TOKEN_VALUE, SECRET_VALUE, PASSWORD_VALUE,
           YAML_PASSWORD, JSON_API_KEY, PEM_BODY, OPENSSH_BODY, EXTRA]

PROSE = (
    f"Here is my key {SK}, the project one ({SK_PROJ}) and Claude's: {SK_ANT}.\n"
    f"GitHub: {GHP} / {GHO} / {GHU} / {GHS} / {GHR} and {GITHUB_PAT}\n"
    f"aws={AWS} slack <{SLACK}> hf:{HF} mail {SENDGRID} google {GOOGLE} jwt {JWT}\n"
    f"curl -H 'x-api-key: {X_API_KEY}' https://api.anthropic.com\n"
    f"curl -H 'Authorization: Bearer {HEADER_TOKEN}' -H \"X-Other: Bearer {BARE_BEARER}\"\n"
    f"MY_SERVICE_KEY={KEY_VALUE}\nexport DEPLOY_TOKEN=\"{TOKEN_VALUE}\"\n"
    f"CLIENT_SECRET: '{SECRET_VALUE}'\n\"DB_PASSWORD\": \"{PASSWORD_VALUE}\"\n"
    f"password: {YAML_PASSWORD}\n{{\"api_key\": \"{JSON_API_KEY}\"}}\n"
    f"and my own {EXTRA}"
)


def session_with_planted_secrets():
    args = {
        "command": f"curl -H 'Authorization: Bearer {HEADER_TOKEN}' https://api.example.com -d key={SK}",
        "env": {"OPENAI_API_KEY": SK_PROJ, "DB_PASSWORD": PASSWORD_VALUE, "notes": f"slack {SLACK}"},
        "api_key": JSON_API_KEY,
        "files": [GHP, {"deep": [f"token {HF}"]}],
    }
    tool_output = json.dumps({"output": f"{PEM}\nAWS_ACCESS_KEY_ID={AWS}\n{GITHUB_PAT}", "exit_code": 0})
    return {
        "title": f"Rotate {GHO} and {SENDGRID}",
        "messages": [
            {"role": "user", "content": PROSE},
            {"role": "assistant", "content": f"Using {SK_ANT}", "reasoning": f"the user gave {GHU}",
             "tool_calls": [{"id": "call_1", "type": "function",
                             "function": {"name": "terminal", "arguments": json.dumps(args)}},
                            {"id": "call_2", "type": "function",
                             "function": {"name": "broken", "arguments": f'{{"cmd": "echo {GHS}", '}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": tool_output},
            {"role": "tool", "tool_call_id": "call_2",
             "content": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{OPENSSH_BODY}\n(truncated)"},
            {"role": "assistant", "content": [{"type": "text", "text": f"Done; note {GHR} and {SLACK_USER}"}]},
        ],
        "usage": {"prompt_tokens": 10, "max_tokens": 4096},
        "by_key": {SK: "dict keys are redacted too", f"note {GOOGLE}": 1, EXTRA: f"Bearer {BARE_BEARER}"},
        "tuple": (f"Bearer {BARE_BEARER}", f"MY_SERVICE_KEY={KEY_VALUE}"),
        "extra": f"MY-{EXTRA}-tail",
    }


@pytest.fixture(params=["with-hermes", "fallback-only"])
def layers(request, monkeypatch):
    """Run each test with hermes-agent's redactor on top, and with our patterns alone."""
    if request.param == "fallback-only":
        monkeypatch.setattr(redact, "_hermes_redact", None)
    elif redact._hermes_redact is None:
        pytest.skip("agent.redact not importable")
    return request.param


def assert_clean(text: str) -> None:
    leaked = [s for s in PLANTED if s in text]
    assert not leaked, f"leaked: {leaked}"


# --- planted secrets -----------------------------------------------------------

def test_marker_is_json_safe():
    assert '"' not in MARKER and "'" not in MARKER and "\\" not in MARKER
    assert json.loads(json.dumps(MARKER)) == MARKER


def test_prose_redacted_and_names_kept(layers):
    out = redact_text(PROSE, extra_secrets=[EXTRA])
    assert_clean(out)
    for kept in (f"MY_SERVICE_KEY={MARKER}", f'DEPLOY_TOKEN="{MARKER}"', f"CLIENT_SECRET: '{MARKER}'",
                 f'"DB_PASSWORD": "{MARKER}"', f"password: {MARKER}", f'"api_key": "{MARKER}"',
                 "Here is my key", "and my own"):
        assert kept in out


@pytest.mark.parametrize("secret", [s for s in PLANTED if s not in (EXTRA, PASSWORD_VALUE, YAML_PASSWORD,
                                                                      KEY_VALUE, TOKEN_VALUE, SECRET_VALUE,
                                                                      JSON_API_KEY, HEADER_TOKEN, BARE_BEARER, PEM_BODY,
                                                                      X_API_KEY,
                                                                      OPENSSH_BODY)])
def test_each_token_pattern_alone(secret, layers):
    for text in (secret, f"x {secret} y", f'"{secret}"', f"({secret}).", f"KEY:{secret}"):
        out = redact_text(text)
        assert secret not in out, text


def test_session_redacted_end_to_end(layers):
    session = session_with_planted_secrets()
    out = redact_obj(session, extra_secrets=[EXTRA])
    for dumped in (json.dumps(out), json.dumps(out, ensure_ascii=False)):
        assert_clean(dumped)

    # Tool-call arguments are still JSON with the same keys (recursively).
    fn = out["messages"][1]["tool_calls"][0]["function"]
    args = json.loads(fn["arguments"])
    original = json.loads(session["messages"][1]["tool_calls"][0]["function"]["arguments"])
    assert args.keys() == original.keys()
    assert args["env"].keys() == original["env"].keys()
    assert args["api_key"] == MARKER and args["env"]["DB_PASSWORD"] == MARKER
    assert args["files"][1]["deep"] == [f"token {MARKER}"]
    assert "https://api.example.com" in args["command"]
    # Broken JSON arguments are redacted as text and stay broken in the same way.
    assert out["messages"][1]["tool_calls"][1]["function"]["arguments"] == f'{{"cmd": "echo {MARKER}", '
    # A JSON tool result stays JSON.
    result = json.loads(out["messages"][2]["content"])
    assert result["exit_code"] == 0 and MARKER in result["output"]
    # An unterminated private key (truncated output) is cut to the end.
    assert out["messages"][3]["content"] == MARKER
    # Structure and harmless values are untouched; the input is not mutated.
    assert out["usage"] == {"prompt_tokens": 10, "max_tokens": 4096}
    assert isinstance(out["tuple"], tuple)
    assert out["messages"][1]["tool_calls"][0]["id"] == "call_1"
    assert session == session_with_planted_secrets()


def test_secret_named_keys_redact_innocent_looking_values(layers):
    obj = {"password": "a", "API_KEY": 12345678, "Authorization": "Basic dXNlcg==",
           "token": None, "secret": "", "refresh_token": True, "headers": {"x-api-key": "abc"}}
    assert redact_obj(obj) == {"password": MARKER, "API_KEY": MARKER, "Authorization": MARKER,
                               "token": None, "secret": "", "refresh_token": True,
                               "headers": {"x-api-key": MARKER}}


def test_json_text_without_secrets_keeps_its_exact_formatting(layers):
    text = '{\n  "output": "hello",\n  "max_tokens": 4096, "token_count": 3\n}'
    assert redact_obj({"role": "tool", "content": text}) == {"role": "tool", "content": text}


def test_extra_secrets_longest_first_and_in_json(layers):
    out = redact_text("a=abcdefgh12345678 b=abcdefgh", extra_secrets=["abcdefgh", "abcdefgh12345678"])
    assert out == f"a={MARKER} b={MARKER}"
    assert redact_text("a short word", ["short", "", None]) == "a short word"  # < 8 chars: ignored
    dumped = json.dumps(redact_obj({"k": 'quote"abcdefgh\\x'}, extra_secrets=['quote"abcdefgh\\x']))
    assert json.loads(dumped) == {"k": MARKER}


def test_non_strings_pass_through():
    assert redact_text("") == ""
    assert redact_obj([1, 2.5, None, True, {"n": 1}]) == [1, 2.5, None, True, {"n": 1}]


# --- no false positives ---------------------------------------------------------

INNOCENT = [
    "A risk-based approach with a task-list-manager-for-everyone and sha_256 digests.",
    "The hf_hub_download helper; pdf_hf_loaderabcdefghijklmnopqrstuvwxyz; ghp_ marks GitHub tokens.",
    "scikit-learn, xoxo hugs, SG.1 results, AKIANOTAKEY, github_pat_ is a prefix.",
    "max_tokens=4096\nMAX_TOKENS = 4096\n    max_tokens=4096,\n",
    '{"max_tokens": 4096, "token_count": 12, "prompt_tokens": 3}',
    "token = tokenizer(text)\napi_key = os.getenv('OPENAI_API_KEY')\nsort_key=lambda x: x",
    "OPENAI_API_KEY=$OPENAI_API_KEY\nexport GITHUB_TOKEN=${GITHUB_TOKEN}",
    "Use os.environ['OPENAI_API_KEY'] to configure the client.",
    "Bearer authentication is required. Authorization failed for this user.",
    "The password is stored in the vault. I have password=foo in prose, the token: it expired.",
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
    "commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b, uuid 123e4567-e89b-12d3-a456-426614174000",
    "def get_token(self):\n    return self._token\n",
    "model:\n  default: anthropic/claude-sonnet-4\n  provider: openrouter\n",
    "See https://example.com/docs?page=2&lang=en for details.",
    # options that are not passwords; psql's --password takes no value ("prod" is the database)
    "ssh -p 22 host\ndocker run -p 8080:80 nginx\nmkdir -p build && git add -p\npython -p script.py",
    "curl -u admin https://api.example.com:8443/v1\ncurl --user-agent=agent:1 https://example.com",
    "psql -h db -U app --password prod\necho $PW | docker login -u me --password-stdin registry.example.com",
    "mysql -u root -p prod\nsshpass -f ~/.pw ssh -p 2222 host",
    "Use the --password option or --password-file=/run/secrets/db; set password rules in the admin page.",
    "DB_PASS=$DB_PASS\nmysql -p$MYSQL_PWD prod\ncurl -u \"me:${API_TOKEN}\" https://example.com",
    # settings named after passwords, and the shell's working directory
    "PASSWORD_MIN_LENGTH = 8\nPASSWORD_HASHERS = [\"argon2\"]\nPWD=/home/me\nOLDPWD=/tmp",
]


@pytest.mark.parametrize("text", INNOCENT)
def test_innocent_text_unchanged(text, layers):
    assert redact_text(text) == text
    assert redact_obj({"content": text, "nested": [text]}) == {"content": text, "nested": [text]}


# --- hermes-agent's redactor ------------------------------------------------------

def test_hermes_layer_is_used_even_when_disabled_by_config(monkeypatch):
    agent_redact = pytest.importorskip("agent.redact")
    assert redact._hermes_redact is agent_redact.redact_sensitive_text
    # HERMES_REDACT_SECRETS=false / security.redact_secrets: false is snapshotted
    # into _REDACT_ENABLED at import; our call must redact regardless.
    monkeypatch.setattr(agent_redact, "_REDACT_ENABLED", False)
    text = "db at postgres://admin:s3cr3tPassw0rd@db:5432/app, key pplx-AbCdEfGh1234567890"
    out = redact_text(text)
    assert "s3cr3tPassw0rd" not in out and "pplx-AbCdEfGh1234567890" not in out
    assert agent_redact.redact_sensitive_text(text) == text  # the switch really is off


def test_hermes_layer_does_not_remask_our_marker():
    pytest.importorskip("agent.redact")
    assert redact_text(f"Authorization: Bearer {HEADER_TOKEN}") == f"Authorization: {MARKER}"
    assert redact_text(f"OPENAI_API_KEY={SK}") == f"OPENAI_API_KEY={MARKER}"
    assert redact_text(f"x-api-key: {X_API_KEY}") == f"x-api-key: {MARKER}"


def test_hermes_only_prefixes_are_replaced_whole():
    # Vendor prefixes only hermes knows come back as our marker, not "pplx-A...7890".
    pytest.importorskip("agent.redact")
    assert redact_text("keys: pplx-AbCdEfGh1234567890, gsk_AbCdEfGh1234567890") == f"keys: {MARKER}, {MARKER}"


def test_deeply_nested_json_text_falls_back_to_plain_redaction():
    text = "[" * 100000 + f'"{SK}"' + "]" * 100000
    out = redact_obj({"content": text})["content"]
    assert SK not in out and out.startswith("[[[")


def test_a_failing_hermes_layer_falls_back(monkeypatch):
    def boom(text, **kwargs):
        raise RuntimeError("bug")
    monkeypatch.setattr(redact, "_hermes_redact", boom)
    assert redact_text(f"key {SK}") == f"key {MARKER}"


# --- configured_secret_values -------------------------------------------------------

def test_configured_secret_values_env_dotenv_and_config(tmp_path):
    (tmp_path / ".env").write_text(
        "# comment\n"
        "export ANTHROPIC_API_KEY=sk-ant-from-dotenv-0001\n"
        "GITHUB_TOKEN='ghp-from-dotenv-quoted'\n"
        'SMTP_PASSWORD="pass word 123"\n'
        "SHORT_TOKEN=abc\n"
        "DEBUG=1\n"
        "MY_SECRET=inline-value-01 # trailing comment\n"
    )
    (tmp_path / "config.yaml").write_text(
        "model:\n  default: gpt-4o\n  api_key: model-api-key-0001\n"
        "providers:\n  openrouter:\n    api_key: providers-key-0002\n  local:\n    api_key: ${LOCAL_KEY}\n"
        "fallback_model:\n  api_key: fallback-key-0003\n"
        "custom_providers:\n  - name: x\n    api_key: custom-list-key-0004\n"
        "auxiliary:\n  vision:\n    api_key: short\n"
        "max_tokens: 4096123456\n"
    )
    environ = {"OPENAI_API_KEY": "sk-env-openai-0001", "HF_TOKEN": "hf_envtoken0001", "AWS_SECRET": "shh",
               "MYSQL_PWD": "mysql-pwd-env-0001", "GPG_PASSPHRASE": "passphrase-env-0001",
               "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": "/home/someone", "OLDPWD": "/home/someone/before"}
    found = configured_secret_values(environ, hermes_home=tmp_path)
    assert found == {"sk-env-openai-0001", "hf_envtoken0001", "mysql-pwd-env-0001", "passphrase-env-0001",
                     "sk-ant-from-dotenv-0001", "ghp-from-dotenv-quoted",
                     "pass word 123", "inline-value-01", "model-api-key-0001", "providers-key-0002",
                     "fallback-key-0003", "custom-list-key-0004"}


def test_configured_secret_values_defaults_to_process_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HERMES_HOME", str(tmp_path))
    monkeypatch.setenv("JUPYTER_TOKEN", "jupyter-token-0001")
    (tmp_path / "config.yaml").write_text("model:\n  api_key: from-default-home-01\n")
    found = configured_secret_values()
    assert {"jupyter-token-0001", "from-default-home-01"} <= found
    # ... and the values redact text that matches no pattern.
    assert redact_text("token jupyter-token-0001 here", found) == f"token {MARKER} here"


def test_configured_secret_values_tolerates_missing_and_broken_files(tmp_path):
    assert configured_secret_values({}, hermes_home=tmp_path / "nope") == set()
    (tmp_path / "config.yaml").write_text("model: [unclosed\n  api_key: : :\n")
    (tmp_path / ".env").write_bytes(b"\xff\xfe garbage without equals\nX_KEY=\xffvalue-bytes\n")
    assert configured_secret_values({}, hermes_home=tmp_path) == {"\ufffdvalue-bytes"}
    (tmp_path / "config.yaml").write_text("just a string\n")
    assert configured_secret_values({}, hermes_home=tmp_path) == {"\ufffdvalue-bytes"}


def test_conftest_home_is_used_by_default():
    assert os.environ["HERMES_HOME"]
    assert isinstance(configured_secret_values(), set)


@pytest.mark.parametrize("opening", ['x = r"""', "s = '", "see `", "{\"note\": \""])
def test_every_secret_shape_is_redacted_right_after_an_opening_quote(opening):
    """A config line pasted into a string literal or a code span starts after a quote, not at a line start."""
    from .secrets_corpus import corpus

    planted = corpus(f"after-quote-{opening}")
    closing = {'x = r"""': '"""', "s = '": "'", "see `": "`", "{\"note\": \"": "\"}"}[opening]
    leaked = [p.shape for p in planted if p.leaked_in(redact_text(f"{opening}{p.line}{closing}"))]
    assert len(planted) >= 60 and leaked == []


# ----- the prefilter: a rule whose necessary condition fails is skipped, with the very same result ---------------
# Pieces that make patterns match, nearly match, or match only case-insensitively through the letters re folds
# beyond ASCII (Kelvin sign, dotless i, long s, dotted capital I) and a non-ASCII digit.
NEAR_MISSES = ["Authorization: ", "AUTHORİZATION: Bearer ", "authorızation:", "x-api-key: ", "X-AUTH-TOKEN:",
               "Bearer ", "password ", "paſſword: ", "PASSWORD=", "api_key=", "\"token\": ", "'secret': '",
               "Set-Cookie: ", "machine example.com login me password ", "://user:", "@host", "?sig=", "&token=",
               "AKIA", "ASIA", "AKC", "AP1", "AccountKey=", "aws_secret_key = \"", "xox", "hooks.slack.com/services/",
               "cloudant_password: ", "ibm_cloud_iam_key: ", "softlayer_api_key: ", "k_live_", "sk_live_", "AC", "SK",
               "-us1", "12345678:", "eyJ", "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----",
               "--password=", "--db-pass ", "mysql -u me -p", "mariadb ", "sshpass -v -p ", "docker login -u me -p ",
               "curl -u me:", "--user=", "set -gx ", "DB_PASS=", "MYSQL_PWD ", "PASSPHRASE: ", "['SECRET_KEY'] = ",
               "- db: password: ", "passphrase=",
               "\u212aEY=", "tO\u212aEN: ", "٣٣٣٣٣٣٣٣٣٣", "— “quoted” —", "\n", "\n  - ", " = ", ": ", "\"", "'", "`"]
RUNS = ["0123456789abcdef", "ABCDEFGHIJKLMNOPQRSTUVWX", "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", "Zz9_-" * 9,
        "ſ" * 20, "\u212a" * 24, "ı" * 30]


def generated_texts(n: int, seed: int = 7) -> list[str]:
    import random

    from hermes_jupyter.models.scripted.script import lorem

    from .secrets_corpus import corpus

    rng = random.Random(seed)
    lines = [p.line for p in corpus("prefilter")]
    words = lorem(300).split()
    texts = []
    for _ in range(n):
        pieces = []
        for _ in range(rng.randint(1, 14)):
            kind = rng.random()
            if kind < 0.45:
                pieces.append(" ".join(rng.choices(words, k=rng.randint(1, 12))))
            elif kind < 0.75:
                pieces.append(rng.choice(NEAR_MISSES))
            elif kind < 0.9:
                pieces.append(rng.choice(RUNS)[: rng.randint(8, 64)])
            else:
                pieces.append(rng.choice(lines))
        texts.append(rng.choice(["", " ", "\n"]).join(pieces))
    return texts


def test_the_prefilter_never_changes_a_result():
    from .secrets_corpus import corpus

    texts = [*generated_texts(3000), *(p.line for p in corpus("prefilter-alone")),
             *(f"see {p.line} and more" for p in corpus("prefilter-inline"))]
    differ = [t for t in texts if redact._redact(t, None) != redact._redact(t, None, guarded=False)]
    assert differ == []
    changed = sum(redact._redact(t, None) != t for t in texts)  # the corpus is not all misses
    assert changed > len(texts) // 3


def test_every_detect_secrets_guard_names_an_installed_pattern():
    """A guard is keyed by its pattern's text: one that no longer names a pattern guards nothing (say so)."""
    from hermes_jupyter.safety import prefilter
    from hermes_jupyter.safety.detectors import detect_secrets_patterns

    installed = {p.pattern for p in detect_secrets_patterns()}
    assert [k for k in prefilter._DETECT_SECRETS_GUARDS if k not in installed] == []


def test_the_folded_letters_reach_the_case_insensitive_guards():
    # re matches "authorization" in these (simple case folding plus its two extra pairs): so must the guards.
    for text in ["AUTHORİZATION: Bearer abcdefghijklmnop1234", "authorızation: Basic dXNlcjpwYXNzd29yZA==",
                 "Set-Coo\u212aie: session=abcdef0123456789", "paſſword: hunter2hunter2",
                 # runs that are long only counting what \d and IGNORECASE classes match beyond ASCII
                 "M" + "٣" * 24 + "." + "٣" * 6 + "." + "٣" * 27, "cloudant_pw = " + "\u212a" * 24]:
        assert redact._redact(text, None) == redact._redact(text, None, guarded=False) != text
