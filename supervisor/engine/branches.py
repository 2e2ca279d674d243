"""What `ls`, `show` and `diffstat` say about each agent's branch and worktree, without running git on every
request: commits its target lacks (and so whether it is ready to merge), and its diff stat.

Branch tips come from one `for-each-ref`, run again only when the ref folders' stamp changed (see
`supervisor.git.refs`). A count of commits ahead is kept per (tip, target tip) and asked of git only for
agents that could be ready to merge. A diff stat is kept per agent and recomputed only when something that
could change it moved: its branch tip, its base, its pane's output (its screen changed: the agent did
something: at most every ACTIVE_EVERY seconds while it keeps printing), its state (a turn ended), or its
worktree's index (a `git add`, a commit, a checkout). A dashboard asking every few seconds for 100 agents
costs a few `stat` calls when nothing happened, instead of a `git diff` per agent.

Ready to merge means a merge would go through now with nothing lost: besides its commits and a clean audit, no
conflict with its target (as the conflict radar recorded it) and nothing uncommitted in its worktree (a merge
takes commits only). Only an agent otherwise ready has its worktree read, and that read is kept while its tip,
index and state stay put, for at most DIRTY_AGAIN seconds (an edit by hand touches no index).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.core.model import Agent, State
from supervisor.errors import SupervisorError
from supervisor.files import read_regular
from supervisor.git import agent_refs, worktrees
from supervisor.git.audit import new_commits
from supervisor.git.refs import refs_stamp

# An agent that finished (its turn, or for good) may be ready to merge; one still at work is not.
FINISHED = frozenset({State.IDLE, State.STOPPED, State.EXITED})
BUSY = frozenset({State.STARTING, State.WORKING, State.WAITING, State.STALLED, State.LIMITED, State.UNREACHABLE})
ACTIVE_EVERY = 20.0  # a busy agent's diff stat is computed again at most this often (each costs a git diff)
UNTRACKED_MAX_BYTES = 1 << 20  # untracked files larger than this count as a file, their lines unread
DIRTY_AGAIN = 10.0  # an otherwise ready agent's worktree is read again at least this often


@dataclass(frozen=True)
class _Stat:
    moved: tuple[Any, ...]  # what changes it at once: tip, base, index, state (a turn ended)
    printed: float | None  # the pane's last output: the agent did something, maybe to its files
    at: float  # monotonic time it was computed
    stat: dict[str, int] | None


@dataclass(frozen=True)
class Readiness:
    ahead: int | None  # commits its branch has that its target lacks (None: not counted, it is not finished)
    ready: bool  # finished, helpers done, commits to merge, a clean audit of its tip, not merged as it stands,
    # no conflict with its target, nothing uncommitted
    uncommitted: int | None = None  # changes in its worktree (None: not read, or it could not be read)


@dataclass(frozen=True)
class _Dirty:
    moved: tuple[Any, ...]  # worktree, tip, index, state
    at: float  # monotonic time it was read
    count: int | None


def _local_changes(agent: Agent) -> list[str]:
    return worktrees.uncommitted_changes(Path(agent.worktree))


def conflicts_with_target(agent: Agent) -> bool:
    """The conflict radar found its branch conflicting with the branch it merges into."""
    return any(isinstance(c, dict) and c.get("branch") == agent.target for c in agent.extra.get("conflicts") or [])


class BranchFacts:
    def __init__(self, root: Path, common_dir: Path,
                 uncommitted: Callable[[Agent], list[str]] = _local_changes) -> None:
        """`uncommitted`: the `git status --porcelain` lines of an agent's worktree, wherever it runs."""
        self.root = root
        self.common_dir = common_dir
        self._uncommitted = uncommitted
        self._dirty: dict[str, _Dirty] = {}
        self._lock = threading.Lock()
        self._stamp: tuple[int, ...] | None = None
        self._tips: dict[str, str] = {}
        self._ahead: dict[tuple[str, str], int] = {}
        self._stats: dict[str, _Stat] = {}
        self._index: dict[str, Path] = {}
        self.git_runs = 0  # git processes started for diff stats and counts (tests, measurements)

    def tips(self, agents: Iterable[Agent]) -> dict[str, str]:
        """Every branch's tip (short name → commit; a remote agent's as fetched home), read again only when a ref
        the agents use moved."""
        agents = list(agents)
        stamp = refs_stamp(self.common_dir, agent_refs.ref_folders(agents))
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._tips = agent_refs.tips(self.root, agents)
                except SupervisorError:
                    return dict(self._tips)
                self._stamp = stamp
            return dict(self._tips)

    # ready to merge ---------------------------------------------------------------------------------------

    def readiness(self, agents: list[Agent]) -> dict[str, Readiness]:
        """Per agent: commits ahead of its target (for those that finished) and whether it is ready to merge."""
        tips = self.tips(agents)
        busy = {agent.name for agent in agents if agent.state in BUSY}
        result: dict[str, Readiness] = {}
        for agent in agents:
            tip, target_tip = tips.get(agent.branch), tips.get(agent.target)
            finished = agent.state in FINISHED and not (agent.state == State.EXITED and agent.exit_code)
            if not finished or tip is None or target_tip is None:
                result[agent.name] = Readiness(None, False)
                continue
            key = (tip, target_tip)
            ahead = self._count(key)
            helpers_busy = any(name.startswith(agent.name + ".") for name in busy)
            audited = agent.extra.get("audited") == tip and not agent.extra.get("violations")
            merged = agent.extra.get("merged_tip") == tip
            ready = bool(ahead) and audited and not merged and not helpers_busy and not conflicts_with_target(agent)
            dirty = self._count_dirty(agent, tip) if ready else None
            result[agent.name] = Readiness(ahead, ready and dirty == 0, dirty)
        live_tips = set(tips.values())
        names = {agent.name for agent in agents}
        with self._lock:  # forget counts about commits no branch points at any more, and agents gone
            for key in [key for key in self._ahead if not set(key) <= live_tips]:
                del self._ahead[key]
            for gone in set(self._dirty) - names:
                del self._dirty[gone]
        return result

    def _count_dirty(self, agent: Agent, tip: str) -> int | None:
        """How many uncommitted changes its worktree holds (None: it could not be read)."""
        index = None if agent_refs.is_remote(agent) else _mtime(self._index_of(Path(agent.worktree)))
        moved = (agent.worktree, tip, index, agent.state, agent.state_since)  # taken before the read: a change
        now = time.monotonic()  # while it runs is seen at the next look (the read never writes the index)
        with self._lock:
            cached = self._dirty.get(agent.name)
        if cached is not None and cached.moved == moved and now - cached.at < DIRTY_AGAIN:
            return cached.count
        try:
            count: int | None = len(self._uncommitted(agent))
        except SupervisorError:  # a host down, a worktree git cannot read: not known to be clean
            count = None
        with self._lock:
            self.git_runs += 1
            self._dirty[agent.name] = _Dirty(moved, now, count)
        return count

    def _count(self, key: tuple[str, str]) -> int | None:
        with self._lock:
            if key in self._ahead:
                return self._ahead[key]
        try:
            count = len(new_commits(self.root, key[0], [key[1]]))
        except SupervisorError:
            return None
        with self._lock:
            self.git_runs += 1
            self._ahead[key] = count
        return count

    # diff stats --------------------------------------------------------------------------------------------

    def diffstats(self, agents: list[Agent], activity: Mapping[str, float]) -> dict[str, dict[str, int]]:
        """Per agent: files changed and lines added/removed in its worktree against its base (commits,
        uncommitted edits and new untracked files); `activity`: when each agent's pane last printed."""
        tips = self.tips(agents)
        now = time.monotonic()
        result: dict[str, dict[str, int]] = {}
        for agent in agents:
            worktree = Path(agent.worktree)
            remote = agent_refs.is_remote(agent)
            moved = (agent.worktree, agent.base, tips.get(agent.branch),
                     None if remote else _mtime(self._index_of(worktree)), agent.state, agent.state_since)
            printed = activity.get(agent.name) or agent.last_activity_at
            with self._lock:
                cached = self._stats.get(agent.name)
            if cached is None or cached.moved != moved or \
                    (cached.printed != printed and now - cached.at >= ACTIVE_EVERY):
                stat = self._committed(agent.base, tips.get(agent.branch)) if remote else \
                    self._diffstat(worktree, agent.base)
                cached = _Stat(moved, printed, now, stat)
                with self._lock:
                    self._stats[agent.name] = cached
            if cached.stat is not None:
                result[agent.name] = cached.stat
        names = {agent.name for agent in agents}
        with self._lock:
            for gone in set(self._stats) - names:
                del self._stats[gone]
        return result

    def _index_of(self, worktree: Path) -> Path:
        key = str(worktree)
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = _index_of(worktree)
        return index

    def _committed(self, base: str, tip: str | None) -> dict[str, int] | None:
        """A remote agent's diff stat: its commits as fetched home against its base (what is uncommitted on its
        host is not counted: reading it costs a request, and `diff` shows it)."""
        if tip is None:
            return None
        with self._lock:
            self.git_runs += 1
        return worktrees.diffstat_between(self.root, base, tip)

    def _diffstat(self, worktree: Path, base: str) -> dict[str, int] | None:
        with self._lock:
            self.git_runs += 2
        stat = worktrees.diffstat(worktree, base)
        if stat is None:
            return None
        files, added = untracked(worktree)
        return {"files": stat["files"] + files, "added": stat["added"] + added, "removed": stat["removed"]}


def untracked(worktree: Path) -> tuple[int, int]:
    """New files git does not know yet (ignored and excluded ones left out), and their lines."""
    try:
        out = worktrees.run_git(worktree, "ls-files", "--others", "--exclude-standard", "-z")
    except SupervisorError:
        return 0, 0
    files = lines = 0
    for name in filter(None, out.split("\0")):
        files += 1
        path = worktree / name
        data = read_regular(path, UNTRACKED_MAX_BYTES)  # the agent's: no link followed, no FIFO waited on
        if data is None:
            continue
        if b"\0" not in data:  # a text file (git shows a binary one as "-": no lines)
            lines += data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    return files, lines


def _index_of(worktree: Path) -> Path:
    """The index file of a worktree: `.git/index`, or for a linked worktree the one its `.git` file names."""
    dotgit = worktree / ".git"
    data = read_regular(dotgit, 1 << 16)  # the agent's to write: no link followed, no FIFO waited on
    line = data.decode("utf-8", "surrogateescape").strip() if data is not None else ""
    if line.startswith("gitdir:"):
        gitdir = Path(line.removeprefix("gitdir:").strip())
        return (gitdir if gitdir.is_absolute() else worktree / gitdir) / "index"
    return dotgit / "index"


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
