"""Every repository of this user with a running engine, seen together (`ls --all`, `ui --all`).

Each repository is reached through its own engine's control socket, never started from here: a repository
shows while its engine runs. An agent is named `REPO:NAME` across repositories (`REPO` its repository's folder
name, made unique with `~2`, `~3` … when two share one), so every action names exactly one engine.

An agent never looks past its own repository: from inside an agent's pane (its variables, its process tree,
its cgroup) these are refused, and inside its sandbox the registry is out of sight anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from supervisor.errors import SupervisorError, UsageError
from supervisor.paths import RepoPaths
from supervisor.registry import Registration, running_engines

SEPARATOR = ":"
T = TypeVar("T")


@dataclass(frozen=True)
class Repository:
    label: str  # unique among those shown: the folder name, `~N` added for a second one of the same name
    registration: Registration

    @property
    def paths(self) -> RepoPaths:
        return self.registration.paths

    def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = 30.0) -> Any:
        """One request to this repository's engine (never started from here)."""
        from supervisor import client

        return client.call(self.paths, method, params or {}, autostart=False, timeout=timeout)


def refuse_inside_an_agent(what: str) -> None:
    """SupervisorError when this process is an agent's: an agent sees only its own repository."""
    from supervisor.engine.whose import agent_around

    why = agent_around()
    if why is not None:
        raise SupervisorError(f"refused: {what} is the human's view of every repository, and {why}",
                              hint="an agent sees only its own repository (`supervisor ls`); run it from your own "
                                   "terminal")


def repositories() -> list[Repository]:
    """The repositories whose engine runs now, by folder name (stale registrations are skipped and deleted)."""
    found: list[Repository] = []
    taken: set[str] = set()
    for registration in running_engines():
        base = registration.root.name.replace(SEPARATOR, "-") or "repository"
        label, count = base, 1
        while label in taken:
            count += 1
            label = f"{base}~{count}"
        taken.add(label)
        found.append(Repository(label, registration))
    return found


def qualify(label: str, name: str) -> str:
    return f"{label}{SEPARATOR}{name}"


def split(qualified: str) -> tuple[str, str]:
    """`REPO:NAME` → (REPO, NAME); UsageError for a name without its repository."""
    label, sep, name = qualified.partition(SEPARATOR)
    if not sep or not label or not name:
        raise UsageError(f"{qualified!r}: name the agent with its repository, as REPO{SEPARATOR}NAME")
    return label, name


def each_repository(repos: list[Repository], work: Callable[[Repository], T]) -> list[tuple[Repository, T | None,
                                                                                              Exception | None]]:
    """`work` on every repository at once (one thread each): per repository its result or its error."""
    if not repos:
        return []

    def run(repo: Repository) -> tuple[Repository, T | None, Exception | None]:
        try:
            return repo, work(repo), None
        except Exception as exc:  # one engine's fault is that repository's, shown beside the others
            return repo, None, exc

    with ThreadPoolExecutor(max_workers=min(len(repos), 16)) as pool:
        return list(pool.map(run, repos))


def with_repository(repo: Repository, agent: dict[str, Any]) -> dict[str, Any]:
    """An `ls` record of `repo`'s with its repository: `repo` (its path) and `repo_name` (its label)."""
    return {**agent, "repo": str(repo.paths.root), "repo_name": repo.label}
