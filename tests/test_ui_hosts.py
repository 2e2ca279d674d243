"""The dashboard while a host is down: a banner naming it and why, its agents `unreachable` with what they were
doing, the engine's own banner first while the engine is away, and nothing once the host is back."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from supervisor.ui.app import SupervisorApp
from supervisor.ui.fake import NOW, FakeSource
from supervisor.ui.testing import loaded, run, wait_for

REFUSED = "could not connect (exit 255): ssh: connect to host 10.0.0.7 port 22: Connection refused"


def test_a_host_down_shows_a_banner_until_it_is_back() -> None:
    source = FakeSource.sample()
    source.hosts = [{"name": "box1", "state": "up", "agents": 0, "max_agents": 10, "load": None,
                     "latency_ms": 3.1, "last_seen": None, "error": None}]
    app = SupervisorApp(source, clock=lambda: NOW, screen_seconds=0.2)

    async def scenario(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        banner = app.banner
        await wait_for(pilot, lambda: any(method == "hosts" for method, _ in source.calls), message="hosts asked")
        assert not banner.display  # every host up: no banner

        source.set_state("api", "unreachable", last_state="working")
        source.set_host("box1", "down", REFUSED, agents=1)
        await wait_for(pilot, lambda: banner.display, message="the host's banner")
        assert str(banner.render()) == f"host box1 down: {REFUSED} · 1 agent unreachable  (supervisor hosts)"
        await wait_for(pilot, lambda: app.agents_table.get_cell("api", "state").plain == "unreachable (working)",
                       message="the agent unreachable, with what it was doing")

        source.go_down(restartable=False)  # the engine away: its banner, not the host's
        await wait_for(pilot, lambda: "engine restarting" in str(banner.render()), message="the engine's banner")
        source.restartable = True
        await wait_for(pilot, lambda: app.engine_down is None and "host box1 down" in str(banner.render()),
                       message="the host's banner again")

        source.set_state("api", "working", last_state=None)
        source.set_host("box1", "up")
        await wait_for(pilot, lambda: not banner.display, message="the banner gone with the host back")

    run(app, scenario)
