"""The conflict radar as an engine service: every live agent's conflicts, kept in its record.

It looks whether anything it depends on changed when a ref moved (the watch loop takes a stamp of the ref
folders every tick, see `supervisor.engine.changes`, and touches the store), at most every RADAR_SECONDS, or
when a record changed in what it depends on (`radar_key`: an agent came or went, became live or ended, its
branch, target, host, merged tip or recorded conflicts; told by the store, `Store.listen_record_keys`), at most
every RECORDS_SECONDS; and at least every LOOK_AGAIN_SECONDS, never on a fixed period that finds nothing new.
The watch tick's other writes (states, activity) never wake it. When nothing did, a look costs a few
`stat` calls and no git process. Otherwise one `for-each-ref` reads every branch tip and the radar
recomputes the pairs whose tips moved (`supervisor.git.radar`), so a commit shows on the radar within a
second.

Each live agent's record carries `conflicts`: [{"with": agent or target branch, "branch": its branch,
"files": [...]}], with every other live agent, and with its target (the branch it merges into). For a session
the target is its base branch; for a helper it is its parent's branch, so a helper meets its parent as an
ordinary pair ("with" the parent's name), and the base branch only through its parent: what a helper
merges into is its parent, and the parent's conflicts with the base are the parent's. A record is written,
with a `conflicts` event, only when its set changed, so the dashboard's change feed picks it up. Agents that
are not live carry none: an agent that stops or is removed leaves the radar, and so do its entries on others.
So does a branch merged as it stands (its tip is the one merged): it is all in its target, whose conflicts
the others already show, until it moves again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent, describe_conflicts
from supervisor.engine.changes import RefsStamp
from supervisor.engine.records import AgentRecords
from supervisor.engine.service import PeriodicService
from supervisor.git import agent_refs
from supervisor.git.radar import Failure, Radar, Scan

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

RADAR_SECONDS = 0.5  # at most this often; a look that finds nothing changed runs no git
RECORDS_SECONDS = 2.0  # at most this often for records written (an agent started or ended) with no ref moved
LOOK_AGAIN_SECONDS = 10.0  # at least this often, whatever it was told


class ConflictRadar(PeriodicService):
    """Keeps the live agents' `conflicts` current, in a thread of its own (an engine service)."""

    thread_name = "conflict-radar"
    interval = RADAR_SECONDS

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.radar = Radar(engine.paths.root)
        self.last_scan: Scan | None = None
        self.last_seconds: float | None = None
        self._records = AgentRecords(engine.store)
        self._refs = RefsStamp(engine.paths.common_dir, engine.folders, "radar")  # no stat while no ref moves
        self._looked: tuple[Any, ...] | None = None  # the live agents and refs stamp the last pass saw
        self._failures: set[Failure] = set()
        self._versions: dict[str, int] | None = None  # the records as a look found them all in line
        self._folders: frozenset[str] | None = None  # the ref folders that look depended on
        self._moves = 0  # the watch loop's count of refs moves when the last look began
        self._looked_at = 0.0
        self._bell = threading.Event()  # a record it depends on changed, or the store was touched (a ref moved)
        self._rung = False  # rung since the last look began
        engine.store.listen_record_keys(radar_key, self._bell.set)
        engine.store.listen_touches(self._bell.set)

    def step(self) -> None:
        self._bell.clear()  # what changes during the look is looked at again
        self._rung = False
        self._moves = self.engine.watcher.refs.moves
        self._looked_at = time.monotonic()
        self.look()
        if self._versions is None:  # a record not in line (its lock was busy): written at the next look, not in 10 s
            self._rung = True

    def pause(self) -> None:
        """Until a ref moved (RADAR_SECONDS after the last look began at the soonest) or a record it depends on
        changed (RECORDS_SECONDS after), or LOOK_AGAIN_SECONDS passed."""
        while not self.stopping.is_set():
            if self._bell.is_set():
                self._bell.clear()
                self._rung = True
            moved = self.engine.watcher.refs.moves != self._moves
            now = time.monotonic()
            due = self._looked_at + (self.interval if moved else RECORDS_SECONDS)
            if (self._rung and now >= due) or now >= self._looked_at + LOOK_AGAIN_SECONDS:
                return
            # Rung since: wait until it is due (or until a ref moves); else until it is rung.
            until = due if self._rung else self._looked_at + LOOK_AGAIN_SECONDS
            self._bell.wait(max(0.0, until - now))

    def wake(self) -> None:
        self._bell.set()

    def look(self) -> bool:
        """Recompute the conflicts if branches or live agents changed (whether a pass ran), and bring every
        record in line with the last pass (a record some other writer overwrote meanwhile included)."""
        agents, versions = self._records.read()
        if versions == self._versions and self._folders is not None and self._looked is not None \
                and self._refs.stamp(self._folders) == self._looked[1]:
            return False  # no record written and no ref moved since a look that left every record in line
        live = [agent for agent in agents if agent.state.live]
        roster = tuple(sorted((agent.name, agent.branch, agent.target, str(agent.extra.get("merged_tip")))
                              for agent in live))
        folders = agent_refs.ref_folders(live)  # a remote agent's branch: as fetched home
        seen = (roster, self._refs.stamp(folders))
        scan = self.last_scan
        scanned = scan is None or seen != self._looked
        if scan is None or scanned:
            started = time.monotonic()
            tips = agent_refs.tips(self.engine.paths.root, live)
            # A branch merged as it stands is all in its target: its conflicts are the target's, so it leaves
            # the radar until it moves again.
            watched = [a for a in live if tips.get(a.branch) != a.extra.get("merged_tip")]
            scan = self.radar.scan({agent.branch: agent.target for agent in watched}, tips)
            self.last_scan, self.last_seconds, self._looked = scan, time.monotonic() - started, seen
            for failure in set(scan.failures) - self._failures:
                log.warning("conflict radar: cannot merge %s with %s: %s", failure.branch, failure.other,
                            failure.error)
            self._failures = set(scan.failures)
        names = {agent.branch: agent.name for agent in agents}
        in_line = True
        for agent in agents:
            found = scan.conflicts.get(agent.branch, []) if agent.state.live else []  # absent: not watched
            wanted = [{"with": names.get(c.other, c.other), "branch": c.other, "files": list(c.files)} for c in found]
            if conflicts_of(agent) != wanted:
                in_line = False  # written now (its version moves: the next look checks it again) or, when its
                self._record(agent.name, wanted)  # lock is busy, at a later look
        self._versions, self._folders = (versions, frozenset(folders)) if in_line else (None, None)
        return scanned

    def _record(self, name: str, conflicts: list[dict[str, Any]]) -> None:
        """Write the agent's conflicts (none once it is not live), unless an operation holds its lock."""
        lock = self.engine.try_agent_lock(name)
        if lock is None:
            return
        try:
            agent = self.engine.store.get_agent(name)
            if agent is None:
                return
            if not agent.state.live:
                conflicts = []
            if conflicts_of(agent) == conflicts:
                return
            if conflicts:
                agent.extra["conflicts"] = conflicts
            else:
                agent.extra.pop("conflicts", None)
            self.engine.store.save_agent(agent, "conflicts", conflicts=conflicts, summary=describe_conflicts(conflicts))
        finally:
            lock.release()


def radar_key(agent: Agent) -> object:
    """What the radar reads of a record: a write that leaves it as it was (a state within the live ones, the
    activity the watch tick records) is none of its business."""
    conflicts = agent.extra.get("conflicts")
    return (agent.state.live, agent.branch, agent.target, agent.host, str(agent.extra.get("merged_tip")),
            json.dumps(conflicts, sort_keys=True) if conflicts else None)


def conflicts_of(agent: Agent) -> list[dict[str, Any]]:
    """The agent's conflicts as the radar last recorded them."""
    return list(agent.extra.get("conflicts") or [])
