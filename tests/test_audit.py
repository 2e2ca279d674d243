"""The commit audit against real git repositories (no hooks installed: every commit here is "--no-verify")."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.core.pathrules import PathRules
from supervisor.git.audit import (
    CommitViolation,
    audit,
    branch_tips,
    commit_changes,
    net_changes,
    net_violations,
    new_commits,
)
from supervisor.git.refs import worktree_head
from supervisor.git.worktrees import GitError
from tests.git_env import isolate_git


@pytest.fixture(scope="module", autouse=True)
def git_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A private HOME and identity for git (module-scoped, so the hypothesis test can use it too)."""
    with pytest.MonkeyPatch.context() as patch:
        isolate_git(patch, tmp_path_factory.mktemp("home"))
        yield


class Repo:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(["git", *args], cwd=self.root, input=stdin, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)}: {done.stderr}")
        return done.stdout.strip()

    def write(self, path: str, text: str = "x\n") -> None:
        file = self.root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)

    def commit(self, message: str, **files: str) -> str:
        """Write `files` (keyword name → content; use `write` for other names), stage all, commit."""
        for path, text in files.items():
            self.write(path, text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "repo")
    repo.write("src/app.py", "print('hi')\n")
    repo.write("docs/guide.md", "# guide\n")
    repo.write("secret/key.txt", "k\n")
    repo.commit("initial")
    return repo


RULES = PathRules(["src/**"], ["src/vendor/**"])


def violating_paths(found: list[CommitViolation]) -> dict[str, set[tuple[str, str]]]:
    return {item.commit: {(v.status, v.path) for v in item.violations} for item in found}


def agent_branch(repo: Repo, name: str = "agent/auth/work") -> str:
    base = repo.head()
    repo.git("checkout", "-q", "-b", name)
    return base


# ---------------------------------------------------------------------------------------------------------
# Commits outside the rules


def test_commit_outside_the_rules_is_found(repo: Repo) -> None:
    base = agent_branch(repo)
    ok = repo.commit("inside", **{"src/new.py": "1\n"})
    bad = repo.commit("Touch the docs\n\nbody line", **{"src/other.py": "1\n", "docs/guide.md": "changed\n"})
    commits = new_commits(repo.root, repo.head(), [base])
    assert commits == [ok, bad]
    found = audit(repo.root, RULES, commits)
    assert violating_paths(found) == {bad: {("M", "docs/guide.md")}}
    assert found[0].subject == "Touch the docs"
    assert "not under any Modify pattern" in found[0].violations[0].reason


def test_dont_touch_inside_modify_is_found(repo: Repo) -> None:
    base = agent_branch(repo)
    bad = repo.commit("vendor", **{"src/vendor/lib.py": "1\n"})
    found = audit(repo.root, RULES, new_commits(repo.root, bad, [base]))
    assert violating_paths(found) == {bad: {("A", "src/vendor/lib.py")}}
    assert "Don't touch" in found[0].violations[0].reason


def test_commit_made_with_plumbing_is_found(repo: Repo) -> None:
    base = repo.head()
    repo.write("docs/guide.md", "rewritten behind the hooks' back\n")
    repo.git("add", "-A")
    tree = repo.git("write-tree")
    commit = repo.git("commit-tree", tree, "-p", base, "-m", "plumbing")
    repo.git("update-ref", "refs/heads/agent/sneaky/work", commit)
    tips = branch_tips(repo.root)
    assert tips == {"agent/sneaky/work": commit}
    commits = new_commits(repo.root, tips["agent/sneaky/work"], ["main"])
    assert commits == [commit]
    assert violating_paths(audit(repo.root, RULES, commits)) == {commit: {("M", "docs/guide.md")}}


def test_rename_out_of_a_forbidden_folder_names_the_source(repo: Repo) -> None:
    base = agent_branch(repo)
    repo.git("mv", "secret/key.txt", "src/key.txt")
    moved = repo.commit("move the key")
    assert commit_changes(repo.root, [moved]) == {moved: [("D", "secret/key.txt", None), ("A", "src/key.txt", None)]}
    found = audit(repo.root, RULES, new_commits(repo.root, moved, [base]))
    assert violating_paths(found) == {moved: {("D", "secret/key.txt")}}


