"""The branches agents merge into (`main`) in a host's clone: tamper judged as for your repository's (tamper.py).

The engine keeps base branches in your repository and never makes one in a host's clone (an agent's base commit
goes there as `refs/supervisor/bases/...`). The agents on a host share that clone's refs, so a `git branch -f main`,
`git update-ref refs/heads/main` or `git push . HEAD:main` there makes or moves it: the move an agent here would make
of your `main`, judged the same way, except that on a host nothing may make it (no worktree of yours is there, no
remote is fetched, the engine's merges land at home): a `tamper` event and alert naming the ref, the host and its
old and new tips (zeros when it was made), and `merge` refuses every agent on that host merging into that branch
until a human accepts it (`merge NAME --accept-tamper`). A branch that goes again is forgotten (no tip to judge).
Seen in the clone's refs that engine/commits_home.py reads every pass anyway: no request of its own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent
from supervisor.core.triggers import Trigger, fire
from supervisor.git.refs import agent_of_branch

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

HOST_BASE_TIPS = "host_base_tips"  # store meta: {host: {branch: tip as last seen in its clone}}
HOST_BASE_TAMPER = "host_base_tamper"  # store meta: {host: {branch: {"ref", "host", "old", "new", "why"}}}


class HostBases:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()  # the meta records are read, changed and written whole

    def check(self, host: str, refs: Mapping[str, str], agents: list[Agent]) -> None:
        """Judge the base branches of `host`'s `agents` as its clone's `refs` (`{name: sha}`) have them now."""
        bases = sorted({a.target for a in agents if a.target and agent_of_branch(a.target) is None
                        and not a.target.startswith("refs/")})
        store = self.engine.store
        with self._lock:
            recorded: dict[str, dict[str, str]] = json.loads(store.get_meta(HOST_BASE_TIPS) or "{}")
            seen = recorded.setdefault(host, {})
            changed, moved = False, []
            for base in bases:
                tip, before = refs.get(f"refs/heads/{base}"), seen.get(base)
                if tip == before:
                    continue
                changed = True
                if tip is None:
                    del seen[base]  # gone again: nothing to judge
                else:
                    seen[base] = tip
                    moved.append((base, before or "0" * len(tip), tip))
            if not seen:
                del recorded[host]
            if changed:
                store.set_meta(HOST_BASE_TIPS, json.dumps(recorded))
            for base, before, tip in moved:
                self._tampered(host, base, before, tip, [a for a in agents if a.target == base])

    def _tampered(self, host: str, base: str, before: str, tip: str, concerned: list[Agent]) -> None:
        store = self.engine.store
        why = (f"no one moves {base} on host {host}: the engine keeps it in your repository, and no worktree of "
               "yours is there")
        found: dict[str, Any] = {"ref": f"refs/heads/{base}", "host": host, "old": before, "new": tip, "why": why}
        pending: dict[str, dict[str, Any]] = json.loads(store.get_meta(HOST_BASE_TAMPER) or "{}")
        pending.setdefault(host, {}).setdefault(base, found)  # the first one stands until a human accepts it
        store.set_meta(HOST_BASE_TAMPER, json.dumps(pending))
        summary = (f"tamper: {found['ref']} on host {host} moved from {before[:12]} to {tip[:12]}: {why}; "
                   f"`supervisor merge` refuses every agent on {host} merging into {base} until a human accepts it")
        store.append_event(None, "tamper", **found, summary=summary)
        fire(store, concerned[0], Trigger.TAMPER, summary, subject=f"host:{host}", subject_summary=summary, **found)

    def refusal(self, agent: Agent) -> str | None:
        """Why `merge` refuses the agent for a move of its target in its host's clone, or None."""
        pending = json.loads(self.engine.store.get_meta(HOST_BASE_TAMPER) or "{}")
        item = pending.get(agent.host, {}).get(agent.target)
        if not item:
            return None
        return (f"{item['ref']} on host {item['host']} moved from {item['old'][:12]} to {item['new'][:12]} "
                f"({item['why']})")

    def accept(self, agent: Agent) -> None:
        """A human looked at the move of the agent's target on its host and accepts it."""
        store = self.engine.store
        with self._lock:
            pending: dict[str, dict[str, Any]] = json.loads(store.get_meta(HOST_BASE_TAMPER) or "{}")
            item = pending.get(agent.host, {}).pop(agent.target, None)
            if item is None:
                return
            if not pending[agent.host]:
                del pending[agent.host]
            store.set_meta(HOST_BASE_TAMPER, json.dumps(pending))
        store.append_event(None, "tamper_accepted", **item, by="human")
