"""Secret shapes by structure, in two halves: families to develop the rules on, and families held out.

Where tests/secrets_corpus.py lists vendors, this generator builds secrets in the *places* a
secret sits: a value in a key-like position of a format (JSON, YAML, TOML, INI, .env, shell,
CLI flags, HTTP headers, query parameters, connection strings, code), tokens with prefixes no
list names (the prefix itself is random), private-key blocks, credentials in URLs and in
base64. Every value is random per seed; no vendor prefix is written whole (see secrets_corpus.j).

The families are split in two. DEV families were used to develop the rules of safety/redact.py.
HELD_OUT families were written before any rule was tuned and were never used to tune one: the
test reports their rate and asserts it, nothing else. Do not change the rules to pass them; if
they fail, report the rate (README "What is redacted where").
"""
from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable

from .secrets_corpus import ALNUM, B64, HEX, LOWER, UPPER, URLSAFE, Planted, Shape, j

Rand = Callable[[str, int], str]
PW_SPECIAL = "!#%*+.?^_~"  # no quote, separator or "$": what survives unescaped in every format here
DASHES = "-" * 5


def pw(rand: Rand, n: int = 14) -> str:
    """A password as people make them: starts with a letter or digit, mixes in specials."""
    return rand(ALNUM, 1) + rand(ALNUM + PW_SPECIAL, n - 1)


def urlpw(rand: Rand, n: int = 16) -> str:
    return rand(ALNUM, 1) + rand(ALNUM + "-_.~", n - 1)


def tok(rand: Rand, n: int = 32) -> str:
    return rand(ALNUM, n)


def b64(data: str) -> str:
    return base64.b64encode(data.encode()).decode()


def S(name: str, family: str, make: Callable[[Rand], tuple[str, str]]) -> Shape:
    return Shape(name, family, make)


def fmt(template: str, value: Callable[[Rand], str]) -> Callable[[Rand], tuple[str, str]]:
    """A line from `template` with {v} the secret (and {u} a random user, {h} a random host)."""
    def make(rand: Rand) -> tuple[str, str]:
        v = value(rand)
        return template.format(v=v, u="u" + rand(LOWER, 5), h=f"db-{rand(LOWER, 4)}.example.net"), v
    return make


def _pem(kind: str, lines: int = 4) -> Callable[[Rand], list[str]]:
    def body(rand: Rand) -> list[str]:
        return [rand(B64, 64) for _ in range(lines)]
    return body


def pem_block(kind: str, body: list[str], newline: str = "\n") -> str:
    begin = j("BEG", "IN")
    return newline.join([f"{DASHES}{begin} {kind}{DASHES}", *body, f"{DASHES}END {kind}{DASHES}"])


def pem_shape(kind: str, wrap: Callable[[str], str], newline: str = "\n") -> Callable[[Rand], tuple[str, str]]:
    def make(rand: Rand) -> tuple[str, str]:
        body = _pem(kind)(rand)
        return wrap(pem_block(kind, body, newline)), "".join(body)
    return make


def prefix(rand: Rand, parts: int, upper: bool = False) -> str:
    """A vendor-style prefix nobody lists: random letters, in `parts` parts."""
    alphabet = string.ascii_uppercase if upper else string.ascii_lowercase
    seps = "_-"
    out = [rand(alphabet, 2 + int(rand("0123", 1)))]
    for _ in range(parts - 1):
        out.append(rand(seps, 1) + rand(alphabet + string.digits, 2 + int(rand("012", 1))))
    return "".join(out)


def vendor(parts: int, sep: str, body: str = ALNUM, n: int = 32, upper: bool = False,
           template: str = "{t}") -> Callable[[Rand], tuple[str, str]]:
    def make(rand: Rand) -> tuple[str, str]:
        core = rand(body, n)
        return template.format(t=prefix(rand, parts, upper) + sep + core), core
    return make


# ----- DEV: the rules were developed on these ------------------------------------------------------

