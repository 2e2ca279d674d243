"""`merge.check`: run a command against what a merge would produce, before the merge happens.

The merged result is computed in the object database (`merge_preview`), checked out detached in a scratch
worktree of its own (so no agent's worktree, no index and no branch is touched), the `worktrees.setup`
commands and then the check run there in a process group of their own, and the scratch worktree is removed
whatever happened. The result names the two tips it was computed from, so a merge made afterwards can
insist that neither moved (`merge_branch(expected_tip=, expected_target=)`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from supervisor.git.environment import git_env
from supervisor.git.merge import merge_preview
from supervisor.git.worktrees import GitError, run_git

OUTPUT_LINES = 20
_POLL = 0.1


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


def run_check(
    root: Path, branch: str, target: str, command: str, *, timeout: float, scratch: Path,
    setup: Sequence[str] = (), env: Mapping[str, str] | None = None, stop: threading.Event | None = None,
) -> CheckResult | None:
    """Run `command` in a scratch worktree holding `branch` merged into `target`.

    None when the target already has all of the branch; GitError (nothing run) when they conflict."""
    preview = merge_preview(root, branch, target)
    if preview is None:
        return None
    started = time.time()
    environment = {**git_env(env), "TERM": "dumb"}  # its output goes to a file, never a terminal
    code: int | None = None
    with _scratch_worktree(root, scratch, preview.result) as folder, tempfile.TemporaryFile() as log:
        for line in [*setup, command]:
            code = _run_one(line, folder, environment, log, started + timeout, stop)
            if code != 0:
                break
        log.seek(0)
        output = log.read().decode("utf-8", "replace").splitlines()[-OUTPUT_LINES:]
    return CheckResult(command=command, branch_tip=preview.branch_tip, target_tip=preview.target_tip,
                       passed=code == 0, exit_code=code, output=tuple(output),
                       seconds=round(time.time() - started, 1), at=started)


def _run_one(line: str, cwd: Path, env: Mapping[str, str], log: Any, deadline: float,
             stop: threading.Event | None) -> int | None:
    """One shell command with its output appended to `log`; None when stopped or past the deadline (its
    whole process group is killed)."""
    log.write(f"$ {line}\n".encode())
    log.flush()
    process = subprocess.Popen(line, shell=True, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    while True:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return process.wait(_POLL)
        if time.time() >= deadline or (stop is not None and stop.is_set()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            log.write(b"(stopped: it ran past merge.check_timeout)\n" if time.time() >= deadline
                      else b"(stopped: the engine is shutting down)\n")
            return None


@contextlib.contextmanager
def _scratch_worktree(root: Path, scratch: Path, commit: str) -> Iterator[Path]:
    scratch.mkdir(parents=True, exist_ok=True)
    folder = scratch / f"check-{secrets.token_hex(4)}"
    run_git(root, "worktree", "add", "--quiet", "--detach", str(folder), commit)
    try:
        yield folder
    finally:
        with contextlib.suppress(GitError):
            run_git(root, "worktree", "remove", "--force", "--force", str(folder))
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(GitError):
            run_git(root, "worktree", "prune")
