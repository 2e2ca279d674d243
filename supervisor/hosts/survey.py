"""`supervisor hosts`: each host's row (name, state, agents, max_agents, load, latency_ms, last_seen, error).

The running engine answers from the link it keeps to each host (supervisor/engine/hostlinks.py). Without an
engine, a row's state comes from a check made for the request (one ssh round trip per host, all hosts at
once, supervisor/hosts/check.py): `up` when the host has all it needs, `down` with the first thing it lacks
(ssh's own line when it could not be reached). `local`, this machine, comes first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from supervisor.hosts.check import HostCheck, check
from supervisor.hostsconfig import LOCAL

if TYPE_CHECKING:
    from supervisor.config import Config, HostConfig

UP: Final = "up"
DOWN: Final = "down"
CONNECTING: Final = "connecting"  # the engine's first attempt at its link has not ended yet


def check_all(hosts: Mapping[str, HostConfig], isolation: str | None = None,
              commands: Sequence[str] = ()) -> dict[str, HostCheck]:
    """Every host checked at once (each within check.TIMEOUT), by name in the order given. `isolation`:
    supervisor.yaml's (None: not set); `commands`: the agent command lines whose CLI each host must have."""
    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=min(16, len(hosts)), thread_name_prefix="host-check") as pool:
        done = {name: pool.submit(check, host, isolation=isolation, commands=commands)
                for name, host in hosts.items()}
        return {name: future.result() for name, future in done.items()}


def survey(config: Config, agents: Mapping[str, int] | None) -> list[dict[str, Any]]:
    """A row per host, `local` first. `agents`: the live agents on each host (a host not named: 0), or None
    when unknown (the engine is not running)."""
    load1, _, _ = os.getloadavg()
    rows = [row(LOCAL, UP, None if agents is None else agents.get(LOCAL, 0), config.local_max_agents,
                 load1, os.cpu_count(), None, time.time(), None)]
    for name, found in check_all(config.hosts).items():
        host = config.hosts[name]
        rows.append(row(name, UP if found.ok else DOWN, None if agents is None else agents.get(name, 0),
                         host.max_agents, found.load1, found.cores, found.latency_ms,
                         found.checked_at if found.reachable else None, found.error))
    return rows


def row(name: str, state: str, agents: int | None, max_agents: int | None, load1: float | None,
         cores: int | None, latency_ms: float | None, seen: float | None, error: str | None) -> dict[str, Any]:
    return {
        "name": name,
        "state": state,
        "agents": agents,
        "max_agents": max_agents,
        "load": None if load1 is None else {"load1": round(load1, 2), "cores": cores},
        "latency_ms": None if latency_ms is None else round(latency_ms, 1),
        "last_seen": None if seen is None else _iso(seen),
        "error": error,
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
