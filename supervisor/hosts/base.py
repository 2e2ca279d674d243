"""What the engine needs from a machine that runs agents: everything done beside the agents, on their machine.

The engine decides once for all agents (the store, states, triggers, alerts, the audit, the radar, merges); a
`Host` does what has to happen where an agent runs: make, furnish and remove its worktree, run its setup and
other code of its own isolated, launch and end it in a pane, read its screen and type into it, end its
processes. Only this machine (`LocalHost`) exists today; a host reached over SSH implements the same methods
by one request each over its connection (JSON lines), so each is a coarse operation and what crosses it is
plain data: paths on the host as `str`, dataclasses (`Agent`, `PaneInfo`, `Launched`, `Ran`). Callables (a
`stop` event, delivery's `submitted`/`dialog` checks) stay on the engine's side: a remote host turns them
into a request of their own (cancel, a screen read).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from supervisor.agents.reader import Reader
from supervisor.agents.screens import Reading
from supervisor.core.model import Agent
from supervisor.engine.delivery import deliver
from supervisor.errors import SupervisorError
from supervisor.hosts.commands import Ran
from supervisor.hosts.isolation import GOT
from supervisor.tmux.panes import PaneRef
from supervisor.tmux.server import PaneInfo, Tmux


@dataclass(frozen=True)
class Launched:
    ref: PaneRef  # the pane the agent runs in
    pid: int  # the pane's first process: ending it ends the agent (with a sandbox, its whole PID namespace)
    history: int  # lines of earlier runs already in the pane (a respawn), already in the transcript
    isolation: str = "none"  # what it got: `sandbox` or `none`
    unconfined: str | None = None  # why it runs in no cgroup of its own though one was made for it


ISOLATED = GOT  # in an agent's record: the isolation its last launch got


class CannotIsolate(SupervisorError):
    """The agent's isolation cannot be had here (`isolation: sandbox` without a working bubblewrap)."""


class Host(Protocol):
    name: str

    def isolation_of(self, agent: Agent) -> str:
        """The isolation the agent gets there: `sandbox` or `none`."""
        ...

    # its worktree

    def make_worktree(self, agent: Agent, base: str, within: str | None) -> str:
        """Make the agent's worktree at `agent.worktree` on a new branch `agent.branch` from commit `base` (inside
        `within`, its parent's worktree, for a helper: never through a link planted there). Its own git folder
        as git named it, before anything of the agent's ran. SupervisorError (nothing made) when it cannot."""
        ...

    def worktree_exists(self, agent: Agent) -> bool:
        """Whether its worktree is still there (a restart or restore needs it)."""
        ...

    def cli_files(self, agent: Agent) -> tuple[str, Reader]:
        """Its CLI's own folder on its machine, and a reader of the files there (a conversation to resume)."""
        ...

    def write_session(self, agent: Agent, contract: str) -> None:
        """Write its SESSION.md (`contract`) and install the commit guard in its worktree."""
        ...

    def run_isolated(self, agent: Agent, command: str, cwd: str, env: Mapping[str, str], *,
                     timeout: float | None = None, stop: threading.Event | None = None, keep: int = 20) -> Ran:
        """Run the agent's own code (`worktrees.setup`, a `merge.check`) in `cwd` without a pane, isolated as the
        agent is. CannotIsolate, never running it less isolated than asked."""
        ...

    def remove_worktree(self, agent: Agent) -> None:
        """Close its pane (its tmux session, for a session) and remove its worktree and branch."""
        ...

    def remove_state(self, agent: Agent) -> None:
        """Remove its CLI's own folder (config, sessions, its HOME)."""
        ...

    # its pane

    def prepare_launch(self, agent: Agent) -> str:
        """What its CLI needs before a launch (hooks in its worktree, a tmux server): its CLI's own folder."""
        ...

    def hook_command(self, agent: Agent) -> str:
        """The shell command its CLI's hooks run there (`supervisor hook`, as that machine runs it)."""
        ...

    def missing_program(self, agent: Agent, command: str) -> str | None:
        """The program of a simple `command` when it is not found there (on a host, with where it must live);
        None when found or not simple."""
        ...

    def own_pane(self, agent: Agent) -> PaneInfo | None:
        """The agent's own pane (dead or alive), or None when it is gone."""
        ...

    def launch(self, agent: Agent, command: str, env: Mapping[str, str], into: PaneInfo | None) -> Launched:
        """Run `command` (a shell command line) for `agent` in its worktree with `env`, isolated as its
        settings say: again in its own pane `into`, or in a new one. Raises CannotIsolate, never running
        the agent less isolated than asked."""
        ...

    def end(self, agent: Agent, pane: PaneInfo | None, grace: float, since: float) -> list[int]:
        """End every process of the agent (its pane's tree, and what it left carrying its identity): TERM,
        `grace` seconds, KILL. The pids that survived."""
        ...

    def end_state_holders(self, agent: Agent, grace: float) -> list[int]:
        """End what is left in its cgroup and what runs on its CLI's own folder (a daemon an earlier run
        started); the pids that survived."""
        ...

    def capture(self, agent: Agent, *, history: int = 0, ansi: bool = False) -> str | None:
        """Its pane's screen (and `history` lines above it); None when the pane is gone."""
        ...

    def send_keys(self, agent: Agent, *keys: str) -> bool:
        """Key names into its live pane; False when the pane is gone or dead."""
        ...

    def type_text(self, agent: Agent, pane: PaneInfo, text: str, typing: Typing) -> None:
        """Type `text` into its pane and submit it, verified as `typing` says (supervisor.engine.delivery).
        DeliveryError when it did not go in; DialogShown when a dialog took the screen instead."""
        ...

    def attach_info(self, agent: Agent) -> dict[str, str] | None:
        """What `supervisor attach` needs to reach its pane; None when the pane is gone."""
        ...


def alive(host: Host, agent: Agent) -> bool:
    """Whether the agent's own pane is there and its process runs."""
    pane = host.own_pane(agent)
    return pane is not None and not pane.dead


@dataclass(frozen=True)
class Typing:
    """How text is typed into a pane and known to have gone in (see supervisor.engine.delivery.deliver)."""

    pane_alive: Callable[[], bool]
    repaste: bool
    timeout: float
    settle: float
    submitted: Callable[[], bool] | None  # its hook said the prompt went in (None: the screen decides)
    dialog: Callable[[], Reading | None]  # a dialog on the screen now (it holds the text back)

    def into(self, tmux: Tmux, pane: str, text: str) -> None:
        """Type `text` into `pane` of `tmux` (this machine's server, or a host's over its link) as said here."""
        deliver(tmux, pane, text, pane_alive=self.pane_alive, repaste=self.repaste, timeout=self.timeout,
                submitted=self.submitted, dialog=self.dialog, settle=self.settle)
