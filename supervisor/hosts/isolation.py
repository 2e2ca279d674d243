"""Which isolation an agent runs with, and whether this machine can give it.

`isolation: sandbox` (the default on Linux when bubblewrap is installed) runs every agent in a bubblewrap
sandbox (supervisor/hosts/sandbox.py); `none` runs it as any other process of the user. A sandbox that was
asked for and cannot be made refuses the agent with one line saying what to install or turn on: an agent never
runs unsandboxed when the sandbox was wanted.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from supervisor.core.model import Agent
from supervisor.errors import UsageError
from supervisor.hosts import sandbox

SANDBOX = "sandbox"
NONE = "none"
CHOICES = (SANDBOX, NONE)

NOT_ENFORCED = ("isolation: none: agents run as you, unsandboxed, and so do their worktrees.setup and merge.check; "
                "one OS user cannot be kept from another process of the same user: an agent can read the store, "
                "other worktrees and your credentials, and write any ref, the shared git config and hooks")


@dataclass(frozen=True)
class Sandboxing:
    """Whether bubblewrap can make a sandbox here: its path, or why not (one line) and what to do."""

    bwrap: str | None
    problem: str | None = None
    hint: str | None = None


_working: Sandboxing | None = None  # a probe that succeeded: kept for the process's life (a failed one is not)


def sandboxing() -> Sandboxing:
    """Bubblewrap found, and able to make the namespaces a sandbox needs: once it was, for the process's life; a
    failure (a busy machine's timeout) is probed again next time, never kept for the engine's life."""
    global _working
    if _working is None:
        found = _probe()
        if found.bwrap is None:
            return found
        _working = found
    return _working


def _probe() -> Sandboxing:
    if not sys.platform.startswith("linux"):
        return Sandboxing(None, f"the sandbox needs Linux (this is {sys.platform})", "set `isolation: none`")
    found, problem = sandbox.probe()
    if found is not None:
        return Sandboxing(found)
    return Sandboxing(None, problem, hint(problem))


def hint(problem: str | None) -> str:
    """What to do about `problem` (sandbox.probe's words), on this machine or a host."""
    if problem == sandbox.NOT_INSTALLED:
        return "install it (Debian/Ubuntu: apt-get install bubblewrap), or set `isolation: none`"
    if problem is not None and problem.startswith(sandbox.DOES_NOT_RUN):
        return "reinstall bubblewrap, or set `isolation: none`"
    return ("allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
            "user.max_user_namespaces > 0; on Ubuntu 24.04 kernel.apparmor_restrict_unprivileged_userns=0), "
            "or set `isolation: none`")


KEY = "isolation"  # in an agent's record: its own setting (`start --isolation`, a plan's session)
GOT = "isolated"  # in an agent's record: what its last launch got


def valid(chosen: str | None) -> str | None:
    """`chosen` (None: supervisor.yaml's); UsageError for anything but sandbox | none."""
    if chosen is not None and chosen not in CHOICES:
        raise UsageError(f"isolation must be one of: {', '.join(CHOICES)}; got {chosen!r}")
    return chosen


def choose(agent: Agent, chosen: str | None) -> None:
    """Give `agent` its own isolation (None: supervisor.yaml's)."""
    if valid(chosen) is not None:
        agent.extra[KEY] = chosen


def inherit(parent: Agent, helper: Agent) -> None:
    """A helper is never less isolated than its parent: a sandboxed parent's helpers are sandboxed whatever
    supervisor.yaml says later; a parent's own setting is its helpers' too."""
    if parent.extra.get(GOT) == SANDBOX or parent.extra.get(KEY) == SANDBOX:
        helper.extra[KEY] = SANDBOX
    elif parent.extra.get(KEY) in CHOICES:
        helper.extra[KEY] = parent.extra[KEY]


def default_isolation() -> str:
    """`sandbox` where this machine can make one, else `none` (said by `doctor`)."""
    return SANDBOX if sandboxing().bwrap is not None else NONE


def in_force(configured: str | None) -> str:
    """The isolation agents get: as configured, or the default when supervisor.yaml says nothing."""
    return configured or default_isolation()


ABSTRACT_SOCKETS = ("with the network shared, abstract sockets (X11's, an abstract D-Bus) stay reachable; "
                    "`sandbox: {network: false}` closes them")


def describe(configured: str | None, network: bool = True) -> tuple[bool, str, str | None]:
    """For `doctor`: whether all is well, the line saying the isolation in force, and a hint."""
    chosen = in_force(configured)
    probe = sandboxing()
    if chosen == SANDBOX:
        if probe.bwrap is None:
            return False, f"isolation: sandbox, but {probe.problem}: agents will not start", probe.hint
        return True, (f"isolation: sandbox (bubblewrap at {probe.bwrap}; each agent, its worktrees.setup and "
                      f"merge.check see only its own work)"
                      + ("" if not network else f"; {ABSTRACT_SOCKETS}")), None
    why = "" if configured == NONE else f" ({probe.problem})"
    fine = configured == NONE or not sys.platform.startswith("linux")
    return fine, NOT_ENFORCED + why, None if fine else probe.hint
