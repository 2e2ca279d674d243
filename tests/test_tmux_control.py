"""The watcher's tmux queries through a control-mode client and through spawned tmux give the same answers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from supervisor.tmux.control import ControlClient
from supervisor.tmux.server import ENGINE_SESSION, Tmux
from supervisor.tmux.transport import Done, LocalTransport
from tests.conftest import own_tmux, wait_until


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    with own_tmux(tmp_path) as server:
        yield server


def test_control_and_spawned_queries_agree(tmux: Tmux) -> None:
    pane = tmux.new_session("a", Path("/tmp"), "printf '%%end 1 2 1\\nline two\\n'; sleep 600", {}).pane
    other = tmux.new_session("b", Path("/tmp"), "echo other; sleep 600", {}).pane
    wait_until(lambda: "line two" in tmux.capture(pane) and "other" in tmux.capture(other), message="output")
    spawned = (tmux.list_panes(), tmux.capture_many([pane, other, "%999"]))
    tmux.use_control()
    controlled = (tmux.list_panes(), tmux.capture_many([pane, other, "%999"]))
    assert controlled[0] == spawned[0]
    assert controlled[1][pane] == spawned[1][pane]
    assert controlled[1][other] == spawned[1][other]
    assert "%end 1 2 1" in controlled[1][pane]  # pane text that looks like protocol stays text
    assert "%999" not in controlled[1]  # a vanished pane is left out
    assert tmux.listed_server is not None


def test_control_client_recovers_when_the_server_restarts(tmux: Tmux) -> None:
    tmux.use_control()
    assert tmux.list_panes()
    tmux.kill_server()
    assert tmux.list_panes() == {}
    tmux.ensure_server()  # with the `_engine` session the control client attaches to
    assert [info.session for info in tmux.list_panes().values()] == [ENGINE_SESSION]


def test_a_vanished_pane_fails_only_its_own_commands(tmux: Tmux) -> None:
    """tmux skips the rest of a command line after a failing command: a pane gone between the listing and
    the look must not take the other panes' answers with it, nor leave the client waiting for them."""
    tmux.use_control()
    first = tmux.new_session("a", Path("/tmp"), "seq 1 100; sleep 600", {}).pane
    last = tmux.new_session("b", Path("/tmp"), "echo second; sleep 600", {}).pane
    wait_until(lambda: "second" in tmux.capture(last) and "100" in tmux.capture(first), message="output")
    screens, scrolled = tmux.look([first, "%999", last], {first: 5, "%999": 5, last: 0})
    assert set(screens) == {first, last} and "second" in screens[last]
    assert set(scrolled) == {first} and scrolled[first].rows[-1] == str(scrolled[first].size)
    assert tmux.query("display-message", "-p", "still answering") == ["still answering"]


def test_replies_longer_than_a_read_come_back_whole(tmux: Tmux) -> None:
    """Replies are read in large chunks and cut at their own end line: a reply spanning many reads, with lines
    that look like the protocol's, comes back as spawned tmux gives it, and the next command still answers."""
    script = "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo \"%end $i 7 1\"; echo \"%begin $i 8 1 line $i\"; done"
    pane = tmux.new_session("a", Path("/tmp"), f"sh -c '{script}'; sleep 600", {}).pane
    wait_until(lambda: tmux.list_panes()[pane].history >= 5900, message="the pane's history")
    spawned = tmux.look([pane], {pane: 5900})
    tmux.use_control()
    controlled = tmux.look([pane, "%999", pane], {pane: 5900})
    assert controlled[0][pane].rstrip("\n") == spawned[0][pane]  # spawned tmux drops the blank rows at the end
    assert controlled[1][pane] == spawned[1][pane]
    scrolled = controlled[1][pane]
    assert len(scrolled.rows) == scrolled.size >= 5900 and scrolled.rows[0] == "%end 1 7 1"
    assert tmux.query("display-message", "-p", "still answering") == ["still answering"]


class CountingTransport(LocalTransport):
    """The real local transport, counting the tmux processes it starts."""

    def __init__(self) -> None:
        self.started = 0

    def spawn(self, socket: Path, args: list[str], env: Mapping[str, str] | None) -> Done:
        self.started += 1
        return super().spawn(socket, args, env)

    def control(self, socket: Path, session: str, env: Mapping[str, str] | None) -> ControlClient:
        self.started += 1
        return super().control(socket, session, env)


def test_no_server_is_listed_without_a_tmux_process(tmp_path: Path) -> None:
    """An engine whose agents all run on hosts has no tmux server here: its watch, once a second, finds no panes
    without starting a tmux process to be told so; and a server started later is listed as before."""
    transport = CountingTransport()
    tmux = Tmux(tmp_path / "tmux.sock", tmp_path / "tmux.conf", transport=transport)
    tmux.use_control()
    for _ in range(3):
        assert tmux.list_panes() == {}
        assert tmux.listed_server is None
    assert transport.started == 0
    try:
        tmux.ensure_server()
        assert [info.session for info in tmux.list_panes().values()] == [ENGINE_SESSION]
        assert tmux.listed_server is not None
    finally:
        tmux.close()
        tmux.kill_server()
