"""Ending agents: `stop` (with their helpers, deepest first), timeouts, `rm`."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from supervisor.core.durations import format_duration
from supervisor.core.model import Agent, State
from supervisor.core.triggers import Trigger, fire
from supervisor.engine import unreached, views
from supervisor.engine.delivery import wait_for
from supervisor.engine.server_ended import RESTORABLE
from supervisor.engine.worktree_state import uncommitted_changes
from supervisor.errors import SupervisorError
from supervisor.git import worktrees
from supervisor.git.agent_refs import branch_ref, target_ref
from supervisor.hosts.base import alive

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)


class Endings:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def op_stop(self, name: str, kill: bool = False) -> dict[str, Any]:
        """Stop the agent and all its helpers (deepest first, so none outlives its parent)."""
        self.stop_tree(name, "killed on request" if kill else "stopped on request", kill=kill)
        return views.agent_view(self.engine.get(name), self.engine.live.get(name))

    def stop_tree(self, name: str, reason: str, kill: bool = False) -> None:
        """Stop the agent (for `reason`) and all its helpers, as `supervisor stop` does."""
        self.engine.get(name)
        for member in self.family_to_end(name):
            self._stop_one(member, kill, reason if member == name else f"its parent {name} was stopped")

    def _stop_one(self, name: str, kill: bool, reason: str) -> dict[str, Any]:
        with self.engine.ending(name):
            agent = self.engine.get(name)
            away = unreached.unreached(self.engine, agent)
            if agent.state.live and away:
                unreached.stop_later(self.engine, agent, kill, reason, away)
                return views.agent_view(agent, self.engine.live.get(name))
            if agent.state.live:
                try:
                    self.end(agent, grace=0.0 if kill else self.engine.config.limits.stop_grace, why=reason)
                except unreached.UNREACHED as exc:  # its host dropped mid-way
                    unreached.stop_later(self.engine, agent, kill, reason, f"host {agent.host}: {exc.message}")
                    return views.agent_view(agent, self.engine.live.get(name))
                final = State.KILLED if kill else State.STOPPED
                agent.reason = reason
                self.engine.set_state(agent, final, "killed" if kill else "stopped", reason=agent.reason)
            elif agent.state == State.QUEUED:  # never started: it stays out of its plan's way
                agent.reason = "stopped before it started"
                self.engine.set_state(agent, State.STOPPED, "stopped", reason=agent.reason)
            elif agent.state == State.EXITED and any([agent.extra.pop("restart_at", None),
                                                      agent.extra.pop(RESTORABLE, None)]):
                # Waiting out its restart backoff, or its pane went with the tmux server (`restore --all` would
                # bring it back): a stop means it stays down.
                agent.reason = f"{agent.reason or 'exited'}; not restarted: {reason}"
                self.engine.set_state(agent, State.STOPPED, "stopped", reason=agent.reason)
            if not away:
                self._end_state_holders(agent, grace=0.0)  # a daemon that outlived the CLI's own exit
            return views.agent_view(agent, self.engine.live.get(name))

    def end(self, agent: Agent, grace: float, why: str) -> None:
        """End the agent's whole process tree, and anything that escaped it carrying its socket (its own, unique to
        this repository's agent of that name, in SUPERVISOR_SOCKET); a request its
        hook held is dropped first (`why`), since no answer can reach it. The tree is the one its own pane runs
        now: a pid recorded before its tmux server died may be another's by now."""
        self.engine.approvals.drop(agent.name, why)
        host = self.engine.host_of(agent)
        survivors = host.end(agent, host.own_pane(agent), grace, agent.started_at)
        survivors += self._end_state_holders(agent, grace)
        if survivors:
            self.engine.store.append_event(agent.name, "kill_incomplete", pids=survivors)
            raise SupervisorError(f"{agent.name}: processes {survivors} survived SIGKILL")
        if agent.pane:
            wait_for(lambda: not alive(host, agent), 5.0)
            self.engine.screens.end_transcript(agent)

    def _end_state_holders(self, agent: Agent, grace: float) -> list[int]:
        """End what is left in the agent's cgroup, and what runs on the agent's own CLI state folder (a CLI's
        daemon, started in any earlier run of the agent, outside its pane's tree); the pids that survived."""
        return self.engine.host_of(agent).end_state_holders(agent, grace)

    def op_rm(self, name: str, force: bool = False) -> dict[str, Any]:
        """Remove the agent's worktree and branch, and its helpers' (their worktrees live inside its own)."""
        family = [*self.descendants(name), self.engine.get(name)]
        if not force:
            for agent in family:
                if agent.state.live:
                    raise SupervisorError(
                        f"{agent.name} is still running ({agent.state})",
                        hint=f"`supervisor stop {name}` first, or `supervisor rm --force {name}`")
            problems, any_commits = [], False
            for agent in family:
                unmerged = worktrees.unmerged_commits(self.engine.paths.root, branch_ref(agent), target_ref(agent))
                dirty = uncommitted_changes(self.engine, agent)
                any_commits = any_commits or bool(unmerged)
                details = [f"{len(unmerged)} commit(s) not in {agent.target}"] if unmerged else []
                details += [f"{len(dirty)} uncommitted change(s)"] if dirty else []
                if details:
                    problems.append(", ".join(details) if agent.name == name else f"{agent.name}: {', '.join(details)}")
            if problems:
                # A merge takes commits only: with nothing but uncommitted edits, "merge first" would send the
                # user round in a circle.
                hint = f"`supervisor merge {name}` first, or `supervisor rm --force {name}` to drop it" if any_commits \
                    else f"commit them in {self.engine.get(name).worktree} (then `supervisor merge {name}`), or " \
                         f"`supervisor rm --force {name}` to drop them"
                raise SupervisorError(f"{name} has unmerged work: {'; '.join(problems)}", hint=hint)
        helpers = []
        left: dict[str, str] = {}
        for member in self.family_to_end(name, left=lambda a: True):  # lazily: late ones are seen once it is gone
            said = self._remove(member)
            helpers += [member] if member != name else []
            if said:
                left[member] = said
        return {"name": name, "removed": True, "helpers": helpers, **({"left_on_host": left} if left else {})}

    def _remove(self, name: str) -> str | None:
        """Remove it; what was left on its host when that cannot be reached (only `--force` gets here then)."""
        with self.engine.ending(name):
            agent = self.engine.get(name)
            away = unreached.unreached(self.engine, agent)
            if away:
                self.engine.approvals.drop(name, "it was removed")
                unreached.forget(self.engine, agent)
                self._forget(name)
                return unreached.left_behind(agent, away)
            if agent.state.live:
                self.end(agent, grace=0.0, why="it was removed")
            self._end_state_holders(agent, grace=0.0)  # a daemon that outlived the CLI's own exit
            host = self.engine.host_of(agent)
            host.remove_worktree(agent)  # its pane (its tmux session, for a session), worktree and branch
            self._forget(name, then=lambda: host.remove_state(agent))  # its CLI's own config and sessions
            return None

    def _forget(self, name: str, then: Callable[[], None] = lambda: None) -> None:
        """Its record and what this machine keeps of it (`then`: its host's part, before its usage goes)."""
        self.engine.store.delete_agent(name)
        self.engine.live.pop(name, None)
        self.engine.transcripts.forget(name)
        self.engine.close_socket(name)
        # its socket, spool and contract file
        shutil.rmtree(self.engine.paths.agent_runtime(name), ignore_errors=True)
        then()
        self.engine.usage.forget(name)  # last: no pass can read its files again, or save a read of them after this

    def descendants(self, name: str) -> list[Agent]:
        """The agent's helpers and theirs, deepest first."""
        found = [a for a in self.engine.store.agents() if a.name.startswith(name + ".")]
        return sorted(found, key=lambda a: -a.level)

    def family_to_end(self, name: str, left: Callable[[Agent], bool] = lambda a: a.state.live) -> Iterator[str]:
        """The names to end so that `name` ends with all its helpers: theirs deepest first, then `name`,
        then those still `left` (live, by default) once it has ended. A helper is started or restarted while
        its parent is live, and ending the parent takes seconds (the grace of a stop, the wait for its
        pane), so one started in that time would outlive it. Listed under `admission` once the parent has
        ended, every helper let in is seen, and no more are let in."""
        yield from (a.name for a in self.descendants(name))
        yield name
        for _round in range(10):  # a round ends what its own helpers let in meanwhile; one round is the rule
            with self.engine.admission:
                late = [a.name for a in self.descendants(name) if left(a)]
            if not late:
                return
            yield from late

    def kill_for_timeout(self, name: str, timeout: float) -> None:
        """`timeout`: kill the agent's tree and its helpers' trees; state killed."""
        self.engine.get(name)
        for member in self.family_to_end(name):
            with self.engine.ending(member):
                current = self.engine.get(member)
                if not current.state.live:
                    continue
                why = f"timed out after {format_duration(timeout)}" if current.name == name else \
                    f"its parent {name} timed out"
                self.end(current, grace=0.0, why=why)
                current.reason = why
                screen = self.engine.screens.screen_tail(current) if current.name == name else []
                with self.engine.store.transaction():
                    self.engine.set_state(current, State.KILLED, "killed", reason=current.reason)
                    if current.name == name:
                        fire(self.engine.store, current, Trigger.TIMEOUT, current.reason, screen=screen)
