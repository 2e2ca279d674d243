"""Where a repository's things live on a host: one folder per repository under the host's `dir`, so two
repositories of the user (each with its own engine) never share a clone, a tmux server or an agent's folder.

    DIR/<repo>-<hash>/repo.git          the bare clone the engine pushes base commits into
    DIR/<repo>-<hash>/worktrees/NAME    each agent's worktree (a helper's inside its parent's, as locally)
    DIR/<repo>-<hash>/state/NAME        each agent's CLI folder (its HOME, config, sessions)
    DIR/<repo>-<hash>/run/NAME/agent.sock  each agent's own socket, served by the host program (a folder of
                                        its own: its sandbox is shown that folder, and no other agent's socket)
    DIR/<repo>-<hash>/spool/NAME        each agent's hook events, kept until home has them
    DIR/<repo>-<hash>/spool/.panes      what each pane showed while home was away (supervisor/hostside/keeper.py;
                                        a name no agent can take)
    DIR/<repo>-<hash>/tmux.sock         the repository's tmux server there

Paths are absolute text on the host: `dir` expanded by the host program itself (its hello's `dir`), since `~`
there is the host user's home, not ours.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from pathlib import Path

from supervisor.hostside.client import SOCKET_FILE
from supervisor.paths import agent_file_name


def repo_key(common_dir: Path, name: str) -> str:
    """The repository's folder name on every host: its name and a hash of where it lives here."""
    digest = hashlib.sha256(str(common_dir.resolve()).encode()).hexdigest()[:10]
    return f"{name}-{digest}"


@dataclass(frozen=True)
class HostLayout:
    root: str  # DIR/<repo>-<hash>, absolute on the host

    @classmethod
    def of(cls, host_dir: str, key: str) -> HostLayout:
        return cls(posixpath.join(host_dir, key))

    @property
    def clone(self) -> str:
        return posixpath.join(self.root, "repo.git")

    @property
    def tmux_socket(self) -> str:
        return posixpath.join(self.root, "tmux.sock")

    def worktree(self, agent: str) -> str:
        """A session's worktree (a helper's lives inside its parent's, named by the engine as locally)."""
        return posixpath.join(self.root, "worktrees", agent_file_name(agent))

    def state(self, agent: str) -> str:
        return posixpath.join(self.root, "state", agent_file_name(agent))

    def socket(self, agent: str) -> str:
        return posixpath.join(self.root, "run", agent_file_name(agent), SOCKET_FILE)

    def spool(self, agent: str) -> str:
        return posixpath.join(self.root, "spool", agent_file_name(agent))
