"""`merge.check`: run a command against what a merge would produce, before the merge happens.

The merged result is computed in the object database (`merge_preview`), checked out detached in a scratch
worktree of its own (so no agent's worktree, no index and no branch is touched), the `worktrees.setup`
commands and then the check run there (the agent's own code: by the `Runner` the engine passes, in a sandbox
like the agent's), and the scratch worktree is removed whatever happened. The result names the two tips it was
computed from, so a merge made afterwards can insist that neither moved (`merge_branch(expected_tip=,
expected_target=)`).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from supervisor.git.environment import git_env
from supervisor.git.merge import merge_preview
from supervisor.git.worktrees import ADDING, GitError, run_git
from supervisor.hosts import commands
from supervisor.hosts.commands import TIMED_OUT, Ran

OUTPUT_LINES = 20


@dataclass(frozen=True)
class CheckResult:
    command: str
    branch_tip: str
    target_tip: str
    passed: bool
    exit_code: int | None  # None when it timed out or was stopped
    output: tuple[str, ...]  # its last lines
    seconds: float
    at: float

    @property
    def summary(self) -> str:
        if self.passed:
            return f"`{self.command}` passed in {self.seconds:.0f}s"
        why = f"exited {self.exit_code}" if self.exit_code is not None else "did not finish"
        return f"`{self.command}` {why} after {self.seconds:.0f}s"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output"] = list(self.output)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        return cls(**{**data, "output": tuple(data.get("output") or ())})


class Runner(Protocol):
    """Runs one shell command line in a folder with an environment, cut at `timeout` seconds or once `stop` is
    set (a host's `run_isolated` for the agent whose work is checked)."""

    def __call__(self, command: str, cwd: str, env: Mapping[str, str], *, timeout: float | None = None,
                 stop: threading.Event | None = None, keep: int = 20) -> Ran: ...


Checkout = Callable[[str], contextlib.AbstractContextManager[str]]
"""A scratch worktree holding a commit, where the `Runner` runs (→ its path there), removed on leaving."""


def run_unisolated(command: str, cwd: str, env: Mapping[str, str], *, timeout: float | None = None,
                   stop: threading.Event | None = None, keep: int = 20) -> Ran:
    """A `Runner` without any sandbox: as any process of the user's."""
    return commands.run(["/bin/sh", "-c", command], Path(cwd), env, timeout=timeout, stop=stop, keep=keep)


def run_check(
    root: Path, branch: str, target: str, command: str, *, timeout: float, scratch: Path,
    setup: Sequence[str] = (), env: Mapping[str, str] | None = None, stop: threading.Event | None = None,
    run: Runner = run_unisolated, checkout: Checkout | None = None,
) -> CheckResult | None:
    """Run `command` in a scratch worktree holding `branch` merged into `target`, by `run` (the setup commands
    first); the worktree made by `checkout` (default: one beside the repository, under `scratch`), where `run`
    runs.

    None when the target already has all of the branch; GitError (nothing run) when they conflict."""
    preview = merge_preview(root, branch, target)
    if preview is None:
        return None
    started = time.time()
    environment = {**git_env(env), "TERM": "dumb"}  # its output goes to a file, never a terminal
    code: int | None = None
    output: list[str] = []
    place = checkout or (lambda commit: _scratch_worktree(root, scratch, commit))
    with place(preview.result) as folder:
        for line in [*setup, command]:
            ran = run(line, folder, environment, timeout=max(0.0, started + timeout - time.time()), stop=stop,
                      keep=OUTPUT_LINES)
            output += [f"$ {line}", *ran.lines]
            code = ran.exit_code
            if ran.cut is not None:
                output.append("(stopped: it ran past merge.check_timeout)" if ran.cut == TIMED_OUT
                              else "(stopped: the engine is shutting down)")
            if code != 0:
                break
    return CheckResult(command=command, branch_tip=preview.branch_tip, target_tip=preview.target_tip,
                       passed=code == 0, exit_code=code, output=tuple(output[-OUTPUT_LINES:]),
                       seconds=round(time.time() - started, 1), at=started)


@contextlib.contextmanager
def _scratch_worktree(root: Path, scratch: Path, commit: str) -> Iterator[str]:
    scratch.mkdir(parents=True, exist_ok=True)
    folder = scratch / f"check-{secrets.token_hex(4)}"
    with ADDING:
        run_git(root, "worktree", "add", "--quiet", "--detach", str(folder), commit)
    try:
        yield str(folder)
    finally:
        with contextlib.suppress(GitError):
            run_git(root, "worktree", "remove", "--force", "--force", str(folder))
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(GitError):
            run_git(root, "worktree", "prune")