DEV: list[Shape] = [
    # JSON fields whose key says secret
    S("json-password", "json-fields", fmt('{{"host": "{h}", "password": "{v}"}}', pw)),
    S("json-apiKey-camel", "json-fields", fmt('{{"apiKey": "{v}", "region": "eu"}}', tok)),
    S("json-client-secret", "json-fields", fmt('{{"client_id": "abc", "client_secret": "{v}"}}', tok)),
    S("json-nested-pass", "json-fields", fmt('{{"db": {{"user": "{u}", "pass": "{v}"}}}}', pw)),
    S("json-authToken", "json-fields", fmt('{{"authToken": "{v}"}}', tok)),
    S("json-credentials", "json-fields", fmt('{{"credentials": "{v}"}}', tok)),
    S("json-accessKey", "json-fields", fmt('{{"accessKey": "{v}"}}', lambda r: r(B64, 40))),
    S("json-one-line-in-prose", "json-fields", fmt('the config is {{"user":"{u}","dbPassword":"{v}"}} ok?', pw)),
    # YAML
    S("yaml-password", "yaml-fields", fmt("password: {v}", pw)),
    S("yaml-indented-db-password", "yaml-fields", fmt("database:\n  user: {u}\n  db_password: {v}", pw)),
    S("yaml-quoted-apiToken", "yaml-fields", fmt("apiToken: '{v}'", tok)),
    S("yaml-secret-access-key", "yaml-fields", fmt("  secret_access_key: {v}", lambda r: r(B64, 40))),
    S("yaml-auth", "yaml-fields", fmt("registry:\n  auth: {v}", tok)),
    S("yaml-client-secret-dashed", "yaml-fields", fmt("client-secret: {v}", tok)),
    S("yaml-list-item-token", "yaml-fields", fmt("- token: {v}", tok)),
    # .env files
    S("env-stripe-key", "env-files", fmt("STRIPE_KEY={v}", tok)),
    S("env-sentry-auth", "env-files", fmt("SENTRY_AUTH={v}", tok)),
    S("env-database-password-quoted", "env-files", fmt('DATABASE_PASSWORD="{v}"', pw)),
    S("env-app-secret", "env-files", fmt("APP_SECRET={v}", tok)),
    S("env-redis-pass", "env-files", fmt("REDIS_PASS={v}", pw)),
    S("env-credentials", "env-files", fmt("SERVICE_CREDENTIALS={v}", tok)),
    S("env-signing-key-spaces", "env-files", fmt("SIGNING_KEY = {v}", tok)),
    # CLI flags
    S("cli-token-space", "cli-flags", fmt("hf upload --token {v} my/repo", tok)),
    S("cli-api-key-equals", "cli-flags", fmt("tool run --api-key={v} --verbose", tok)),
    S("cli-client-secret", "cli-flags", fmt("az login --service-principal -u app --client-secret {v}", tok)),
    S("cli-secret-key", "cli-flags", fmt("s3cmd --access_key=AK --secret_key={v} ls", lambda r: r(B64, 40))),
    S("cli-single-dash-token", "cli-flags", fmt("gcloud-ish -token={v} -v", tok)),
    S("cli-auth-token", "cli-flags", fmt("ngrok-like --auth-token {v}", tok)),
    S("cli-password-random", "cli-flags", fmt("rclone config --password {v}", pw)),
    # HTTP headers
    S("header-x-auth-token", "http-headers", fmt('curl -H "X-Auth-Token: {v}" https://api.example.com', tok)),
    S("header-private-token", "http-headers", fmt("Private-Token: {v}", lambda r: r(URLSAFE, 20))),
    S("header-x-vault-token", "http-headers", fmt("X-Vault-Token: {v}", tok)),
    S("header-authorization-token", "http-headers", fmt("Authorization: Token {v}", tok)),
    S("header-api-key", "http-headers", fmt("Api-Key: {v}", tok)),
    S("header-x-access-token-python", "http-headers", fmt('headers = {{"X-Access-Token": "{v}"}}', tok)),
    # user:password in URLs of any scheme
    S("url-postgresql-psycopg2", "url-userinfo", fmt("postgresql+psycopg2://{u}:{v}@{h}:5432/analytics", urlpw)),
    S("url-mssql-pyodbc", "url-userinfo", fmt("mssql+pyodbc://{u}:{v}@{h}/db?driver=ODBC+Driver+18", urlpw)),
    S("url-ftp", "url-userinfo", fmt("ftp://{u}:{v}@files.example.org/pub", urlpw)),
    S("url-smtps", "url-userinfo", fmt("smtps://{u}:{v}@smtp.example.org:465", urlpw)),
    S("url-ldap", "url-userinfo", fmt("ldap://cn={u}:{v}@ldap.example.org", urlpw)),
    S("url-git-https", "url-userinfo", fmt("git clone https://{u}:{v}@git.example.org/team/repo.git", tok)),
    S("url-proxy", "url-userinfo", fmt("HTTPS_PROXY=http://{u}:{v}@proxy.corp:3128", urlpw)),
    # tokens with a prefix no list names
    S("vendor-one-part-underscore", "vendor-prefix", vendor(1, "_")),
    S("vendor-one-part-dash", "vendor-prefix", vendor(1, "-", URLSAFE, 40)),
    S("vendor-two-parts", "vendor-prefix", vendor(2, "_", ALNUM, 28)),
    S("vendor-upper", "vendor-prefix", vendor(1, "_", ALNUM, 30, upper=True)),
    S("vendor-dot", "vendor-prefix", vendor(1, ".", URLSAFE, 36)),
    S("vendor-in-sentence", "vendor-prefix", vendor(2, "-", ALNUM, 24, template="Try {t} and tell me.")),
    S("vendor-hex-body", "vendor-prefix", vendor(2, "_", HEX, 40)),
    # private keys
    S("pem-ec", "private-keys", pem_shape("EC PRIVATE KEY", lambda b: b)),
    S("pem-dsa", "private-keys", pem_shape("DSA PRIVATE KEY", lambda b: b)),
    S("pem-encrypted", "private-keys", pem_shape("ENCRYPTED PRIVATE KEY", lambda b: b)),
    S("pem-pkcs8-json-escaped", "private-keys",
      pem_shape("PRIVATE KEY", lambda b: f'"key": "{b}"', newline="\\n")),
    S("pem-python-literal", "private-keys",
      pem_shape("RSA PRIVATE KEY", lambda b: f'KEY = "{b}"', newline="\\n")),
    S("pem-openssh-in-prose", "private-keys",
      pem_shape("OPENSSH PRIVATE KEY", lambda b: f"My key is\n{b}\nplease keep it.")),
    # keyword arguments and tuples in code
    S("py-psycopg2-connect", "code-arguments",
      fmt('conn = psycopg2.connect(host="{h}", user="{u}", password="{v}")', pw)),
    S("py-boto3-client", "code-arguments",
      fmt("s3 = boto3.client('s3', aws_access_key_id='AK', aws_secret_access_key='{v}')", lambda r: r(B64, 40))),
    S("py-openai-client", "code-arguments", fmt('client = OpenAI(api_key="{v}")', tok)),
    S("py-requests-auth-tuple", "code-arguments",
      fmt('r = requests.get(url, auth=("{u}", "{v}"))', pw)),
    S("py-smtp-login", "code-arguments", fmt('server.login("{u}@example.org", "{v}")', pw)),
    S("py-client-token-kwarg", "code-arguments", fmt("api = Client(token='{v}', timeout=30)", tok)),
    S("py-passwd-kwarg-spaces", "code-arguments", fmt('mysql.connector.connect(user="{u}", passwd = "{v}")', pw)),
    # .netrc and .pgpass lines
    S("netrc-one-line", "netrc-pgpass", fmt("machine api.example.org login {u} password {v}", pw)),
    S("netrc-multi-line", "netrc-pgpass", fmt("machine api.example.org\n  login {u}\n  password {v}", pw)),
    S("pgpass-line", "netrc-pgpass", fmt("{h}:5432:analytics:{u}:{v}", pw)),
    S("pgpass-wildcards", "netrc-pgpass", fmt("*:*:*:{u}:{v}", pw)),
    S("my-cnf", "netrc-pgpass", fmt("[client]\nuser={u}\npassword={v}", pw)),
    S("netrc-default", "netrc-pgpass", fmt("default login {u} password {v}", pw)),
    # connection-string fields
    S("ado-password", "connection-strings",
      fmt("Server={h};Database=sales;User Id={u};Password={v};Encrypt=true;", pw)),
    S("odbc-pwd", "connection-strings", fmt("DRIVER={{ODBC Driver 18}};SERVER={h};UID={u};PWD={v};", pw)),
    S("odbc-pwd-braces", "connection-strings", fmt("Driver=SQL Server;Server={h};Uid={u};Pwd={{{v}}};", pw)),
    S("servicebus-sas", "connection-strings",
      fmt("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey={v}",
          lambda r: r(B64, 43) + "=")),
    S("oracle-style", "connection-strings", fmt("User Id={u};Password={v};Data Source=orcl", pw)),
    S("conn-in-python-string", "connection-strings",
      fmt('cs = "Host={h};Username={u};Password={v};Database=x"', pw)),
    # docker auth fields
    S("docker-config-auth", "docker-auth",
      lambda r: (lambda a: (f'{{"auths": {{"registry.example.org": {{"auth": "{a}"}}}}}}', a))(
          b64(f"{r(LOWER, 6)}:{pw(r)}"))),
    S("docker-auth-line", "docker-auth",
      lambda r: (lambda a: (f'      "auth": "{a}"', a))(b64(f"{r(LOWER, 6)}:{pw(r)}"))),
    S("docker-identitytoken", "docker-auth", fmt('{{"identitytoken": "{v}"}}', lambda r: r(URLSAFE, 40))),
    S("docker-registrytoken", "docker-auth", fmt('"registrytoken": "{v}"', lambda r: r(URLSAFE, 40))),
    S("docker-auth-yaml", "docker-auth",
      lambda r: (lambda a: (f"auths:\n  ghcr.io:\n    auth: {a}", a))(b64(f"{r(LOWER, 6)}:{tok(r, 20)}"))),
    S("docker-config-env", "docker-auth",
      lambda r: (lambda a: (f'DOCKER_AUTH_CONFIG=\'{{"auths":{{"r.example":{{"auth":"{a}"}}}}}}\'', a))(
          b64(f"{r(LOWER, 6)}:{pw(r)}"))),
    # URL query parameters
    S("query-api-key", "query-params", fmt("https://api.example.org/v1/items?api_key={v}&page=2", tok)),
    S("query-access-token", "query-params", fmt("https://graph.example.com/me?fields=id&access_token={v}", tok)),
    S("query-apiKey-camel", "query-params", fmt("https://maps.example.com/geo?q=Paris&apiKey={v}", tok)),
    S("query-key-random", "query-params", fmt("https://sheets.example.com/v4/data?key={v}", tok)),
    S("query-jdbc-mysql", "query-params", fmt("jdbc:mysql://{h}:3306/sales?user={u}&password={v}", urlpw)),
    S("query-auth", "query-params", fmt("wss://stream.example.io/feed?auth={v}", tok)),
    S("query-client-secret", "query-params",
      fmt("https://auth.example.com/token?client_id=x&client_secret={v}&grant_type=client_credentials", tok)),
]

