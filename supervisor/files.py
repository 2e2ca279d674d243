"""Writing files that someone may be reading at the same moment (an agent, git, the CLI itself)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, content: str | bytes, *, mode: int | None = None, durable: bool = False) -> None:
    """Replace `path` with `content` in one step: readers see the old file or the new one, never a part.

    The content goes to a uniquely named file beside it first (so two writers never share one), which is
    renamed over `path`. `mode`: its permissions (default: those of the file it replaces, else the umask's);
    `durable`: fsync before the rename (for a file another program owns, like ~/.claude.json)."""
    if mode is None:
        with contextlib.suppress(FileNotFoundError):
            mode = path.stat().st_mode & 0o777
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content.encode() if isinstance(content, str) else content)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.chmod(partial, mode if mode is not None else 0o644)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise

