"""A host pushing a flood of requests (an agent there can write into the host program's output) starts no thread
per event: each agent has a bounded number of requests in flight, a host a bounded number of workers, and events
naming no agent of that host start nothing. The engine is real; the host's pushes are handed to it as the link's
reader does, and the requests' answering stands still as a held approval does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from supervisor.engine import remoterequests
from supervisor.engine.engine import Engine
from supervisor.engine.remoterequests import PER_AGENT_IN_FLIGHT, WORKERS_PER_AGENT
from tests.conftest import Sandbox, wait_until


@pytest.fixture
def engine(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    sandbox.write_config("agent:\n  profile: generic\n  command: sleep 600\n"
                         "hosts:\n  box1:\n    ssh: box1\n    max_agents: 2\n  box2:\n    ssh: box2\n")
    made = Engine(sandbox.paths)
    made.reload_config_if_changed()
    try:
        yield made
    finally:
        made.store.close()


def _requesting() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("remote-request")]


def test_a_flood_of_requests_is_bounded_per_agent_and_per_host(engine: Engine,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("far", "near"):
        agent = engine.launcher.new_session(name, None, "sleep 600", "generic", "HEAD", engine.config)
        agent.host = "box1"
        engine.store.add_agent(agent)
    release = threading.Event()
    served: list[str] = []
    lock = threading.Lock()

    def held(self: remoterequests.RemoteRequests, host: str, message: dict[str, Any]) -> None:
        release.wait(60)  # as an approval waiting for a human
        with lock:
            served.append(str(message["agent"]))

    monkeypatch.setattr(remoterequests.RemoteRequests, "serve", held)
    requests = engine.remote_requests
    before = len(_requesting())
    for conn in range(500):
        for name in ("far", "near", "ghost"):
            requests.on_event("box1", {"event": "agent_request", "agent": name, "conn": conn, "request": {}})
        requests.on_event("box2", {"event": "agent_request", "agent": "far", "conn": conn, "request": {}})
        requests.on_event("box1", {"event": "agent_request", "agent": ["far"], "conn": conn, "request": {}})
    assert requests.in_flight("far") == requests.in_flight("near") == PER_AGENT_IN_FLIGHT
    assert len(_requesting()) - before <= WORKERS_PER_AGENT * 2  # box1 has two places
    release.set()
    wait_until(lambda: len(served) == 2 * PER_AGENT_IN_FLIGHT, message="the requests in flight answered")
    assert sorted(set(served)) == ["far", "near"]  # none for an agent of another host, or for no agent
    wait_until(lambda: requests.in_flight("far") == 0, message="none in flight")
    # Once answered, an agent's requests are taken again.
    requests.on_event("box1", {"event": "agent_request", "agent": "far", "conn": 1, "request": {}})
    wait_until(lambda: len(served) == 2 * PER_AGENT_IN_FLIGHT + 1, message="a later request answered")
