"""Reviewing an agent's work from the CLI: `diff` (commits, uncommitted edits, new files), `push` to a local
bare remote, and `pr` through `gh` (a stub on PATH), saying clearly when it is missing."""

from __future__ import annotations

import os
import pty
import select
import subprocess
from pathlib import Path

from tests.conftest import PYTHON, Sandbox
from tests.test_cli_many import CALM
from tests.test_sessions import script


def started_with_changes(sandbox: Sandbox) -> Path:
    """`auth` with one commit on its branch, an uncommitted edit and a new untracked file; its worktree."""
    command, _ = script(sandbox, "auth", CALM)
    sandbox.sv("start", "auth", "--task", "Harden the auth package\n\nand test it", "--command", command)
    worktree = Path(sandbox.ls()["auth"]["worktree"])
    (worktree / "src" / "app.py").write_text("print('hello')\nprint('committed line')\n")
    sandbox.git("commit", "-q", "--no-verify", "-am", "Say more", cwd=worktree)
    (worktree / "README.md").write_text("# test repo\nan uncommitted line\n")
    (worktree / "notes.txt").write_text("a new file\n")
    return worktree


def on_a_terminal(sandbox: Sandbox, *args: str) -> str:
    """What `supervisor ARGS` prints when its output is a terminal."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([PYTHON, "-m", "supervisor", *args], cwd=sandbox.root, env=sandbox.env,
                            stdout=follower, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal's other side closed: all read
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=30)
    os.close(leader)
    return out.decode(errors="replace")


def test_diff_shows_commits_uncommitted_edits_and_new_files(sandbox: Sandbox) -> None:
    worktree = started_with_changes(sandbox)
    status = sandbox.git("status", "--porcelain", cwd=worktree)
    diff = sandbox.sv("diff", "auth").stdout
    assert "+print('committed line')" in diff  # the commit
    assert "+an uncommitted line" in diff  # the edit
    assert "+++ b/notes.txt" in diff and "+a new file" in diff  # the new file
    assert "\x1b[" not in diff  # plain when piped
    stat = sandbox.sv("diff", "auth", "--stat").stdout
    assert all(path in stat for path in ("src/app.py", "README.md", "notes.txt")) and "3 files changed" in stat
    assert sandbox.git("status", "--porcelain", cwd=worktree) == status  # the worktree is as it was
    assert "\x1b[" in on_a_terminal(sandbox, "diff", "auth")  # coloured on a terminal

    missing = sandbox.sv("diff", "atuh", check=False)
    assert missing.returncode == 2 and "did you mean 'auth'?" in missing.stderr


def test_push_to_the_remote_and_pr_without_gh(sandbox: Sandbox, tmp_path: Path) -> None:
    worktree = started_with_changes(sandbox)
    branch = sandbox.ls()["auth"]["branch"]
    tip = sandbox.git("rev-parse", "HEAD", cwd=worktree)

    none = sandbox.sv("push", "auth", check=False)
    assert none.returncode == 1 and "this repository has no remote to push to" in none.stderr
    assert "git remote add origin" in none.stderr

    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    sandbox.git("remote", "add", "origin", str(remote))
    pushed = sandbox.sv("push", "auth")
    assert pushed.stdout.strip() == f"auth: pushed {branch} to origin ({remote})"
    assert sandbox.git("rev-parse", f"refs/heads/{branch}", cwd=remote) == tip

    # `gh` is not on this PATH (only git is): said clearly, and nothing is pushed for it.
    bindir = tmp_path / "only-git"
    bindir.mkdir()
    git = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True, check=True).stdout.strip()
    (bindir / "git").symlink_to(git)
    sandbox.git("push", "-q", str(remote), f":refs/heads/{branch}")  # deleted there again
    no_gh = Sandbox(root=sandbox.root, home=sandbox.home, runtime=sandbox.runtime,
                    env={**sandbox.env, "PATH": str(bindir)})
    done = no_gh.sv("pr", "auth", check=False)
    assert done.returncode == 1
    assert "cannot open a pull request: `gh` (the GitHub CLI) is not installed" in done.stderr
    assert "`supervisor push auth`" in done.stderr
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"], cwd=remote,
                          capture_output=True).returncode != 0


def test_pr_text_comes_from_task_commits_and_audit(sandbox: Sandbox) -> None:
    from supervisor.commands.review import pr_text

    started_with_changes(sandbox)
    title, body = pr_text(sandbox.agent("auth"), sandbox.root)
    assert title == "Harden the auth package"
    assert "and test it" in body and "Say more" in body
    assert "Every commit stays within the agent's contract" in body


def test_pr_pushes_the_branch_and_opens_the_pull_request_with_gh(sandbox: Sandbox, tmp_path: Path) -> None:
    """A stub `gh` first on PATH: `pr` pushes the branch, hands gh the title and the body (task, commits,
    audit) and prints the pull request's address; a refusal by gh is said with its last line."""
    worktree = started_with_changes(sandbox)
    branch = sandbox.ls()["auth"]["branch"]
    tip = sandbox.git("rev-parse", "HEAD", cwd=worktree)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    sandbox.git("remote", "add", "origin", str(remote))
    bindir = tmp_path / "stub-bin"
    bindir.mkdir()
    calls = tmp_path / "gh-calls"
    gh = bindir / "gh"
    gh.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {calls}.args\ncat > {calls}.body\n"
                  f"if [ -e {calls}.refuse ]; then echo 'a pull request for branch already exists' >&2; exit 1; fi\n"
                  "echo https://github.com/example/repo/pull/7\n")
    gh.chmod(0o755)
    with_gh = Sandbox(root=sandbox.root, home=sandbox.home, runtime=sandbox.runtime,
                      env={**sandbox.env, "PATH": f"{bindir}:{sandbox.env['PATH']}"})

    done = with_gh.sv("pr", "auth", "--draft")
    assert done.stdout.strip() == "auth: pull request https://github.com/example/repo/pull/7"
    assert sandbox.git("rev-parse", f"refs/heads/{branch}", cwd=remote) == tip  # pushed first
    args = Path(f"{calls}.args").read_text().splitlines()
    assert args == ["pr", "create", "--head", branch, "--base", "main", "--title", "Harden the auth package",
                    "--body-file", "-", "--draft"]
    body = Path(f"{calls}.body").read_text()
    assert "## Task\n\nHarden the auth package\n\nand test it" in body and "Say more" in body
    assert "Every commit stays within the agent's contract" in body

    Path(f"{calls}.refuse").touch()
    refused = with_gh.sv("pr", "auth", check=False)
    assert refused.returncode == 1
    assert "gh could not open the pull request: a pull request for branch already exists" in refused.stderr
    assert "the branch is pushed to origin" in refused.stderr


