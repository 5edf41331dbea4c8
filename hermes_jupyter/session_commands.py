"""The session commands of %hermes: /sessions, /show, /new, /use, /rename, /title, /delete."""
from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError

from hermes_jupyter.engine import Engine, Turn
from hermes_jupyter.safety.redact import redact_for_display


class SessionCommands:
    """Mixed into HermesMagics: the commands that list, create, switch and rename sessions."""

    engine: Engine

    def _history_label(self) -> str | None:
        raise NotImplementedError

    def _cmd_sessions(self, rest: str) -> None:
        if not self.engine.sessions:
            print(f"[hermes] no sessions yet; the first prompt starts {self.engine.current!r}")
            return
        for name, session in self.engine.sessions.items():
            mark = "*" if name == self.engine.current else " "
            state = "busy" if session.busy else "idle"
            turns = len(session.saved_turns) + len(session.turns)
            # Shown as the prompt was typed, but redacted and encodable (a lone surrogate would lose the cell's output).
            title = redact_for_display(session.title or next((t.prompt for t in session.turns), ""))
            stopped = sum(t.get("status") == "interrupted" for t in session.saved_turns)
            note = f"  ({stopped} interrupted: the kernel stopped)" if stopped else ""
            print(f"{mark} {name:16} {turns:3} turns  {len(session.messages):4} messages  {state:4}  "
                  f"{title[:50]}{note}")
        label = self._history_label()
        print(f"  history: {label}" if label else "  history: not saved")

    def _cmd_show(self, rest: str) -> None:
        """A turn again: one of this kernel (its rendering) or of the history file (as /export has it)."""
        from IPython.display import display

        from hermes_jupyter.safety.markdown import render_markdown
        from hermes_jupyter.views import static
        from hermes_jupyter.views.export import turn_markdown

        session = self.engine.session()
        for candidate in [session, *(s for s in self.engine.sessions.values() if s is not session)]:
            entries: list[Any] = [*candidate.saved_turns, *candidate.turns]
            for number, entry in reversed(list(enumerate(entries, 1))):
                turn_id = entry.id if isinstance(entry, Turn) else str(entry.get("id"))
                if rest and rest != turn_id:
                    continue
                if isinstance(entry, Turn):
                    label = self._history_label()
                    display(static.bundle(entry, label) if entry.done else static.snapshot_bundle(entry, label), raw=True)
                else:
                    text = turn_markdown(number, entry)
                    display({"text/html": render_markdown(text), "text/plain": text}, raw=True)
                return
            if not rest:
                break
        raise UsageError(f"No turn {rest!r} in this notebook's sessions; /sessions lists them" if rest
                         else f"Session {self.engine.current!r} has no turns yet")

    def _cmd_new(self, rest: str) -> None:
        name = rest or _fresh_name(self.engine)
        if name in self.engine.sessions:
            raise UsageError(f"A session named {name!r} exists; use /use {name} to switch to it")
        self.engine.use(name)
        print(f"[hermes] new session {name!r} is current")

    def _cmd_use(self, rest: str) -> None:
        if not rest:
            raise UsageError("/use NAME: which session?")
        self.engine.use(rest)
        print(f"[hermes] session {rest!r} is current")

    def _cmd_rename(self, rest: str) -> None:
        names = rest.split()
        if len(names) not in (1, 2):
            raise UsageError("/rename NEW renames the current session; /rename OLD NEW any session")
        old, new = (self.engine.current, names[0]) if len(names) == 1 else names
        try:
            self.engine.rename(old, new)
        except (KeyError, ValueError) as exc:
            raise UsageError(str(exc).strip('"')) from None
        print(f"[hermes] session {old!r} is now {new!r}")

    def _cmd_title(self, rest: str) -> None:
        if not rest:
            raise UsageError("/title TEXT: the new title of the current session")
        session = self.engine.session()
        session.title = rest
        session.save()
        print(f"[hermes] session {session.name!r} is titled {redact_for_display(rest)!r}")  # as /sessions shows it

    def _cmd_delete(self, rest: str) -> None:
        if not rest:
            raise UsageError("/delete NAME: which session? (its history is removed from the file)")
        try:
            self.engine.delete(rest)
        except (KeyError, ValueError) as exc:
            raise UsageError(str(exc).strip('"')) from None
        current = self.engine.current
        print(f"[hermes] deleted session {rest!r}; " + (f"a new, empty {current!r} is current" if current == rest
                                                         else f"current is {current!r}"))


def _fresh_name(engine: Engine) -> str:
    n = len(engine.sessions) + 1
    while f"s{n}" in engine.sessions:
        n += 1
    return f"s{n}"
