"""The transcripts a host keeps of its panes while the engine is away, on the host's own disk (see keeper.py), and
the locks that tell the keeper whether the engine is here.

Under the repository's folder there (DIR/<repo>-<hash>/spool/; names that start with a dot, which no agent's
name can, so no agent's own spool folder is one of them):

    .panes/KEY.head    {"server", "pane", "start", "end"}: the pane, on which tmux server, the row of its history
                       the kept rows start at and the size its history had at the last row kept (rows counted as
                       tmux counts its history, as the engine's transcripts do)
    .panes/KEY.rows    the rows that scrolled off the pane's screen from that row on, appended as they do
    .panes/KEY.screen  its screen at the keeper's last look (replaced whole)
    .home              held (shared) by each host program the engine talks through: while one holds it, the
                       engine is here and watches the panes itself
    .keeper            held by the one keeper of this folder; `.keeper.want`: the host program it must be (an
                       older one hands over); `.keeper.log`: what went wrong in it

KEY names the pane and its server: pane ids mean something only with the server instance (`#{pid}:#{start_time}`).
Nothing here is deleted but by the engine: once it has what a copy holds (`drop`, told what it took), or when no
transcript of its follows that pane any more (`sweep`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from typing import Any

ROWS_CAP = 8 << 20  # bytes of kept rows handed home at most (the newest): more than a transcript keeps anyway
# An absence of days: the rows file is cut back to its newest ROWS_CAP bytes when it passes twice that.
CHUNK = 512 << 10  # bytes of rows in one answer: JSON escapes a byte in 6 at most (an ESC of a colour), so an
# answer, with a screen of SCREEN_CAP, stays far under the engine's line limit (16 MiB) and comes within its timeout
SCREEN_CAP = 1 << 20
WANT = ".keeper.want"  # the host program whose keeper is wanted
LOG = ".keeper.log"  # the keeper's faults


def folder(root: str) -> str:
    return os.path.join(root, "spool")


def panes_folder(root: str) -> str:
    return os.path.join(folder(root), ".panes")


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


def wanted(root: str) -> str | None:
    """The host program whose keeper this folder's must be, if one is named."""
    try:
        with open(os.path.join(folder(root), WANT), encoding="utf-8", errors="replace") as handle:
            return handle.read(4096).strip() or None
    except OSError:
        return None


def want(root: str, program: str) -> None:
    make_folder(root)
    _replace(os.path.join(folder(root), WANT), program.encode(errors="surrogateescape"))


def begin(root: str, server: str, pane: str, start: int) -> None:
    """A new copy of the pane, from history row `start` (none was kept of it, or one the engine cannot read)."""
    make_folder(root)
    head, rows, screen = paths(root, server, pane)
    for path in (rows, screen):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    _write_head(head, server, pane, start, start)


