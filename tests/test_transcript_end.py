"""A run whose pane went before the watcher saw it go (a stop, a removal) is closed by its live screen."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from supervisor.core.model import State
from supervisor.engine.engine import Engine
from supervisor.engine.livescreen import LiveScreen, encode, live_path, read_live
from supervisor.engine.transcripts import Transcripts
from supervisor.tmux.server import Scrolled
from tests.conftest import Sandbox, wait_until
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


def test_a_symlink_in_a_transcripts_place_is_not_written_through(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    logs, elsewhere = tmp_path / "logs", tmp_path / "elsewhere"
    logs.mkdir()
    elsewhere.mkdir()
    targets = {suffix: elsewhere / f"target{suffix}" for suffix in (".log", ".log.live", ".log.pos")}
    for suffix, target in targets.items():
        target.write_text("keep\n")
        (logs / f"a{suffix}").symlink_to(target)
    transcripts = Transcripts(logs, 10_000)
    with caplog.at_level(logging.ERROR):
        transcripts.begin("a", "s", "%1", 0)
        transcripts.append("a", "%1", Scrolled(1, ["one"]), 2000)
        transcripts.append("a", "%1", Scrolled(2, ["one", "two"]), 2000)
        transcripts.show("a", "%1", 2, "three", "demo")
    assert all(target.read_text() == "keep\n" for target in targets.values())
    assert transcripts.fault is not None and transcripts.waiting()
    assert sum("cannot write the transcripts" in record.message for record in caplog.records) == 1
    live = live_path(logs / "a.log")
    assert read_live(live) is not None  # the symlink was dropped with the run before, a plain file written anew
    live.unlink()
    live.symlink_to(targets[".log.live"])
    targets[".log.live"].write_bytes(encode(LiveScreen("s", "%1", "demo", 0, 0, 0, ("not here",))))
    assert read_live(live) is None  # a reader does not follow one either
    live.unlink()
    os.mkfifo(logs / "a.log.live")
    assert read_live(live_path(logs / "a.log")) is None  # nor wait on a FIFO


def test_a_run_ended_while_rows_scrolled_off_after_its_listing_keeps_them_all(engine: Engine, sandbox: Sandbox,
                                                                               tmp_path: Path) -> None:
    """A look takes one history row to spare per row due; when more scrolled off between the listing and the
    capture (a run stopped while it prints), the end of its transcript looks again: every line once, in order."""
    cue = tmp_path / "cue"
    os.mkfifo(cue)
    server = engine.tmux.server_id()
    created = engine.tmux.new_session("fast", sandbox.root, f"exec 3< {cue}; read x <&3; for i in $(seq 1 30); do"
                                      f" echo line $i; done; read x <&3; echo line 31; read x <&3; for i in"
                                      f" $(seq 32 40); do echo line $i; done; sleep 600", {})
    engine.tmux.run("resize-window", "-t", created.pane, "-x", "40", "-y", "5")
    agent = record("fast", sandbox.root, state=State.WORKING, pane=created.pane, pid=created.pid,
                   started_at=time.time() - 60, extra={"tmux_server": server})
    engine.store.add_agent(agent)
    engine.transcripts.begin("fast", server, created.pane, 0)

    def history() -> int:
        return engine.tmux.list_panes()[created.pane].history

    with open(cue, "w") as prompter:
        prompter.write("\n")
        prompter.flush()
        wait_until(lambda: "line 30" in engine.tmux.capture(created.pane), message="the first lines")
        info = engine.tmux.list_panes()[created.pane]
        _screen, taken = engine.look_at(agent, info)
        assert taken is not None
        engine.transcripts.append("fast", created.pane, taken, info.history_limit)
        before = history()
        prompter.write("\n")
        prompter.flush()
        wait_until(lambda: history() == before + 1, message="line 31")
        listed = engine.tmux.list_panes()[created.pane]  # one row due; then nine more scroll off
        prompter.write("\n")
        prompter.flush()
        wait_until(lambda: "line 40" in engine.tmux.capture(created.pane), message="the last lines")
        screen, taken = engine.look_at(agent, listed)
    assert screen is not None
    engine.transcripts.end("fast", created.pane, taken, listed.history_limit, screen.splitlines(), listed.history)
    assert engine.transcripts.path("fast").read_text().split() == \
        [word for i in range(1, 41) for word in ("line", str(i))]
