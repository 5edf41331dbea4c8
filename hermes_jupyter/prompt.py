"""The notebook's system prompt: written for every agent, recognized by the recorder.

Both sides use this module, so the sentence that names the notebook's folder is
defined once: the agent layer writes it, and the recording finds the folder in a
request's system message to store paths as ``<notebook>``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hermes_jupyter.util.text import message_text

_FOLDER = "The notebook's folder is {folder}; use it as the working directory for files and commands."
_FOLDER_RE = re.compile(re.escape(_FOLDER).replace(re.escape("{folder}"), "(.+?)"))


def system_prompt(cwd: Path | str, personality_prompt: str | None = None) -> str:
    prompt = ("You are working inside a Jupyter notebook through the %hermes magic. "
              + _FOLDER.format(folder=cwd)
              + " Your answers are rendered as Markdown in the notebook.")
    # A personality goes where the Hermes CLI puts it: the ephemeral system prompt.
    return f"{prompt}\n\n{personality_prompt}" if personality_prompt else prompt


def notebook_folder(messages: Iterable[Any]) -> str | None:
    """The notebook folder named in a request's system message, if there is one."""
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "system":
            found = _FOLDER_RE.search(message_text(message.get("content")))
            if found:
                return found.group(1)
    return None