def test_deletion_counts(repo: Repo) -> None:
    base = agent_branch(repo)
    repo.git("rm", "-q", "docs/guide.md")
    gone = repo.commit("drop the guide")
    assert violating_paths(audit(repo.root, RULES, new_commits(repo.root, gone, [base]))) == {
        gone: {("D", "docs/guide.md")}
    }


def test_root_commit_lists_all_its_files(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "fresh")
    root = repo.commit("root", **{"src/a.py": "1\n", "docs/b.md": "2\n"})
    assert commit_changes(repo.root, [root]) == {root: [("A", "docs/b.md", None), ("A", "src/a.py", None)]}
    assert new_commits(repo.root, root, ["main~1", "no-such-branch"]) == [root]
    assert violating_paths(audit(repo.root, RULES, [root])) == {root: {("A", "docs/b.md")}}


def test_empty_commit_and_empty_input(repo: Repo) -> None:
    empty = repo.commit("nothing")
    assert commit_changes(repo.root, [empty]) == {empty: []}
    assert commit_changes(repo.root, []) == {}
    assert audit(repo.root, RULES, []) == []


def test_commit_changes_refuses_what_is_not_a_commit(repo: Repo) -> None:
    with pytest.raises(GitError, match="not a full commit id"):
        commit_changes(repo.root, ["main"])  # diff-tree --stdin would echo it into its output
    missing = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(GitError, match=f"unknown commit {missing}"):
        commit_changes(repo.root, [repo.head(), missing])  # git prints nothing for it and exits 0
    with pytest.raises(GitError, match="unknown commit"):
        commit_changes(repo.root, [repo.git("rev-parse", "HEAD:src/app.py")])  # a blob


# ---------------------------------------------------------------------------------------------------------
# Merges


def diverge(repo: Repo) -> tuple[str, str]:
    """main gets a docs change (not the agent's business); agent/auth/work gets a src change. Returns the bases."""
    base = agent_branch(repo)
    repo.commit("agent work", **{"src/app.py": "print('agent')\n"})
    repo.git("checkout", "-q", "main")
    repo.commit("main work", **{"docs/guide.md": "# newer guide\n", "README": "hello\n"})
    repo.git("checkout", "-q", "agent/auth/work")
    return base, repo.git("rev-parse", "main")


def test_merging_the_target_in_gives_no_false_violations(repo: Repo) -> None:
    diverge(repo)
    repo.git("merge", "-q", "--no-edit", "main")
    commits = new_commits(repo.root, repo.head(), ["main"])
    assert len(commits) == 2 and commits[-1] == repo.head()
    assert commit_changes(repo.root, [repo.head()]) == {repo.head(): []}
    assert audit(repo.root, RULES, commits) == []


def test_evil_merge_is_caught(repo: Repo) -> None:
    diverge(repo)
    repo.git("merge", "-q", "--no-commit", "main")
    repo.write("secret/key.txt", "edited inside the merge\n")
    repo.write("src/app.py", "print('resolution')\n")  # allowed: the agent's own path
    merge = repo.commit("Merge main")
    found = audit(repo.root, RULES, new_commits(repo.root, merge, ["main"]))
    assert violating_paths(found) == {merge: {("M", "secret/key.txt")}}
    assert found[0].subject == "Merge main"


def test_evil_merge_deletion_is_caught(repo: Repo) -> None:
    diverge(repo)
    repo.git("merge", "-q", "--no-commit", "main")
    repo.git("rm", "-q", "secret/key.txt")
    merge = repo.commit("Merge main")
    assert violating_paths(audit(repo.root, RULES, new_commits(repo.root, merge, ["main"]))) == {
        merge: {("D", "secret/key.txt")}
    }


