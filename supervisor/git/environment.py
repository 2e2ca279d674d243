"""The environment for the git processes supervisor runs itself (and for `merge.check`), and the one way the
engine runs git: with none of the code an agent could have put in the repository's configuration.

A hook or a user's shell may export variables that point git at another repository, index or object store
(`GIT_DIR` inside a hook, `GIT_INDEX_FILE` during a commit): every git process here must work on the
repository of its own working directory, so those are dropped (`git_env`, also for `merge.check`).

The repository's shared `.git/config`, its hooks folder and each agent worktree's own `config.worktree` are
writable by agents. Reading configuration is safe; running it is not. So every engine git call (`run`):
- reads no system or global configuration (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL=/dev/null`);
- runs no hook (`core.hooksPath=/dev/null`), no fsmonitor, no pager, editor, signing program or auto gc;
- has every `filter.<x>` driver the repository's configuration names emptied (git runs no filter with an
  empty command) and every `merge.<x>.driver` replaced by `false` (a conflict: a merge that needed it is
  refused, never resolved by the agent's program), found by listing the configuration (`git config --list`,
  cached until one of the files it came from changes);
- and a porcelain `git diff` gets `NO_DIFF_PROGRAMS` (no external diff, no textconv).
It also reads every sandboxed agent's own object folder (supervisor/git/object_folders.py) as an alternate, with
no commit-graph or bitmap then; a merge writes with the shared store alone (`shared_only`).
The user's identity for the commits the engine makes (a merge) is read once from the user's own
configuration and passed explicitly. An agent that rewrites the configuration between the listing and the
git process that reads it could still slip a driver in: the window is that of one `stat`.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from supervisor.git import object_folders
from supervisor.git.refs import stamp_of

__all__ = ["LOCATION_VARS", "NO_DIFF_PROGRAMS", "clean_env", "command", "common_dir", "git_argv", "git_env",
           "overrides", "run"]

LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
                 "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_PREFIX", "GIT_IMPLICIT_WORK_TREE")
# Variables that would make the engine's git run a program or read other configuration.
_PROGRAM_VARS = ("GIT_EXTERNAL_DIFF", "GIT_PAGER", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR", "GIT_SSH", "GIT_SSH_COMMAND",
                 "GIT_ASKPASS", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_TRACE2_EVENT")
NO_DIFF_PROGRAMS = ("--no-ext-diff", "--no-textconv")

FIXED = (
    f"core.hooksPath={os.devnull}", "core.fsmonitor=false", "core.untrackedCache=false", "core.pager=cat",
    "core.editor=:", "sequence.editor=:", "core.sshCommand=ssh", "core.askPass=", "credential.helper=",
    "commit.gpgSign=false", "tag.gpgSign=false", "merge.verifySignatures=false", "gc.auto=0",
    "maintenance.auto=false", "fetch.recurseSubmodules=false", "submodule.recurse=false",
)
# With agents' folders read as alternates: no commit-graph or reachability bitmap (git takes the first it finds,
# an agent's too when the shared store has none, and would believe what it says about history).
READING_AGENTS = ("-c", "core.commitGraph=false", "-c", "pack.useBitmaps=false")
_FILTER_KEYS = ("clean", "smudge", "process")
_INCLUDES = ("include.path",)

_lock = threading.Lock()
# The repository's config files → (the files watched, their stamp when listed, the overrides).
_cache: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[int, ...], tuple[str, ...]]] = {}
_identities: dict[str, tuple[str, ...]] = {}


def git_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) without the variables that would redirect git."""
    return {key: value for key, value in (os.environ if base is None else base).items() if key not in LOCATION_VARS}


