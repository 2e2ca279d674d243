"""A tree of agents on a host (a session, its helpers, theirs): the files the helper desk keeps in their worktrees
there, written by the host program (`tree_write`, supervisor/hostside/treefiles.py) and never through a link
an agent planted: each parent's `.sub-agents/status.yaml` (rewritten in place: a sandbox there binds it), and
each message between two agents of the tree, in `.sub-agents/messages/` of their nearest common ancestor.

Every agent of a tree runs on one host (a helper runs on its parent's), so what the engine writes for a tree is
written on that host alone."""

from __future__ import annotations

import posixpath

from supervisor.core.model import Agent
from supervisor.errors import SupervisorError
from supervisor.hosts.link import LinkError
from supervisor.hosts.remote.host import RemoteHost

WRITE_TIMEOUT = 10.0  # seconds: the helper desk's thread waits no longer for a slow host


def write_status(host: RemoteHost, parent: Agent, folder: str, file: str, text: str) -> bool:
    """`text` as `parent`'s `FOLDER/FILE` (in place) → whether it was written (False: the folder is not there:
    no helper was made in it). SupervisorError when the host cannot be reached or refuses (a planted link)."""
    done = _write(host, parent.worktree, [folder, file], text, make=False, in_place=True)
    return bool(done.get("written"))


def write_message(host: RemoteHost, home: Agent, parts: list[str], text: str) -> str:
    """`text` as a new file at `parts` below `home`'s worktree on the host (folders made) → its path there."""
    done = _write(host, home.worktree, parts, text, make=True, in_place=False)
    return str(done.get("path") or posixpath.join(home.worktree, *parts))


def _write(host: RemoteHost, root: str, parts: list[str], text: str, *, make: bool,
           in_place: bool) -> dict[str, object]:
    try:
        done = host.link().call("tree_write", root=root, parts=parts, text=text, make=make, in_place=in_place,
                                timeout=WRITE_TIMEOUT)
    except LinkError as exc:
        raise SupervisorError(f"on host {host.name}: {exc.message}") from None
    return done if isinstance(done, dict) else {}
