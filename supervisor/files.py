"""Writing files that someone may be reading at the same moment (an agent, git, the CLI itself), and reading files
an agent can write: never through a link at their last part, never waiting on a FIFO, never without a bound."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
READ_LIMIT = 4 << 20  # bytes: a settings, credentials or git file larger than this is not what it claims


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


def open_at(name: str, folder: int | None) -> int | None:
    """A descriptor of regular file `name` (in folder `folder`, None: the working directory's), opened without
    blocking and without following a link at its last part; None otherwise."""
    try:
        fd = os.open(name, _READ, dir_fd=folder)
    except OSError:
        return None
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def open_regular(path: Path | str) -> int | None:
    """A descriptor of `path` if it is a regular file, opened without blocking (a FIFO) and without following a
    link at its last part; None otherwise. The caller bounds what it reads of it."""
    return open_at(os.fspath(path), None)


def read_regular(path: Path | str, limit: int = READ_LIMIT) -> bytes | None:
    """The regular file `path` whole, when it is one (no link at its last part, no FIFO) no larger than
    `limit` bytes; None otherwise."""
    return read_fd(open_regular(path), limit)


def read_head(path: Path | str, limit: int) -> bytes | None:
    """At most the first `limit` bytes of the regular file `path` (as `read_regular`, larger files cut)."""
    fd = open_regular(path)
    if fd is None:
        return None
    try:
        return read_all(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_fd(fd: int | None, limit: int) -> bytes | None:
    """All of `fd` (closed after) when it holds at most `limit` bytes; None otherwise."""
    if fd is None:
        return None
    try:
        if os.fstat(fd).st_size > limit:
            return None
        data = read_all(fd, limit + 1)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def read_all(fd: int, limit: int) -> bytes:
    """What `fd` holds from where it stands, at most `limit` bytes, read in chunks."""
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
