"""What a sandbox is made of, from its parts: the bubblewrap command line (`sandbox.argv`: later mounts cover
earlier ones, so nothing hidden may come back through a later bind) and the folders the engine takes from its own
knowledge rather than from what an agent could have written."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from supervisor.git.worktrees import GitError, add_worktree, admin_dir, git_dir_at_creation
from supervisor.hosts import sandbox


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for args in (["init", "-q", "-b", "main"], ["-c", "user.name=T", "-c", "user.email=t@e", "commit", "-q",
                                                 "--allow-empty", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return root


def test_the_worktree_git_folder_is_the_one_git_made_not_what_its_git_file_says(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    worktree = tmp_path / "wt"
    add_worktree(root, worktree, "agent/a/work", "HEAD")
    recorded = git_dir_at_creation(worktree)
    assert Path(recorded) == (root / ".git" / "worktrees" / "wt").resolve()
    (worktree / ".git").write_text("gitdir: /\n")  # what an agent can write
    assert admin_dir(root / ".git", worktree, recorded) == Path(recorded)
    # without a record (an agent started by an older engine): the folder whose `gitdir` names the worktree
    assert admin_dir(root / ".git", worktree, None) == Path(recorded)


@pytest.mark.parametrize("recorded", ["/", "{common}", "{common}/worktrees", "{common}/worktrees/wt/../../objects"])
def test_a_git_folder_outside_the_worktrees_folder_is_refused(tmp_path: Path, recorded: str) -> None:
    root = _repo(tmp_path)
    worktree = tmp_path / "wt"
    add_worktree(root, worktree, "agent/a/work", "HEAD")
    with pytest.raises(GitError, match="not one of"):
        admin_dir(root / ".git", worktree, recorded.format(common=root / ".git"))


def test_a_symlinked_git_folder_is_refused(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    worktree = tmp_path / "wt"
    add_worktree(root, worktree, "agent/a/work", "HEAD")
    (root / ".git" / "worktrees" / "link").symlink_to(root / ".git" / "refs")
    with pytest.raises(GitError, match="not one of"):
        admin_dir(root / ".git", worktree, str(root / ".git" / "worktrees" / "link"))


def test_a_failed_probe_for_bubblewrap_is_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe that failed once (a busy machine's timeout) must not leave the engine deciding from it for its
    whole life: the next look probes again."""
    from supervisor.hosts import isolation

    if shutil.which("bwrap") is None:
        pytest.skip("needs bubblewrap")
    monkeypatch.setattr(isolation, "_working", None)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\nexit 1\n")
    (fake / "bwrap").chmod(0o755)
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{fake}:{path}")
    assert isolation.sandboxing().bwrap is None
    monkeypatch.setenv("PATH", path)
    assert isolation.sandboxing().bwrap == shutil.which("bwrap")


def test_a_plan_session_has_an_isolation_of_its_own(tmp_path: Path) -> None:
    from supervisor.core.plan import parse_plan
    from supervisor.errors import InputFileError

    text = "sessions:\n  - name: a\n    isolation: none\n  - name: b\n"
    plan = parse_plan(text, tmp_path / "plan.yaml", tmp_path)
    assert [s.isolation for s in plan.sessions] == ["none", None]
    with pytest.raises(InputFileError, match="isolation must be one of"):
        parse_plan(text.replace("none", "docker"), tmp_path / "plan.yaml", tmp_path)


# sandbox.argv --------------------------------------------------------------------------------------------------

MASKS = ("--tmpfs",)
BINDS = ("--bind", "--ro-bind", "--dev-bind")


def _mounts(args: list[str]) -> list[tuple[str, str, str]]:
    """(kind, source, destination) of each mount in a bubblewrap command line, in order."""
    found = []
    i = 0
    while i < len(args) and args[i] != "--":
        if args[i] in MASKS or args[i] in ("--dev", "--proc"):
            found.append((args[i], "", args[i + 1]))
            i += 2
        elif args[i] in BINDS:
            found.append((args[i], args[i + 1], args[i + 2]))
            i += 3
        else:
            i += 1 if args[i].startswith("--unshare") or args[i] == "--die-with-parent" else 2
    return found


def _seen_as(args: list[str], path: Path) -> tuple[str, str, str]:
    """The mount that decides what the sandbox shows at `path`: the last one at it or above it."""
    decisive = [m for m in _mounts(args) if path == Path(m[2]) or Path(m[2]) in path.parents]
    return decisive[-1]


def _hidden(args: list[str], path: Path) -> bool:
    kind, source, _ = _seen_as(args, path)
    return kind == "--tmpfs" or source == "/dev/null"


def _spec(tmp: Path, **more: object) -> sandbox.Spec:
    """A repository with a main worktree, the store in it, two agents, a runtime folder; `more` overrides."""
    root = tmp / "my repo"
    common = root / ".git"
    state = common / "supervisor"
    runtime = tmp / "run" / "sv"
    parts = {
        "worktree": tmp / "worktrees" / "a b", "common_dir": common, "worktree_git_dir": common / "worktrees" / "a b",
        "ref_folder": common / "refs/heads/agent/a b", "state_dir": state, "own_state": state / "agents" / "a b",
        "guard_hooks": state / "hooks", "runtime_dirs": (tmp / "run",), "own_runtime": runtime / "d" / "agents" / "a",
        "own_spool": runtime / "d" / "agents" / "a" / "spool",
        "root_worktree": root, "worktrees_dir": tmp / "worktrees", "home": state / "agents" / "a b" / "home",
        "real_home": tmp / "home", "helpers": tmp / "worktrees" / "a b" / ".sub-agents",
        "objects": state / "objects" / "a b", "shared_objects": state / "shared-objects",
    }
    parts.update(more)
    spec = sandbox.Spec(**parts)  # type: ignore[arg-type]
    helpers = spec.worktree / ".sub-agents"
    for folder in (*sandbox.folders_to_create(spec), common / "objects", common / "hooks", state / "hooks",
                   tmp / "worktrees" / "victim", runtime / "other", tmp / "home" / ".ssh", helpers / "messages",
                   helpers / "helper", state / "logs", state / "objects" / "victim"):
        folder.mkdir(parents=True, exist_ok=True)
    (spec.worktree / ".sub-agents" / "status.yaml").write_text("helpers: {}\n")
    (common / "config").write_text("")
    return spec


def test_nothing_hidden_comes_back_through_a_later_bind(tmp_path: Path) -> None:
    """Paths with spaces; PATH folders and the user's own additions inside hidden parts; a helper made after
    the launch: what must stay hidden is hidden by the last mount that decides it."""
    spec = _spec(tmp_path)
    spec = sandbox.Spec(**{**spec.__dict__, "readable": (spec.state_dir / "logs", tmp_path / "run" / "sv",
                                                         tmp_path / "home" / ".ssh", tmp_path / "usr"),
                           "extra_read": (spec.state_dir,), "extra_write": (tmp_path / "run",)})
    args = sandbox.argv(spec, ["true"])
    for path in (spec.state_dir / "state.db", spec.state_dir / "logs", tmp_path / "run" / "sv" / "other",
                 tmp_path / "worktrees" / "victim", spec.root_worktree / "README.md", tmp_path / "home" / ".ssh",
                 spec.worktree / ".sub-agents" / "helper", spec.worktree / ".sub-agents" / "later"):
        assert _hidden(args, path), path
    assert _seen_as(args, spec.worktree / "src")[0] == "--bind"
    # its socket and its contract.json read-only (connecting needs no writable mount); its spool writable
    assert _seen_as(args, spec.own_runtime / "engine.sock")[0] == "--ro-bind"
    assert _seen_as(args, spec.own_runtime / "contract.json")[0] == "--ro-bind"
    assert _seen_as(args, spec.own_spool / "event.json")[0] == "--bind"
    assert _seen_as(args, spec.own_state / "x")[0] == "--bind"
    assert _seen_as(args, spec.worktree / ".sub-agents" / "status.yaml")[0] == "--ro-bind"
    assert _seen_as(args, spec.worktree / ".sub-agents" / "messages" / "m")[0] == "--bind"
    assert _seen_as(args, spec.common_dir / "config")[:2] == ("--ro-bind", str(spec.common_dir))
    assert _seen_as(args, spec.common_dir / "refs/heads/main")[0] == "--ro-bind"
    assert _seen_as(args, spec.common_dir / "refs/heads/agent/victim/work")[0] == "--ro-bind"
    assert _seen_as(args, spec.ref_folder / "work")[0] == "--bind"
    # its own object folder where its git writes objects; the shared store read-only beside; no other's folder
    shared = spec.common_dir / "objects"
    assert _seen_as(args, shared / "pack" / "pack-1.pack") == ("--bind", str(spec.objects), str(shared))
    assert _seen_as(args, spec.shared_objects / "pack" / "pack-1.pack") == ("--ro-bind", str(shared),
                                                                            str(spec.shared_objects))
    assert _hidden(args, spec.state_dir / "objects" / "victim" / "pack")


