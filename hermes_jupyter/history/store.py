"""A notebook's Hermes conversations, in one JSON file beside it.

``analysis.ipynb`` keeps its sessions in ``analysis.hermes.json`` (see
``history_path``). The file is meant to live in git, so it is written with a
stable key order and ``indent=1`` for small diffs, and it never holds a secret
(a key in a file in git is a leaked key): every record is sanitized and redacted before it
touches the disk. Display metadata (title, usage, turns) sits beside the API
messages, never inside them, so the messages replay as they are.

Writes are atomic (temp file + ``os.replace``: a crash mid-write leaves the old file whole) and run under an
exclusive lock: a read-modify-write that replaces only the caller's session,
so two kernels on the same notebook, or two sessions in one kernel, never lose
each other's turns.

Two kernels on one session (the same notebook open twice, or a kernel that
names its notebook after running turns: Engine.attach_history) each have their
own conversation in memory; the file keeps both, merged by turn:

* A turn's messages belong to it: its record's ``message_count`` says how many
  of the session's messages it added, and the messages are the session's
  *lead* (owned by no turn: files of earlier versions, a conversation the agent
  compressed) followed by each turn's slice in the turns' order. A slice is
  sanitized on its own (MessageCache cuts), so any sequence of slices replays.
* A save merges turns by id as before (a finished turn is never replaced by a
  running snapshot), and each turn's slice comes from the record whose turn was
  kept; the lead is the longer where one begins the other, else the newer
  writer's. So nothing a kernel completed is lost, and a resumed session sends
  every kernel's turns in the order they started.
* A live kernel's agent goes on from its own conversation (it answered without
  the other's turns; they are not spliced into it mid-session). The first save
  that finds another kernel's turns in the session says so, once, in one line
  (``notice``).
* A save whose record has no foreign turns writes its messages as they are: a
  single kernel's save costs what it did. Merging with another kernel's turns
  costs one pass over the turn list, as the turn merge did already.

A save costs what changed, not what the session holds (cache.py): the
store keeps the document it last wrote, and re-reads the file only when its
(device, inode, size, mtime) is not what that write left; it sanitizes and
redacts only the messages and turns that changed, and serializes only new
objects. Each session carries a ``redactor`` stamp (a hash of the redaction
code): what a file stamped by this very code holds counts as already redacted,
unless a secret configured since occurs in it; anything else in the file is
redacted again, in full, on the next save.

The lock is a hidden ``.<file>.lock`` that exists only while a writer holds it
(``_flock``), so the notebook's folder keeps only the history file itself.
"""
from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import json
import mmap
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, cast

from hermes_jupyter.history.cache import DocumentText, MessageCache, TurnCache
from hermes_jupyter.history.merge import merge_sessions, turn_counts
from hermes_jupyter.history.records import iso_time, settle_dead, usage_record
from hermes_jupyter.safety.redact import configured_secret_values, redact_obj, redact_text
from hermes_jupyter.util.files import replace_atomically

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["SCHEMA", "VERSION", "Document", "HistoryStore", "HistoryVersionError", "new_document"]

SCHEMA = "hermes-jupyter/history"
VERSION = 1
TITLE_CHARS = 60
DEFAULT_SESSION = "main"

Record = dict[str, Any]


class Document(TypedDict):
    """The file's top level, as checked on load (any other keys are kept as they are)."""
    schema: str
    version: int
    current: str  # the session %hermes uses
    sessions: dict[str, Record]  # by name, in the file's order

# Migrations from version N to N+1, applied in order on load. The file on disk
# is rewritten in the new version by the next save, never by a load.
_MIGRATIONS: dict[int, Callable[[Record], Record]] = {}


class HistoryVersionError(RuntimeError):
    """The file was written by a newer hermes-jupyter; it is left untouched."""


class _Unusable(Exception):
    """The file exists but is not a history we can read (reason in args[0])."""


def new_document() -> Document:
    return {"schema": SCHEMA, "version": VERSION, "current": DEFAULT_SESSION, "sessions": {}}


