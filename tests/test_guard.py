"""The pre-commit boundary guard, with real git: a temporary repository, agent worktrees added with
`git worktree add`, the guard installed in them and `git commit` run as a subprocess, so the installed hook
runs the real `supervisor guard`. No tmux, no engine: the store and the contract file the engine writes for
the guard (`supervisor.git.contract_file`) are written directly."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from supervisor.core.contract import Contract, render_contract
from supervisor.core.model import Agent
from supervisor.core.store import Store
from supervisor.git import contract_file, guard
from supervisor.git.guard import FORWARDED_HOOKS, GUARD_HOOK, GUARD_HOOKS, install_guard, write_hooks
from supervisor.paths import RepoPaths
from supervisor.resources import data_dir

CONTRACT = Contract(modify=("packages/auth/**", "src/dossier é/**"), dont_touch=("services/**",))
SESSION = render_contract(CONTRACT)
MODIFY_LINE = "- Modify: packages/auth/**, src/dossier é/**"
DONT_TOUCH_LINE = "- Don't touch: services/**"

MARKER_HOOK = """#!/bin/sh
printf '%s %s\\n' "$(basename "$0")" "$PWD" >> {log}
{body}
"""


def _line_number(line: str) -> int:
    return SESSION.split("\n").index(line) + 1


@dataclass
class Repo:
    root: Path
    tmp: Path
    paths: RepoPaths
    hooks_log: Path  # the repository's own hooks append "<hook name> <cwd>" here

    @property
    def hooks_dir(self) -> Path:
        return self.paths.state_dir / "hooks"

    def git(self, *args: str, cwd: Path | None = None, check: bool = True,
            input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(["git", *args], cwd=cwd or self.root, capture_output=True, check=False,
                              input=input, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} exited {done.returncode}:\n{done.stderr.decode()}")
        return done

    def out(self, *args: str, cwd: Path | None = None) -> str:
        return self.git(*args, cwd=cwd).stdout.decode().strip()

    def head(self, cwd: Path) -> str | None:
        done = self.git("rev-parse", "--verify", "-q", "HEAD", cwd=cwd, check=False)
        return done.stdout.decode().strip() or None

    def worktree(self, name: str) -> Path:
        path = self.tmp / "worktrees" / name
        self.git("worktree", "add", "-q", "-b", f"agent/{name}/work", str(path), "main")
        return path

    def agent(self, name: str, *, contract: str | None = SESSION, install: bool = True,
              published: bool = True) -> Path:
        """A worktree for agent `name`, recorded in the store (with `contract` as its stored SESSION.md), and
        with `published` its contract file written as the engine writes it."""
        path = self.worktree(name)
        extra = {} if contract is None else {"contract": contract}
        self.add_agent(name, path, extra)
        if published:
            folder = self.paths.agent_runtime(name)
            folder.mkdir(parents=True, exist_ok=True)
            contract_file.publish(self.paths.agent_contract(name), name, str(path), "main", contract)
        if install:
            install_guard(self.paths.common_dir, path, self.hooks_dir)
        return path

    def add_agent(self, name: str, path: Path, extra: dict[str, str]) -> None:
        self.paths.state_dir.mkdir(exist_ok=True)
        store = Store(self.paths.db_path)
        try:
            store.add_agent(Agent(name=name, profile="generic", command="true", worktree=str(path),
                                  branch=f"agent/{name}/work", base="main", target="main", extra=extra))
        finally:
            store.close()

    def commit(self, cwd: Path, *options: str, message: str = "change") -> subprocess.CompletedProcess[bytes]:
        return self.git("commit", "-q", "-m", message, *options, cwd=cwd, check=False)

    def own_hook(self, name: str, body: str = "exit 0", directory: Path | None = None) -> Path:
        path = (directory or self.paths.common_dir / "hooks") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(MARKER_HOOK.format(log=shlex.quote(str(self.hooks_log)), body=body))
        path.chmod(0o755)
        return path

    def hook_runs(self) -> list[str]:
        return self.hooks_log.read_text().splitlines() if self.hooks_log.exists() else []


def write(root: Path | bytes, relative: str | bytes, text: str = "content\n") -> None:
    if isinstance(root, Path) and isinstance(relative, str):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    path_bytes = os.path.join(os.fsencode(root), os.fsencode(relative))
    os.makedirs(os.path.dirname(path_bytes), exist_ok=True)
    with open(path_bytes, "w") as out:
        out.write(text)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Repo]:
    for key in list(os.environ):
        if key.startswith("GIT_"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "SUPERVISOR_RUNTIME_DIR": str(tmp_path / "run"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    root = tmp_path / "repo"
    root.mkdir()
    box = Repo(root=root, tmp=tmp_path, paths=RepoPaths(root=root, common_dir=root / ".git"),
               hooks_log=tmp_path / "hooks.log")
    box.git("init", "-q", "-b", "main")
    for relative in ("README.md", "packages/auth/a.py", "packages/ui/button.ts", "services/api/x.py"):
        write(root, relative)
    # A hooks folder in the repository itself, as projects do for `core.hooksPath = .githooks`.
    box.own_hook("pre-commit", directory=root / ".githooks")
    box.git("add", "-A")
    box.git("commit", "-q", "-m", "initial")
    yield box


# ---------------------------------------------------------------------------------------------------------
# Allowed and refused commits


def test_commit_inside_modify_passes(repo: Repo) -> None:
    wt = repo.agent("auth")
    write(wt, "packages/auth/a.py", "changed\n")
    write(wt, "packages/auth/new/b.py")
    repo.git("add", "-A", cwd=wt)
    done = repo.commit(wt)
    assert done.returncode == 0, done.stderr.decode()
    assert repo.out("log", "-1", "--format=%s", cwd=wt) == "change"


def test_path_outside_modify_is_refused_with_the_contract_line(repo: Repo) -> None:
    wt = repo.agent("auth")
    before = repo.head(wt)
    write(wt, "packages/auth/a.py", "changed\n")
    write(wt, "packages/ui/button.ts", "changed\n")
    repo.git("add", "-A", cwd=wt)
    done = repo.commit(wt)
    err = done.stderr.decode()
    assert done.returncode != 0
    assert "supervisor: commit refused: auth may not change these paths (its contract: SESSION.md)" in err
    assert "  M  packages/ui/button.ts — not under any Modify pattern (packages/auth/**, src/dossier é/**)" in err
    assert f"SESSION.md:{_line_number(MODIFY_LINE)}: {MODIFY_LINE}" in err
    assert "packages/auth/a.py" not in err  # the allowed path is not listed
    assert "Don't touch:" not in err
    assert repo.head(wt) == before  # nothing committed: not even the allowed part


def test_dont_touch_path_is_refused(repo: Repo) -> None:
    wt = repo.agent("auth")
    before = repo.head(wt)
    write(wt, "services/api/x.py", "changed\n")
    repo.git("add", "-A", cwd=wt)
    done = repo.commit(wt)
    err = done.stderr.decode()
    assert done.returncode != 0
    assert "  M  services/api/x.py — matches Don't touch 'services/**'" in err
    assert f"SESSION.md:{_line_number(DONT_TOUCH_LINE)}: {DONT_TOUCH_LINE}" in err
    assert repo.head(wt) == before


def test_deletion_is_refused(repo: Repo) -> None:
    wt = repo.agent("auth")
    before = repo.head(wt)
    repo.git("rm", "-q", "packages/ui/button.ts", cwd=wt)
    done = repo.commit(wt)
    assert done.returncode != 0
    assert "  D  packages/ui/button.ts — not under any Modify pattern" in done.stderr.decode()
    assert repo.head(wt) == before


def test_rename_out_of_a_forbidden_folder_names_the_source(repo: Repo) -> None:
    wt = repo.agent("auth")
    before = repo.head(wt)
    repo.git("mv", "services/api/x.py", "packages/auth/x.py", cwd=wt)
    done = repo.commit(wt)
    err = done.stderr.decode()
    assert done.returncode != 0
    assert "  D  services/api/x.py — matches Don't touch 'services/**'" in err
    assert "packages/auth/x.py" not in err  # the destination is allowed
    assert repo.head(wt) == before


def test_both_kinds_of_violation_cite_both_lines(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    wt = repo.agent("auth")
    write(wt, "packages/ui/button.ts", "changed\n")
    repo.git("rm", "-q", "services/api/x.py", cwd=wt)
    repo.git("add", "-A", cwd=wt)
    assert guard.main(wt) == 1
    modify, dont_touch = _line_number(MODIFY_LINE), _line_number(DONT_TOUCH_LINE)
    assert capsys.readouterr().err == (
        "supervisor: commit refused: auth may not change these paths (its contract: SESSION.md)\n"
        "  M  packages/ui/button.ts — not under any Modify pattern (packages/auth/**, src/dossier é/**)\n"
        "  D  services/api/x.py — matches Don't touch 'services/**'\n"
        "The contract lines that forbid them:\n"
        f"  SESSION.md:{modify}: {MODIFY_LINE}\n"
        f"  SESSION.md:{dont_touch}: {DONT_TOUCH_LINE}\n"
        "Unstage them (git restore --staged PATH) or ask for a role that allows them.\n"
    )


def test_commit_all_and_partial_commits_check_the_index_git_commits(repo: Repo) -> None:
    """`commit -a` and `commit -- PATH` build a temporary index (GIT_INDEX_FILE): the guard reads that one."""
    wt = repo.agent("auth")
    before = repo.head(wt)
    write(wt, "services/api/x.py", "changed, not staged\n")
    done = repo.commit(wt, "-a")
    assert done.returncode != 0
    assert "services/api/x.py" in done.stderr.decode()
    done = repo.commit(wt, "--", "services/api/x.py")
    assert done.returncode != 0
    assert repo.head(wt) == before
    # A forbidden change staged but left out of a partial commit does not block it.
    repo.git("add", "services/api/x.py", cwd=wt)
    write(wt, "packages/auth/a.py", "changed\n")
    done = repo.commit(wt, "--", "packages/auth/a.py")
    assert done.returncode == 0, done.stderr.decode()
    assert repo.out("show", "--name-only", "--format=", "HEAD", cwd=wt) == "packages/auth/a.py"


def test_paths_with_spaces_quotes_and_non_ascii(repo: Repo) -> None:
    wt = repo.agent("auth")
    write(wt, "src/dossier é/ça va.txt")
    repo.git("add", "-A", cwd=wt)
    done = repo.commit(wt)
    assert done.returncode == 0, done.stderr.decode()
    committed = repo.git("show", "--name-only", "-z", "--format=", "HEAD", cwd=wt).stdout
    assert committed == "src/dossier é/ça va.txt\0".encode()

    before = repo.head(wt)
    write(wt, "packages/ui/l'été \"chaud\".txt")
    write(wt, b"packages/ui/caf\xe9 latin-1.txt")  # not UTF-8: printed as the bytes it is
    repo.git("add", "-A", cwd=wt)
    done = repo.commit(wt)
    assert done.returncode != 0
    assert "  A  packages/ui/l'été \"chaud\".txt — not under any Modify pattern".encode() in done.stderr
    assert b"  A  packages/ui/caf\xe9 latin-1.txt \xe2\x80\x94 not under any Modify pattern" in done.stderr
    assert repo.head(wt) == before


def test_initial_commit_of_an_orphan_branch(repo: Repo) -> None:
    wt = repo.agent("auth")
    repo.git("switch", "-q", "--orphan", "fresh", cwd=wt)
    write(wt, "services/new.py")
    repo.git("add", "services/new.py", cwd=wt)
    done = repo.commit(wt)
    assert done.returncode != 0
    assert "  A  services/new.py — matches Don't touch 'services/**'" in done.stderr.decode()
    assert repo.head(wt) is None
    repo.git("rm", "-q", "--cached", "services/new.py", cwd=wt)
    write(wt, "packages/auth/first.py")
    repo.git("add", "packages/auth/first.py", cwd=wt)
    done = repo.commit(wt)
    assert done.returncode == 0, done.stderr.decode()
    assert repo.out("rev-list", "--count", "HEAD", cwd=wt) == "1"


def test_no_verify_bypasses_the_hook(repo: Repo) -> None:
    wt = repo.agent("auth")
    write(wt, "services/api/x.py", "changed\n")
    repo.git("add", "-A", cwd=wt)
    done = repo.commit(wt, "--no-verify", message="sneaky")
    assert done.returncode == 0, done.stderr.decode()
    assert repo.out("log", "-1", "--format=%s", cwd=wt) == "sneaky"


def test_the_stored_contract_counts_not_the_worktree_file(repo: Repo) -> None:
    wt = repo.agent("auth")
    write(wt, "SESSION.md", "# What This Session Can Do\n- Modify: **\n")
    write(wt, "services/api/x.py", "changed\n")
    repo.git("add", "services/api/x.py", cwd=wt)
    done = repo.commit(wt)
    assert done.returncode != 0
    assert "services/api/x.py" in done.stderr.decode()


def test_an_agent_without_a_usable_contract_cannot_commit(repo: Repo) -> None:
    missing = repo.agent("nocontract", contract=None)
    broken = repo.agent("broken", contract="# What This Session Can Do\n- Modify: ../outside\n")
    for wt in (missing, broken):
        write(wt, "packages/auth/a.py", "changed\n")
        repo.git("add", "-A", cwd=wt)
        assert repo.commit(wt).returncode != 0
    assert "no contract is stored for agent nocontract" in repo.commit(missing).stderr.decode()
    err = repo.commit(broken).stderr.decode()
    assert "the stored contract of broken is invalid: SESSION.md:2:" in err


def test_an_agent_whose_contract_file_is_missing_cannot_commit(repo: Repo) -> None:
    """The engine writes each agent's contract into its runtime folder; without it (an engine that never ran
    since a reboot emptied that folder, a file deleted) the guard refuses, in one line, never allows all."""
    wt = repo.agent("auth", published=False)
    write(wt, "packages/auth/a.py", "changed\n")
    repo.git("add", "-A", cwd=wt)
    done = repo.commit(wt)
    assert done.returncode != 0
    err = done.stderr.decode()
    assert "commit refused: the engine has written no contract for this worktree" in err
    assert repo.head(wt) == repo.out("rev-parse", "main")


def test_a_contract_refused_by_the_engine_refuses_every_commit(repo: Repo) -> None:
    wt = repo.agent("auth")
    contract_file.publish(repo.paths.agent_contract("auth"), "auth", str(wt), "main", SESSION,
                          refused="its contract was changed outside the engine")
    write(wt, "packages/auth/a.py", "changed\n")
    repo.git("add", "-A", cwd=wt)
    done = repo.commit(wt)
    assert done.returncode != 0
    assert "commit refused: auth: its contract was changed outside the engine" in done.stderr.decode()


# ---------------------------------------------------------------------------------------------------------
# Merges: checked as the audit will check them (pre-merge-commit, or pre-commit concluding a merge)


def main_commit(repo: Repo, files: dict[str, str], message: str = "main work", branch: str = "main") -> str:
    """A commit on `branch` made in the repository's own worktree (no guard there)."""
    repo.git("checkout", "-q", "-B", branch)
    for path, text in files.items():
        write(repo.root, path, text)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", message)
    commit = repo.out("rev-parse", "HEAD")
    repo.git("checkout", "-q", "main")
    return commit


