"""The cap on automatic restarts: an agent whose pane keeps ending (whatever each run lasted) is restarted by
its policy at most `limits.max_auto_restarts` times within `limits.auto_restart_window`, then stays exited with
the reason and one `exited` alert; a human's `restart` starts the count afresh. On a real engine and tmux."""

from __future__ import annotations

from tests.conftest import Sandbox, wait_until
from tests.test_watching import config, events, triggers


def test_an_agent_that_keeps_ending_is_restarted_at_most_the_cap_then_stays_exited(sandbox: Sandbox) -> None:
    # Each run lasts past start_seconds, so the policy's own count of quick exits never gives up: only the cap
    # stops the loop.
    config(sandbox, "restart: always\nstart_seconds: 1s\nmax_auto_restarts: 2\nauto_restart_window: 1h\n")
    sandbox.sv("start", "loopy", "--command", "sh -c 'sleep 2; exit 3'")

    def capped() -> bool:
        agent = sandbox.ls()["loopy"]
        return agent["state"] == "exited" and "not restarted" in (agent["reason"] or "")

    wait_until(capped, timeout=60, message="loopy left exited by the cap")
    agent = sandbox.ls()["loopy"]
    assert "2 automatic restarts within 1h (limits.max_auto_restarts)" in agent["reason"]
    assert "supervisor restart loopy" in agent["reason"]
    assert len(events(sandbox, "loopy", "restarting")) == 2
    assert len(events(sandbox, "loopy", "not_restarted")) == 1
    exits = triggers(sandbox, "loopy", "exited")
    assert len(exits) == 1 and "not restarted" in exits[0]["summary"]  # one alert, saying why

    # A human's restart is theirs: the policy restarts it again afterwards.
    sandbox.sv("restart", "loopy")
    wait_until(lambda: len(events(sandbox, "loopy", "restarting")) == 3, timeout=30,
               message="the policy restarting loopy again after the human's restart")
    wait_until(lambda: len(events(sandbox, "loopy", "not_restarted")) == 2, timeout=60,
               message="the cap reached again")
    assert len(triggers(sandbox, "loopy", "exited")) == 2
