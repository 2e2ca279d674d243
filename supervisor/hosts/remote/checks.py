"""Where `merge.check` (and the setup before it) runs for an agent on a host: on that host, never here. The
merged result the engine computed (a commit in the user's repository) is pushed into the host's clone, checked
out detached in a scratch worktree there (`DIR/<repo>-<hash>/checks/check-XXXX`), and the commands run in it by
the host's `run_isolated`, as the agent's own code is run there; the worktree and its ref go whatever happened.
The agent's code never runs on the user's machine."""

from __future__ import annotations

import contextlib
import posixpath
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from supervisor.errors import SupervisorError
from supervisor.git.worktrees import GitError
from supervisor.hosts import bundles
from supervisor.hosts.link import LinkError
from supervisor.hosts.remote.worktrees import GIT, STEP_TIMEOUT

if TYPE_CHECKING:
    from supervisor.hosts.remote.host import RemoteHost

CHECKS_REFS = "refs/supervisor/checks"

_ADD = GIT + r"""set -eu
clone=$1 path=$2 ref=$3
mkdir -p "${path%/*}"
g --git-dir="$clone" worktree add --quiet --detach "$path" "$ref" >&2
"""

_DROP = GIT + r"""set -u
clone=$1 path=$2 ref=$3
g --git-dir="$clone" worktree remove --force --force "$path" >&2 || true
rm -rf "$path"
g --git-dir="$clone" worktree prune >&2 || true
g --git-dir="$clone" update-ref -d "$ref" >&2 || true
"""


@contextlib.contextmanager
def scratch_checkout(host: RemoteHost, commit: str) -> Iterator[str]:
    """A worktree on `host` holding `commit` (of the user's repository) detached → its path there."""
    link, layout = host.link(), host.layout()
    name = f"check-{secrets.token_hex(4)}"
    ref = f"{CHECKS_REFS}/{name}"
    path = posixpath.join(layout.root, "checks", name)
    try:
        bundles.push(link, host.paths.root, layout.clone, {ref: commit})
        added = _run(link_call=link.call, script=_ADD, args=(layout.clone, path, ref))
    except (LinkError, GitError) as exc:
        raise SupervisorError(f"cannot bring the merge to check to host {host.name}: {exc.message}") from None
    if added["rc"] != 0:
        _drop(host, layout.clone, path, ref)
        said = str(added.get("stderr") or "").strip().splitlines()
        raise SupervisorError(f"cannot check out the merge to check on host {host.name}: "
                              f"{said[-1] if said else 'exit status ' + str(added['rc'])}")
    try:
        yield path
    finally:
        _drop(host, layout.clone, path, ref)


def _run(link_call: Any, script: str, args: tuple[str, ...]) -> dict[str, Any]:
    done: dict[str, Any] = link_call("run", argv=["sh", "-c", script, "sh", *args], timeout=STEP_TIMEOUT)
    return done


def _drop(host: RemoteHost, clone: str, path: str, ref: str) -> None:
    with contextlib.suppress(SupervisorError):  # the host is gone: `checks/` is swept with the next check
        _run(host.link().call, _DROP, (clone, path, ref))