def test_side_branch_is_audited_through_its_own_commits(repo: Repo) -> None:
    base = agent_branch(repo)
    first = repo.commit("agent", **{"src/a.py": "1\n"})
    repo.git("checkout", "-q", "-b", "side")
    bad = repo.commit("side edits docs", **{"docs/guide.md": "side\n"})
    repo.git("checkout", "-q", "agent/auth/work")
    repo.commit("agent again", **{"src/b.py": "1\n"})
    repo.git("merge", "-q", "--no-edit", "side")
    merge = repo.head()
    commits = new_commits(repo.root, merge, [base])
    assert set(commits) == {first, bad, repo.git("rev-parse", "HEAD^1"), merge}
    assert commits.index(bad) < commits.index(merge) and commits.index(first) < commits.index(bad)
    assert violating_paths(audit(repo.root, RULES, commits)) == {bad: {("M", "docs/guide.md")}}
    # Once the earlier commits were audited, the merge alone brings nothing new to flag.
    assert audit(repo.root, RULES, new_commits(repo.root, merge, [bad, "HEAD^1"])) == []


def test_merge_where_one_side_is_unchanged_lists_nothing(repo: Repo) -> None:
    base = agent_branch(repo)
    repo.git("checkout", "-q", "-b", "side")
    repo.commit("side", **{"docs/guide.md": "side\n"})
    repo.git("checkout", "-q", "agent/auth/work")
    repo.git("merge", "-q", "--no-ff", "--no-edit", "side")
    merge = repo.head()
    assert commit_changes(repo.root, [merge]) == {merge: []}
    assert [item.commit for item in audit(repo.root, RULES, new_commits(repo.root, merge, [base]))] == [
        repo.git("rev-parse", "side")
    ]


# A merge made with plumbing can take any tree. These take a forbidden path back to an older version: the
# paths it differs from *every* parent in (`diff-tree -c`) are none, but fast-forwarding the target to it
# would undo the target's change.


def main_changes_the_key(repo: Repo) -> None:
    repo.commit("main changes the key", **{"secret/key.txt": "v2\n"})


def plumbing_merge(repo: Repo, *parents: str, message: str = "Merge an older main") -> str:
    """A merge commit of the index's tree with `parents`, made the current branch's tip."""
    args = [arg for parent in parents for arg in ("-p", parent)]
    merge = repo.git("commit-tree", repo.git("write-tree"), *args, "-m", message)
    repo.git("update-ref", "HEAD", merge)
    return merge


@pytest.mark.parametrize("own_work", [True, False])
def test_merge_of_an_older_target_commit_that_reverts_a_path_is_caught(repo: Repo, own_work: bool) -> None:
    main_changes_the_key(repo)
    agent_branch(repo)
    work = [repo.commit("agent work", **{"src/app.py": "print('agent')\n"})] if own_work else []
    repo.git("checkout", "-q", "main~1", "--", "secret/key.txt")
    sneaky = plumbing_merge(repo, "HEAD", "main~1")
    assert repo.git("diff-tree", "--no-commit-id", "-r", "-c", "--name-only", sneaky) == ""  # the old audit read this
    commits = new_commits(repo.root, sneaky, ["main"])
    assert commits == [*work, sneaky]
    assert violating_paths(audit(repo.root, RULES, commits)) == {sneaky: {("M", "secret/key.txt")}}
    net = net_violations(repo.root, RULES, sneaky, "main")
    assert [(v.status, v.path) for v in net] == [("M", "secret/key.txt")]


def test_parent_order_does_not_matter(repo: Repo) -> None:
    main_changes_the_key(repo)
    agent_branch(repo)
    repo.commit("agent work", **{"src/app.py": "print('agent')\n"})
    repo.git("checkout", "-q", "main~1", "--", "secret/key.txt")
    sneaky = plumbing_merge(repo, "main~1", "HEAD")
    assert violating_paths(audit(repo.root, RULES, new_commits(repo.root, sneaky, ["main"]))) == {
        sneaky: {("M", "secret/key.txt")}
    }


def test_merge_that_takes_a_path_back_from_an_older_agent_commit_is_caught(repo: Repo) -> None:
    diverge(repo)  # main changed docs/guide.md, which the agent may not change
    older = repo.head()
    repo.git("merge", "-q", "--no-edit", "main")
    merged = repo.head()
    repo.git("checkout", "-q", older, "--", "docs/guide.md")
    sneaky = plumbing_merge(repo, "HEAD", older, message="Merge my older work")
    assert violating_paths(audit(repo.root, RULES, new_commits(repo.root, sneaky, [merged, "main"]))) == {
        sneaky: {("M", "docs/guide.md")}
    }
    assert [v.path for v in net_violations(repo.root, RULES, sneaky, "main")] == ["docs/guide.md"]