def _title(turns: list[Record], messages: list[Record]) -> str:
    """The first prompt on one line, cut to TITLE_CHARS (already redacted, so no half secret survives)."""
    prompts = [t["prompt"] for t in turns if isinstance(t.get("prompt"), str)]
    prompts += [m["content"] for m in messages if m.get("role") == "user" and isinstance(m.get("content"), str)]
    text = " ".join(prompts[0].split()) if prompts else ""
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"


@functools.cache
def _redactor_id() -> str:
    """Fingerprint of the redaction code (ours and hermes-agent's): a new pattern changes it."""
    from hermes_jupyter.safety import redact

    h = hashlib.blake2b(digest_size=6)
    for module in (redact, sys.modules.get("agent.redact")):
        with contextlib.suppress(Exception):
            h.update(Path(getattr(module, "__file__", "")).read_bytes())
    return h.hexdigest()


def _check(parsed: object) -> Document:
    """Validate and migrate a parsed document; raise _Unusable or HistoryVersionError."""
    if not isinstance(parsed, dict) or parsed.get("schema") != SCHEMA:
        raise _Unusable("not a hermes-jupyter history file")
    doc: Record = parsed
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _Unusable(f"unknown history version {version!r}")
    if version > VERSION:
        raise HistoryVersionError(
            f"this history was written by a newer hermes-jupyter (format version {version}; "
            f"this one reads up to {VERSION}). Upgrade hermes-jupyter; the file was left untouched.")
    while doc["version"] < VERSION:
        migrate = _MIGRATIONS.get(doc["version"])
        if migrate is None:
            raise _Unusable(f"no migration from history version {doc['version']}")
        doc = migrate(doc)
    sessions = doc.get("sessions")
    if not isinstance(sessions, dict):
        raise _Unusable("'sessions' is not an object")
    for name, rec in sessions.items():
        if not isinstance(rec, dict) or not all(
            isinstance(rec.get(key, []), list) for key in ("messages", "turns")
        ) or not all(isinstance(t, dict) for t in rec.get("turns", [])):
            raise _Unusable(f"session {name!r} is malformed")
        rec.setdefault("name", name)
        rec.setdefault("messages", [])
        rec.setdefault("turns", [])
    if not isinstance(doc.get("current"), str):
        doc["current"] = DEFAULT_SESSION
    return cast(Document, doc)  # every key of a Document was checked above


def _parse(raw: bytes | None) -> Document:
    """The document in ``raw``; ``None`` (no file) is a fresh one."""
    if raw is None:
        return new_document()
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Unusable(f"not valid JSON: {exc}") from exc
    return _check(doc)


def _holds_literal(text: str, secrets: Iterable[str]) -> bool:
    """Does a known secret value occur in ``text`` (JSON text: also look for its escaped form)?"""
    return any(
        len(secret) >= 8 and (secret in text or json.dumps(secret, ensure_ascii=False)[1:-1] in text)
        for secret in secrets
    )


# One thread lock per file, shared by every HistoryStore of this process on it;
# flock then excludes the other processes.
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(str(path), threading.Lock())


class _SessionCache:
    """What this store knows of one session's last save (see cache.py)."""

    def __init__(self) -> None:
        self.messages = MessageCache()
        self.turns = TurnCache()


Signature = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


