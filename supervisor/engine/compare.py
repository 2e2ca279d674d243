"""`supervisor compare NAME`: the candidates of a best-of-N side by side, so a human picks the one to merge.

For each candidate: its state, its commits and uncommitted changes, the lines it adds and removes per file
(against the point where it left its target, `target...branch`), and whether `merge.check` passes on what
merging it would give. A check result is kept with the two tips it ran on, so asking again runs only the
checks of candidates (or a target) that moved since.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from supervisor.config import load_config
from supervisor.core.model import Agent
from supervisor.engine.worktree_state import uncommitted_changes
from supervisor.errors import SupervisorError, UsageError
from supervisor.git import worktrees
from supervisor.git.agent_refs import branch_ref, target_ref
from supervisor.git.environment import NO_DIFF_PROGRAMS
from supervisor.git.integration import Checkout, CheckResult, Runner, run_check
from supervisor.hosts.remote import checks
from supervisor.hosts.remote.host import RemoteHost

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine


def candidates(engine: Engine, name: str) -> list[Agent]:
    found = sorted((a for a in engine.store.agents() if a.extra.get("best_of") == name),
                   key=lambda a: int(a.name.rsplit("-", 1)[1]) if a.name.rsplit("-", 1)[-1].isdigit() else 0)
    if not found:
        raise UsageError(f"there is no best-of-N named {name!r}",
                         hint=f"`supervisor start {name} --best-of N --task TEXT` starts one")
    return found


def compare(engine: Engine, name: str, *, check: bool, stop: threading.Event | None = None) -> dict[str, Any]:
    root = engine.paths.root
    config = load_config(root)
    command = config.merge.check if check else None
    rows = [_candidate(engine, agent, command, config.merge.check_timeout, config.worktrees.setup, stop)
            for agent in candidates(engine, name)]
    return {"name": name, "target": rows[0]["target"], "check_command": command, "candidates": rows}


def _candidate(engine: Engine, agent: Agent, command: str | None, timeout: float, setup: tuple[str, ...],
               stop: threading.Event | None) -> dict[str, Any]:
    root = engine.paths.root
    row: dict[str, Any] = {"name": agent.name, "state": str(agent.state), "target": agent.target,
                           "branch": agent.branch, "merged": agent.extra.get("merged"), "commits": 0,
                           "files": {}, "added": 0, "removed": 0, "uncommitted": 0, "check": None}
    branch, target = branch_ref(agent), target_ref(agent)  # a remote agent's: as fetched home
    try:
        worktrees.resolve(root, branch)
    except SupervisorError:
        row["error"] = f"its branch {agent.branch} is gone"
        return row
    row["commits"] = len(worktrees.unmerged_commits(root, branch, target))
    try:
        row["uncommitted"] = len(uncommitted_changes(engine, agent))
    except SupervisorError as exc:  # its host is down: what is committed is here all the same
        row["uncommitted"] = None
        row["error"] = exc.message
    files = _numstat(root, target, branch)
    row["files"] = files
    row["added"] = sum(added for added, _ in files.values())
    row["removed"] = sum(removed for _, removed in files.values())
    if command:
        row["check"] = _check(engine, agent, command, timeout, setup, stop)
    return row


def _numstat(root: Path, target: str, branch: str) -> dict[str, tuple[int, int]]:
    out = worktrees.run_git(root, "diff", *NO_DIFF_PROGRAMS, "--numstat", "-z", "--no-renames", f"{target}...{branch}")
    files: dict[str, tuple[int, int]] = {}
    for record in out.split("\0"):
        if record.count("\t") < 2:
            continue
        plus, minus, path = record.split("\t", 2)
        files[path] = (int(plus) if plus.isdigit() else 0, int(minus) if minus.isdigit() else 0)
    return files


def _check(engine: Engine, agent: Agent, command: str, timeout: float, setup: tuple[str, ...],
           stop: threading.Event | None) -> dict[str, Any]:
    root = engine.paths.root
    kept = agent.extra.get("check")
    try:
        tips = (worktrees.resolve(root, branch_ref(agent)), worktrees.resolve(root, target_ref(agent)))
    except SupervisorError as exc:
        return {"command": command, "passed": False, "error": exc.message}
    if kept and kept.get("command") == command and (kept.get("branch_tip"), kept.get("target_tip")) == tips:
        return {**kept, "cached": True}
    try:
        result = run_check(root, branch_ref(agent), agent.target, command, timeout=timeout,
                           scratch=engine.paths.state_dir / "checks", setup=setup, stop=stop,
                           env=engine.agents_env, **check_site(engine, agent))
    except SupervisorError as exc:  # it conflicts with the target: nothing to check
        return {"command": command, "passed": False, "error": exc.message}
    if result is None:
        return {"command": command, "passed": None, "error": "nothing to merge"}
    keep_check(engine, agent.name, result)
    return result.as_dict()


class CheckSite(TypedDict):
    run: Runner
    checkout: Checkout | None


def check_site(engine: Engine, agent: Agent) -> CheckSite:
    """Where and how `merge.check` (and the setup before it) runs on `agent`'s work (its code runs there): on
    the agent's own machine, isolated as the agent is. A local agent's here, in a scratch worktree beside the
    repository; a remote agent's on its host, in a scratch worktree of the merge pushed there
    (supervisor/hosts/remote/checks.py), never on this machine."""
    host = engine.host_of(agent)
    if isinstance(host, RemoteHost):
        return {"run": functools.partial(host.run_isolated, agent),
                "checkout": functools.partial(checks.scratch_checkout, host)}
    return {"run": functools.partial(engine.local.run_isolated, agent), "checkout": None}


def keep_check(engine: Engine, name: str, result: CheckResult) -> None:
    """Record a check's result on the agent (and its output in the event log)."""
    with engine.agent_lock(name):
        agent = engine.get(name)
        agent.extra["check"] = result.as_dict()
        engine.store.save_agent(agent, "checked", passed=result.passed, exit_code=result.exit_code,
                                command=result.command, seconds=result.seconds, output=list(result.output))