def test_pr_of_a_helper_goes_into_its_parents_branch_once_that_is_on_the_remote(sandbox: Sandbox,
                                                                                 tmp_path: Path) -> None:
    """A helper's pull request goes into its parent's branch: refused before anything is pushed while the remote
    lacks that branch (gh could only fail after the push), saying which and what to do; opened into it once the
    parent is pushed."""
    from tests.test_helpers import CONTRACT, contract_file

    command, _ = script(sandbox, "lead", CALM)
    sandbox.sv("start", "lead", "--task", "go", "--command", command, "--contract",
               str(contract_file(sandbox, CONTRACT)))
    sandbox.sv("helper", "tests", "--role", "test-agent", "--parent", "lead", "--task", "Cover the app",
               "--no-wait")
    helper = sandbox.wait_state("lead.tests", "idle", "working", timeout=30)
    worktree = Path(helper["worktree"])
    (worktree / "src" / "app.py").write_text("print('tested')\n")
    sandbox.git("commit", "-q", "--no-verify", "-am", "Test the app", cwd=worktree)
    tip = sandbox.git("rev-parse", "HEAD", cwd=worktree)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    sandbox.git("remote", "add", "origin", str(remote))
    bindir = tmp_path / "stub-bin"
    bindir.mkdir()
    calls = tmp_path / "gh-calls"
    (bindir / "gh").write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {calls}\ncat > /dev/null\n"
                               "echo https://github.com/example/repo/pull/8\n")
    (bindir / "gh").chmod(0o755)
    with_gh = Sandbox(root=sandbox.root, home=sandbox.home, runtime=sandbox.runtime,
                      env={**sandbox.env, "PATH": f"{bindir}:{sandbox.env['PATH']}"})

    refused = with_gh.sv("pr", "lead.tests", check=False)
    assert refused.returncode == 1, refused.stderr
    assert ("lead.tests is a helper of lead: its pull request would go into agent/lead/work, which origin does not "
            "have; nothing was pushed") in refused.stderr
    assert "`supervisor push lead` first" in refused.stderr and "`supervisor merge lead.tests`" in refused.stderr
    assert sandbox.git("for-each-ref", cwd=remote) == ""  # nothing pushed
    assert not calls.exists()  # gh not asked

    sandbox.sv("push", "lead")
    done = with_gh.sv("pr", "lead.tests")
    assert done.stdout.strip() == "lead.tests: pull request https://github.com/example/repo/pull/8"
    assert sandbox.git("rev-parse", "refs/heads/agent/lead.tests/work", cwd=remote) == tip
    args = calls.read_text().splitlines()
    assert args[:6] == ["pr", "create", "--head", "agent/lead.tests/work", "--base", "agent/lead/work"]
