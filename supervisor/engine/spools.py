"""Each agent's spool folder, in its own runtime folder: where its hook keeps events the engine did not take
(none was running, or it answered too late). The folder says whose an event is, never the file: without a
sandbox an agent can write into another's folder (same OS user), so a spooled event is trusted no further than
a hook event sent through that agent's socket."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supervisor.core.model import Agent, validate_name
from supervisor.core.store import Store
from supervisor.engine.folderwatch import FolderWatch
from supervisor.engine.once import HookLedger, ingest_spool
from supervisor.engine.server import clear_path
from supervisor.errors import SupervisorError
from supervisor.paths import RepoPaths, ensure_private_dir

RACY_NS = 1_000_000_000
Apply = Callable[[Agent, dict[str, Any], float, object], None]


def prepare(paths: RepoPaths, name: str) -> None:
    """The agent's runtime folder and its spool folder, private to the user. Anything else found at the
    spool's place (a file, a link, a FIFO an agent put there) is removed, never followed."""
    ensure_private_dir(paths.runtime_dir / "agents")
    ensure_private_dir(paths.agent_runtime(name))
    folder = paths.agent_spool(name)
    try:
        info: os.stat_result | None = os.lstat(folder)
    except FileNotFoundError:
        info = None
    if info is not None and not (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()):
        clear_path(folder)
        info = None
    if info is None:
        folder.mkdir(mode=0o700)


def spool_of(socket_path: str) -> Path | None:
    """The spool folder beside an agent's own socket (`<runtime>/agents/NAME/engine.sock`); None for any other
    socket (a pane started by an earlier version, given the human's)."""
    socket = Path(socket_path)
    if socket.name != "engine.sock" or socket.parent.parent.name != "agents":
        return None
    return socket.parent / "spool"


class Spools:
    """Reads every agent's spool folder: only those `watch` says changed, or (where it cannot watch one) whose
    mtime moved, so an unchanged one costs nothing, or one stat."""

    def __init__(self, paths: RepoPaths, watch: FolderWatch | None = None) -> None:
        self.paths = paths
        self.watch = watch  # tells which spool folders changed, where inotify can be had
        self._again: set[str] = set()  # agents whose watched folder kept a file: read again at the next look
        self._marks: dict[str, float | None] = {}
        self._listed: tuple[tuple[int, int], list[tuple[str, Path]]] | None = None  # the folder's stamp, its list
        self._paths: tuple[list[tuple[str, Path]] | None, list[str]] = (None, [])  # a listing, its folders' paths

    def folders(self) -> list[tuple[str, Path]]:
        """Every agent's spool folder, listed again only when the runtime folder of agents changed."""
        agents = self.paths.runtime_dir / "agents"
        try:
            info = os.stat(agents)
        except OSError:
            return []
        stamp = (info.st_ino, info.st_mtime_ns)
        if self._listed is not None and self._listed[0] == stamp:
            return self._listed[1]
        try:
            entries = list(os.scandir(agents))
        except OSError:
            return []
        found = []
        for entry in entries:
            try:
                found.append((validate_name(entry.name), Path(entry.path) / "spool"))
            except SupervisorError:
                continue
        found.sort()
        # A folder changed within the last second may change again within the same mtime: listed again.
        self._listed = (stamp, found) if time.time_ns() - info.st_mtime_ns > RACY_NS else None
        return found

    def ingest(self, store: Store, ledger: HookLedger, apply: Apply, *, changed_only: bool = False) -> None:
        """Apply what each agent's spool folder holds; `changed_only`: only of folders that changed since the
        last look (told by `watch`, else by each folder's stat)."""
        folders = self.folders()
        if changed_only and self.watch is not None:
            if self._paths[0] is not folders:  # the folders as strings, made again when listed again
                self._paths = (folders, [os.fspath(folder) for _, folder in folders])
            told = self.watch.changed("spools", self._paths[1])
            if told is not None and not told[0] and not told[1] and not self._again:
                return  # every folder watched, and none changed: the usual tick
        else:
            told = None
        for name, folder in folders:
            if told is not None and os.fspath(folder) not in told[1]:  # watched: only what changed is read
                if os.fspath(folder) not in told[0] and name not in self._again:
                    continue
                self._again.discard(name)
                if not ingest_spool(folder, name, store, ledger, apply):
                    self._again.add(name)  # a file kept: read again at the next tick
                continue
            try:
                changed_ns = os.lstat(folder).st_mtime_ns  # (a link there is never followed)
            except OSError:
                continue
            mark: float | None = changed_ns
            if changed_only and mark is not None and self._marks.get(name) == mark:
                continue
            # Before the read: a file added later moves it. Unless it changed within the last second: a file
            # added within the same timestamp tick would not move it, so it is read again next time.
            self._marks[name] = mark if time.time_ns() - changed_ns > RACY_NS else None
            if not ingest_spool(folder, name, store, ledger, apply):
                self._marks[name] = None  # a file kept: read again at the next tick
