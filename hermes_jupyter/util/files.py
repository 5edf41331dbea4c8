"""Writing a file so that a crash leaves the old one or the new one, never a mix."""
from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


def replace_atomically(path: Path, data: bytes | list[bytes | memoryview]) -> None:
    """Temp file beside ``path``, fsync, rename over it, fsync the folder; the file keeps its mode.

    ``data`` may be a list of pieces, written one after the other; the list is emptied before the
    rename, as pieces may be views of the file being replaced (a mapped file cannot be replaced
    everywhere)."""
    folder = path.parent
    tmp = folder / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        with open(fd, "wb") as fh:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))  # keep the user's mode
            if isinstance(data, list):
                fh.writelines(data)
                data.clear()
            else:
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError, AttributeError):  # no O_DIRECTORY/dir fsync on some systems
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
