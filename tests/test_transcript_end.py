"""A run whose pane went before the watcher saw it go (a stop, a removal) is closed by its live screen."""

from __future__ import annotations

import time

from supervisor.core.model import State
from supervisor.engine.engine import Engine
from supervisor.engine.livescreen import live_path
from tests.conftest import Sandbox
from tests.test_pane_identity import engine, record

__all__ = ["engine"]


def test_a_pane_gone_unseen_is_closed_by_its_live_screen(engine: Engine, sandbox: Sandbox) -> None:
    agent = record("gone", sandbox.root, state=State.WAITING, pane="%99", pid=1, started_at=time.time() - 60,
                   extra={"tmux_server": engine.tmux.server_id()})
    engine.store.add_agent(agent)
    transcripts = engine.transcripts
    transcripts.begin("gone", engine.tmux.server_id(), "%99", 0)
    transcripts.show("gone", "%99", 0, "the last answer\n> ", "generic")
    path = transcripts.path("gone")
    assert live_path(path).exists()
    engine.end_transcript(agent)
    assert path.read_text() == "the last answer\n>\n"
    assert transcripts.ended("gone") and not live_path(path).exists()
