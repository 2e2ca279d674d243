"""Agents rebuilt from what outlives the store: our tmux server's panes and the repository's git worktrees.

Every agent pane is started with SUPERVISOR_AGENT and its own socket (SUPERVISOR_SOCKET, in this repository's
runtime folder; earlier versions gave our state directory instead) in its environment, and every agent has a
worktree on branch `agent/NAME/work` with its contract in SESSION.md. When the
store has no record of such an agent (a 0-byte or lost store, a record set aside, a store rebuilt by
`doctor --repair`), its record is made again from those: live with its pane when one runs, stopped
otherwise. SESSION.md lives in the agent's worktree, where the agent could have edited it, so the contract
read from it is marked unverified, and `merge` refuses the agent until a human confirms it.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from supervisor.agents import profile_for
from supervisor.config import Config
from supervisor.core.contract import parse_contract
from supervisor.core.model import Agent, State, parent_of, validate_name
from supervisor.core.roles import default_session_contract
from supervisor.core.seal import Seal
from supervisor.core.store import NameTaken, Store
from supervisor.engine.helpers import SUB_AGENTS, with_terms
from supervisor.errors import SupervisorError
from supervisor.files import read_regular
from supervisor.git import worktrees
from supervisor.git.refs import agent_branch, agent_of_branch
from supervisor.paths import RepoPaths, agent_file_name
from supervisor.tmux.server import ENGINE_SESSION, Tmux, TmuxError

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

UNVERIFIED = "contract_unverified"
CONTRACT_LIMIT = 1 << 20  # bytes of a SESSION.md read to rebuild a contract from it


@dataclass(frozen=True)
class AgentPane:
    """A live pane of our tmux server whose process carries an agent's environment."""

    name: str
    pane: str
    pid: int
    env: dict[str, str]
    cwd: str
    command: str


def agent_panes(tmux: Tmux, paths: RepoPaths) -> dict[str, AgentPane]:
    """The live agent panes of our tmux server, by agent name (none when the server is not running)."""
    panes = tmux.list_panes()
    if not panes:
        return {}
    try:
        lines = tmux.query("list-panes", "-a", "-F", "#{pane_id}\t#{pane_current_path}\t#{pane_start_command}")
    except TmuxError:
        lines = []
    more = {parts[0]: parts for parts in (line.split("\t", 2) for line in lines) if len(parts) == 3}
    found: dict[str, AgentPane] = {}
    for info in panes.values():
        if info.dead or not info.pid or info.session == ENGINE_SESSION:
            continue
        try:
            env = psutil.Process(info.pid).environ()
        except psutil.Error:
            continue
        name = env.get("SUPERVISOR_AGENT") or ""
        try:
            validate_name(name)
        except SupervisorError:
            continue
        ours = env.get("SUPERVISOR_SOCKET") == str(paths.agent_socket(name))
        if not ours and env.get("SUPERVISOR_STATE_DIR") != str(paths.state_dir):  # (a pane of an earlier version)
            continue
        _, cwd, command = more.get(info.pane, ("", "", ""))
        found[name] = AgentPane(name, info.pane, info.pid, env, cwd, command.strip().strip('"'))
    return found


def agent_worktrees(root: Path) -> tuple[dict[str, Path], set[Path]]:
    """The repository's linked worktrees on a branch `agent/NAME/work`, by agent name; and every linked worktree
    (whatever its branch)."""
    try:
        text = worktrees.run_git(root, "worktree", "list", "--porcelain")
    except SupervisorError:
        return {}, set()
    found: dict[str, Path] = {}
    linked: set[Path] = set()
    path: Path | None = None
    main: Path | None = None  # listed first: never an agent's, whatever branch it has checked out
    for line in text.splitlines():
        if line.startswith("worktree "):
            path = Path(line.removeprefix("worktree "))
            if main is None:
                main = path
            else:
                linked.add(path)
        elif line.startswith("branch ") and path is not None and path != main:
            name = agent_of_branch(line.removeprefix("branch "))
            if name is None:
                continue
            try:
                found[validate_name(name)] = path
            except SupervisorError:
                continue
    return found, linked


def expected_worktree(name: str, config: Config, known: dict[str, Path]) -> Path:
    """Where supervisor puts the agent's worktree (a helper's inside its parent's); `known`: the worktrees
    already known, by agent name."""
    parent = parent_of(name)
    if parent is None:
        return Path(os.path.normpath(config.worktrees.dir / agent_file_name(name)))
    owner = known.get(parent) or expected_worktree(parent, config, known)
    return owner / SUB_AGENTS / name.rsplit(".", 1)[1]


