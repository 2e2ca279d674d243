"""What holds, and what does not, for the agents of a host that runs them without a sandbox (`hosts check`,
`doctor`), said as plainly as `doctor` says it for this machine (supervisor/hosts/isolation.py NOT_ENFORCED).

A host runs its agents with `isolation: none` when supervisor.yaml says so, or when it says nothing and the host
cannot make a sandbox (no bubblewrap, or no unprivileged user namespaces). Then every agent there is one more
process of the host user: one OS user cannot be kept from another process of the same user, so each agent can
reach all that user can. What the engine decides at home still holds, because it reads only what it fetched and
checked itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.hosts import isolation

if TYPE_CHECKING:
    from supervisor.config import HostConfig

EXPOSED = "exposed"  # the requirement names `hosts check` shows (9 characters at most: its column)
ENFORCED = "enforced"


def why_unsandboxed(configured: str | None, sandbox_problem: str | None) -> str | None:
    """Why the host's agents run without a sandbox: supervisor.yaml chose it, or the host cannot make one
    (`sandbox_problem`: what it lacks); None when they run sandboxed."""
    if configured == isolation.NONE:
        return "isolation: none in supervisor.yaml"
    if configured is None and sandbox_problem is not None:
        return sandbox_problem
    return None


def statement(host: HostConfig, user: str) -> list[tuple[str, str]]:
    """The two lines (name, text) for a host whose agents run unsandboxed as `user`: what an agent there can
    reach, and what still holds."""
    exposed = (f"agents on {host.name} run unsandboxed as {user}, and one user cannot be kept from another process "
               f"of the same user: an agent there can read and change every other agent's worktree, CLI folder "
               f"(with any logins copied there) and hook spool under {host.dir}, connect to another agent's socket "
               f"there and act as that agent (help, msg, report: never as you), move any branch of the host's "
               f"clone and rewrite its git config and hooks (the commit guard there is advice only), and read "
               f"what {user} can read (its ~/.ssh, other repositories)")
    enforced = ("what the engine decides here still holds: every commit is fetched home and audited here (one "
                "that touches a path its contract forbids is a boundary, --no-verify or not, and merge refuses "
                "it); a contract changed outside the engine, or a base branch moved here, is tamper, and merge "
                "refuses it; merge.check and worktrees.setup run on the host, never here; this machine is "
                "reachable from there only through the link, whose every answer is checked; a forged screen "
                "restarts an agent at most limits.max_auto_restarts times per window, alerts at most "
                "alerts.max_per_hour, and approve types only the keys of your answer. Judged from what the host "
                "says, which an agent there can rewrite: who moved a branch there (tamper, from its worktree's "
                "log), whether a worktree left its branch, and escape (from the working directories read there)")
    return [(EXPOSED, exposed), (ENFORCED, enforced)]
