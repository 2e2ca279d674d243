"""The engine's reads and writes in an agent's CLI folder (`RepoPaths.agent_state`), which the agent itself writes.

The engine runs outside the agent's sandbox, as the user: a link the agent leaves in its folder, followed, would
have the engine overwrite (or chmod) any file of the user's, or copy the user's credentials wherever it points;
a FIFO there, opened for reading, blocks the engine for good. So:
- every write goes through `StateFolder`: each folder on the way is opened relative to the one before it without
  following a link (`O_NOFOLLOW`), and the content goes to a new file of a unique name in that folder, renamed
  over the name it is for (a rename replaces a link, never follows it). A link (or a file) where a folder of
  the engine's should be is removed and the folder made: said once per launch as a `link_replaced` event
  (`noticed`), never followed;
- every read of a file the agent can write opens it without following a link and without blocking, and takes
  it only when it is a regular file no larger than the reader's bound (`supervisor.files.read_regular`); reads
  in the folder itself also refuse a link at any folder on the way (`StateFolder.read`).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path, PurePath, PurePosixPath

from supervisor.errors import SupervisorError
from supervisor.files import READ_LIMIT, open_at, read_fd

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# What was replaced while preparing one agent's folder (paths, relative to it): the engine says it as an event.
_noticed: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("state_folder_noticed", default=None)


@contextlib.contextmanager
def noticed() -> Iterator[list[str]]:
    """Collect, for the block's length, what any `StateFolder` replaced (a link or file where it writes)."""
    found: list[str] = []
    token = _noticed.set(found)
    try:
        yield found
    finally:
        _noticed.reset(token)


class StateFolder:
    """An agent's CLI folder as the engine writes it: never through a link the agent left there."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure(self, relative: str | PurePath = ".") -> None:
        """Make the folder (and `relative` in it) a real folder, replacing a link or file in the way."""
        os.close(self._folder(_parts(relative), create=True))

    def write(self, relative: str | PurePath, content: str | bytes, *, mode: int = 0o600,
              durable: bool = False) -> None:
        """Replace the file `relative` with `content` in one step (readers see the old file or the new one);
        `durable`: on disk before it replaces the old one (a file the CLI itself keeps, like `.claude.json`)."""
        *folders, name = _parts(relative)
        data = content.encode() if isinstance(content, str) else content
        fd = self._folder(folders, create=True)
        try:
            partial = f".{name}.{secrets.token_hex(6)}.supervisor"
            out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                          dir_fd=fd)
            try:
                with os.fdopen(out, "wb") as handle:
                    handle.write(data)
                    os.fchmod(handle.fileno(), mode)
                    if durable:
                        handle.flush()
                        os.fsync(handle.fileno())
                kind = _kind(fd, name)
                if kind is not None and stat.S_ISDIR(kind):  # a folder where the file goes: removed only if empty
                    self._clear(fd, name, [*folders, name])
                elif kind is not None and not stat.S_ISREG(kind):  # a link, a FIFO: replaced by the rename
                    _said([*folders, name])
                os.rename(partial, name, src_dir_fd=fd, dst_dir_fd=fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(partial, dir_fd=fd)
                raise
        finally:
            os.close(fd)

    def copy_in(self, source: Path, relative: str | PurePath, *, mode: int = 0o600) -> None:
        """The user's file or folder `source` (links there followed: the user's own) copied to `relative`,
        written as `write` does; files of it that cannot be read are left out, as the CLI could not read them."""
        if source.is_dir():
            self.ensure(relative)
            for entry in sorted(source.iterdir()):
                self.copy_in(entry, PurePosixPath(*_parts(relative), entry.name), mode=mode)
        elif source.is_file():
            try:
                data = source.read_bytes()
            except OSError:
                return
            self.write(relative, data, mode=mode)

    def read(self, relative: str | PurePath, limit: int = READ_LIMIT) -> bytes | None:
        """The regular file `relative`, reached through no link and no larger than `limit`; None otherwise."""
        *folders, name = _parts(relative)
        try:
            fd = self._folder(folders, create=False)
        except OSError:
            return None
        try:
            return read_fd(open_at(name, fd), limit)
        finally:
            os.close(fd)

    def _folder(self, parts: list[str], *, create: bool) -> int:
        """A handle on `parts` under the root, each opened without following a link; with `create`, what is
        missing is made and what is in the way (a link, a file) replaced. OSError when it cannot be had."""
        fd = os.open(self.root.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the engine's own folder
        try:
            fd = self._step(fd, self.root.name, create, None)
            for at, name in enumerate(parts):
                fd = self._step(fd, name, create, parts[:at])
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _step(self, parent: int, name: str, create: bool, where: list[str] | None) -> int:
        """Open folder `name` in `parent` (closing `parent`); `where`: the folders above it in the root (None: it
        is the root)."""
        try:
            for _ in range(3):  # in the way, removed; missing, made; opened
                try:
                    return os.open(name, _FOLDER, dir_fd=parent)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o700, dir_fd=parent)
                except OSError as exc:
                    if not create or exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    os.unlink(name, dir_fd=parent)  # a link or a file where a folder goes
                    _said(["."] if where is None else [*where, name])
            raise OSError(errno.EAGAIN, f"{self.root / PurePosixPath(*(where or []), name)} keeps changing")
        finally:
            os.close(parent)

    def _clear(self, fd: int, name: str, where: list[str]) -> None:
        try:
            os.rmdir(name, dir_fd=fd)
        except OSError:
            raise SupervisorError(f"{self.root / PurePosixPath(*where)} is a folder where the engine writes a file",
                                  hint="remove it; it is the agent's, in its CLI folder") from None
        _said(where)


def _said(where: list[str]) -> None:
    found = _noticed.get()
    if found is not None:
        found.append(str(PurePosixPath(*where)))


def _parts(relative: str | PurePath) -> list[str]:
    parts = [p for p in PurePosixPath(relative).parts if p not in ("", ".")]
    if any(p in ("..", "/") for p in parts):
        raise ValueError(f"not a path inside the folder: {relative}")
    return parts


def _kind(fd: int, name: str) -> int | None:
    """The mode of what is at `name` in folder `fd` (a link's own), None when nothing is."""
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None