def agent_commit(repo: Repo, wt: Path, path: str = "packages/auth/a.py", text: str = "agent\n") -> str:
    write(wt, path, text)
    repo.git("add", "-A", cwd=wt)
    assert repo.commit(wt, message="agent work").returncode == 0
    return repo.out("rev-parse", "HEAD", cwd=wt)


def test_merging_other_work_that_changes_forbidden_paths_is_refused(repo: Repo) -> None:
    repo.own_hook("pre-merge-commit")
    wt = repo.agent("auth")
    head = agent_commit(repo, wt)
    side = main_commit(repo, {"services/api/x.py": "side\n"}, "side edits the api", branch="side")
    done = repo.git("merge", "--no-edit", "side", cwd=wt, check=False)
    assert done.returncode != 0
    err = done.stderr.decode()
    assert "supervisor: merge refused: auth may not change these paths" in err
    assert f"{side[:12]} side edits the api" in err and "services/api/x.py" in err
    assert f"SESSION.md:{_line_number(DONT_TOUCH_LINE)}: {DONT_TOUCH_LINE}" in err
    assert repo.head(wt) == head
    assert not any(line.startswith("pre-merge-commit") for line in repo.hook_runs())  # the guard stopped it
    # Concluding it with `git commit` is refused the same way; the agent can only abort it.
    commit = repo.git("commit", "--no-edit", cwd=wt, check=False)
    assert commit.returncode != 0 and "merge refused" in commit.stderr.decode()
    repo.git("merge", "--abort", cwd=wt)
    assert repo.head(wt) == head


