"""Plans (`supervisor run PLAN.yaml`): queued sessions start once what they come after has been merged, and
with `merge: auto` a finished session is merged by itself, in plan order, after `merge.check` passes.

Everything a plan needs lives in its sessions' records (`extra["plan"]`), so an engine started again
carries on where the last one stopped. The planner looks again whenever a record is written while some agent
belongs to a plan (a state change, an audited commit, a merge), or an agent comes or goes (told by the store,
`Store.listen_record_keys`: with no plan, the watch tick's writes never wake it), at most every PLAN_SECONDS,
and at least every LOOK_AGAIN_SECONDS.

An automatic merge needs: the session idle and none of its helpers busy, at least one commit its target
lacks, no uncommitted changes (they would not be merged), and a clean audit. A conflict or a failing check
stops that merge: nothing changes, a `merge` alert goes out, the session is told why (so it can fix it), and
the planner tries again only once its branch or its target has moved.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.config import Config, load_config
from supervisor.core.model import Agent, State
from supervisor.core.plan import Plan, overlaps, parse_plan
from supervisor.core.triggers import Trigger, fire
from supervisor.engine import views
from supervisor.engine.compare import check_site, compare, keep_check
from supervisor.engine.helpers import with_terms
from supervisor.engine.service import PeriodicService
from supervisor.engine.worktree_state import uncommitted_changes
from supervisor.errors import InputFileError, SupervisorError, UsageError
from supervisor.git import agent_refs, worktrees
from supervisor.git.audit import new_commits
from supervisor.git.integration import CheckResult, run_check
from supervisor.hosts import isolation, placement

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

PLAN_SECONDS = 1.0
LOOK_AGAIN_SECONDS = 10.0
BUSY = frozenset({State.STARTING, State.WORKING, State.WAITING, State.STALLED, State.LIMITED, State.UNREACHABLE})


class Planner(PeriodicService):
    """Starts queued plan sessions and merges finished ones (an engine service with a thread of its own)."""

    thread_name = "planner"
    interval = PLAN_SECONDS
    stop_timeout = 10.0  # a running merge.check is killed first

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self._wake = threading.Event()
        self._seen: dict[str, int] | None = None
        self._planned: set[str] = set()
        self._step_lock = threading.Lock()
        self._stepped_at = 0.0
        self._bell = threading.Event()  # a record it depends on written since the last step began
        engine.store.listen_record_keys(self._record_key, self._bell.set)

    def wake(self) -> None:
        self._wake.set()
        self._bell.set()

    def _record_key(self, agent: Agent) -> object:
        """While some agent belongs to a plan every write matters (its helpers' states too: a step reads them
        all); otherwise only an agent coming or going does (an added or removed record always rings)."""
        return object() if self._planned else None

    def step(self) -> None:
        self._bell.clear()  # what is written during the step is looked at again
        self._stepped_at = time.monotonic()
        with self._step_lock:
            self._step()

    def pause(self) -> None:
        """Until a record it depends on is written or `wake`, at most every PLAN_SECONDS (a woken planner at
        once)."""
        self._bell.wait(LOOK_AGAIN_SECONDS)
        if not self._wake.is_set():
            self._wake.wait(max(0.0, self._stepped_at + self.interval - time.monotonic()))
        self._wake.clear()

    # requests ---------------------------------------------------------------------------------------------

    def op_run(self, text: str, path: str, dry_run: bool = False) -> dict[str, Any]:
        """Queue every session of the plan (all or none), then start those that wait for nothing."""
        engine = self.engine
        root = engine.paths.root
        config = load_config(root)
        plan = parse_plan(text, Path(path), root, hosts=placement.host_names(config))
        taken = [name for name in plan.names if engine.store.get_agent(name) is not None]
        if taken:
            raise UsageError(f"agents named {', '.join(taken)} already exist",
                             hint="rename those sessions in the plan, or `supervisor rm` the old ones")
        base = plan.base or "HEAD"
        target = worktrees.current_branch(root) if base == "HEAD" else base
        if not target or not worktrees.branch_exists(root, target):
            raise UsageError(f"a plan merges into a branch, and {target or 'HEAD (detached)'} is not one",
                             hint="check out a branch, or set `base:` in the plan")
        warnings = [overlap.message() for overlap in overlaps(plan, _tracked(root))]
        with engine.admission:  # the places it takes are counted and taken at once (a start meanwhile waits)
            hosts = _placed(plan, config, engine.store.agents())
            summary = {"plan": path, "target": target, "merge": plan.merge, "warnings": warnings,
                       "sessions": [{"name": s.name, "after": list(s.after), "host": hosts[s.name]}
                                    for s in plan.sessions]}
            if dry_run:
                return summary
            queued: list[str] = []
            try:
                for order, session in enumerate(plan.sessions):
                    agent = engine.new_session(session.name, session.task, session.command, session.profile,
                                               target, config, queued=True, host=hosts[session.name])
                    agent.extra["plan"] = _plan_record(plan, path, order, session.after)
                    isolation.choose(agent, session.isolation)
                    engine.store.add_agent(with_terms(agent, session.contract, engine.contracts.seal))
                    queued.append(session.name)
            except SupervisorError:
                for name in queued:  # all or nothing
                    engine.store.delete_agent(name)
                raise
        engine.store.append_event(None, "plan_started", plan=path, sessions=list(plan.names), target=target,
                                  merge=plan.merge, warnings=warnings)
        self.wake()  # the planner's thread starts what waits for nothing
        summary["sessions"] = [views.agent_view(engine.get(name), engine.live.get(name)) for name in plan.names]
        return summary

    def op_compare(self, name: str, check: bool = True) -> dict[str, Any]:
        """A best-of-N's candidates side by side (see `compare`); runs `merge.check` where needed."""
        return compare(self.engine, name, check=check, stop=self.stopping)

    # the step ---------------------------------------------------------------------------------------------

    def _step(self) -> None:
        versions = self.engine.store.versions()
        if versions == self._seen:
            return
        known, self._seen = set(self._seen or ()), versions
        if versions.keys() == known and not self._planned:
            return  # no agent came or went, and none belongs to a plan: nothing to decode
        agents = self.engine.store.agents()
        planned = sorted((a for a in agents if "plan" in a.extra), key=lambda a: a.extra["plan"]["order"])
        self._planned = {a.name for a in planned}
        if not planned:
            return
        by_name = {a.name: a for a in agents}
        for agent in planned:
            if agent.state == State.QUEUED and not waiting_for(agent, by_name):
                self.engine.start_queued(agent.name)
        finished = [a for a in planned if a.extra["plan"].get("merge") == "auto" and a.state == State.IDLE
                    and not any(h.state in BUSY for h in agents if h.name.startswith(a.name + "."))]
        tips = agent_refs.tips(self.engine.paths.root, agents) if finished else {}
        for agent in finished:
            tip, target_tip = tips.get(agent.branch), tips.get(agent.target)
            failed = agent.extra.get("merge_failed") or {}
            if tip is None or target_tip is None or tip == agent.extra.get("merged_tip") or \
                    (failed.get("tip"), failed.get("target_tip")) == (tip, target_tip):
                continue  # gone, merged already, or the same branch and target failed before
            self._auto_merge(agent.name, tip, target_tip)
            if self.stopping.is_set():
                return

    def _auto_merge(self, name: str, tip: str, target_tip: str) -> None:
        engine = self.engine
        root = engine.paths.root
        agent = engine.get(name)
        if agent.extra.get("violations"):
            return  # the audit found commits outside its contract: their alert is out, a human decides
        if not new_commits(root, tip, [target_tip]):
            return
        try:
            dirty = uncommitted_changes(engine, agent)
        except SupervisorError as exc:  # its host is down: merged once it is back
            self._note(name, "blocked", exc.message)
            return
        if dirty:
            self._note(name, "blocked", f"{len(dirty)} uncommitted change(s): commit them to be merged")
            return
        config = load_config(root)
        plan = agent.extra["plan"]
        command = plan.get("check") or config.merge.check
        engine.store.append_event(name, "merge_started", tip=tip, into=agent.target, check=command)
        check: CheckResult | None = None
        try:
            if command:
                check = run_check(root, agent_refs.branch_ref(agent), agent.target, command,
                                  timeout=plan.get("check_timeout") or config.merge.check_timeout,
                                  scratch=engine.paths.state_dir / "checks", setup=config.worktrees.setup,
                                  stop=self.stopping, env=engine.agents_env, **check_site(engine, agent))
                if check is not None:
                    if not check.passed and self.stopping.is_set():
                        return  # cut short by a shutdown: not a verdict
                    keep_check(engine, name, check)
                    if not check.passed:
                        tail = "\n".join(check.output[-8:])
                        self._failed(name, tip, target_tip, f"merge.check {check.summary}", tail, check.output)
                        return
            engine.auditor.merge_agent(name, expected_tip=check.branch_tip if check else tip,
                                       expected_target=check.target_tip if check else None, by="plan")
        except SupervisorError as exc:
            self._failed(name, tip, target_tip, exc.message, exc.hint or "", [])
            return
        self._succeeded(name)

    def _note(self, name: str, key: str, text: str) -> None:
        with self.engine.agent_lock(name):
            agent = self.engine.get(name)
            if agent.extra.get("merge_note") != text:
                agent.extra["merge_note"] = text
                self.engine.store.save_agent(agent, "merge_" + key, reason=text)

    def _failed(self, name: str, tip: str, target_tip: str, reason: str, detail: str,
                output: Sequence[str]) -> None:
        engine = self.engine
        with engine.agent_lock(name):
            agent = engine.get(name)
            agent.extra["merge_failed"] = {"tip": tip, "target_tip": target_tip, "reason": reason, "at": time.time()}
            agent.extra["merge_note"] = f"not merged: {reason}"
            engine.store.save_agent(agent, "merge_failed", tip=tip, into=agent.target, reason=reason)
        fire(engine.store, agent, Trigger.MERGE, f"not merged into {agent.target}: {reason}", tip=tip,
             output=list(output)[-10:])
        engine.tell(name, f"supervisor: your branch was not merged into {agent.target}: {reason}."
                          + (f"\n{detail}" if detail else "") + "\nFix it and commit; the merge is tried again then.")

    def _succeeded(self, name: str) -> None:
        engine = self.engine
        with engine.agent_lock(name):
            agent = engine.get(name)
            failed = agent.extra.pop("merge_failed", None)
            agent.extra.pop("merge_note", None)
            engine.store.save_agent(agent)
        if failed:
            fire(engine.store, agent, Trigger.MERGE, f"merged into {agent.target}", active=False)
        self.wake()  # its dependents may start now


