"""The commit audit and `merge`: every new commit on every agent branch is checked against the agent's
stored contract, whether or not the pre-commit guard ran (`--no-verify`, `-c core.hooksPath=`, plumbing).

One `git for-each-ref` when a ref folder changed (told by the kernel: engine/changes.py), at most every
AUDIT_SECONDS, finds the branches that moved; only their new commits are read (those not reachable from what was audited
before, nor from the branch the agent merges into). A violation becomes a `boundary` event and trigger on the
agent, with the commit and the paths; `merge` refuses a branch with any, or whose net change since its merge
base with the target touches a forbidden path.

Only agent branches are audited, so a worktree that leaves its branch (a detached HEAD, another branch) could
commit unseen: every pass asks which worktrees' git folders changed (inotify, engine/folderwatch.py; one stat
each where that cannot be had; no git process) and reads the HEAD file of those only. An agent whose worktree is
off its branch gets a `boundary` event and trigger saying so, once, until it is back.

The audit sleeps until it is told something changed: a ref or worktree git folder it watches (the kernel's
inotify events, read by the watch loop, ring it) or what it reads of an agent record (`roster_of`: a new agent,
a worktree moved; told by the store, `Store.listen_record_keys`: a state or activity written rings nothing); with no
inotify, or a folder that can only be stat'ed, it looks every AUDIT_SECONDS instead. A pass that finds the same
agents, branches and worktrees as the last one, and no folder changed, does nothing.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent, State
from supervisor.core.triggers import Trigger, fire
from supervisor.engine.changes import RefsStamp
from supervisor.engine.rebuild import UNVERIFIED, confirm_hint
from supervisor.engine.records import AgentRecords
from supervisor.engine.service import PeriodicService
from supervisor.engine.tamper import TipGuard
from supervisor.engine.worktree_state import uncommitted_changes
from supervisor.errors import SupervisorError
from supervisor.git import agent_refs, worktrees
from supervisor.git.agent_refs import branch_ref, is_remote, target_ref
from supervisor.git.audit import CommitViolation, audit, net_violations, new_commits
from supervisor.git.merge import merge_branch
from supervisor.git.refs import stamp_of, worktree_git_dir, worktree_head
from supervisor.hosts.remote import parent_merge
from supervisor.hosts.remote.host import RemoteHost

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

AUDIT_SECONDS = 2.0  # at most this often (and this often while something can only be told by a stat)
LOOK_AGAIN_SECONDS = 60.0  # a whole pass at least this often, whatever it was told (every HEAD, every tip)
KEEP_VIOLATIONS = 50


class Auditor(PeriodicService):
    """Audits agent branches in a thread of its own; answers `merge` requests (an engine service)."""

    thread_name = "auditor"
    interval = AUDIT_SECONDS

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self._stamp: tuple[int, ...] | None = None
        self._refs = RefsStamp(engine.paths.common_dir, engine.folders, "audit")  # no stat while no ref moves
        self._records = AgentRecords(engine.store)
        self._git_dirs: dict[str, Path | None] = {}  # worktree → its git folder
        self._heads_seen: dict[str, tuple[str, tuple[int, ...]]] = {}  # agent → (worktree, its git folder's stamp)
        self.guard = TipGuard(engine)
        self.tips_lock = threading.Lock()  # a judgement of the tips, or an engine merge moving one
        self._bell = threading.Event()  # something it depends on changed since the last pass began
        self._bell.set()
        self._roster: tuple[tuple[object, ...], ...] | None = None  # the agents as the last complete pass read them
        self._polled = True  # the last pass relied on a stat (or failed): look again in AUDIT_SECONDS
        self._passed_at = 0.0
        self._whole_at = float("-inf")  # when the last whole pass began (monotonic)
        self.passes = 0  # passes that looked at anything (for tests: none while nothing changes)
        for group in ("audit", "heads"):
            engine.folders.listen(group, self._bell.set)
        engine.store.listen_record_keys(roster_of, self._bell.set)

    def step(self) -> None:
        self._passed_at = time.monotonic()
        self._bell.clear()  # what changes from now on rings again
        self.audit_all()

    def rung(self) -> bool:
        """Whether a pass is wanted: something changed since the last pass began (a watched folder, a record),
        or that pass relied on a stat, or failed."""
        return self._bell.is_set() or self._polled

    def pause(self) -> None:
        """Until rung (a folder or record changed) and AUDIT_SECONDS after the last pass began; every AUDIT_SECONDS
        while something can only be told by a stat; at least every LOOK_AGAIN_SECONDS."""
        while not self.stopping.is_set():
            now = time.monotonic()
            whole = self._whole_at + LOOK_AGAIN_SECONDS
            if self.rung() or now >= whole:
                due = self._passed_at + AUDIT_SECONDS
                if now >= due:
                    return
                self.stopping.wait(due - now)
                continue
            self._bell.wait(whole - now)

    def wake(self) -> None:
        self._bell.set()

    def audit_all(self) -> None:
        """One pass: HEAD files of changed worktree git folders read, and new commits on moved branches audited."""
        polled, self._polled = self._polled, True  # until this pass went through
        # A whole pass, every LOOK_AGAIN_SECONDS: every HEAD read and every tip listed, whatever the kernel told.
        # Some writes tell it nothing (a file rewritten in place through a shared mapping) and leave every
        # stat as it was.
        whole = time.monotonic() >= self._whole_at + LOOK_AGAIN_SECONDS
        if whole:
            self._whole_at = time.monotonic()
        agents, _ = self._records.read()  # decodes only the records written since the last pass
        roster = tuple((agent.name, *roster_of(agent)) for agent in agents)
        if not whole and not polled and roster == self._roster and not self.engine.folders.dirty(("heads", "audit")):
            self._polled = False
            return  # rung for a record that changed nothing audited, and no folder changed since
        self.passes += 1
        told = self.check_heads(agents, every=whole)
        stamp = self._refs.stamp(agent_refs.ref_folders(agents))
        told = told and self._refs.told
        if stamp == self._stamp and not whole:
            self._roster, self._polled = roster, not told
            return  # no agent branch nor target moved since the last pass: no git process at all
        tips = agent_refs.tips(self.engine.paths.root, agents)  # a remote agent's: as fetched home
        with self.tips_lock:
            self.guard.check(agents, tips)
        for agent in agents:
            tip = tips.get(agent.branch)
            if tip is not None and tip != agent.extra.get("audited"):
                self._audit(agent.name, tip)
        if not self.guard.unjudged:
            self._stamp = stamp  # only once the pass went through: a failed one is tried again
            self._roster, self._polled = roster, not told

    # off its branch -----------------------------------------------------------------------------------

    def check_heads(self, agents: list[Agent], every: bool = False) -> bool:
        """A `boundary` event and trigger for each agent whose worktree has just left its branch (detached,
        or another branch checked out), where its commits would escape the audit; an `on_branch` event
        when it is back (and the trigger cleared, if none of its commits left its boundaries). Whether the
        kernel will tell of every change that matters from here (False: some git folder must be looked at
        again, not found yet, unwatched, or a HEAD that could not be read). `every`: every HEAD read, whatever
        the kernel and the stats tell."""
        told = True
        seen, self._heads_seen = self._heads_seen, {}
        found: list[tuple[Agent, Path]] = []
        for agent in agents:
            if agent.state == State.QUEUED or is_remote(agent):
                continue  # no worktree yet; or it is on a host, whose HEAD files are not read from here
            git_dir = self._git_dirs.get(agent.worktree)
            if git_dir is None:
                git_dir = self._git_dirs[agent.worktree] = worktree_git_dir(Path(agent.worktree))
                if git_dir is None:
                    del self._git_dirs[agent.worktree]  # not there (yet): look again next pass
                    told = False
                    continue
            found.append((agent, git_dir))
        # The git folders that changed since the last pass, told by the kernel (None: each one's stat tells).
        told_by = self.engine.folders.changed("heads", [os.fspath(git_dir) for _, git_dir in found])
        told = told and told_by is not None and not told_by[1]
        for agent, git_dir in found:
            before = seen.get(agent.name)
            if not every and told_by is not None and before is not None and before[0] == agent.worktree \
                    and os.fspath(git_dir) not in told_by[0] and os.fspath(git_dir) not in told_by[1]:
                self._heads_seen[agent.name] = before
                continue  # nothing in its git folder changed since its HEAD was read
            stamp = stamp_of([git_dir])
            if not every and seen.get(agent.name) == (agent.worktree, stamp):
                self._heads_seen[agent.name] = seen[agent.name]
                continue  # its HEAD has not been rewritten since it was read
            head = worktree_head(Path(agent.worktree), git_dir)
            if head is None:  # cannot tell now (gone, or a rebase in progress): keep what was seen last,
                self._git_dirs.pop(agent.worktree, None)  # and find its git folder again (made anew?)
                told = False
                continue
            off = None if head == f"refs/heads/{agent.branch}" else head
            if off != agent.extra.get("off_branch"):
                self._off_branch(agent.name, off)
            self._heads_seen[agent.name] = (agent.worktree, stamp)  # recorded once acted on
        return told

    def _off_branch(self, name: str, head: str | None) -> None:
        engine = self.engine
        with engine.agent_lock(name):
            agent = engine.store.get_agent(name)
            if agent is None or agent.extra.get("off_branch") == head:
                return
            if head is None:
                agent.extra.pop("off_branch", None)
            else:
                agent.extra["off_branch"] = head
            engine.store.save_agent(agent)
        if head is None:
            engine.store.append_event(name, "on_branch", branch=agent.branch)
            if not agent.extra.get("violations"):
                fire(engine.store, agent, Trigger.BOUNDARY, f"its worktree is back on {agent.branch}", active=False)
            return
        where = f"on {head.removeprefix('refs/heads/')}" if head.startswith("refs/") else f"detached at {head[:12]}"
        summary = f"its worktree left its branch {agent.branch} (HEAD is {where}): commits made there are not audited"
        engine.store.append_event(name, "boundary", off_branch=True, head=head, branch=agent.branch, summary=summary)
        fire(engine.store, agent, Trigger.BOUNDARY, summary, head=head)

    def _audit(self, name: str, tip: str) -> None:
        engine = self.engine
        root = engine.paths.root
        agent = engine.store.get_agent(name)
        if agent is None:
            return
        before = agent.extra.get("audited")
        commits = new_commits(root, tip, [str(before or agent.base), target_ref(agent)])
        found = audit(root, engine.contracts.rules_of(agent), commits)
        # Earlier violations count while their commits are still on the branch (an agent may drop them).
        on_branch = set(new_commits(root, tip, [target_ref(agent)])) if agent.extra.get("violations") else set()
        with engine.agent_lock(name):
            agent = engine.store.get_agent(name)
            if agent is None:
                return
            agent.extra["audited"] = tip
            earlier = [v for v in agent.extra.get("violations") or [] if v.get("commit") in on_branch]
            cleared = bool(agent.extra.get("violations")) and not earlier and not found
            kept = [*earlier, *(_as_record(v) for v in found)]
            agent.extra["violations"] = kept[-KEEP_VIOLATIONS:]
            engine.store.save_agent(agent)
        if cleared:
            fire(engine.store, agent, Trigger.BOUNDARY, "the commits outside its contract are gone from its branch",
                 active=False)
        for violation in found:
            paths = [v.path for v in violation.violations]
            engine.store.append_event(name, "boundary", commit=violation.commit, subject=violation.subject,
                                      paths=[str(v) for v in violation.violations])
            shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
            fire(engine.store, agent, Trigger.BOUNDARY,
                 f"commit {violation.commit[:10]} changes paths outside its contract: {shown}",
                 commit=violation.commit, subject=violation.subject, paths=[str(v) for v in violation.violations])

    # merge ------------------------------------------------------------------------------------------------

    def op_merge(self, name: str, confirm_contract: bool = False, accept_tamper: bool = False) -> dict[str, Any]:
        return self.merge_agent(name, confirm_contract=confirm_contract, accept_tamper=accept_tamper)

    def merge_agent(self, name: str, *, expected_tip: str | None = None, expected_target: str | None = None,
                    by: str = "request", confirm_contract: bool = False,
                    accept_tamper: bool = False) -> dict[str, Any]:
        """Audit every commit of the agent's branch; merge it into its target only when all are clean.

        The expected tips (of a check that ran) make the merge refuse when either branch moved since. A
        best-of-N candidate that is merged ends the contest: the other candidates are stopped and removed."""
        engine = self.engine
        root = engine.paths.root
        agent = engine.get(name)
        if agent.extra.get(UNVERIFIED):
            if not confirm_contract:
                raise SupervisorError(
                    f"{name} cannot be merged into {agent.target}: its contract was rebuilt from its worktree's "
                    "SESSION.md, which the agent could have edited, and no human has confirmed it",
                    hint=confirm_hint(name))
            agent = self._confirm_contract(name)
        changed = engine.contracts.refusal(agent)
        if changed:
            if not confirm_contract:
                raise SupervisorError(f"{name} cannot be merged: tamper: {changed}", hint=confirm_hint(name))
            agent = self._confirm_contract(name)
        with self.tips_lock:  # moves made since the last pass are judged now
            agents = engine.store.agents()
            self.guard.check(agents, agent_refs.tips(root, agents))
        agent = engine.get(name)
        tampered = self.guard.refusal(agent)
        if tampered and not accept_tamper:
            raise SupervisorError(
                f"{name} cannot be merged: tamper: {tampered}",
                hint=f"look at what moved (`git log`); if you accept it, `supervisor merge {name} --accept-tamper`")
        if tampered:
            self.guard.accept(agent)
        ref, into = branch_ref(agent), target_ref(agent)  # a remote agent's: its commits as fetched home
        # A helper on a host merges into its parent's branch there (its worktree is on the host).
        parent = parent_merge.parent_of(agent, engine.store.get_agent(agent.parent or "")) \
            if is_remote(agent) and into.startswith(agent_refs.HOSTS_REFS + "/") else None
        try:
            tip = expected_tip or worktrees.resolve(root, ref)
        except SupervisorError:
            raise SupervisorError(f"{name}'s branch {agent.branch} is gone" if not is_remote(agent) else
                                  f"{name}'s branch {agent.branch} has not come home from host {agent.host} yet",
                                  hint=None if not is_remote(agent) else
                                  f"it comes within seconds of a commit while host {agent.host} is up") from None
        if parent is not None:
            if not worktrees.branch_exists(root, into):
                raise SupervisorError(f"{name}'s parent's branch {agent.target} has not come home from host "
                                      f"{agent.host} yet",
                                      hint=f"it comes within seconds of a commit while host {agent.host} is up")
        elif not into.startswith("refs/heads/") or not worktrees.branch_exists(root, agent.target):
            raise SupervisorError(f"{name} merges into {agent.target}, which is not a branch here",
                                  hint="a session started from a detached HEAD or a commit is merged by hand")
        commits = new_commits(root, tip, [into])
        rules = engine.contracts.rules_of(agent)
        found = audit(root, rules, commits)
        # Whatever its history hides, the branch's net change must be inside the contract too.
        net = net_violations(root, rules, tip, into)
        if found or net:
            reasons = []
            if found:
                lines = [f"  {v.commit[:10]} {v.subject}" + "".join(f"\n      {item}" for item in v.violations)
                         for v in found]
                reasons.append(f"{len(found)} of its {len(commits)} commit(s) change paths outside its contract:\n"
                               + "\n".join(lines))
            if net:
                reasons.append(f"since its merge base with {agent.target}, its branch changes paths outside its "
                               f"contract:\n" + "\n".join(f"  {item}" for item in net))
            raise SupervisorError(
                f"{name} cannot be merged: " + "\nand ".join(reasons),
                hint=f"rewrite {agent.branch} so that it changes none of those paths (or widen its contract and "
                     "start it again)")
        dirty = uncommitted_changes(engine, agent)
        with self.tips_lock:  # the tip it makes is recorded before the next judgement
            message = f"Merge {agent.branch} ({len(commits)} commit(s) by {name})"
            if parent is not None:
                remote = engine.host_of(parent)
                assert isinstance(remote, RemoteHost)
                result = parent_merge.merge_into_parent(remote, agent, parent, message, expected_tip=tip,
                                                        expected_target=expected_target)
            else:
                result = merge_branch(root, ref, agent.target, message, expected_tip=tip,
                                      expected_target=expected_target)
            self.guard.merged(agent, result.commit)
        with engine.agent_lock(name):
            current = engine.get(name)
            current.extra["merged"] = result.commit
            current.extra["merged_tip"] = tip
            engine.store.save_agent(current, "merged", into=agent.target, commit=result.commit,
                                    commits=len(commits), fast_forward=result.fast_forward,
                                    already_merged=result.already_merged, by=by)
        removed = self._end_contest(current)
        return {
            "name": name, "into": agent.target, "commit": result.commit, "commits": len(commits),
            "fast_forward": result.fast_forward, "already_merged": result.already_merged,
            "updated_worktree": str(result.updated_worktree) if result.updated_worktree else None,
            "uncommitted": len(dirty), "removed": removed,
        }

    def _confirm_contract(self, name: str) -> Agent:
        """A human read the rebuilt contract and vouches for it: it is the agent's contract from now on."""
        with self.engine.agent_lock(name):
            agent = self.engine.get(name)
            source = agent.extra.pop(UNVERIFIED, None)
            tampered = self.engine.contracts.confirm(agent)
            self.engine.store.save_agent(agent, "contract_confirmed", rebuilt_from=source, tampered=tampered,
                                         by="human")
            self.engine.contracts.publish(agent)
        return agent

    def _end_contest(self, winner: Agent) -> list[str]:
        """Stop and remove the other candidates of the winner's best-of-N (their branches go too)."""
        contest = winner.extra.get("best_of")
        if not contest:
            return []
        losers = [a.name for a in self.engine.store.agents()
                  if a.extra.get("best_of") == contest and a.name != winner.name]
        for name in losers:
            self.engine.op_rm(name, force=True)
        if losers:
            self.engine.store.append_event(winner.name, "best_of_chosen", contest=contest, removed=losers)
        return losers


def roster_of(agent: Agent) -> tuple[object, ...]:
    """What a pass reads of an agent's record to tell whether anything it audits changed."""
    return agent.worktree, agent.host, agent.branch, agent.target, agent.base, agent.state == State.QUEUED


def _as_record(violation: CommitViolation) -> dict[str, Any]:
    return {"commit": violation.commit, "subject": violation.subject,
            "paths": [str(v) for v in violation.violations]}
