"""An agent's pane on a host: the repository's tmux server there (`layout.tmux_socket`), driven over the link by
the same `Tmux` and `Panes` code as this machine's (supervisor/hosts/remote/tmuxlink.py carries it).

The agent runs in the host's bubblewrap sandbox where it can be made (isolated.py), else with `isolation:
none`; its environment there names the host's paths: its CLI folder `layout.state(name)` (through its profile's
own variable), its own socket `layout.socket(name)`, and what the host client needs (`Channel.client_env`).
Without a sandbox its HOME is the host user's, as an agent here without one keeps yours: the host user's git
identity, credentials and tools' settings apply to what it runs there (a sandbox gives it a HOME of its own,
isolated.py). Its CLI folder is made here by the profile's own code and written there at each launch
(staging.py). Delivery's checks (`Typing`) run here, on screens read over the link."""

from __future__ import annotations

import contextlib
import posixpath
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.agents import get_profile
from supervisor.core.model import Agent
from supervisor.engine.panes import Panes
from supervisor.errors import SupervisorError
from supervisor.hosts import agent_cli, isolation
from supervisor.hosts.base import Launched, Typing
from supervisor.hosts.remote import isolated, reaping, staging
from supervisor.hosts.remote.ending import Ender
from supervisor.hosts.remote.tmuxlink import CALL_TIMEOUT, LinkTransport, Relays
from supervisor.hosts.ssh import ssh_argv
from supervisor.paths import agent_file_name
from supervisor.tmux.panes import PaneRef
from supervisor.tmux.server import PaneInfo, Tmux, TmuxError

if TYPE_CHECKING:
    from supervisor.hosts.remote.host import RemoteHost

SOCKET_VARIABLE = "SUPERVISOR_SOCKET"


