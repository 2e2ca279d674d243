"""Each agent's own socket on a host, served by the host program: what its CLI's hooks and `supervisor` commands
send there comes home as that agent's requests, in order, and the answers go back.

On the host (`supervisor.hostside.agents`): the socket at `layout.socket(NAME)`; the client its hooks, its guard
and the agent run (`client_command()`: the host program's own zipapp, `client ...`), found on the agent's PATH
as `supervisor` (a shim in `ROOT/bin`, `client_env`); hook events the engine did not take, spooled in
`layout.spool(NAME)/hooks` and watched (`watch`), so they come home as they are written and when the link is
back. At home, supervisor/engine/remoterequests.py answers the requests and applies the spooled events.
"""

from __future__ import annotations

import contextlib
import posixpath
import shlex
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent
from supervisor.engine.spooled import Spooled
from supervisor.errors import SupervisorError
from supervisor.hosts.hostapp import INSTALL_DIR

if TYPE_CHECKING:
    from supervisor.hosts.remote.host import RemoteHost

HOOKS_WATCH = "hooks:"  # + the agent's name: the watch of its hook spool on the host


class Channel:
    def __init__(self, host: RemoteHost) -> None:
        self.host = host

    def open(self, agent: Agent, pane: int | str | None) -> list[str]:
        """The agent's socket on the host, listening (before its CLI can call it), the `supervisor` shim in
        place, and its hook spool watched → the events spooled there now (file names, oldest first). `pane`:
        the pid of its pane's process, whose tree alone the socket answers (supervisor/hostside/lineage.py),
        lineage.LAUNCHING (named by `tie` once the launch gave it), or None (unknown: not checked)."""
        link = self.host.link()
        layout = self.host.layout()
        shim = self.shim_path()
        words = shlex.join(self.client_command())
        link.call("write", path=shim, text=f'#!/bin/sh\nexec {words} "$@"\n', mode=0o755)
        link.call("agent_listen", agent=agent.name, path=layout.socket(agent.name), pane=pane)
        watched = link.call("watch", dir=self.hooks_spool(agent.name), watch=HOOKS_WATCH + agent.name)
        return list(watched.get("files") or []) if isinstance(watched, dict) else []

    def tie(self, agent: Agent, pid: int) -> None:
        """Its launch gave its pane's process `pid`: its socket answers that process's tree from now on."""
        self.host.link().call("agent_tie", agent=agent.name, pid=pid)

    def close(self, agent: Agent) -> None:
        """Its socket and the watch of its spool gone (what is spooled stays for the next open)."""
        link = self.host.link()
        link.call("unwatch", watch=HOOKS_WATCH + agent.name)
        link.call("agent_close", agent=agent.name)

    def close_quietly(self, agent: Agent) -> None:
        """`close`, when the host can be reached (its program closes every socket as it ends anyway)."""
        with contextlib.suppress(SupervisorError):
            self.close(agent)

    # how the agent reaches it ---------------------------------------------------------------------------

    def client_command(self) -> list[str]:
        """The words that run the host client there (`+ ["hook"]` is what its CLI's hooks run)."""
        link = self.host.link()
        home = link.hello.get("home")
        if not isinstance(home, str) or not home.startswith("/"):
            home = "~"
        folder = INSTALL_DIR.replace("~", home, 1)
        return ["python3", "-I", "-S", f"{folder}/host-{link.app.version}.pyz", "client"]

    def hook_command(self) -> str:
        """What its CLI's hooks run on the host (the profile writes it into the CLI's settings)."""
        return shlex.join([*self.client_command(), "hook"])

    def shim_path(self) -> str:
        return posixpath.join(self.host.layout().root, "bin", "supervisor")

    def client_env(self, agent: Agent) -> dict[str, str]:
        """The agent's variables there: PATH with the `supervisor` shim first, its own socket, its name."""
        path = self.host.link().hello.get("path")
        rest = path if isinstance(path, str) and path else "/usr/local/bin:/usr/bin:/bin"
        return {"PATH": f"{posixpath.dirname(self.shim_path())}:{rest}",
                "SUPERVISOR_SOCKET": self.host.layout().socket(agent.name), "SUPERVISOR_AGENT": agent.name}

    # what comes home ------------------------------------------------------------------------------------

    def answer(self, conn: int, reply: dict[str, Any]) -> bool:
        """The engine's reply to connection `conn` → whether its client still waited for it."""
        done = self.host.link().call("agent_answer", conn=conn, answer=reply)
        return bool(isinstance(done, dict) and done.get("delivered"))

    def hooks_spool(self, name: str) -> str:
        return posixpath.join(self.host.layout().spool(name), "hooks")

    def spooled(self, name: str) -> list[Spooled]:
        """The hook events spooled for agent `name` on the host, oldest first."""
        found = self.host.link().call("agent_spooled", dir=self.hooks_spool(name))
        return [Spooled(str(entry["name"]), entry["item"], float(entry["mtime"])) for entry in found or []
                if isinstance(entry, dict) and isinstance(entry.get("item"), dict)]

    def remove_spooled(self, name: str, files: list[str]) -> None:
        if files:
            folder = self.hooks_spool(name)
            self.host.link().call("remove", paths=[posixpath.join(folder, file) for file in files])