def _placed(plan: Plan, config: Config, agents: list[Agent]) -> dict[str, str]:
    """Each session's host (supervisor/hosts/placement.py), or the refusal of the whole plan, pointing at the
    line of the session that fits nowhere."""
    wanted = [placement.Wanted(s.name, s.host, s.host_line if s.host else s.line)
              for s in plan.sessions]
    placed = placement.place(config, agents, wanted, plan.hosts)
    if isinstance(placed, placement.NoRoom):
        raise InputFileError(plan.path, placed.line, f"{placed.message}; nothing was started", placed.hint)
    return placed


def waiting_for(agent: Agent, by_name: dict[str, Agent]) -> list[str]:
    """The sessions a queued plan session still waits for (not merged yet)."""
    after = agent.extra.get("plan", {}).get("after") or []
    return [name for name in after if name not in by_name or not by_name[name].extra.get("merged")]


def _plan_record(plan: Plan, path: str, order: int, after: tuple[str, ...]) -> dict[str, Any]:
    return {"file": path, "order": order, "after": list(after), "merge": plan.merge, "check": plan.check,
            "check_timeout": plan.check_timeout}


def _tracked(root: Path) -> list[str]:
    try:
        return worktrees.run_git(root, "ls-files", "-z").split("\0")
    except SupervisorError:
        return []