# ----- HELD OUT: written before the rules were tuned; never tuned on ----------------------------------

HELD_OUT: list[Shape] = [
    # TOML
    S("toml-database-password", "toml", fmt('[database]\nhost = "{h}"\npassword = "{v}"', pw)),
    S("toml-api-key-single", "toml", fmt("api_key = '{v}'", tok)),
    S("toml-poetry-http-basic", "toml", fmt('[http-basic.private]\nusername = "{u}"\npassword = "{v}"', pw)),
    S("toml-secret", "toml", fmt('secret = "{v}"', tok)),
    S("toml-inline-table", "toml", fmt('db = {{ user = "{u}", password = "{v}" }}', pw)),
    S("toml-auth-token", "toml", fmt('[[tool.uv.index]]\nauth_token = "{v}"', tok)),
    # INI
    S("ini-client-password", "ini", fmt("[client]\nhost = {h}\npassword = {v}", pw)),
    S("ini-aws-credentials", "ini",
      fmt("[default]\naws_access_key_id = AKID\naws_secret_access_key = {v}", lambda r: r(B64, 40))),
    S("ini-s3cfg", "ini", fmt("[default]\naccess_key = AK\nsecret_key = {v}", lambda r: r(B64, 40))),
    S("ini-pypirc", "ini", fmt("[pypi]\nusername = __token__\npassword = {v}", lambda r: r(URLSAFE, 60))),
    S("ini-access-token-colon", "ini", fmt("[github]\naccess_token: {v}", tok)),
    S("ini-passphrase", "ini", fmt("[gpg]\npassphrase = {v}", pw)),
    # shell
    S("sh-export-lower", "shell", fmt("export api_token={v}", tok)),
    S("sh-cmd-set", "shell", fmt("set DB_PASSWORD={v}", pw)),
    S("sh-csh-setenv", "shell", fmt("setenv API_SECRET {v}", tok)),
    S("sh-powershell-env", "shell", fmt('$env:OPENAI_KEY = "{v}"', tok)),
    S("sh-inline-env", "shell", fmt("PGPASSWORD={v} psql -h {h} -U {u}", pw)),
    S("sh-env-command", "shell", fmt("env SERVICE_TOKEN={v} python app.py", tok)),
    # base64 user:password in Basic auth
    S("basic-header", "basic-auth", lambda r: (lambda a: (f"Authorization: Basic {a}", a))(
        b64(f"{r(LOWER, 6)}:{pw(r)}"))),
    S("basic-curl-lower", "basic-auth", lambda r: (lambda a: (f"curl -H 'authorization: basic {a}' https://x.org", a))(
        b64(f"{r(LOWER, 6)}:{pw(r)}"))),
    S("basic-python-headers", "basic-auth", lambda r: (lambda a: (f'headers = {{"Authorization": "Basic {a}"}}', a))(
        b64(f"{r(LOWER, 6)}:{pw(r)}"))),
    S("basic-httpbasicauth", "basic-auth", fmt('auth = HTTPBasicAuth("{u}", "{v}")', pw)),
    S("basic-aiohttp", "basic-auth", fmt("aiohttp.BasicAuth('{u}', '{v}')", pw)),
    S("basic-wget", "basic-auth", fmt("wget --http-user={u} --http-password={v} https://x.org/f", pw)),
    # prefixes in several parts
    S("multi-three-parts", "vendor-multipart", vendor(3, "_", ALNUM, 30)),
    S("multi-four-parts-dash", "vendor-multipart", vendor(4, "-", URLSAFE, 32)),
    S("multi-upper-two", "vendor-multipart", vendor(2, "_", UPPER, 32, upper=True)),
    S("multi-dot-in-body", "vendor-multipart",
      lambda r: (lambda p, a, b: (f"{p}.{a}.{b}", f"{a}.{b}"))(prefix(r, 1), r(URLSAFE, 24), r(URLSAFE, 22))),
    S("multi-in-json", "vendor-multipart", vendor(2, "-", ALNUM, 40, template='{{"value": "{t}"}}')),
    S("multi-in-code", "vendor-multipart", vendor(3, "_", ALNUM, 26, template="client = Api('{t}')")),
    # private keys elsewhere
    S("pgp-private-block", "private-keys-more", pem_shape("PGP PRIVATE KEY BLOCK", lambda b: b)),
    S("pem-in-json-doc", "private-keys-more",
      pem_shape("PRIVATE KEY", lambda b: json.dumps({"type": "service_account", "private_key": b + "\n"}))),
    S("pem-yaml-block-scalar", "private-keys-more",
      pem_shape("RSA PRIVATE KEY", lambda b: "tls:\n  key: |\n    " + b.replace("\n", "\n    "))),
    S("pem-double-escaped", "private-keys-more",
      pem_shape("EC PRIVATE KEY", lambda b: b, newline="\\\\n")),
    S("pem-python-triple", "private-keys-more",
      pem_shape("OPENSSH PRIVATE KEY", lambda b: f'key = """{b}"""')),
    S("pem-cut-short", "private-keys-more",
      lambda r: (lambda body: (pem_block("PRIVATE KEY", body).rsplit("\n", 1)[0], "".join(body)))(
          [r(B64, 64) for _ in range(3)])),
    # JDBC and other driver URLs
    S("jdbc-postgresql", "driver-urls", fmt("jdbc:postgresql://{h}:5432/db?user={u}&password={v}&ssl=true", urlpw)),
    S("jdbc-sqlserver", "driver-urls", fmt("jdbc:sqlserver://{h}:1433;databaseName=x;user={u};password={v};", pw)),
    S("jdbc-oracle-thin", "driver-urls", fmt("jdbc:oracle:thin:{u}/{v}@{h}:1521/ORCL", urlpw)),
    S("mongodb-replica", "driver-urls", fmt("mongodb://{u}:{v}@h1.example:27017,h2.example:27017/?replicaSet=rs0",
                                            urlpw)),
    S("redis-default-user", "driver-urls", fmt("redis://default:{v}@{h}:6379/0", urlpw)),
    S("snowflake-url", "driver-urls", fmt("snowflake://{u}:{v}@acme-xy12345/analytics/public", urlpw)),
    # code in other languages
    S("js-object", "other-code", fmt('const cfg = {{ user: "{u}", password: "{v}" }};', pw)),
    S("r-dbconnect", "other-code", fmt('con <- dbConnect(RPostgres::Postgres(), user = "{u}", password = "{v}")', pw)),
    S("js-const-apikey", "other-code", fmt("const apiKey = '{v}';", tok)),
    S("go-struct-field", "other-code", fmt('cfg := Config{{User: "{u}", Password: "{v}"}}', pw)),
    S("java-setproperty", "other-code", fmt('props.setProperty("password", "{v}");', pw)),
    S("py-environ-assign", "other-code", fmt('os.environ["SERVICE_API_KEY"] = "{v}"', tok)),
    # random runs next to a secret-ish word, in prose
    S("prose-my-token-is", "prose-near-word", fmt("my token is {v} if you need it", tok)),
    S("prose-api-key-colon", "prose-near-word", fmt("Here is the API key: {v}", tok)),
    S("prose-secret-for", "prose-near-word", fmt("use the secret {v} for staging", lambda r: r(URLSAFE, 28))),
    S("prose-password-is", "prose-near-word", fmt("the password for the db is {v}", lambda r: r(ALNUM, 18))),
    S("prose-credential", "prose-near-word", fmt("credential {v} expires tomorrow", tok)),
    S("prose-access-key", "prose-near-word", fmt("and the access key ({v}) too", lambda r: r(B64, 40))),
    # Kubernetes and Compose
    S("k8s-stringdata", "k8s-compose", fmt("stringData:\n  password: {v}", pw)),
    S("k8s-env-name-value", "k8s-compose", fmt("- name: DB_PASSWORD\n  value: {v}", pw)),
    S("compose-env-list", "k8s-compose", fmt("environment:\n  - POSTGRES_PASSWORD={v}", pw)),
    S("compose-env-map", "k8s-compose", fmt("    MYSQL_ROOT_PASSWORD: {v}", pw)),
    S("k8s-data-token", "k8s-compose", fmt("data:\n  token: {v}", lambda r: b64(tok(r, 30)))),
    S("helm-set", "k8s-compose", fmt("helm install x --set auth.password={v}", pw)),
    # credential files
    S("npmrc-authtoken", "credential-files", fmt("//registry.npmjs.org/:_authToken={v}", tok)),
    S("npmrc-auth", "credential-files", fmt("_auth={v}", lambda r: b64(f"{r(LOWER, 6)}:{pw(r)}"))),
    S("git-credentials", "credential-files", fmt("https://{u}:{v}@github.example.com", tok)),
    S("aws-credentials-session", "credential-files", fmt("aws_session_token = {v}", lambda r: r(B64, 100))),
    S("htpasswd-plain-ish", "credential-files", fmt("[auth]\ntoken={v}", tok)),
    S("kaggle-json", "credential-files", fmt('{{"username":"{u}","key":"{v}"}}', lambda r: r(HEX, 32))),
    # CLI options of other tools
    S("cli-client-secret-equals", "cli-more", fmt("terraform apply -var client_secret={v}", tok)),
    S("cli-aws-configure-set", "cli-more", fmt("aws configure set aws_secret_access_key {v}", lambda r: r(B64, 40))),
    S("cli-hf-login", "cli-more", fmt("huggingface-cli login --token {v}", tok)),
    S("cli-signature", "cli-more", fmt("verify --signature {v} file.tar", lambda r: r(B64, 44))),
    S("cli-pass-option", "cli-more", fmt("openssl pkcs12 -in a.p12 -passin pass:{v}", pw)),
    S("cli-access-token-env", "cli-more", fmt("deploy --access-token={v} --yes", tok)),
    # more HTTP headers
    S("hdr-shopify-access-token", "headers-more", fmt("X-Shopify-Access-Token: {v}", lambda r: r(HEX, 32))),
    S("hdr-figma-token", "headers-more", fmt("-H 'X-Figma-Token: {v}'", tok)),
    S("hdr-apim-subscription-key", "headers-more", fmt("Ocp-Apim-Subscription-Key: {v}", lambda r: r(HEX, 32))),
    S("hdr-hub-signature", "headers-more", fmt("X-Hub-Signature-256: sha256={v}", lambda r: r(HEX, 64))),
    S("hdr-proxy-authorization", "headers-more", fmt("Proxy-Authorization: Bearer {v}", tok)),
    S("hdr-apikey-lower", "headers-more", fmt("apikey: {v}", tok)),
]


def families(shapes: list[Shape]) -> list[str]:
    return sorted({s.family for s in shapes})


def build(shapes: list[Shape], seed: int | str) -> list[Planted]:
    rng = random.Random(f"structural-{seed}")

    def rand(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    return [Planted(s.name, s.family, *s.make(rand)) for s in shapes]
