"""The `sandbox` op: an agent's sandbox on this host, as the bubblewrap command line that runs a command in it.

The engine names the parts by their places on the host (the clone, the agent's worktree, CLI folder, socket
folder, spool, what to hide); this side adds what only the host knows (its user's home and socket folders),
finds the worktree's own git folder in the clone, makes what the sandbox binds, starts it once with `true` (so a
sandbox that cannot be made is said now, not as a pane that exited), and builds the command line with the same
code as the engine's own machine (sandbox.py), every path resolved here. Nothing runs less isolated than asked:
a host whose bubblewrap cannot make the namespaces answers with an error, never with a plain command line.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

from . import sandbox, sandbox_prep
from .calls import Call, OpError

TRY_TIMEOUT = 30.0
_PATHS = ("worktree", "common_dir", "ref_folder", "state_dir", "own_state", "guard_hooks", "own_runtime",
          "own_spool", "root_worktree", "worktrees_dir", "home")
_LISTS = ("runtime_dirs", "readable", "hidden", "programs")
_working: str | None = None  # bubblewrap, once it made a sandbox here (a failed probe is tried again next time)
_lock = threading.Lock()


def bwrap() -> tuple[str | None, str | None]:
    """Bubblewrap here and able to make a sandbox (as it will be started: as root, in a user namespace): its
    path, or None and why not."""
    global _working
    with _lock:
        if _working is not None:
            return _working, None
        found, problem = sandbox.probe()
        if found is not None:
            _working = found
        return found, problem


def spec_of(given: dict[str, Any]) -> sandbox.Spec:
    """The Spec the engine described (host paths as text, `~` this user's home), completed here."""

    def path(name: str) -> Path:
        value = given.get(name)
        if not isinstance(value, str) or not value:
            raise OpError(f"sandbox: missing path {name!r}")
        return Path(os.path.expanduser(value))

    def paths(name: str) -> tuple[Path, ...]:
        value = given.get(name) or []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise OpError(f"sandbox: {name!r} must be a list of paths")
        return tuple(Path(os.path.expanduser(item)) for item in value)

    def words(name: str) -> tuple[str, ...]:
        value = given.get(name) or []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise OpError(f"sandbox: {name!r} must be a list of names")
        return tuple(value)

    parts = {name: path(name) for name in _PATHS}
    listed = {name: paths(name) for name in _LISTS}
    recorded = given.get("git_dir")
    try:
        git_dir = sandbox_prep.admin_dir(parts["common_dir"], parts["worktree"],
                                         recorded if isinstance(recorded, str) and recorded else None)
    except sandbox_prep.NotItsGitFolder as exc:
        raise OpError(f"{exc.message} ({exc.hint})") from None
    helpers = given.get("helpers")
    return sandbox.Spec(
        worktree=parts["worktree"],
        common_dir=parts["common_dir"],
        worktree_git_dir=git_dir,
        ref_folder=parts["ref_folder"],
        objects=None,
        shared_objects=None,
        state_dir=parts["state_dir"],
        own_state=parts["own_state"],
        guard_hooks=parts["guard_hooks"],
        runtime_dirs=sandbox.unique([*listed["runtime_dirs"], *sandbox.user_runtime_folders()]),
        own_runtime=parts["own_runtime"],
        own_spool=parts["own_spool"],
        root_worktree=parts["root_worktree"],
        worktrees_dir=parts["worktrees_dir"],
        home=parts["home"],
        real_home=Path(os.path.expanduser("~")),
        network=bool(given.get("network", True)),
        readable=sandbox.unique(p for p in listed["readable"] if p.is_absolute() and p.is_dir()),
        helpers=Path(os.path.expanduser(helpers)) if isinstance(helpers, str) and helpers else None,
        helpers_status=str(given.get("helpers_status") or "status.yaml"),
        helpers_messages=str(given.get("helpers_messages") or "messages"),
        home_read=words("home_read"),
        home_seed=words("home_seed"),
        runtime=bool(given.get("runtime", True)),
        hidden=listed["hidden"],
        programs=listed["programs"],
    )


def make_helpers_folder(spec: sandbox.Spec, status_text: str | None) -> None:
    """The agent's `.sub-agents/` with what its sandbox gives back of it (its helpers' status, messages), made
    now: a bind needs them to exist. Never through a link the agent planted in its worktree."""
    if spec.helpers is None:
        return
    worktree = spec.worktree.resolve()
    for target in (spec.helpers, spec.helpers / spec.helpers_messages, spec.helpers / spec.helpers_status):
        if not sandbox_prep.inside_folder(worktree, target):
            raise OpError(f"{target} leads out of the worktree {worktree}: refusing to make its sandbox")
    (spec.helpers / spec.helpers_messages).mkdir(mode=0o700, parents=True, exist_ok=True)
    status = spec.helpers / spec.helpers_status
    if not os.path.lexists(status) and status_text is not None:
        status.write_text(status_text, encoding="utf-8")


def build(call: Call) -> dict[str, Any]:
    """→ argv (the command line that runs `command` in the agent's sandbox), home (its HOME there)."""
    command = call.strings("command")
    given = call.arg("spec", dict)
    found, problem = bwrap()
    if found is None:
        raise OpError(f"isolation: sandbox, but {problem} on this host")
    spec = spec_of(given)
    try:
        sandbox_prep.prepare(spec)
        make_helpers_folder(spec, call.arg("helpers_status_text", str, None))
    except OSError as exc:
        raise OpError(f"its sandbox cannot be made ({exc.strerror or exc}: {exc.filename})") from None
    if call.arg("try", bool, True):
        try:
            tried = subprocess.run(sandbox.argv(spec, ["true"], found), capture_output=True, text=True, check=False,
                                   stdin=subprocess.DEVNULL, timeout=TRY_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as exc:
            raise OpError(f"its sandbox cannot be made ({exc})") from None
        if tried.returncode != 0:
            said = (tried.stderr.strip().splitlines() or [f"exit status {tried.returncode}"])[-1]
            raise OpError(f"its sandbox cannot be made ({said})")
    return {"argv": sandbox.argv(spec, command, found), "home": str(spec.home)}