def test_merging_the_target_passes_whatever_it_changed(repo: Repo) -> None:
    repo.own_hook("pre-merge-commit")
    wt = repo.agent("auth")
    head = agent_commit(repo, wt)
    target = main_commit(repo, {"services/api/x.py": "main\n", "README.md": "newer\n"})
    done = repo.git("merge", "--no-edit", "main", cwd=wt, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert repo.out("rev-list", "--parents", "-n1", "HEAD", cwd=wt).split()[1:] == [head, target]
    assert f"pre-merge-commit {wt}" in repo.hook_runs()  # the repository's own hook still runs


def test_concluding_a_conflicted_merge_checks_the_resolution(repo: Repo) -> None:
    wt = repo.agent("auth")
    head = agent_commit(repo, wt)
    main_commit(repo, {"packages/auth/a.py": "main\n", "services/api/x.py": "main\n"})
    assert repo.git("merge", "main", cwd=wt, check=False).returncode != 0  # a conflict in packages/auth/a.py
    write(wt, "packages/auth/a.py", "both\n")
    write(wt, "services/api/x.py", "and an edit of my own\n")
    repo.git("add", "-A", cwd=wt)
    done = repo.git("commit", "--no-edit", cwd=wt, check=False)
    assert done.returncode != 0
    err = done.stderr.decode()
    assert "merge refused" in err and "services/api/x.py" in err and "packages/auth/a.py" not in err
    # Resolved inside its own paths, the merge passes, although main changed services/ (not the agent).
    write(wt, "services/api/x.py", "main\n")
    repo.git("add", "-A", cwd=wt)
    done = repo.git("commit", "--no-edit", cwd=wt, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert repo.out("rev-parse", "HEAD^1", cwd=wt) == head


# ---------------------------------------------------------------------------------------------------------
# The repository's own hooks


def test_the_repositorys_own_pre_commit_still_runs_and_can_refuse(repo: Repo) -> None:
    reject = repo.tmp / "reject"
    repo.own_hook("pre-commit", f"[ -e {shlex.quote(str(reject))} ] && {{ echo 'own hook says no' >&2; exit 3; }}"
                                "\nexit 0")
    wt = repo.agent("auth")
    write(wt, "packages/auth/a.py", "changed\n")
    repo.git("add", "-A", cwd=wt)
    reject.touch()
    before = repo.head(wt)
    done = repo.commit(wt)
    assert done.returncode != 0
    assert "own hook says no" in done.stderr.decode()
    assert repo.head(wt) == before
    assert repo.hook_runs() == [f"pre-commit {wt}"]
    reject.unlink()
    assert repo.commit(wt).returncode == 0
    assert repo.hook_runs() == [f"pre-commit {wt}"] * 2
    # When the guard refuses, the repository's hook does not run at all.
    write(wt, "services/api/x.py", "changed\n")
    repo.git("add", "-A", cwd=wt)
    assert repo.commit(wt).returncode != 0
    assert len(repo.hook_runs()) == 2


def test_commit_msg_is_forwarded_with_its_argument(repo: Repo) -> None:
    seen = repo.tmp / "message"
    repo.own_hook("commit-msg", f'cp "$1" {shlex.quote(str(seen))}\ngrep -q forbidden "$1" && exit 1\nexit 0')
    wt = repo.agent("auth")
    write(wt, "packages/auth/a.py", "changed\n")
    repo.git("add", "-A", cwd=wt)
    assert repo.commit(wt, message="forbidden word").returncode != 0
    assert seen.read_text().startswith("forbidden word")
    done = repo.commit(wt, message="a good message")
    assert done.returncode == 0, done.stderr.decode()
    assert seen.read_text().startswith("a good message")


def test_post_rewrite_is_forwarded_with_its_argument_and_stdin(repo: Repo) -> None:
    seen = repo.tmp / "rewrite"
    repo.own_hook("post-rewrite", f'{{ echo "arg=$1"; cat; }} > {shlex.quote(str(seen))}')
    wt = repo.agent("auth")
    old = repo.head(wt)
    assert repo.commit(wt, "--amend", message="amended").returncode == 0
    new = repo.head(wt)
    assert seen.read_text().splitlines() == ["arg=amend", f"{old} {new}"]


def test_a_hooks_path_in_the_repositorys_config_is_its_own_hooks(repo: Repo) -> None:
    """`core.hooksPath` in the shared config (here relative, as `.githooks` usually is) names the
    repository's hooks: the agent's worktree runs them from its own checkout, not `.git/hooks`."""
    repo.own_hook("pre-commit", "echo 'the .git/hooks one must not run' >&2; exit 1")
    repo.git("config", "core.hooksPath", ".githooks")
    wt = repo.agent("auth")
    write(wt, "packages/auth/a.py", "changed\n")
    repo.git("add", "-A", cwd=wt)
    done = repo.commit(wt)
    assert done.returncode == 0, done.stderr.decode()
    assert repo.hook_runs() == [f"pre-commit {wt}"]
    assert repo.out("config", "--local", "core.hooksPath", cwd=wt) == ".githooks"  # left as the user set it
    # An absolute one too, and the guard still runs first.
    elsewhere = repo.tmp / "user-hooks"
    repo.own_hook("pre-commit", directory=elsewhere)
    repo.git("config", "core.hooksPath", str(elsewhere))
    write(wt, "packages/auth/a.py", "changed again\n")
    repo.git("add", "-A", cwd=wt)
    assert repo.commit(wt).returncode == 0
    assert repo.hook_runs() == [f"pre-commit {wt}"] * 2
    write(wt, "services/api/x.py", "changed\n")
    repo.git("add", "-A", cwd=wt)
    assert repo.commit(wt).returncode != 0
    assert len(repo.hook_runs()) == 2


def test_a_global_hooks_path_is_used_when_the_repository_sets_none(repo: Repo) -> None:
    user_hooks = repo.tmp / "global-hooks"
    repo.own_hook("pre-commit", directory=user_hooks)
    repo.own_hook("pre-commit", "exit 1")  # .git/hooks: git would not run it either
    repo.git("config", "--global", "core.hooksPath", str(user_hooks))
    wt = repo.agent("auth")
    write(wt, "packages/auth/a.py", "changed\n")
    repo.git("add", "-A", cwd=wt)
    assert repo.commit(wt).returncode == 0
    assert repo.hook_runs() == [f"pre-commit {wt}"]


def test_a_repository_hooks_path_pointing_at_the_guard_does_not_loop(repo: Repo) -> None:
    wt = repo.agent("auth")
    repo.git("config", "core.hooksPath", str(repo.hooks_dir))
    write(repo.root, "services/api/x.py", "changed in main\n")
    repo.git("add", "-A")
    assert repo.commit(repo.root).returncode == 0  # the main worktree is no agent's: allowed
    write(wt, "services/api/x.py", "changed\n")
    repo.git("add", "-A", cwd=wt)
    assert repo.commit(wt).returncode != 0


# ---------------------------------------------------------------------------------------------------------
# Other worktrees, other agents


def test_main_and_unrelated_worktrees_are_untouched(repo: Repo) -> None:
    repo.own_hook("pre-commit")
    wt = repo.agent("auth")
    other = repo.worktree("mine")
    assert repo.git("config", "--get", "core.hooksPath", check=False).stdout == b""
    assert repo.git("config", "--get", "core.hooksPath", cwd=other, check=False).stdout == b""
    assert repo.out("config", "--get", "core.hooksPath", cwd=wt) == str(repo.hooks_dir)
    for cwd in (repo.root, other):
        write(cwd, "services/api/x.py", f"changed in {cwd.name}\n")
        repo.git("add", "-A", cwd=cwd)
        done = repo.commit(cwd)
        assert done.returncode == 0, done.stderr.decode()
    assert repo.hook_runs() == [f"pre-commit {repo.root}", f"pre-commit {other}"]


def test_a_worktree_whose_agent_is_not_in_the_store_passes(repo: Repo) -> None:
    stray = repo.worktree("stray")
    install_guard(repo.paths.common_dir, stray, repo.hooks_dir)
    write(stray, "services/api/x.py", "changed\n")
    repo.git("add", "-A", cwd=stray)
    assert not repo.paths.db_path.exists()
    assert repo.commit(stray, message="no store").returncode == 0
    repo.agent("auth")  # now there is a store, but not with this worktree
    write(stray, "services/api/x.py", "changed again\n")
    repo.git("add", "-A", cwd=stray)
    done = repo.commit(stray, message="not an agent")
    assert done.returncode == 0, done.stderr.decode()


def test_each_agent_is_held_to_its_own_contract(repo: Repo) -> None:
    auth = repo.agent("auth")
    api = repo.agent("api", contract=render_contract(Contract(modify=("services/**",))))
    for wt, path, allowed in ((auth, "services/api/x.py", False), (api, "services/api/x.py", True),
                              (api, "packages/auth/a.py", False)):
        write(wt, path, "changed\n")
        repo.git("add", path, cwd=wt)
        assert (repo.commit(wt).returncode == 0) is allowed
        repo.git("reset", "-q", "--hard", cwd=wt)


# ---------------------------------------------------------------------------------------------------------
# Installing


def test_install_writes_every_hook_and_enables_worktree_config(repo: Repo) -> None:
    wt = repo.agent("auth")
    assert repo.out("config", "--file", str(repo.paths.common_dir / "config"), "extensions.worktreeConfig") == "true"
    assert repo.out("config", "--worktree", "core.hooksPath", cwd=wt) == str(repo.hooks_dir)
    names = {path.name for path in repo.hooks_dir.iterdir()}
    assert names == {*GUARD_HOOKS, *FORWARDED_HOOKS} and GUARD_HOOK in GUARD_HOOKS
    assert len(FORWARDED_HOOKS) == 26 and "pre-merge-commit" in GUARD_HOOKS
    for path in repo.hooks_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
    forward = (data_dir("hooks") / "forward").read_bytes()
    assert all((repo.hooks_dir / name).read_bytes() == forward for name in FORWARDED_HOOKS)
    assert f"{shlex.quote(sys.executable)} -P -m supervisor guard" in (repo.hooks_dir / GUARD_HOOK).read_text()
    assert (repo.hooks_dir / "pre-merge-commit").read_bytes() == (repo.hooks_dir / GUARD_HOOK).read_bytes()


def test_installing_twice_is_idempotent(repo: Repo) -> None:
    wt = repo.agent("auth")
    before = {path.name: path.stat() for path in repo.hooks_dir.iterdir()}
    config = (repo.paths.common_dir / "config").read_bytes()
    install_guard(repo.paths.common_dir, wt, repo.hooks_dir)
    after = {path.name: path.stat() for path in repo.hooks_dir.iterdir()}
    assert {name: (s.st_ino, s.st_mtime_ns) for name, s in after.items()} == {
        name: (s.st_ino, s.st_mtime_ns) for name, s in before.items()}
    assert (repo.paths.common_dir / "config").read_bytes() == config
    assert repo.out("config", "--get-all", "core.hooksPath", cwd=wt) == str(repo.hooks_dir)
    # A second agent shares the folder.
    second = repo.agent("second")
    assert repo.out("config", "--get-all", "core.hooksPath", cwd=second) == str(repo.hooks_dir)
    write(wt, "packages/auth/a.py", "changed\n")
    repo.git("add", "-A", cwd=wt)
    assert repo.commit(wt).returncode == 0


def test_write_hooks_quotes_the_python_path_and_rewrites_only_what_changed(tmp_path: Path) -> None:
    write_hooks(tmp_path, "/opt/my python/bin/python3")
    forwarder = (tmp_path / "commit-msg").stat()
    guard_text = (tmp_path / GUARD_HOOK).read_text()
    assert "'/opt/my python/bin/python3' -P -m supervisor guard || exit $?" in guard_text
    (tmp_path / "post-merge").chmod(0o644)
    write_hooks(tmp_path, "/usr/bin/python3")
    assert "/usr/bin/python3 -P -m supervisor guard" in (tmp_path / GUARD_HOOK).read_text()
    assert (tmp_path / "commit-msg").stat().st_mtime_ns == forwarder.st_mtime_ns
    assert stat.S_IMODE((tmp_path / "post-merge").stat().st_mode) == 0o755
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no temporary files left


def test_the_shipped_scripts_resolve_the_repositorys_hooks_the_same_way() -> None:
    shipped = data_dir("hooks")

    def resolver(name: str) -> str:
        text = (shipped / name).read_text()
        return text[text.index("own_hooks_dir() {"):]

    assert resolver("forward") == resolver(GUARD_HOOK)
