"""Ending an agent's processes on a host: one `end_tree` request (supervisor/hostside/ending.py), answered once
its pane's tree, what carries its identity there (its launch tokens, its socket, its CLI folder) and the stray
panes of the repository's tmux server are frozen, TERMed, given `grace`, and KILLed. A link that drops
mid-way fails the request at once; the host program lets go of what it froze."""

from __future__ import annotations

from collections.abc import Collection

from supervisor.hosts.link import Link

CALL_TIMEOUT = 60.0  # beyond the grace: the walks and signals on the host


class Ender:
    def __init__(self, link: Link, spare: Collection[int], strays: Collection[int] = ()) -> None:
        self.link = link
        self.spare = sorted(spare)  # the tmux server, the `_engine` placeholder: never ended
        self.strays = sorted(strays)  # the tmux server: a pane process of it without a launch token is ended

    def end(self, root: int | None, carrying: list[tuple[str, str]], grace: float) -> list[int]:
        """End it all: the pids that survived (none, unless the host refused a signal)."""
        done = self.link.call("end_tree", roots=[root] if root else [], carrying=[list(pair) for pair in carrying],
                              strays=self.strays, spare=self.spare, grace=grace, timeout=grace + CALL_TIMEOUT)
        survivors = done.get("survivors") if isinstance(done, dict) else None
        if not isinstance(survivors, list):
            return []
        return [pid for pid in survivors if isinstance(pid, int) and not isinstance(pid, bool)]