def test_octopus_merge_is_charged_against_every_parent(repo: Repo) -> None:
    main_changes_the_key(repo)
    base = agent_branch(repo)
    for name in ("one", "two"):
        repo.git("checkout", "-q", "-b", name, base)
        repo.commit(name, **{f"src/{name}.py": "1\n"})
    repo.git("checkout", "-q", "agent/auth/work")
    repo.git("merge", "-q", "--no-ff", "--no-edit", "one", "two")
    octopus = repo.head()
    assert len(repo.git("rev-list", "--parents", "-n1", octopus).split()) == 4
    assert {path for _, path, _ in commit_changes(repo.root, [octopus])[octopus]} == {"src/one.py", "src/two.py"}
    assert audit(repo.root, RULES, new_commits(repo.root, octopus, ["main"])) == []
    repo.git("checkout", "-q", "main~1", "--", "secret/key.txt")
    sneaky = plumbing_merge(repo, "HEAD", "one", "main~1")
    assert violating_paths(audit(repo.root, RULES, [sneaky])) == {sneaky: {("M", "secret/key.txt")}}


def test_conflict_resolved_in_own_paths_gives_no_false_violations(repo: Repo) -> None:
    agent_branch(repo)
    repo.commit("agent", **{"src/app.py": "print('agent')\n"})
    repo.git("checkout", "-q", "main")
    repo.commit("main", **{"src/app.py": "print('main')\n", "docs/guide.md": "# newer\n", "secret/key.txt": "v2\n"})
    repo.git("checkout", "-q", "agent/auth/work")
    assert subprocess.run(["git", "merge", "-q", "main"], cwd=repo.root, capture_output=True).returncode == 1
    merge = repo.commit("Merge main", **{"src/app.py": "print('both')\n"})
    assert commit_changes(repo.root, [merge]) == {merge: [("M", "src/app.py", None)]}
    assert audit(repo.root, RULES, new_commits(repo.root, merge, ["main"])) == []
    assert net_violations(repo.root, RULES, merge, "main") == []


def test_net_change_after_merging_the_target_is_the_agents_own(repo: Repo) -> None:
    diverge(repo)
    repo.git("merge", "-q", "--no-edit", "main")
    tip = repo.head()
    repo.git("checkout", "-q", "main")
    repo.commit("main moves on", **{"docs/guide.md": "# newest\n", "secret/key.txt": "v3\n"})
    assert net_changes(repo.root, tip, "main") == [("M", "src/app.py", None)]
    assert net_violations(repo.root, RULES, tip, "main") == []


def test_net_change_counts_renames_on_both_sides_and_deletions(repo: Repo) -> None:
    agent_branch(repo)
    repo.git("mv", "secret/key.txt", "src/key.txt")
    repo.commit("move the key")
    repo.git("rm", "-q", "docs/guide.md")
    repo.commit("drop the guide")
    tip = repo.head()
    assert sorted(net_changes(repo.root, tip, "main")) == [
        ("A", "src/key.txt", None), ("D", "docs/guide.md", None), ("D", "secret/key.txt", None)]
    assert {(v.status, v.path) for v in net_violations(repo.root, RULES, tip, "main")} == {
        ("D", "docs/guide.md"), ("D", "secret/key.txt")}


def test_net_change_of_an_unrelated_history_is_every_file(repo: Repo) -> None:
    repo.git("checkout", "-q", "--orphan", "agent/auth/work")
    repo.git("rm", "-q", "-r", "--cached", ".")
    repo.git("clean", "-fdxq")
    tip = repo.commit("orphan", **{"src/only.py": "1\n"})
    assert net_changes(repo.root, tip, "main") == [("A", "src/only.py", None)]
    with pytest.raises(GitError):
        net_changes(repo.root, "--all", "main")


# ---------------------------------------------------------------------------------------------------------
# Paths, tips, ranges


