"""Which repositories of this user have a running engine: what `ls --all` and `ui --all` show.

Each engine registers itself, once its control socket listens, with a small file in the user's runtime
directory (`<runtime>/engines/<pid>.json`: its repository and its process), and removes it as it stops. An
engine killed without a word (kill -9, a crash, a reboot) leaves its file behind: a registration whose process
is gone, or is another process now (its start time differs: the pid was reused), is stale; readers skip it and
delete it. The runtime directory is hidden inside every agent's sandbox, so a sandboxed agent sees none of this.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from supervisor.paths import RepoPaths, ensure_private_dir, runtime_base


def registry_dir() -> Path:
    return runtime_base() / "engines"


@dataclass(frozen=True)
class Registration:
    """One running engine: its repository and its process (pid, start time as psutil gives it)."""

    root: Path
    common_dir: Path
    pid: int
    started: float
    file: Path

    @property
    def paths(self) -> RepoPaths:
        return RepoPaths(root=self.root, common_dir=self.common_dir)


def register(paths: RepoPaths, pid: int | None = None) -> Path:
    """Record that the engine `pid` (this process) serves `paths`; the file to remove as it stops."""
    pid = os.getpid() if pid is None else pid
    folder = registry_dir()
    ensure_private_dir(folder)
    record = {"root": str(paths.root), "common_dir": str(paths.common_dir), "pid": pid, "started": _started(pid)}
    file = folder / f"{pid}.json"
    scratch = folder / f".{pid}.json.part"
    scratch.write_text(json.dumps(record) + "\n")
    scratch.replace(file)  # whole or not at all: a reader never sees half a record
    return file


def unregister(file: Path) -> None:
    with contextlib.suppress(OSError):
        file.unlink()


def running_engines() -> list[Registration]:
    """Every registered engine whose process still runs, by repository path; stale registrations are deleted."""
    found: dict[Path, Registration] = {}
    try:
        entries = sorted(registry_dir().glob("*.json"))
    except OSError:
        return []
    for file in entries:
        registration = _read(file)
        if registration is None:
            continue
        if not _alive(registration.pid, registration.started):
            unregister(file)
            continue
        known = found.get(registration.common_dir)
        if known is None or registration.started > known.started:
            found[registration.common_dir] = registration
    return sorted(found.values(), key=lambda r: (r.root.name, str(r.root)))


def _read(file: Path) -> Registration | None:
    try:
        data = json.loads(file.read_text())
        return Registration(root=Path(data["root"]), common_dir=Path(data["common_dir"]), pid=int(data["pid"]),
                            started=float(data["started"]), file=file)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # gone meanwhile, or not ours: left as it is


def _started(pid: int) -> float:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0


def _alive(pid: int, started: float) -> bool:
    """The process `pid` runs (not a zombie) and is the one that registered (same start time)."""
    import psutil

    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and abs(process.create_time() - started) < 0.01
    except psutil.Error:
        return False
