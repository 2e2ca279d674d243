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



def inside(root: Path, path: Path) -> Path:
    """`path`, a path under `root`, once sure that no part of it below `root` is a symbolic link (what exists of
    it): an engine write there lands where it says, not where a link an agent planted leads (`.sub-agents ->
    ~/.config`). Raises SupervisorError."""
    from supervisor.errors import SupervisorError

    relative = path.relative_to(root)
    if path.resolve() != root.resolve() / relative:
        raise SupervisorError(f"{path} goes through a symbolic link below {root}; refusing to write there",
                              hint=f"remove the link ({root / relative.parts[0] if relative.parts else root})")
    return path


def write_in_place(path: Path, content: str) -> None:
    """Rewrite `path`'s content keeping its inode (a file bound into a sandbox is its inode: a file renamed over
    it would not show there), never through a symbolic link. Readers may see a part of it for a moment."""
    data = content.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.truncate(len(data))