def clean_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`git_env`, reading no system or global configuration and running no program named by a variable."""
    env = {key: value for key, value in git_env(base).items()
           if key not in _PROGRAM_VARS and not key.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


# No engine git call waits longer: an agent can leave a FIFO where git expects an object in its own folder (git
# opens it and waits for a writer for good), and the engine thread that asked must come back.
GIT_TIMEOUT = 300.0
TIMED_OUT = 124  # the exit status of a git that was killed at its time limit (as timeout(1) says it)


def run(cwd: Path, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None,
        timeout: float | None = None, shared_only: bool = False) -> subprocess.CompletedProcess[bytes]:
    """Run `git ARGS` in `cwd` as the engine does (see the module's docstring); `env`: variables to add.
    `shared_only`: read the repository's shared object store alone, no agent's own folder (for the objects a
    merge writes: git writes no copy of an object it finds in an alternate, and main must never need one).
    A git still running after `timeout` (default GIT_TIMEOUT) is killed and reported as failed, saying so."""
    argv, environment = command(cwd, args, env, shared_only=shared_only)
    limit = GIT_TIMEOUT if timeout is None else timeout
    try:
        return subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True, env=environment, check=False,
                              timeout=limit)
    except subprocess.TimeoutExpired as exc:
        said = f"git {' '.join(args[:2])} did not finish within {limit:g} s and was stopped".encode()
        return subprocess.CompletedProcess(argv, TIMED_OUT, exc.stdout or b"", said)


def command(cwd: Path, args: Sequence[str], env: Mapping[str, str] | None = None, *,
            shared_only: bool = False) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of `run` (for a caller that pipes one git into another)."""
    environment = clean_env()
    if env:
        environment.update(env)
    extra: tuple[str, ...] = ()
    common = None if shared_only else common_dir(cwd)
    if common is not None:
        before = environment.get(object_folders.VARIABLE)
        found = object_folders.alternates(common, before)
        if found and found != before:
            environment[object_folders.VARIABLE] = found
            extra = READING_AGENTS
    return git_argv(cwd, *extra, *args), environment


def git_argv(cwd: Path, *args: str) -> list[str]:
    """`git`, the overrides for the repository of `cwd`, then `args` (which may start with more `-c`s)."""
    argv = ["git"]
    for item in overrides(cwd):
        argv += ["-c", item]
    return [*argv, *args]


def common_dir(cwd: Path) -> Path | None:
    """The git common dir of the repository whose worktree's top folder is `cwd`, read from its `.git` without
    running git; None when `cwd` is not one."""
    found = _git_dirs(cwd)
    return None if found is None else found[0]


def overrides(cwd: Path) -> tuple[str, ...]:
    """The `-c` settings the engine's git calls in `cwd` run with: the fixed ones, the user's identity, and one
    emptying each program the repository's configuration names."""
    files = _config_files(cwd)
    with _lock:
        cached = _cache.get(files) if files else None
    watched = cached[0] if cached else files
    stamp = stamp_of([Path(f) for f in watched])  # taken before the listing: a change after it shows next time
    if cached is not None and cached[1] == stamp:
        return cached[2]
    found, origins = _listed(cwd)
    result = (*FIXED, *_identity(cwd), *found)
    if files:
        if origins <= set(watched):
            entry = (watched, stamp, result)
        else:  # it came from files not watched yet: watched from now on, listed again next time
            entry = (tuple(sorted(set(files) | origins)), (), result)
        with _lock:
            _cache[files] = entry
    return result


def _listed(cwd: Path) -> tuple[list[str], set[str]]:
    """The overrides for the programs the configuration names, and the files it came from."""
    done = subprocess.run(["git", "config", "--list", "--null", "--show-origin"], cwd=cwd, capture_output=True,
                          env=clean_env(), check=False)
    found: list[str] = []
    origins: set[str] = set()
    items = done.stdout.decode("utf-8", "surrogateescape").split("\0")
    for origin, entry in zip(items[::2], items[1::2], strict=False):
        key, _, value = entry.partition("\n")
        if origin.startswith("file:"):
            path = Path(origin.removeprefix("file:"))
            origins.add(os.path.realpath(path if path.is_absolute() else cwd / path))
        section, _, rest = key.partition(".")
        name, _, leaf = rest.rpartition(".")
        section, leaf = section.lower(), leaf.lower()
        if section == "filter" and name and leaf in _FILTER_KEYS:
            found.append(f"filter.{name}.{leaf}=")
            found.append(f"filter.{name}.required=false")
        elif section == "merge" and name and leaf == "driver":
            found.append(f"merge.{name}.driver=false")
        elif key.lower() in _INCLUDES or (section == "includeif" and leaf == "path"):
            included = Path(os.path.expanduser(value))
            base = Path(origin.removeprefix("file:")).parent if origin.startswith("file:") else cwd
            origins.add(os.path.realpath(included if included.is_absolute() else cwd / base / included))
    return list(dict.fromkeys(found)), origins


def _config_files(cwd: Path) -> tuple[str, ...]:
    """The repository's config and the worktree's own `config.worktree` for a worktree's top folder `cwd`
    (read from its `.git`, without running git); empty when `cwd` is not one (then nothing is cached)."""
    found = _git_dirs(cwd)
    if found is None:
        return ()
    common, git_dir = found
    return (os.path.realpath(common / "config"), os.path.realpath(git_dir / "config.worktree"))


def _git_dirs(cwd: Path) -> tuple[Path, Path] | None:
    """(the git common dir, the worktree's own git dir) of the worktree whose top folder is `cwd`."""
    dot_git = cwd / ".git"
    try:
        if dot_git.is_dir():
            return dot_git, dot_git
        text = dot_git.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    git_dir = cwd / text.removeprefix("gitdir:").strip()
    try:
        common = git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return common, git_dir


def _identity(cwd: Path) -> tuple[str, ...]:
    """`user.name` and `user.email` as the user's own configuration gives them (global, system and the
    repository's), read once per repository without running anything: the commits the engine makes are the
    user's."""
    key = str(_config_files(cwd)[:1] or (cwd,))
    with _lock:
        if key in _identities:
            return _identities[key]
    found: list[str] = []
    for name in ("user.name", "user.email"):
        done = subprocess.run(["git", "config", "--get", name], cwd=cwd, capture_output=True, env=git_env(),
                              check=False)
        value = done.stdout.decode("utf-8", "surrogateescape").strip()
        if done.returncode == 0 and value:
            found.append(f"{name}={value}")
    with _lock:
        _identities[key] = tuple(found)
    return tuple(found)
