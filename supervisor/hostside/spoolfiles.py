"""The transcripts a host keeps of its panes while the engine is away, on the host's own disk (see keeper.py), and
the locks that tell the keeper whether the engine is here.

Under the repository's folder there (DIR/<repo>-<hash>/spool/):

    panes/KEY.head     {"server", "pane", "start"}: the pane, on which tmux server, and the row of its history the
                       kept rows start at (rows counted as tmux counts its history, as the engine's transcripts do)
    panes/KEY.rows     the rows that scrolled off the pane's screen from that row on, appended as they do
    panes/KEY.screen   its screen at the keeper's last look (replaced whole)
    .home              held (shared) by each host program the engine talks through: while one holds it, the
                       engine is here and watches the panes itself
    .keeper            held by the one keeper of this folder

KEY names the pane and its server: pane ids mean something only with the server instance (`#{pid}:#{start_time}`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from typing import Any

ROWS_CAP = 8 << 20  # bytes of kept rows handed home at most (the newest): more than a transcript keeps anyway
# An absence of days: the rows file is cut back to its newest ROWS_CAP bytes when it passes twice that.


def folder(root: str) -> str:
    return os.path.join(root, "spool")


def panes_folder(root: str) -> str:
    return os.path.join(folder(root), "panes")


def key(server: str, pane: str) -> str:
    return f"{server.replace(':', '-')}-{pane.lstrip('%')}".replace("/", "_")


def paths(root: str, server: str, pane: str) -> tuple[str, str, str]:
    """The pane's head, rows and screen files."""
    base = os.path.join(panes_folder(root), key(server, pane))
    return f"{base}.head", f"{base}.rows", f"{base}.screen"


def make_folder(root: str) -> str:
    """The spool's folder (and its panes' folder), made when missing: the host user's own (0700)."""
    os.makedirs(panes_folder(root), mode=0o700, exist_ok=True)
    return folder(root)


def lock_file(root: str, name: str) -> int:
    """An open descriptor of the lock file `name` (`.home`, `.keeper`) of the spool."""
    return os.open(os.path.join(make_folder(root), name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def try_lock(descriptor: int, mode: int) -> bool:
    try:
        fcntl.flock(descriptor, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def begin(root: str, server: str, pane: str, start: int) -> None:
    """A new spool for the pane, from history row `start` (what an earlier absence kept is stale: the pane lived
    through the engine's return, and its history holds it)."""
    make_folder(root)
    head, rows, screen = paths(root, server, pane)
    for path in (rows, screen):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    _replace(head, json.dumps({"server": server, "pane": pane, "start": start}).encode())


def add_rows(root: str, server: str, pane: str, rows: list[str]) -> None:
    if not rows:
        return
    data = "".join(f"{row}\n" for row in rows).encode("utf-8", "surrogateescape")
    head, path, _ = paths(root, server, pane)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        done = 0
        while done < len(data):
            done += os.write(descriptor, data[done:])
        size = os.fstat(descriptor).st_size
    finally:
        os.close(descriptor)
    if size > 2 * ROWS_CAP:
        kept, dropped = _newest_rows(path)
        with open(head, "rb") as handle:
            fields = json.loads(handle.read())
        fields["start"] = int(fields["start"]) + dropped
        _replace(head, json.dumps(fields).encode())  # first: stopped between the two, rows come twice, not never
        _replace(path, kept)


def show(root: str, server: str, pane: str, screen: str) -> None:
    _replace(paths(root, server, pane)[2], screen.encode("utf-8", "surrogateescape"))


def take(root: str, server: str, pane: str) -> dict[str, Any] | None:
    """What is kept of the pane: `start` (its first row's history row), `rows`, `screen` (lines); None when
    nothing is."""
    head, rows, screen = paths(root, server, pane)
    try:
        with open(head, "rb") as handle:
            fields = json.loads(handle.read())
        start = int(fields["start"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    kept, dropped = _newest_rows(rows)
    lines = kept.decode("utf-8", "replace").split("\n")
    lines.pop()  # after the last newline: nothing, or a row being written when the host went down (on the screen)
    shown = _read(screen, 1 << 20).decode("utf-8", "replace").split("\n")
    return {"start": start + dropped, "rows": lines, "screen": shown}


def drop(root: str, server: str, pane: str) -> None:
    for path in paths(root, server, pane):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def kept_panes(root: str) -> list[tuple[str, str]]:
    """The (server, pane) of every spool kept under `root`."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(panes_folder(root)):
            if name.endswith(".head"):
                try:
                    with open(os.path.join(panes_folder(root), name), "rb") as handle:
                        fields = json.loads(handle.read())
                    found.append((str(fields["server"]), str(fields["pane"])))
                except (OSError, ValueError, KeyError, TypeError):
                    continue
    return found


def _newest_rows(path: str) -> tuple[bytes, int]:
    """The newest whole rows of the file, ROWS_CAP bytes at most, and how many rows before them were left out."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size <= ROWS_CAP:
                return handle.read(), 0
            skipped = handle.read(size - ROWS_CAP)
            rest = handle.read()
    except FileNotFoundError:
        return b"", 0
    dropped = skipped.count(b"\n")
    if not skipped.endswith(b"\n"):  # cut within a row: it goes too
        rest = rest[rest.find(b"\n") + 1:]
        dropped += 1
    return rest, dropped


def _read(path: str, cap: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - cap))
            return handle.read(cap)
    except FileNotFoundError:
        return b""


def _replace(path: str, data: bytes) -> None:
    """Write `path` whole by renaming a new file over it: a reader (or a reboot) sees the old or the new."""
    fresh = f"{path}.{os.getpid()}.new"
    descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        done = 0
        while done < len(data):
            done += os.write(descriptor, data[done:])
    finally:
        os.close(descriptor)
    os.replace(fresh, path)
