"""The checks the watch makes on its slow ticks, from the process trees read for every agent: `escape` (a process
of an agent's tree working in another agent's worktree or the main checkout), `deadlock` (agents waiting for each
other in a cycle) and the conversation ids of CLIs that keep them in their own files. Agents on hosts have theirs
in engine/host_escapes.py and host_sessions.py, judged the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.agents import get_profile
from supervisor.agents.base import Profile
from supervisor.agents.session_ids import valid
from supervisor.core.model import Agent
from supervisor.core.triggers import Trigger, fire
from supervisor.engine.processes import Snapshot
from supervisor.tmux.server import PaneInfo

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

ESCAPE_SWEEP_EVERY = 12  # slow checks between looks at every process's directory, not only active ones
SESSION_RECHECK_EVERY = 3  # slow checks between looks for a newer conversation once one was found

Locked = Callable[[str, object], bool]  # run an action on an agent's fresh record under its lock (Watcher._locked)


class SlowChecks:
    def __init__(self, engine: Engine, locked: Locked) -> None:
        self.engine = engine
        self._locked = locked
        self._escape_checks = 0
        self._session_checks = 0
        self._escape_seen: dict[tuple[int, float], float] = {}  # process → its CPU seconds at the last check

    def run(self, snapshot: Snapshot, agents: list[Agent], panes: dict[str, PaneInfo]) -> None:
        """All of them, for the live local agents (`snapshot`: every tree, read this tick)."""
        self.check_escapes(snapshot, agents, panes)
        self.check_deadlocks(agents)
        self.look_for_sessions(agents)

    def check_escapes(self, snapshot: Snapshot, agents: list[Agent], panes: dict[str, PaneInfo]) -> None:
        """`escape`: a process of an agent's tree working inside another agent's worktree or the main checkout.

        A process's directory is read when it is new or used CPU since the last check (a process that did
        not run cannot have moved, and work done elsewhere needs CPU or new processes), and every
        ESCAPE_SWEEP_EVERY checks for all of them."""
        engine = self.engine
        sweep = self._escape_checks % ESCAPE_SWEEP_EVERY == 0
        self._escape_checks += 1
        seen, self._escape_seen = self._escape_seen, {}
        areas = [(a.name, a.worktree) for a in agents] + [(None, str(engine.paths.root))]
        for agent in agents:
            pane = engine.panes.own(agent, panes)
            if pane is None or not pane.pid:
                continue
            own = agent.worktree
            for pid in snapshot.tree(pane.pid):
                info = snapshot.procs[pid]
                key = (pid, info.create_time)
                self._escape_seen[key] = info.cpu_seconds
                if not sweep and seen.get(key) == info.cpu_seconds:
                    continue
                where_now = snapshot.cwd_text(pid)  # the usual answer, at home, costs one readlink
                if where_now is None or inside(where_now, own):
                    continue
                cwd = snapshot.cwd(pid)  # read again, and the process checked to be the same one
                if cwd is None or inside(str(cwd), own):
                    continue
                # The most specific area that holds the cwd (helpers' worktrees sit inside their parent's).
                holders = [(name, path) for name, path in areas if inside(str(cwd), path)]
                if not holders:
                    continue
                owner = max(holders, key=lambda item: len(item[1]))[0]
                if owner == agent.name:
                    continue
                where = f"agent {owner}'s worktree" if owner else "the main checkout"
                if not self._locked(agent.name, lambda fresh, p=pid, c=cwd, w=where: self.escaped(fresh, p, c, w)):
                    del self._escape_seen[key]  # busy: look again next time
                break

    def escaped(self, agent: Agent, pid: int, cwd: Path, where: str) -> None:
        key = f"{pid}:{cwd}"
        if not agent.state.live or agent.extra.get("escaped") == key:
            return
        agent.extra["escaped"] = key
        self.engine.store.save_agent(agent)
        fire(self.engine.store, agent, Trigger.ESCAPE, f"process {pid} works in {where}: {cwd}", pid=pid,
             cwd=str(cwd))

    def look_for_sessions(self, agents: list[Agent]) -> None:
        """The conversation id of each agent whose CLI keeps it in its own files (Codex, Gemini CLI): the newest
        begun since its launch, looked for at each slow check until one is found, then more seldom (a `/new`
        begins another); `_decide` records it for `restart` and `restore` to resume."""
        again = self._session_checks % SESSION_RECHECK_EVERY == 0
        self._session_checks += 1
        for agent in agents:
            live = self.engine.live.get(agent.name)
            if live is None or (live.session_id is not None and not again):
                continue
            profile = get_profile(agent.profile)
            if type(profile).find_session is Profile.find_session:
                continue  # its CLI keeps no conversation id in files of its own (or tells it through hooks)
            found = valid(profile.find_session(self.engine.paths.agent_state(agent.name),
                                                                  Path(agent.worktree), live.launched_at))
            if found is not None:
                live.session_id = found

    def check_deadlocks(self, agents: list[Agent]) -> None:
        """`deadlock`: live agents that wait for each other in a cycle (from their reported `waiting_for`)."""
        by_name = {a.name: a for a in agents}
        edges = {name: [w for w in a.extra.get("waiting_for", []) if w in by_name] for name, a in by_name.items()}
        in_cycle = {name: cycle for cycle in find_cycles(edges) for name in cycle}
        for name, agent in by_name.items():
            cycle = in_cycle.get(name)
            label = " → ".join([*cycle, cycle[0]]) if cycle else None
            if agent.extra.get("deadlock") != label:
                self._locked(name, lambda fresh, c=cycle, text=label: self._deadlock(fresh, c, text))

    def _deadlock(self, agent: Agent, cycle: list[str] | None, label: str | None) -> None:
        if agent.extra.get("deadlock") == label:
            return
        if label is not None:
            agent.extra["deadlock"] = label
            self.engine.store.save_agent(agent)
            fire(self.engine.store, agent, Trigger.DEADLOCK, f"waits in a cycle: {label}", cycle=cycle)
        else:
            del agent.extra["deadlock"]
            self.engine.store.save_agent(agent)
            fire(self.engine.store, agent, Trigger.DEADLOCK, "no longer in a waiting cycle", active=False)


def find_cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    """Each cycle of the waits-for graph once, starting at its smallest name."""
    cycles: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in edges.get(node, []):
            if nxt == start:
                cycle = path[:]
                pivot = cycle.index(min(cycle))
                canonical = tuple(cycle[pivot:] + cycle[:pivot])
                if canonical not in seen:
                    seen.add(canonical)
                    cycles.append(list(canonical))
            elif nxt not in path and nxt > start:
                walk(start, nxt, [*path, nxt])

    for start in sorted(edges):
        walk(start, start, [start])
    return cycles


def inside(path: str, area: str) -> bool:
    """Whether `path` is `area` or below it (both absolute, as the kernel and the store spell them, here or on a
    host)."""
    area = area.rstrip("/")
    return path == area or path.startswith(area + "/")