def rebuild_missing(store: Store, paths: RepoPaths, config: Config, tmux: Tmux, *,
                    include_stopped: bool) -> list[str]:
    """Records for the agents whose pane runs (and, with `include_stopped`, whose worktree exists) but which
    the store does not know; the names rebuilt. Parents come before their helpers."""
    agents = store.agents()
    known = {agent.name for agent in agents}
    panes = agent_panes(tmux, paths)
    trees, linked = agent_worktrees(paths.root)
    names = set(panes) | (set(trees) if include_stopped else set())
    server = tmux.listed_server
    rebuilt: list[str] = []
    seal: Seal | None = None
    for name in sorted(names - known, key=lambda n: (n.count("."), n)):
        tree = trees.get(name)
        if tree is None:
            # Git lists no worktree on its branch (it checked out another): where supervisor put it, if that
            # is a worktree of this repository; never where its pane happens to be (the agent chose that).
            tree = expected_worktree(name, config, {**{a.name: Path(a.worktree) for a in agents}, **trees})
            if not any(_same(tree, path) for path in linked):
                log.warning("agent %s: its pane runs, but %s is not a worktree of this repository: not rebuilt",
                            name, tree)
                continue
        seal = seal or Seal(paths.contract_key)  # its contract is signed as read (and marked unverified)
        agent = rebuild_agent(name, paths, config, panes.get(name), tree, server, seal)
        try:
            store.add_agent(agent)
        except NameTaken:
            continue  # made meanwhile by a start of the same name
        store.append_event(name, "rebuilt", pane=agent.pane, pid=agent.pid, worktree=agent.worktree,
                           state=str(agent.state), contract=agent.extra[UNVERIFIED])
        rebuilt.append(name)
    return rebuilt


def _same(one: Path, other: Path) -> bool:
    try:
        return one.resolve() == other.resolve()
    except OSError:
        return False


def rebuild_agent(name: str, paths: RepoPaths, config: Config, pane: AgentPane | None, worktree: Path,
                  server: str | None, seal: Seal) -> Agent:
    """An agent's record from its pane (live) and worktree; what neither tells is left empty."""
    root = paths.root
    parent = parent_of(name)
    target = agent_branch(parent) if parent else (worktrees.current_branch(root) or "HEAD")
    branch = agent_branch(name)
    try:
        base = worktrees.run_git(root, "merge-base", branch, target)
    except SupervisorError:
        base = ""
    command = (pane.command if pane else "") or config.agent.command or ""
    same = config.agent.command is not None and command.split() == config.agent.command.split()
    profile = config.agent.profile if same or not command else profile_for(command)
    env = pane.env if pane else {}
    now = time.time()
    agent = Agent(name=name, profile=profile, command=command, worktree=str(worktree), branch=branch, base=base,
                  target=target, state=State.WORKING if pane else State.STOPPED, state_since=now)
    if pane is not None:
        agent.pane, agent.pid = pane.pane, pane.pid
        agent.extra["tmux_server"] = server
        agent.port = int(env["SUPERVISOR_PORT"]) if env.get("SUPERVISOR_PORT", "").isdigit() else None
        try:
            agent.started_at = psutil.Process(pane.pid).create_time()
        except psutil.Error:
            agent.started_at = now
    else:
        agent.reason = "rebuilt from git: no pane of it was running"
    agent.extra[UNVERIFIED] = _contract(agent, Path(worktree), root, seal)
    agent.extra["rebuilt"] = {"at": now, "from": ["tmux", "git"] if pane else ["git"]}
    return agent


def _contract(agent: Agent, worktree: Path, root: Path, seal: Seal) -> dict[str, Any]:
    """Give the agent the contract its SESSION.md states (or the default one); what was used and why."""
    session_md = worktree / "SESSION.md"
    try:
        data = read_regular(session_md, CONTRACT_LIMIT)  # the agent's to write: no link, no FIFO, bounded
        if data is None:
            raise OSError(errno.EINVAL, "not a regular file of at most 1 MB")
        terms = parse_contract(data.decode("utf-8"), session_md)
        source = {"source": str(session_md)}
    except (OSError, UnicodeDecodeError, SupervisorError) as exc:
        terms = default_session_contract(root)
        source = {"source": "default", "why": f"{session_md}: {getattr(exc, 'strerror', None) or exc}"}
    with_terms(agent, terms, seal)
    return source


def confirm_hint(name: str) -> str:
    return (f"read it with `supervisor show {name}`; if it is the contract you agreed on (and the branch it "
            f"merges into is right), `supervisor merge {name} --confirm-contract` confirms it and merges")


def at_start(engine: Engine) -> None:
    """Before adoption: re-adopt the agents whose panes run but whose records the store lacks (all of them
    when it was missing or 0 bytes: then their stopped worktrees too), and say what was found wrong in the
    store, in engine.log, the event log and the notice that `ls` shows."""
    store, paths = engine.store, engine.paths
    notices = [f"agent {item.name}: its record in {store.path} could not be read ({item.error}); it was set "
               "aside (table agents_set_aside)" for item in store.set_aside]
    empty = store.found.empty
    rebuilt = rebuild_missing(store, paths, engine.config, engine.tmux, include_stopped=empty is not None)
    if rebuilt:
        why = f"the store {store.path} was {empty}" if empty else "the store had no record of them"
        store.append_event(None, "agents_rebuilt", agents=rebuilt, reason=why)
        unverified = ", ".join(rebuilt)
        line = (f"{len(rebuilt)} agent(s) rebuilt from tmux and git because {why}: {unverified}; their contracts "
                "are unverified (read from SESSION.md) until `supervisor merge NAME --confirm-contract`")
        log.warning("%s", line)
        notices.append(line)
    write_notices(paths, notices)


def write_notices(paths: RepoPaths, notices: list[str]) -> None:
    try:
        if notices:
            paths.store_notice.write_text("".join(f"{line}\n" for line in notices))
        else:
            paths.store_notice.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not write %s: %s", paths.store_notice, exc)


def read_notices(paths: RepoPaths) -> list[str]:
    try:
        return [line for line in paths.store_notice.read_text().splitlines() if line.strip()]
    except OSError:
        return []