class RemotePanes:
    def __init__(self, host: RemoteHost) -> None:
        self.host = host
        self.relays = Relays()  # the link's pushed tmux events come here (engine: sites.relay_event)
        self._tmux: Tmux | None = None
        self._panes: Panes | None = None

    @property
    def tmux(self) -> Tmux:
        """The host's tmux server for this repository (needs the link once: where its folder is)."""
        if self._tmux is None:
            layout = self.host.layout()
            tmux = Tmux(Path(layout.tmux_socket), Path(layout.root) / "tmux.conf",
                        transport=LinkTransport(self.host.link, self.relays))
            tmux.use_control()
            self._tmux = tmux
        return self._tmux

    @property
    def panes(self) -> Panes:
        if self._panes is None:
            self._panes = Panes(self.tmux, self.host.store, self.host.name)
        return self._panes

    def isolation_of(self, agent: Agent) -> str:
        return isolated.isolation_of(self.host, agent)

    def close(self, agent: Agent) -> None:
        """Close its pane (its tmux session, for a session)."""
        if agent.parent is None:
            self.tmux.kill_session(agent.name)
        elif (own := self.panes.own(agent)) is not None:
            self.tmux.kill_pane(own.pane)

    def staged(self, agent: Agent) -> Path:
        return staging.staging_folder(self.host.paths.state_dir, self.host.name, agent_file_name(agent.name))

    def prepare_launch(self, agent: Agent) -> str:
        """Its host's tmux server running, and a local folder for the profile to make its CLI folder in (written
        on the host at the launch)."""
        self.tmux.ensure_server()
        folder = self.staged(agent)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return str(folder)

    def missing_program(self, agent: Agent, command: str) -> str | None:
        """The program of a simple `command` when its pane there cannot start it, with the host, why, and where
        it must live (agent_cli.py): not on the PATH there, or hidden by the agent's sandbox."""
        program = agent_cli.program_of(command)
        if program is None:
            return None  # shell syntax: the shell's exit status tells
        link = self.host.link()
        host_dir = str(link.hello.get("dir") or self.host.config.dir)
        ran = link.call("run", argv=["sh", "-c", agent_cli.FIND, "sh", program, host_dir], cwd=agent.worktree,
                        timeout=CALL_TIMEOUT)
        found, real_dir, home = ([*str(ran["stdout"]).split("\n"), "", "", ""])[:3]
        fix = agent_cli.fix(self.host.name, self.host.config.dir)
        if ran["rc"] != 0 or not found:
            path = link.hello.get("path") or "?"
            return f"{program} on host {self.host.name} (not on the PATH an agent gets there: {path}); {fix}"
        if isolated.isolation_of(self.host, agent) == isolation.SANDBOX:
            real = real_dir or host_dir
            root = posixpath.join(real, posixpath.basename(self.host.layout().root))
            hidden = agent_cli.hidden_by_sandbox(found, real, home or None, root)
            if hidden is not None:
                if agent_cli.holds_home(real, home or None):
                    fix = agent_cli.fix(self.host.name, self.host.config.dir, root)
                return f"{program} on host {self.host.name} (found at {found}, but {hidden}); {fix}"
        return None

    def own_pane(self, agent: Agent) -> PaneInfo | None:
        return self.panes.own(agent)

    def environment(self, agent: Agent, env: Mapping[str, str]) -> dict[str, str]:
        """The launch's environment as the host sees it (HOME left alone: the host user's own)."""
        layout = self.host.layout()
        state = layout.state(agent.name)
        given = staging.host_env(env, self.staged(agent), state)
        given[SOCKET_VARIABLE] = layout.socket(agent.name)
        given.update(self.host.channel.client_env(agent))
        return given

    def launch(self, agent: Agent, command: str, env: Mapping[str, str], into: PaneInfo | None) -> Launched:
        layout = self.host.layout()
        hook = shlex.join([*self.host.channel.client_command(), "hook"])
        staging.upload(self.host.link(), self.staged(agent), layout.state(agent.name), hook,
                       credentials=self.host.config.credentials, worktree=agent.worktree)
        command, given, got = isolated.wrap(self.host, agent, command, self.environment(agent, env))
        command, given = reaping.wrap(self.host, agent, command, given)  # outermost, outside any sandbox
        cwd = Path(agent.worktree)
        if into is not None:
            pid = self.tmux.respawn(into.pane, into.server, cwd, command, given)
            return Launched(PaneRef.of(into, self.host.name), pid, into.history, got)
        ref, pid = self.panes.open(agent, command, given, self.tmux.list_panes())
        return Launched(ref, pid, 0, got)

    def end(self, agent: Agent, pane: PaneInfo | None, grace: float, since: float) -> list[int]:
        root = pane.pid if pane is not None and not pane.dead else None
        carrying = [*reaping.carrying(agent), (SOCKET_VARIABLE, self.host.layout().socket(agent.name))]
        return self._ender(strays=True).end(root, carrying, grace)

    def end_state_holders(self, agent: Agent, grace: float) -> list[int]:
        variable = get_profile(agent.profile).state_env
        if variable is None:
            return []
        return self._ender().end(None, [(variable, self.host.layout().state(agent.name))], grace)

    def _ender(self, *, strays: bool = False) -> Ender:
        """`strays`: the tmux server's panes too, each ended when its process carries no launch token (a window
        opened there by hand or by an agent, `tmux -S … new-window`: supervisor opens none without one)."""
        panes = self.tmux.list_panes()
        server = next((info.server for info in panes.values()), None) or self.tmux.listed_server
        found = [int(server.split(":")[0])] if strays and server and server.split(":")[0].isdigit() else []
        return Ender(self.host.link(), self.tmux.keepers(panes), found)

    def capture(self, agent: Agent, *, history: int = 0, ansi: bool = False) -> str | None:
        with contextlib.suppress(SupervisorError):  # unreachable: no screen to read now
            return self.panes.capture(agent, history=history, ansi=ansi)
        return None

    def send_keys(self, agent: Agent, *keys: str) -> bool:
        with contextlib.suppress(SupervisorError):
            return self.panes.send_keys(agent, *keys)
        return False

    def type_text(self, agent: Agent, pane: PaneInfo, text: str, typing: Typing) -> None:
        typing.into(self.tmux, pane.pane, text)

    def attach_info(self, agent: Agent) -> dict[str, str] | None:
        """The pane, and the `ssh -t` command line that puts the user's terminal on it there. The client there
        is told the terminal is UTF-8 (`-u`): the locale an ssh command gets on a host is often POSIX (OpenSSH
        sends LANG only where its config says SendEnv), which would draw `❯` as `_` and lines as `qqq`."""
        info = self.panes.own(agent)
        if info is None:
            return None
        socket = self.host.layout().tmux_socket
        words = ["tmux", "-u", "-S", socket, "select-window", "-t", info.pane, ";", "select-pane", "-t", info.pane, ";",
                 "attach-session", "-t", f"={info.session}"]
        return {"pane": info.pane, "session": info.session, "socket": socket, "host": self.host.name,
                "ssh": shlex.join(ssh_argv(self.host.config, *words, tty=True))}


__all__ = ["RemotePanes", "TmuxError"]