def _signature(st: os.stat_result) -> Signature:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class HistoryStore:
    """The sessions of one notebook, in one file. Safe across threads and processes."""

    def __init__(self, path: Path | str, *, extra_secrets: Callable[[], Iterable[str]] | None = None):
        self.path = Path(path).resolve()
        self.notice: str | None = None
        self._told: set[str] = set()  # sessions whose merge with another kernel's turns was said
        self._extra_secrets = extra_secrets
        self._lock = _thread_lock(self.path)
        # Redaction and serializing are the slow parts of a save: per session, what the
        # last save sanitized and redacted; the bytes of every message and turn written.
        self._caches: dict[str, _SessionCache] = {}
        self._cache_secrets: frozenset[str] = frozenset()
        self._text = DocumentText()
        # The document as this store last wrote (or read) it, and the file's signature then:
        # a save re-reads the file only when another writer changed it.
        self._doc: Document | None = None
        self._sig: Signature | None = None
        self._doc_secrets: frozenset[str] | None = None  # the secrets it was checked against
        self.reads = 0  # times a save or command read and parsed the file (tests, benchmarks)
        self.last_save: dict[str, int] = {}  # what the last save did: sanitized, redacted, rendered, bytes

    # ----- public API ---------------------------------------------------------------
    def load(self) -> Document:
        """The whole document; a missing file gives a fresh one, a bad one is moved aside."""
        self.notice = None
        try:
            raw, sig = self._read_file()
            doc = _parse(raw)
        except _Unusable:
            with self._locked():  # re-check under the lock: a writer may have just fixed it
                return self._read_or_move_aside()
        if raw is not None and sig is not None:
            with self._lock:
                self._seed(raw, sig)
        return doc

    def sessions(self) -> dict[str, Record]:
        return self.load()["sessions"]

    def save_session(self, record: Record) -> None:
        """Write one session (keyed by ``record["name"]``), merged with what the file holds."""
        with self._lock:
            secrets = self._secrets()
            clean = self._prepare(record, secrets)
            with self._flock():
                doc = self._current(secrets)
                sessions = doc["sessions"]
                old = sessions.get(clean["name"])
                if old is not None:  # a turn left running by a kernel that is gone ends here (liveness.py)
                    settled, changed = settle_dead(old["turns"])
                    if changed:
                        old = {**old, "turns": settled}
                merged, foreign = merge_sessions(old, clean) if old is not None else (clean, False)
                if foreign and clean["name"] not in self._told:
                    self._told.add(clean["name"])
                    self.notice = (f"session {clean['name']!r} in {self.path.name} also holds turns that this "
                                   f"kernel did not run (another kernel's): the file keeps every turn and its "
                                   f"messages, in the order they started, and a resumed session sends them all; "
                                   f"this kernel's agent goes on from its own turns")
                if not merged.get("title"):
                    merged["title"] = _title(merged["turns"], merged["messages"])
                if not merged.get("model") and merged["turns"]:
                    merged["model"] = merged["turns"][-1].get("model") or ""
                sessions[clean["name"]] = merged  # an existing key keeps its place: small diffs
                self._write(doc)

    def set_current(self, name: str) -> None:
        _check_name(name)
        with self._locked():
            doc = self._current(self._secrets())
            doc["current"] = name
            self._write(doc)

    def rename_session(self, old: str, new: str) -> None:
        _check_name(new)
        secrets = self._secrets()
        if redact_text(new, secrets) != new:
            raise ValueError("a session name must not look like a secret")
        with self._locked():
            doc = self._current(secrets)
            sessions = doc["sessions"]
            if old not in sessions:
                raise KeyError(f"no session named {old!r} in {self.path.name}")
            if old == new:
                return
            if new in sessions:
                raise ValueError(f"a session named {new!r} already exists in {self.path.name}")
            # Rebuild the dict so the renamed session keeps its position.
            doc["sessions"] = {
                (new if key == old else key): ({**rec, "name": new} if key == old else rec)
                for key, rec in sessions.items()
            }
            if doc["current"] == old:
                doc["current"] = new
            self._write(doc)
            self._caches.pop(old, None)

    def delete_session(self, name: str) -> None:
        with self._locked():
            doc = self._current(self._secrets())
            if name not in doc["sessions"]:
                raise KeyError(f"no session named {name!r} in {self.path.name}")
            del doc["sessions"][name]
            if doc["current"] == name:
                doc["current"] = DEFAULT_SESSION
            self._write(doc)
            self._caches.pop(name, None)

    # ----- preparing a record ---------------------------------------------------------
    def _secrets(self) -> set[str]:
        found = configured_secret_values()
        if self._extra_secrets is not None:
            found |= {s for s in self._extra_secrets() if isinstance(s, str)}
        return found

    def _prepare(self, record: Record, secrets: set[str]) -> Record:
        """Sanitized, redacted, normalized copy of ``record`` (the input is not changed)."""
        name = _check_name(record.get("name"))
        if redact_text(name, secrets) != name:  # the name is a dict key and the engine's handle
            raise ValueError("a session name must not look like a secret")
        turns = record.get("turns") or []
        for turn in turns:
            if not isinstance(turn, dict) or not isinstance(turn.get("id"), str) or not turn["id"]:
                raise ValueError(f"every turn needs a string 'id' (session {name!r})")
        if frozenset(secrets) != self._cache_secrets:  # a new secret: nothing cached is safe
            self._caches.clear()
            self._cache_secrets = frozenset(secrets)
        cache = self._caches.setdefault(name, _SessionCache())

        def redact(item: Any) -> Any:
            return redact_obj(item, secrets)

        raw_messages = list(record.get("messages") or [])
        raw_counts = turn_counts(turns, len(raw_messages))
        if raw_counts is not None and all(c is None for c in raw_counts):
            raw_counts = None  # no turn owns messages (a caller that does not count them): one lead
        cuts: list[int] = []
        if raw_counts is not None:
            at = len(raw_messages) - sum(c or 0 for c in raw_counts)
            for c in raw_counts:
                cuts.append(at)
                at += c or 0
        messages, sanitized = cache.messages.update(raw_messages, redact, cuts)
        counts: list[int | None] | None = None
        if raw_counts is not None:  # each slice as sanitized: the file's counts
            ends = [*cuts[1:], len(raw_messages)]
            counts = [None if c is None else cache.messages.clean_index(b) - cache.messages.clean_index(a)
                      for c, a, b in zip(raw_counts, cuts, ends, strict=True)]
        clean_turns, redacted = cache.turns.update(list(turns), redact, counts)
        self.last_save = {"sanitized": sanitized, "redacted": redacted}
        now = iso_time()
        shell = {
            "title": record.get("title") or "", "created": record.get("created") or now,
            "updated": now, "model": record.get("model") or "", "usage": usage_record(record.get("usage")),
            "redactor": _redactor_id(),
        }
        extra = {k: v for k, v in record.items() if k not in shell and k not in ("name", "messages", "turns")}
        clean = redact_obj({**shell, **extra}, secrets)
        return {"name": name, **{k: clean[k] for k in shell}, "messages": messages, "turns": clean_turns,
                **{k: clean[k] for k in extra}}

    def _seed(self, raw: bytes, sig: Signature) -> None:
        """Count what the file holds as already redacted, so the first save after a kernel
        restart does not redact the whole history again (seconds for long sessions).

        Only for sessions stamped by this exact redactor, and only if none of the secrets
        known now (one may have been configured since) occurs in the file. If that is all
        of the file, the next save need not read it again.
        """
        secrets = self._secrets()
        text = raw.decode("utf-8")
        if _holds_literal(text, secrets):
            return
        if frozenset(secrets) != self._cache_secrets:
            self._caches.clear()
            self._cache_secrets = frozenset(secrets)
        own = _redactor_id()
        doc = _check(json.loads(text))  # a private copy: the caller may change what load() returned
        for name, rec in doc["sessions"].items():
            if rec.get("redactor") == own:
                cache = self._caches[name] = _SessionCache()
                cache.messages.seed(rec["messages"])
                cache.turns.seed(rec["turns"])
        if all(rec.get("redactor") == own for rec in doc["sessions"].values()):
            self._doc, self._sig, self._doc_secrets = doc, sig, frozenset(secrets)
            self._text.seed(raw, doc)

    @staticmethod
    def _scrub(doc: Document, raw: bytes | None, secrets: set[str]) -> None:
        """Redact again, in full, what another writer or an older redactor left in the file:
        sessions not stamped by our redactor, or every session if a secret known now
        (configured since) occurs in the file. Slow, but once: the result is stamped."""
        if raw is None:
            return
        everything = _holds_literal(raw.decode("utf-8", "replace"), secrets)
        own = _redactor_id()
        for name, rec in doc["sessions"].items():
            if everything or rec.get("redactor") != own:
                doc["sessions"][name] = {**redact_obj(rec, secrets), "name": name, "redactor": own}

    # ----- the file -----------------------------------------------------------------
    def _current(self, secrets: set[str]) -> Document:
        """What the file holds, scrubbed (needs the lock): the document this store last wrote
        while the file is still the one it wrote, else the file read again."""
        try:
            sig: Signature | None = _signature(os.stat(self.path))
        except OSError:
            sig = None
        if self._doc is not None and sig == self._sig and self._doc_secrets == frozenset(secrets):
            self.last_save["read"] = 0
            return self._doc
        self._doc = None  # until written: a failed write must not leave a document that is not the file
        raw = self._read_bytes_or_none()
        doc = self._read_or_move_aside(raw)
        self._scrub(doc, raw, secrets)
        self.reads += 1
        self.last_save["read"] = 1
        self._doc_secrets = frozenset(secrets)
        return doc

    def _read_file(self) -> tuple[bytes | None, Signature | None]:
        """The file's bytes and the signature of what was read (None, None when missing)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            raise _Unusable(f"unreadable: {exc.strerror or exc}") from exc
        try:
            with open(fd, "rb") as fh:
                sig = _signature(os.fstat(fh.fileno()))
                return fh.read(), sig
        except OSError as exc:
            raise _Unusable(f"unreadable: {exc.strerror or exc}") from exc

    def _mapped(self) -> mmap.mmap | None:
        """The file's bytes, mapped (not read into the heap); None if it is missing, empty or unreadable."""
        try:
            with open(self.path, "rb") as fh:
                return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None

    def _read_bytes(self) -> bytes | None:
        return self._read_file()[0]

    def _read_bytes_or_none(self) -> bytes | None:
        """The bytes, or None when missing *or* unreadable (_read_or_move_aside deals with that)."""
        try:
            return self._read_bytes()
        except _Unusable:
            return None

    def _read_or_move_aside(self, raw: bytes | None = None) -> Document:
        """Parse the file (or ``raw``, already read from it); a bad file is renamed (never
        deleted) and a fresh document returned. Needs the lock."""
        try:
            return _parse(raw if raw is not None else self._read_bytes())
        except _Unusable as exc:
            aside = self._aside_name()
            os.replace(self.path, aside)  # _aside_name picked a free name under the lock
            self.notice = (f"{self.path.name} could not be read ({exc.args[0]}). It was moved to "
                           f"{aside.name} and a new history was started.")
            return new_document()

    def _aside_name(self) -> Path:
        base = self.path.name[: -len(".json")] if self.path.name.endswith(".json") else self.path.name
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        for n in range(1, 10_000):
            candidate = self.path.with_name(f"{base}.corrupt-{stamp}{'' if n == 1 else f'-{n}'}.json")
            if not candidate.exists():
                return candidate
        raise OSError(f"no free name to move {self.path.name} aside")

    def _write(self, doc: Document) -> None:
        """Atomic replace: a crash leaves the old file or the new one, never a mix. Needs the lock."""
        self._doc = None
        folder = self.path.parent
        # Every writer holds the lock, so any temp file still here is from a killed writer.
        for stale in folder.glob(f".{glob.escape(self.path.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()
        pieces = self._text.pieces(doc, self._mapped)  # the items it already holds: views of the file
        self.last_save.update(rendered=self._text.rendered, bytes=sum(map(len, pieces)))
        replace_atomically(self.path, pieces)
        with contextlib.suppress(OSError):
            self._sig = _signature(os.stat(self.path))
            self._doc = doc

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock, self._flock():
            yield

    @contextlib.contextmanager
    def _flock(self) -> Iterator[None]:
        with exclusive_lock(self.path):
            yield


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Exclusive lock on a hidden ``.<file>.lock`` that exists only while it is held.

    The holder removes it before letting go; a waiter that then gets the lock of the
    removed file sees that the name now points elsewhere (or nowhere) and tries again.
    A writer killed while holding it leaves the file, which the next writer reuses
    and removes. The ``<file>.lock`` of older versions is locked too while it exists,
    so they still exclude each other.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.with_name(f".{path.name}.lock")
    while True:
        fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o666)
        if fcntl is None:  # pragma: no cover - Windows: no lock
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _signature(os.fstat(fd))[:2] == _signature(os.stat(name))[:2]:
                break
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # it was removed (or replaced) while we waited: try again
    legacy: int | None = None
    try:
        with contextlib.suppress(OSError):
            legacy = os.open(path.with_name(path.name + ".lock"), os.O_RDWR)
            if fcntl is not None:
                fcntl.flock(legacy, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)  # while holding it: see above
        if legacy is not None:
            os.close(legacy)
        os.close(fd)  # closing releases the flock


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a session name must be a non-empty string, not {name!r}")
    return name
