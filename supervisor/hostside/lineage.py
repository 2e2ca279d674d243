"""Which processes an agent's socket on the host answers: those of its own agent's pane, by process lineage.

Every process of the host user can connect to every agent's socket there (the folder and socket are the
user's own), and without a sandbox each agent runs as that user. So a socket answers a connection only when
the process that connected (SO_PEERCRED, judged at once, at accept) is its agent's pane process or one of its
descendants (the pane's first process is the reaper, the child subreaper of the agent's processes: `setsid`
and double forks stay in its tree), or descends from a command the engine runs for that agent (`run` with a
key `agent-run/NAME/…`: its setup and checks). The engine names the pane process (`agent_tie`) once the launch
gave it; until then a connection waits for it (at most TIE_WAIT seconds), so the agent's first hooks are not
lost. An agent whose pane the engine does not know (a record without one) is not checked.

What lineage does not catch: a process that something outside the agent's tree started on its behalf (the
host's tmux server through `tmux send-keys` or `run-shell`, `at`, a systemd user unit), and a process that
ptraces one of the agent's: only a sandbox stops those.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator

TIE_WAIT = 10.0  # seconds a connection waits for the engine to name the pane of a launch under way
AGENT_RUNS = "agent-run/"  # + NAME + "/": the key prefix of `run` calls made for agent NAME
_MAX_DEPTH = 256

LAUNCHING = "launching"  # `agent_listen`'s pane while the launch is under way
UNTIED = object()  # the engine has not named the pane yet (a launch under way): connections wait


def parent_pid(pid: int) -> int | None:
    """The parent of `pid` from /proc, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()  # comm may hold spaces and parentheses
    return int(fields[1]) if len(fields) > 1 else None


def lineage(pid: int) -> Iterator[int]:
    """`pid` and its ancestors, nearest first, up to (not including) pid 1."""
    for _ in range(_MAX_DEPTH):
        if pid <= 1:
            return
        yield pid
        parent = parent_pid(pid)
        if parent is None:
            return
        pid = parent


class Ties:
    """Each agent's pane process as the engine named it, and the check of a connecting process against it."""

    def __init__(self, runs: Callable[[str], Iterable[int]]) -> None:
        self._runs = runs  # prefix → the pids of the running `run` commands whose key starts with it
        self._panes: dict[str, object] = {}  # a pid; None: not checked; UNTIED
        self._changed = threading.Condition()

    def tie(self, agent: str, pane: object) -> None:
        with self._changed:
            self._panes[agent] = pane
            self._changed.notify_all()

    def forget(self, agent: str) -> None:
        with self._changed:
            self._panes.pop(agent, None)
            self._changed.notify_all()

    def refusal(self, agent: str, pid: int, wait: float = TIE_WAIT) -> str | None:
        """Why process `pid` may not speak through agent `agent`'s socket (None: it may)."""
        with self._changed:
            self._changed.wait_for(lambda: self._panes.get(agent, None) is not UNTIED, wait)
            pane = self._panes.get(agent, None)
        if pane is None:
            return None
        if pane is UNTIED:
            return f"refused: agent {agent}'s pane is not known yet (its launch is under way)"
        allowed = {pane, *self._runs(f"{AGENT_RUNS}{agent}/")}
        if pid > 0 and any(ancestor in allowed for ancestor in lineage(pid)):
            return None
        return (f"refused: process {pid} is not one of agent {agent}'s (its socket answers only the processes "
                "of its own pane)")