def test_symbolic_links_are_resolved_before_they_are_mounted(tmp_path: Path) -> None:
    """bubblewrap cannot mount onto a path through a link (a stow-managed `~/.ssh -> dotfiles/ssh`): the link's
    target is hidden, and no mount names a path with a link in it."""
    spec = _spec(tmp_path)
    (tmp_path / "home" / ".ssh").rmdir()
    (tmp_path / "dotfiles" / "ssh").mkdir(parents=True)
    (tmp_path / "home" / ".ssh").symlink_to(tmp_path / "dotfiles" / "ssh")
    (tmp_path / "linked").symlink_to(spec.worktree)
    spec = sandbox.Spec(**{**spec.__dict__, "worktree": tmp_path / "linked", "extra_read": (tmp_path,)})
    args = sandbox.argv(spec, ["true"])
    for _kind, _source, dest in _mounts(args):
        assert Path(dest).resolve() == Path(dest) or not Path(dest).exists(), dest
    assert _hidden(args, tmp_path / "dotfiles" / "ssh" / "id_ed25519")
    assert _seen_as(args, spec.worktree.resolve() / "src")[0] == "--bind"
    if shutil.which("bwrap"):
        done = subprocess.run(sandbox.argv(spec, ["ls", str(tmp_path / "home" / ".ssh") + "/"]), capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0 and done.stdout == "", done.stderr


def test_what_the_cli_keeps_in_the_users_home_is_in_the_agents_own(tmp_path: Path) -> None:
    """A CLI's config in the user's home is shown read-only (the user's current one); its state is copied in
    once, then the agent's own; a masked credential is never carried in, whatever a profile names, and nothing
    the agent left in its HOME (a link leading out) is written through."""
    from supervisor.hosts.local import prepare

    home = tmp_path / "home"
    (home / ".cli").mkdir(parents=True)
    (home / ".cli" / "seen.json").write_text("user v1")
    (home / ".cli.conf").write_text("model: x")
    (home / ".ssh" / "id_ed25519").parent.mkdir(parents=True, exist_ok=True)
    (home / ".ssh" / "id_ed25519").write_text("secret")
    spec = _spec(tmp_path)
    spec = sandbox.Spec(**{**spec.__dict__, "home_read": (".cli.conf", ".ssh/id_ed25519", "../escape", ".absent"),
                           "home_seed": (".cli", ".ssh", ".elsewhere")})
    (tmp_path / "escape").write_text("outside the home")
    (tmp_path / "outside").mkdir()
    (home / ".elsewhere").write_text("user state")
    spec.home.mkdir(parents=True, exist_ok=True)
    (spec.home / ".elsewhere").symlink_to(tmp_path / "outside" / "planted")  # the agent's, dangling
    prepare(spec)
    assert (spec.home / ".cli" / "seen.json").read_text() == "user v1"
    assert not (spec.home / ".ssh").exists() and not (tmp_path / "outside" / "planted").exists()
    (spec.home / ".cli" / "seen.json").write_text("agent's own")
    (home / ".cli" / "seen.json").write_text("user v2")
    prepare(spec)  # a restart: the agent's copy is its own now
    assert (spec.home / ".cli" / "seen.json").read_text() == "agent's own"
    args = sandbox.argv(spec, ["true"])
    assert _seen_as(args, spec.home.resolve() / ".cli.conf") == ("--ro-bind", str(home / ".cli.conf"),
                                                                 str(spec.home.resolve() / ".cli.conf"))
    for name in ("id_ed25519", "escape", ".absent"):
        assert not [m for m in _mounts(args) if m[2].endswith(name)], name
    if shutil.which("bwrap"):
        seen = subprocess.run(sandbox.argv(spec, ["sh", "-c", 'cat "$HOME/.cli.conf" "$HOME/.cli/seen.json"']),
                              capture_output=True, text=True, check=False)
        assert seen.returncode == 0 and seen.stdout == "model: xagent's own", seen.stderr
        wrote = subprocess.run(sandbox.argv(spec, ["sh", "-c", 'echo y > "$HOME/.cli.conf"']), capture_output=True,
                               text=True, check=False)
        assert wrote.returncode != 0 and (home / ".cli.conf").read_text() == "model: x"
