"""A host over SSH as the engine sees it: the `Host` methods, each handed to the part that holds it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from supervisor.agents.reader import Reader
from supervisor.config import Config
from supervisor.core.model import Agent
from supervisor.core.store import Store
from supervisor.errors import SupervisorError
from supervisor.hosts.base import Launched, Typing
from supervisor.hosts.commands import Ran
from supervisor.hosts.link import Link
from supervisor.hosts.remote.layout import HostLayout, repo_key
from supervisor.hosts.remote.reader import LinkReader
from supervisor.hosts.remote.tmuxlink import CALL_TIMEOUT
from supervisor.hosts.survey import CONNECTING
from supervisor.hosts.watch import Reach
from supervisor.hostsconfig import HostConfig
from supervisor.hostside.lineage import LAUNCHING
from supervisor.paths import RepoPaths
from supervisor.tmux.server import PaneInfo

FIRST_CONNECT_WAIT = 30.0  # seconds a request waits for a host's first connection to be made


class HostUnreachable(SupervisorError):
    """The host's link is down: nothing can be done there now (the engine reconnects on its own)."""


class RemoteHost:
    def __init__(self, config: HostConfig, link: Callable[[], Link | None], paths: RepoPaths,
                 settings: Callable[[], Config], store: Store,
                 known: Callable[[float], Reach | None] | None = None) -> None:
        self.name = config.name
        self.store = store  # the engine's records (a helper's pane opens beside its parent's)
        self.config = config
        self.paths = paths
        self.settings = settings  # supervisor.yaml as the engine applies it now
        self._link = link  # the host's link while it is up (engine.hostlinks), else None
        self._known = known  # its reach once its first connection attempt ended (waits up to the seconds given)
        self.key = repo_key(paths.common_dir, paths.name)
        # The parts, each in its own module (imported here: they import this module's names only for typing).
        from supervisor.hosts.remote.channel import Channel
        from supervisor.hosts.remote.panes import RemotePanes
        from supervisor.hosts.remote.worktrees import RemoteWorktrees
        self.worktrees = RemoteWorktrees(self)
        self.panes = RemotePanes(self)
        self.channel = Channel(self)

    # what every part uses ------------------------------------------------------------------------------

    def link(self) -> Link:
        """The link now; HostUnreachable (one line, with the hint) while the host is down."""
        link = self._link()
        if link is not None and link.up:
            return link
        # Its first connection may be under way (the engine just started, or the host was just added): wait for it.
        reach = self._known(FIRST_CONNECT_WAIT) if self._known is not None else None
        link = self._link()
        if link is not None and link.up:
            return link
        if reach is not None and reach.state == CONNECTING:
            raise HostUnreachable(f"host {self.name} is still connecting",
                                  hint=f"try again in a moment; `supervisor hosts check {self.name}` says what it "
                                       "lacks, if anything")
        why = f" ({reach.error})" if reach is not None and reach.error else ""
        raise HostUnreachable(f"host {self.name} is unreachable now{why}",
                              hint=f"`supervisor hosts check {self.name}` checks each requirement; the engine "
                                   "reconnects on its own")

    def layout(self) -> HostLayout:
        """Where this repository's things live there (needs the link: `dir` as the host expanded it)."""
        host_dir = self.link().hello.get("dir")
        if not isinstance(host_dir, str) or not host_dir.startswith("/"):
            raise HostUnreachable(f"host {self.name} did not say where its folder is")
        return HostLayout.of(host_dir, self.key)

    # Host: its worktree ---------------------------------------------------------------------------------

    def isolation_of(self, agent: Agent) -> str:
        return self.panes.isolation_of(agent)

    def make_worktree(self, agent: Agent, base: str, within: str | None) -> str:
        return self.worktrees.make_worktree(agent, base, within)

    def worktree_exists(self, agent: Agent) -> bool:
        ran = self.link().call("run", argv=["test", "-d", agent.worktree], timeout=CALL_TIMEOUT)
        return bool(ran["rc"] == 0)

    def cli_files(self, agent: Agent) -> tuple[str, Reader]:
        state = self.layout().state(agent.name)
        return state, LinkReader(self.link(), state)

    def write_session(self, agent: Agent, contract: str) -> None:
        self.worktrees.write_session(agent, contract)

    def run_isolated(self, agent: Agent, command: str, cwd: str, env: Mapping[str, str], *,
                     timeout: float | None = None, stop: threading.Event | None = None, keep: int = 20) -> Ran:
        return self.worktrees.run_isolated(agent, command, cwd, env, timeout=timeout, stop=stop, keep=keep)

    def remove_worktree(self, agent: Agent) -> None:
        self.channel.close_quietly(agent)
        self.panes.close(agent)
        self.worktrees.remove_worktree(agent)

    def remove_state(self, agent: Agent) -> None:
        self.worktrees.remove_state(agent)

    # Host: its pane -------------------------------------------------------------------------------------

    def prepare_launch(self, agent: Agent) -> str:
        self.channel.open(agent, LAUNCHING)  # its socket there before its CLI can call it, waiting for its pane
        return self.panes.prepare_launch(agent)

    def hook_command(self, agent: Agent) -> str:
        return self.channel.hook_command()

    def missing_program(self, agent: Agent, command: str) -> str | None:
        return self.panes.missing_program(agent, command)

    def own_pane(self, agent: Agent) -> PaneInfo | None:
        return self.panes.own_pane(agent)

    def launch(self, agent: Agent, command: str, env: Mapping[str, str], into: PaneInfo | None) -> Launched:
        launched = self.panes.launch(agent, command, env, into)
        self.channel.tie(agent, launched.pid)  # its socket answers this pane's processes
        return launched

    def end(self, agent: Agent, pane: PaneInfo | None, grace: float, since: float) -> list[int]:
        survivors = self.panes.end(agent, pane, grace, since)
        self.channel.close_quietly(agent)  # nothing of it runs to call it; a next launch binds it anew
        return survivors

    def end_state_holders(self, agent: Agent, grace: float) -> list[int]:
        return self.panes.end_state_holders(agent, grace)

    def capture(self, agent: Agent, *, history: int = 0, ansi: bool = False) -> str | None:
        return self.panes.capture(agent, history=history, ansi=ansi)

    def send_keys(self, agent: Agent, *keys: str) -> bool:
        return self.panes.send_keys(agent, *keys)

    def type_text(self, agent: Agent, pane: PaneInfo, text: str, typing: Typing) -> None:
        self.panes.type_text(agent, pane, text, typing)

    def attach_info(self, agent: Agent) -> dict[str, str] | None:
        return self.panes.attach_info(agent)