def test_awkward_paths_survive(repo: Repo) -> None:
    names = ["docs/with space.md", 'docs/q"uote\'s.md', "docs/new\nline.md", "docs/ünïcødé 文件.md",
             "docs/tab\there.md", "docs/back\\slash.md"]
    base = agent_branch(repo)
    for name in names:
        repo.write(name)
    raw = os.fsencode("docs/") + b"latin1-\xe9.md"  # not valid UTF-8: kept with surrogateescape
    (repo.root / os.fsdecode(raw)).write_text("x\n")
    commit = repo.commit("awkward")
    expected = {*names, "docs/latin1-\udce9.md"}
    assert {path for _, path, _ in commit_changes(repo.root, [commit])[commit]} == expected
    found = audit(repo.root, RULES, new_commits(repo.root, commit, [base]))
    assert {v.path for v in found[0].violations} == expected
    assert os.fsencode("docs/latin1-\udce9.md") == raw


def test_branch_tips_lists_agent_branches_in_one_process(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    head = repo.head()
    repo.commit("second")
    second = repo.head()
    repo.git("branch", "agent/auth/work", head)
    repo.git("branch", "agent/auth.test/work", second)
    repo.git("branch", "agent/api/nested", head)
    repo.git("branch", "agentish", head)  # not under refs/heads/agent/
    calls = count_processes(monkeypatch)
    tips = branch_tips(repo.root)
    assert tips == {"agent/auth/work": head, "agent/auth.test/work": second, "agent/api/nested": head}
    assert calls == [["git", "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/agent/"]]
    assert branch_tips(repo.root, "refs/heads/nothing/") == {}


def test_new_commits_ignores_vanished_excludes(repo: Repo) -> None:
    base = agent_branch(repo)
    one = repo.commit("one", **{"src/1.py": "1\n"})
    two = repo.commit("two", **{"src/2.py": "2\n"})
    repo.git("branch", "gone", one)
    repo.git("branch", "-D", "gone")
    pruned = "0123456789abcdef0123456789abcdef01234567"  # a last-audited tip that a rewrite and gc removed
    assert new_commits(repo.root, two, ["gone", pruned, base]) == [one, two]
    assert new_commits(repo.root, two, [one, "main"]) == [two]
    assert new_commits(repo.root, two, [two]) == []
    with pytest.raises(GitError, match="unknown commit"):
        new_commits(repo.root, pruned, [base])
    with pytest.raises(GitError):
        new_commits(repo.root, "--all", [])


def test_audit_uses_few_processes(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    base = agent_branch(repo)
    for n in range(5):
        repo.commit(f"c{n}", **{f"src/{n}.py": "1\n"})
    clean = new_commits(repo.root, repo.head(), [base])
    calls = count_processes(monkeypatch)
    assert audit(repo.root, RULES, clean) == []
    assert [call[1] for call in calls] == ["cat-file", "diff-tree"]
    repo.commit("bad", **{"docs/x.md": "1\n"})
    commits = new_commits(repo.root, repo.head(), [base])
    calls.clear()
    assert len(audit(repo.root, RULES, commits)) == 1
    assert [call[1] for call in calls] == ["cat-file", "diff-tree"]
    # A two-parent merge costs a merge-tree and a diff-tree of its own.
    repo.git("checkout", "-q", "-b", "side", "HEAD~1")
    repo.commit("side", **{"src/side.py": "1\n"})
    repo.git("checkout", "-q", "agent/auth/work")
    repo.git("merge", "-q", "--no-edit", "side")
    commits = new_commits(repo.root, repo.head(), [base])
    calls.clear()
    assert len(audit(repo.root, RULES, commits)) == 1
    assert [call[1] for call in calls] == ["cat-file", "diff-tree", "merge-tree", "diff-tree"]


def test_replace_refs_cannot_hide_a_commit(repo: Repo) -> None:
    base = agent_branch(repo)
    bad = repo.commit("bad", **{"docs/guide.md": "evil\n"})
    decoy = repo.git("commit-tree", repo.git("rev-parse", "HEAD^{tree}"), "-p", bad, "-m", "decoy")
    repo.git("replace", bad, decoy)  # to a plain `git diff-tree`, `bad` now changes nothing
    assert repo.git("diff-tree", "-r", "--name-only", bad) == ""
    assert violating_paths(audit(repo.root, RULES, new_commits(repo.root, bad, [base]))) == {
        bad: {("M", "docs/guide.md")}
    }



def test_worktree_head_reads_what_a_worktree_has_checked_out(repo: Repo, tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    repo.git("worktree", "add", "-q", "-b", "agent/auth/work", str(worktree), "main")

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=worktree, capture_output=True, text=True, check=True,
                              env={**os.environ, "GIT_SEQUENCE_EDITOR": "sed -i 1ibreak"})
        return done.stdout.strip()

    assert worktree_head(worktree) == "refs/heads/agent/auth/work"
    git("checkout", "-q", "--detach")
    assert worktree_head(worktree) == repo.head()
    git("checkout", "-q", "-b", "elsewhere")
    assert worktree_head(worktree) == "refs/heads/elsewhere"
    git("checkout", "-q", "agent/auth/work")
    (worktree / "src" / "app.py").write_text("print('agent')\n")
    git("commit", "-q", "-am", "agent work")
    git("rebase", "-q", "-i", "HEAD~1")  # stops at `break`: HEAD is detached until the rebase ends
    assert git("rev-parse", "--abbrev-ref", "HEAD") == "HEAD"
    assert worktree_head(worktree) is None
    git("rebase", "--abort")
    assert worktree_head(worktree) == "refs/heads/agent/auth/work"
    assert worktree_head(tmp_path / "nowhere") is None
    assert worktree_head(repo.root) is None  # the main worktree (.git is a folder): never an agent's

def engine_git(args: list[str]) -> list[str] | None:
    """A git command line as the engine ran it, without its `-c` overrides; None for anything else and for its
    reads of the configuration (once per repository: cached)."""
    if not args or args[0] != "git":
        return None
    rest = list(args[1:])
    while rest[:1] == ["-c"]:
        rest = rest[2:]
    return None if rest[:1] == ["config"] else ["git", *rest]


def count_processes(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    real = subprocess.run

    def spy(args: list[str], *rest: Any, **kwargs: Any) -> Any:
        command = engine_git(args)
        if command is not None:
            calls.append(command)
        return real(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)  # the module object audit.py uses too
    return calls


# ---------------------------------------------------------------------------------------------------------
# Property: the audit reports exactly the commits whose changed paths the rules refuse

DIRS = ("src", "src/vendor", "docs", "top level")
FILES = ("a.py", "b c.txt")
PATHS = tuple(f"{d}/{f}" for d in DIRS for f in FILES)
PROP_RULES = PathRules(["src/**", "docs/*.txt"], ["src/vendor/"])

edit = st.tuples(st.sampled_from(PATHS), st.one_of(st.none(), st.integers(0, 2)))  # None deletes
history = st.lists(st.lists(edit, max_size=4), min_size=1, max_size=4)


@pytest.fixture(scope="module")
def prop_repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    repo = Repo(tmp_path_factory.mktemp("prop") / "repo")
    for path in PATHS[::3]:
        repo.write(path, "0\n")
    repo.commit("base")
    repo.git("branch", "base")
    return repo


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commits=history)
def test_audit_matches_the_rules(prop_repo: Repo, commits: list[list[tuple[str, int | None]]]) -> None:
    repo = prop_repo
    repo.git("checkout", "-q", "-f", "-B", "agent/prop/work", "base")
    repo.git("clean", "-fdxq")
    state = {path: (repo.root / path).read_text() for path in PATHS if (repo.root / path).exists()}
    expected: dict[str, set[str]] = {}
    made: list[str] = []
    for edits in commits:
        before = dict(state)
        for path, content in edits:
            if content is None:
                state.pop(path, None)
                (repo.root / path).unlink(missing_ok=True)
            else:
                state[path] = f"{content}\n"
                repo.write(path, state[path])
        commit = repo.commit("step")
        made.append(commit)
        changed = {p for p in {*before, *state} if before.get(p) != state.get(p)}
        refused = {p for p in changed if not PROP_RULES.allows(p)}
        if refused:
            expected[commit] = refused
    assert new_commits(repo.root, repo.head(), ["base"]) == made
    found = audit(repo.root, PROP_RULES, made)
    assert {item.commit: {v.path for v in item.violations} for item in found} == expected
    assert [item.commit for item in found] == [c for c in made if c in expected]
