"""Where agents may run, and how many each host takes (SPEC §12): the names a command may give, each host's
places (`max_agents`), and a plan's sessions spread over the hosts with the most room.

A host's places are taken by its live agents (`unreachable` ones included: they run on there, as far as anyone
knows) and by the plan sessions queued for it (a plan is checked whole before anything starts, so a session
that waits for another keeps its place). A helper runs on its parent's host and takes a place there. `local`
is this machine: its places are `hosts.local.max_agents`, and without that it has no limit. Nothing here
reads the store or the engine: callers hand in the configuration and the agents.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from supervisor.config import Config
from supervisor.core.model import Agent, State
from supervisor.errors import UsageError
from supervisor.hostsconfig import DEFAULT_MAX_AGENTS, LOCAL
from supervisor.suggest import did_you_mean


def host_names(config: Config) -> list[str]:
    """Every host an agent may be started on: `local` first, then those of `hosts:` in the file's order."""
    return [LOCAL, *config.hosts]


def check_host(config: Config, host: str, known: Iterable[str] = ()) -> str:
    """`host` when it is one of supervisor.yaml's (or `local`, or one of `known`); else a one-line refusal
    with the closest name."""
    names = [*host_names(config), *(name for name in known if name not in config.hosts and name != LOCAL)]
    if host in names:
        return host
    hint = did_you_mean(host, names) or (f"hosts: {', '.join(names)}" if len(names) > 1 else
                                         "name it under `hosts:` in supervisor.yaml (`supervisor hosts` lists them)")
    raise UsageError(f"no host named {host!r}", hint=hint)


def capacity(config: Config, host: str) -> int | None:
    """How many places `host` has; None: no limit (`local` without `hosts.local.max_agents`, or a host that
    left supervisor.yaml: nothing new starts there anyway)."""
    if host == LOCAL:
        return config.local_max_agents
    found = config.hosts.get(host)
    return None if found is None else found.max_agents


def takes_place(agent: Agent) -> bool:
    return agent.state.live or agent.state == State.QUEUED


def taken(agents: Iterable[Agent], *, besides: str | None = None) -> Counter[str]:
    """The places taken on each host (see the module's docstring), not counting agent `besides`."""
    return Counter(agent.host for agent in agents if takes_place(agent) and agent.name != besides)


def _setting(host: str) -> str:
    return f"hosts.{host}.max_agents"


def room_refusal(config: Config, agents: Iterable[Agent], host: str, *, wanted: int = 1,
                 besides: str | None = None) -> tuple[str, str] | None:
    """Why `wanted` more agents may not run on `host` now, with a hint (None: they may). `besides`: an agent
    whose own place is not counted (the one being started again)."""
    limit = capacity(config, host)
    if limit is None:
        return None
    used = taken(agents, besides=besides)[host]
    if used + wanted <= limit:
        return None
    what = "this machine (local)" if host == LOCAL else f"host {host}"
    full = "is full" if wanted == 1 or used >= limit else f"has room for {limit - used} more, not {wanted}"
    others = [name for name in host_names(config) if name != host and _free(config, agents, name) >= wanted]
    elsewhere = f", or use another host (--host {others[0]})" if others else ""
    return (f"{what} {full}: {used} of its {limit} places are taken ({_setting(host)})",
            f"stop or remove an agent there, raise {_setting(host)} in supervisor.yaml{elsewhere}; "
            "`supervisor hosts` shows each host's places")


def _free(config: Config, agents: Iterable[Agent], host: str) -> int:
    limit = capacity(config, host)
    return 1 if limit is None else limit - taken(agents)[host]


# A plan's sessions over its hosts --------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """One session of a plan to place: its name, the host it names (None: any of the plan's `hosts`), and
    where that is said in the plan file (for the refusal)."""

    name: str
    host: str | None
    line: int | None


@dataclass(frozen=True)
class NoRoom:
    """A session that fits nowhere: which one, where, and why in one line with a hint."""

    session: str
    line: int | None
    message: str
    hint: str


def place(config: Config, agents: Sequence[Agent], sessions: Sequence[Wanted],
          candidates: Sequence[str] | None) -> dict[str, str] | NoRoom:
    """A host for every session, or the first that fits nowhere. Sessions that name a host take their places
    first; the others go, in plan order, to the candidate with the most free places (the earlier in the list
    on a tie). `candidates`: the plan's `hosts:` (None: `local` alone). A host without a limit (`local`
    without `hosts.local.max_agents`) counts as DEFAULT_MAX_AGENTS places when compared with others, and
    takes what no other has room for."""
    used = taken(agents)
    chosen: dict[str, str] = {}
    for session in sessions:
        if session.host is None:
            continue
        limit = capacity(config, session.host)
        if limit is not None and used[session.host] + 1 > limit:
            return _no_room(config, session, [session.host], used)
        used[session.host] += 1
        chosen[session.name] = session.host
    pool = list(candidates) if candidates else [LOCAL]
    for session in sessions:
        if session.host is not None:
            continue
        free = {host: _places(config, host) - used[host] for host in pool}
        best = max(pool, key=lambda host: (free[host], -pool.index(host)))
        if free[best] <= 0:
            unlimited = next((host for host in pool if capacity(config, host) is None), None)
            if unlimited is None:
                return _no_room(config, session, pool, used)
            best = unlimited
        used[best] += 1
        chosen[session.name] = best
    return chosen


def _places(config: Config, host: str) -> int:
    limit = capacity(config, host)
    return DEFAULT_MAX_AGENTS if limit is None else limit


def _no_room(config: Config, session: Wanted, hosts: Sequence[str], used: Counter[str]) -> NoRoom:
    full = [f"{host} has {capacity(config, host)} places, {used[host]} taken" for host in hosts]
    where = f"host {hosts[0]} has no room" if len(hosts) == 1 else f"none of the hosts {', '.join(hosts)} has room"
    settings = " or ".join(_setting(host) for host in hosts)
    return NoRoom(session.name, session.line,
                  f"session {session.name}: {where} for it ({'; '.join(full)}, counting this plan's "
                  "sessions placed before it)",
                  f"raise {settings} in supervisor.yaml, stop agents there, or list more hosts under the plan's "
                  "`hosts:`")
