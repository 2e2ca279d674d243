"""What wakes the engine's services besides the store's own writes: a moved ref.

The services sleep until the store tells them of a write they depend on (supervisor/core/notices.py) or of a
touch (`Store.listen_touches`), or until their own next deadline, instead of waking on a fixed period to find
nothing new. Refs are not in the store: the watch loop, which runs every
tick anyway, learns which ref folders a live agent depends on changed (from inotify, or one `stat` per folder
where that cannot be had, see `supervisor.git.refs`) and, when one did, touches the store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from supervisor.core.model import Agent
from supervisor.core.store import Store
from supervisor.engine.folderwatch import FolderWatch
from supervisor.git import agent_refs
from supervisor.git.refs import RACY_SECONDS, refs_stamp, stamp_of


def watched_folders(agents: Iterable[Agent]) -> frozenset[str]:
    """The ref folders the live agents depend on: their branches', their targets', and the folder of the
    agents' folders (a new agent's appears there)."""
    return frozenset(agent_refs.ref_folders(agent for agent in agents if agent.state.live))


class RefWatch:
    """Touches the store when a ref a live agent depends on moved since the last look. The ref folders are
    watched through `folders` (inotify: nothing to do while nothing moves); those it cannot watch, and the
    packed-refs file, by their stat stamps."""

    def __init__(self, store: Store, common_dir: Path, folders: FolderWatch | None = None) -> None:
        self.store = store
        self.common_dir = common_dir
        self.folders = folders
        self._refs: tuple[tuple[str, str, str | None], ...] | None = None  # the live agents' hosts, branches, targets
        self._paths: list[str] = []  # the folders to look at for them
        self._packed = os.fspath(common_dir / "packed-refs")
        self._stamp: list[int] | None = None
        self._racy = False
        self.moves = 0  # how many looks found a ref moved
        self._written: int | None = None  # the store's count of record writes the last look's records were read at

    def look(self, agents: Sequence[Agent], written: int | None = None) -> bool:
        """Whether a ref moved (the store was touched); the first look only takes the stamp. `written`: the
        store's count of record writes when `agents` were read (`AgentRecords.written`), if known."""
        # The same records as at the last look (`written`: the store's count of record writes they were read at):
        # the same live agents, branches and targets.
        refs = self._refs if written is not None and written == self._written else \
            tuple((agent.host, agent.branch, agent.target) for agent in agents if agent.state.live)
        self._written = written
        changed = False
        if refs != self._refs:
            changed = self._refs is not None
            self._refs = refs
            folders = sorted(watched_folders(agent for agent in agents if agent.state.live))
            self._paths = [os.fspath(self.common_dir / folder) for folder in folders]
        told = self.folders.changed("refs", self._paths) if self.folders is not None else None
        if told is not None:
            changed = changed or bool(told[0])
            stamped = sorted(told[1])
        else:
            stamped = self._paths
        stamp: list[int] = []
        for path in [*stamped, self._packed]:
            try:
                info = os.stat(path)
            except OSError:
                stamp += (0, 0, 0)
                continue
            stamp += (info.st_mtime_ns, info.st_ino, info.st_size)
        # Changed within RACY_SECONDS: it may change again within the same mtime, so the next look tells too.
        now = time.time_ns()
        racy = any(abs(now - at) < RACY_SECONDS * 1e9 for at in stamp[::3])
        moved = self._stamp is not None and (changed or stamp != self._stamp or self._racy)
        self._stamp, self._racy = stamp, racy
        if moved:
            self.moves += 1
            self.store.touch()
        return moved


class RefsStamp:
    """`refs_stamp` told by the kernel: a stamp of ref folders that changes when a ref in one of them (or a packed
    ref) moved since the last call, with no `stat` of the folders while nothing moves. The folders are watched
    through `folders` in a group of the caller's own (`group`), with the git common dir (where packed-refs is
    rewritten), so that a caller listening to the group (`FolderWatch.listen`) is told of every move; those it
    cannot watch, and packed-refs, by their stat stamps as `refs_stamp` takes them. Without inotify it is
    `refs_stamp`. `told` says whether the last stamp was told by the kernel alone: False, the caller must call
    again on its own (some folder could only be stat'ed)."""

    def __init__(self, common_dir: Path, folders: FolderWatch | None, group: str) -> None:
        self.common_dir = common_dir
        self.folders = folders
        self.group = group
        self._packed = common_dir / "packed-refs"
        self._common = os.fspath(common_dir)
        self._paths: tuple[frozenset[str], list[str]] = (frozenset(), [])  # the folders last asked for, as paths
        self._moves = 0  # how many calls found a watched folder changed
        self.told = False

    def stamp(self, folders: Iterable[str]) -> tuple[int, ...]:
        wanted = frozenset(folders)
        self.told = False
        if self.folders is None:
            return refs_stamp(self.common_dir, wanted)
        if wanted != self._paths[0]:
            paths = [os.fspath(self.common_dir / folder) for folder in sorted(wanted)]
            self._paths = (wanted, [*paths, self._common])
        told = self.folders.changed(self.group, self._paths[1])
        if told is None:
            return refs_stamp(self.common_dir, wanted)
        changed, unwatched = told
        if changed - {self._common}:  # the common dir's own changes (an index, a HEAD) move no ref but packed ones
            self._moves += 1
        self.told = not unwatched
        return (self._moves, *stamp_of([*(Path(path) for path in sorted(unwatched - {self._common})),
                                        self._packed]))