def head(root: str, server: str, pane: str) -> tuple[int, int] | None:
    """Where the pane's copy starts and ends in its history (`start`, `end`); None when there is none, or its head
    cannot be read (then it is begun again: what it held cannot be placed)."""
    try:
        with open(paths(root, server, pane)[0], "rb") as handle:
            fields = json.loads(handle.read(4096))
        return int(fields["start"]), int(fields["end"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def add_rows(root: str, server: str, pane: str, rows: list[str], start: int, end: int) -> int:
    """Append `rows` to the pane's copy, which starts at history row `start` and now reaches a history of `end`
    rows. Returns where it starts now (later when it was cut back to its newest rows)."""
    head, path, _ = paths(root, server, pane)
    if rows:
        data = "".join(f"{row}\n" for row in rows).encode("utf-8", "surrogateescape")
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
            start += dropped
            _write_head(head, server, pane, start, end)  # first: stopped between the two, rows come twice, not never
            _replace(path, kept)
    _write_head(head, server, pane, start, end)  # after the rows: stopped between, the engine takes them again
    return start


def show(root: str, server: str, pane: str, screen: str) -> None:
    _replace(paths(root, server, pane)[2], screen.encode("utf-8", "surrogateescape"))


def take(root: str, server: str, pane: str, offset: int | None = None,
         limit: int | None = None) -> dict[str, Any] | None:
    """What is kept of the pane, in parts of `limit` bytes of rows at most, from `offset` (a `next` of an earlier
    part; None: the first part). The first part has `start` (the history row of its first row), `end` (the
    history's size at its last row), `screen` (lines) and `size` (the rows file's, for `drop`); each has `rows`,
    `file` (the rows file's identity: another one means it was cut back since) and `next` (None: the last part).
    None when nothing is kept of it."""
    where = head(root, server, pane)
    if where is None:
        return None
    start, end = where
    limit = CHUNK if limit is None else limit
    _, rows, screen = paths(root, server, pane)
    data, identity, size, at, before = b"", "", 0, 0, 0
    with contextlib.suppress(FileNotFoundError), open(rows, "rb") as handle:
        stat = os.fstat(handle.fileno())
        identity, size = f"{stat.st_dev}:{stat.st_ino}", stat.st_size
        at = offset if offset is not None else _newest_start(handle, size)
        if offset is None and at:
            handle.seek(0)
            before = handle.read(at).count(b"\n")  # the rows left out before the newest ROWS_CAP bytes
        handle.seek(at)
        data = handle.read(max(1, limit))
    # Whole rows only: a part ends after its last newline; a row being written when the host went down (no
    # newline after it) is left out, and is on the screen.
    cut = data.rfind(b"\n") + 1
    if cut == 0 and len(data) >= limit:  # one row longer than a part: cut where the part ends
        cut = len(data)
    taken = data[:cut]
    lines = taken.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    after = at + len(taken)
    part: dict[str, Any] = {"rows": lines, "file": identity, "next": after if taken and after < size else None}
    if offset is None:
        shown = _read(screen, SCREEN_CAP).decode("utf-8", "replace").split("\n")
        part.update(start=start + before, end=end, screen=shown, size=size)
    return part


def drop(root: str, server: str, pane: str, end: int | None = None, size: int | None = None) -> bool:
    """Forget the pane's copy: the engine has it. Given `end` and `size` (what the engine took), only when the copy
    is still that (not grown since: the engine went away again meanwhile). True when it was dropped."""
    rows = paths(root, server, pane)[1]
    if end is not None:
        where = head(root, server, pane)
        try:
            now = os.stat(rows).st_size
        except FileNotFoundError:
            now = 0
        if where is None or where[1] != end or now != size:
            return False
    for path in paths(root, server, pane):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return True


def kept_panes(root: str) -> list[tuple[str, str]]:
    """The (server, pane) of every copy kept under `root`."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(panes_folder(root)):
            if name.endswith(".head"):
                try:
                    with open(os.path.join(panes_folder(root), name), "rb") as handle:
                        fields = json.loads(handle.read(4096))
                    found.append((str(fields["server"]), str(fields["pane"])))
                except (OSError, ValueError, KeyError, TypeError):
                    continue
    return found


def sweep(root: str, followed: set[tuple[str, str]]) -> int:
    """Forget every copy whose pane no transcript of the engine's follows (`followed`: (server, pane)): panes that
    were no agent's, agents removed since, copies of a server gone whose agents' transcripts are closed. Also the
    leftovers of files being replaced when the host went down, and files of no copy. Returns how many went."""
    gone = 0
    keep = {key(server, pane) for server, pane in followed}
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(panes_folder(root)):
            base, _, kind = name.partition(".")
            if base in keep and kind in ("head", "rows", "screen"):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(panes_folder(root), name))
                gone += kind == "head"
    return gone


def _write_head(path: str, server: str, pane: str, start: int, end: int) -> None:
    _replace(path, json.dumps({"server": server, "pane": pane, "start": start, "end": end}).encode())


def _newest_start(handle: Any, size: int) -> int:
    """The offset of the first whole row within the file's newest ROWS_CAP bytes."""
    if size <= ROWS_CAP:
        return 0
    at = size - ROWS_CAP
    handle.seek(at - 1)
    if handle.read(1) == b"\n":
        return at
    rest = handle.read(ROWS_CAP)
    found = rest.find(b"\n")
    return size if found < 0 else at + found + 1


def _newest_rows(path: str) -> tuple[bytes, int]:
    """The newest whole rows of the file, ROWS_CAP bytes at most, and how many rows before them were left out."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            at = _newest_start(handle, size)
            handle.seek(0)
            skipped = handle.read(at)
            rest = handle.read()
    except FileNotFoundError:
        return b"", 0
    return rest, skipped.count(b"\n")


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
