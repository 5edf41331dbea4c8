"""What a data scientist's notebook holds that is not a secret, built at run time: the redactor's
false-positive corpus. Ids, digests and hashes are random (they are random in life too); code,
model names and sentences are drawn from templates. None of it may be touched by redaction;
the budget is 1 % (tests/test_redact_structure.py reports the rate).
"""
from __future__ import annotations

import base64
import hashlib
import random
import string
import uuid
from collections.abc import Callable

HEX = "0123456789abcdef"
Maker = Callable[[random.Random], str]


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(HEX) for _ in range(n))


def _word(rng: random.Random) -> str:
    return rng.choice(["sales", "churn", "revenue", "users", "events", "clicks", "sessions", "orders", "price",
                       "region", "cohort", "label", "score", "feature", "embedding", "target", "weight"])


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


MODELS = ["gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20241022", "meta-llama/Llama-3.1-8B-Instruct",
          "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", "bert-base-multilingual-uncased", "sentence-transformers/all-MiniLM-L6-v2",
          "mistralai/Mistral-7B-Instruct-v0.3", "google/flan-t5-xxl", "openai/whisper-large-v3",
          "stabilityai/stable-diffusion-xl-base-1.0", "microsoft/deberta-v3-large", "anthropic/claude-sonnet-4",
          "xgboost-2.0.3", "resnet50_imagenet_v2", "facebook/bart-large-cnn", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"]

SENTENCES = [
    "Never paste your password into a notebook; use an environment variable instead.",
    "The tokenizer splits the text into tokens, and max_tokens limits the answer.",
    "Rotate the API key every 90 days and store secrets in a vault.",
    "The access token expires after an hour; the refresh token lasts longer.",
    "Passwords should be hashed with argon2 or bcrypt, never stored in plain text.",
    "The secret sauce of this model is the data, not the architecture.",
    "Set the token limit to 4096 and the temperature to 0.2.",
    "Authentication failed because the password was wrong; reset it in the admin page.",
    "Use a key vault for credentials and a service principal for the pipeline.",
    "Each token costs about 0.002 cents with this model.",
    "The primary key of the table is customer_id; the foreign key is order_id.",
    "A signature verifies that the package was not changed.",
    "The password policy needs 12 characters, a digit and a symbol.",
    "Token counts per document follow a long-tailed distribution.",
    "The auth service returns 401 when the session cookie is missing.",
    "Keys in the dict are column names and values are dtypes.",
]


def _sha(rng: random.Random) -> str:
    return _hex(rng, 40)


MAKERS: dict[str, Maker] = {
    "git-sha": lambda r: f"commit {_hex(r, 40)}",
    "git-short-sha": lambda r: f"HEAD is now at {_hex(r, 7)} Fix the {_word(r)} join",
    "git-log-line": lambda r: f"{_hex(r, 40)} refs/heads/main",
    "uuid": lambda r: _uuid(r),
    "uuid-in-text": lambda r: f"run_id = '{_uuid(r)}'",
    "sha256-digest": lambda r: f"sha256:{_hex(r, 64)}",
    "md5-line": lambda r: f"{_hex(r, 32)}  data/{_word(r)}.csv",
    "pip-hash": lambda r: f"numpy==1.26.{r.randint(0, 4)} --hash=sha256:{_hex(r, 64)}",
    "pip-hash-continued": lambda r: f"    --hash=sha256:{_hex(r, 64)} \\",
    "docker-digest": lambda r: f"python@sha256:{_hex(r, 64)}",
    "docker-image-id": lambda r: f"FROM jupyter/scipy-notebook@sha256:{_hex(r, 64)}",
    "sri-integrity": lambda r: '"integrity": "sha512-'
                               + base64.b64encode(hashlib.sha512(r.randbytes(16)).digest()).decode() + '"',
    "doi": lambda r: f"https://doi.org/10.{r.randint(1000, 9999)}/s{r.randint(10000, 99999)}-0{r.randint(10, 99)}-"
                     f"{r.randint(1000, 9999)}-{r.randint(0, 9)}",
    "doi-bare": lambda r: f"doi:10.{r.randint(1000, 9999)}/j.{_word(r)}.{r.randint(2000, 2024)}.{r.randint(100, 999)}",
    "arxiv": lambda r: f"arXiv:{r.randint(1500, 2412)}.{r.randint(10000, 99999)}v{r.randint(1, 4)}",
    "arxiv-url": lambda r: f"https://arxiv.org/abs/{r.randint(1500, 2412)}.{r.randint(10000, 99999)}",
    "orcid": lambda r: f"https://orcid.org/0000-000{r.randint(1, 3)}-{r.randint(0, 9999):04d}-{r.randint(0, 9999):04d}",
    "cell-id": lambda r: f'"id": "{_hex(r, 8)}-{_hex(r, 4)}"',
    "cell-id-nbformat": lambda r: f'{{"cell_type": "code", "id": "{_hex(r, 8)}", "metadata": {{}}}}',
    "url-query": lambda r: f"https://example.com/search?q={_word(r)}&page={r.randint(1, 9)}&sort=desc&lang=en",
    "url-utm": lambda r: f"https://blog.example.org/post?utm_source=newsletter&utm_medium=email&utm_campaign="
                         f"{_word(r)}_{r.randint(2020, 2024)}",
    "url-key-word": lambda r: f"https://api.example.com/v2/items?key={_word(r)}&limit=100",
    "url-tokens-param": lambda r: f"https://api.example.com/complete?max_tokens={r.randint(16, 4096)}&model=small",
    "url-s3": lambda r: f"s3://ml-{_word(r)}-bucket/datasets/{r.randint(2020, 2024)}/part-{r.randint(0, 999):05d}.parquet",
    "hf-file": lambda r: f"model-{r.randint(1, 9):05d}-of-{r.randint(10, 20):05d}.safetensors",
    "long-identifier": lambda r: f"{_word(r)}_{_word(r)}_aggregated_by_{_word(r)}_v{r.randint(1, 9)}_final",
    "camel-identifier": lambda r: f"compute{_word(r).title()}{_word(r).title()}ForQuarterlyReport()",
    "experiment-name": lambda r: f"exp-{r.randint(2023, 2024)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}-"
                                 f"lr{r.choice(['1e-3', '3e-4', '5e-5'])}-bs{r.choice([16, 32, 64])}",
    "wandb-run": lambda r: f"wandb: Run {''.join(r.choice(string.ascii_lowercase + string.digits) for _ in range(8))}"
                           f" synced: https://wandb.ai/team/{_word(r)}/runs/"
                           + "".join(r.choice(string.ascii_lowercase + string.digits) for _ in range(8)),
    "mlflow-run": lambda r: f"mlflow.start_run(run_id='{_hex(r, 32)}')",
    "base64-image": lambda r: "data:image/png;base64," + base64.b64encode(r.randbytes(r.randint(48, 120))).decode(),
    "base64-in-json": lambda r: '{"image/png": "' + base64.b64encode(r.randbytes(90)).decode() + '"}',
    "model-name": lambda r: f"model = AutoModel.from_pretrained('{r.choice(MODELS)}')",
    "model-config": lambda r: f"model: {r.choice(MODELS)}\nmax_tokens: {r.randint(256, 8192)}\ntemperature: 0.{r.randint(0, 9)}",
    "sql": lambda r: f"SELECT {_word(r)}, SUM(amount) AS total FROM orders WHERE region = '{_word(r)}' "
                     f"GROUP BY 1 ORDER BY total DESC LIMIT {r.randint(5, 100)};",
    "sql-users-table": lambda r: "CREATE TABLE users (id SERIAL PRIMARY KEY, email TEXT, password_hash TEXT, "
                                 "token_expires_at TIMESTAMP);",
    "pandas": lambda r: f"df.groupby('{_word(r)}')['{_word(r)}'].agg(['mean', 'std']).sort_values(by='mean')",
    "pandas-key": lambda r: f"df.sort_values(key=lambda s: s.str.lower()).merge(other, on='{_word(r)}_key')",
    "pandas-read": lambda r: f"df = pd.read_csv('data/{_word(r)}_{r.randint(2020, 2024)}.csv', "
                             f"dtype={{'{_word(r)}': 'category'}})",
    "tokenizer-code": lambda r: f"tokens = tokenizer(text, max_length={r.choice([128, 512])}, truncation=True)"
                                f"['input_ids']",
    "password-code": lambda r: "password = getpass.getpass('Password: ')\nconn = connect(user=user, password=password)",
    "token-env-code": lambda r: "token = os.environ['HF_TOKEN']\napi = HfApi(token=token)",
    "secret-name-list": lambda r: "cols = ['user', 'password', 'email', 'created_at']",
    "sentence": lambda r: r.choice(SENTENCES),
    "sentence-two": lambda r: f"{r.choice(SENTENCES)} {r.choice(SENTENCES)}",
    "timestamp": lambda r: f"2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:"
                           f"{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{r.randint(0, 999999):06d}Z",
    "log-line": lambda r: f"INFO:root:epoch {r.randint(1, 50)} loss={r.random():.4f} "
                          f"val_auc={r.random():.4f} step={r.randint(1, 99999)}",
    "ip-port": lambda r: f"http://10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(0, 255)}:{r.randint(1024, 65535)}"
                         f"/lab?",
    "jupyter-url": lambda r: f"http://localhost:8888/lab/tree/notebooks/{_word(r)}.ipynb",
    "conda-env": lambda r: f"  - pytorch=2.{r.randint(0, 4)}.{r.randint(0, 2)}=py3.11_cuda12.1_cudnn8.9.2_0",
    "hash-table": lambda r: f"| {_word(r)} | {_hex(r, 12)} | {r.randint(0, 10**6)} |",
    "np-seed": lambda r: f"rng = np.random.default_rng({r.randint(0, 2**31)})",
    "etag": lambda r: f'ETag: "{_hex(r, 32)}"',
    "request-id": lambda r: f"x-request-id: req_{''.join(r.choice(string.ascii_letters + string.digits) for _ in range(24))}",
    "ssh-public": lambda r: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + base64.b64encode(r.randbytes(24)).decode()
                            + " me@laptop",
    "pubkey-pem": lambda r: "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(r.randbytes(48)).decode()
                            + "\n-----END PUBLIC KEY-----",
}


def ordinary(seed: int | str, per_kind: int = 4) -> list[tuple[str, str]]:
    """(kind, text): `per_kind` of each kind, different for every seed."""
    rng = random.Random(f"ordinary-{seed}")
    return [(kind, make(rng)) for kind, make in MAKERS.items() for _ in range(per_kind)]
