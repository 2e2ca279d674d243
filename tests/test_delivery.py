"""Typing into a real pane: the text arrives exactly once, whether the program shows it at once, late, or
drops what was typed while it started."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.engine.delivery import DeliveryError, deliver
from supervisor.tmux.server import Tmux
from tests.conftest import PYTHON, own_tmux, wait_until

# A program in raw mode (nothing typed is echoed) that records every byte it reads in the file named by
# its argument; `body` decides when it reads and what it shows.
_CLI = """\
import os, select, sys, time, tty
got = open(sys.argv[1], "ab", buffering=0)
tty.setraw(0)
start = time.monotonic()
def show(text):
    sys.stdout.write(text)
    sys.stdout.flush()
def read(wait):
    if select.select([0], [], [], wait)[0]:
        data = os.read(0, 4096)
        got.write(data)
        return data
    return b""
{body}
"""


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    with own_tmux(tmp_path) as server:
        yield server


def run_cli(tmux: Tmux, tmp_path: Path, body: str) -> tuple[str, Path]:
    script, got = tmp_path / "cli.py", tmp_path / "got"
    script.write_text(_CLI.format(body=textwrap.dedent(body)))
    got.touch()
    pane = tmux.new_session("cli", tmp_path, f"{PYTHON} {script} {got}", {}).pane
    wait_until(lambda: "ready" in tmux.capture(pane), message="the program's first screen")
    return pane, got


def alive(tmux: Tmux, pane: str) -> bool:
    """As the engine tells: listed, and not dead (a dead pane stays listed: remain-on-exit)."""
    info = tmux.list_panes().get(pane)
    return info is not None and not info.dead


def test_a_busy_program_that_shows_typed_text_only_later_gets_it_once(tmux: Tmux, tmp_path: Path) -> None:
    """Like a CLI in the middle of a turn: its spinner moves, and what is typed shows when the turn ends."""
    pane, got = run_cli(tmux, tmp_path, """
        show("ready\\r\\n")
        frame = 0
        while time.monotonic() - start < 5:
            read(0.1)
            frame += 1
            show(f"\\r\\x1b[Kworking {frame}")
        show("\\r\\n" + open(sys.argv[1], "rb").read().decode().replace("\\r", " <enter> ") + "\\r\\n")
        time.sleep(600)
    """)
    deliver(tmux, pane, "run the tests", pane_alive=lambda: alive(tmux, pane), timeout=1.0)
    wait_until(lambda: "<enter>" in tmux.capture(pane), message="the turn's end")
    assert got.read_bytes().count(b"run the tests") == 1
    assert got.read_bytes().endswith(b"\r")


def test_a_program_that_drops_what_is_typed_while_it_starts_gets_it_again(tmux: Tmux, tmp_path: Path) -> None:
    """Its prompt shows before it reads: whatever arrives in its first second is thrown away."""
    pane, got = run_cli(tmux, tmp_path, """
        show("ready\\r\\n> ")
        while time.monotonic() - start < 0.5:  # read, and thrown away
            if select.select([0], [], [], 0.05)[0]:
                os.read(0, 4096)
        while True:
            data = read(0.5)
            if data:
                show(data.decode().replace("\\r", "\\r\\n> "))
    """)
    deliver(tmux, pane, "hello there", pane_alive=lambda: alive(tmux, pane), timeout=1.0)
    assert got.read_bytes() == b"hello there\r"


def test_a_busy_program_is_never_typed_into_twice(tmux: Tmux, tmp_path: Path) -> None:
    """Its screen is still and it shows nothing typed: with `repaste` off (an agent in a turn), the text is
    typed once and the failure to see it is reported, not hidden behind a second paste."""
    pane, got = run_cli(tmux, tmp_path, """
        show("ready\\r\\n")
        while True:
            read(0.5)
    """)
    with pytest.raises(DeliveryError, match="did not take the pasted text"):
        deliver(tmux, pane, "once only", pane_alive=lambda: alive(tmux, pane), timeout=0.5, repaste=False)
    wait_until(lambda: b"once only" in got.read_bytes(), message="the typed text")
    assert got.read_bytes() == b"once only"


def test_typing_into_an_agent_that_just_ended_leaves_the_server_up(tmux: Tmux, tmp_path: Path) -> None:
    """Its pane stays on screen, dead (remain-on-exit), until the watcher sees it; tmux 3.3 crashed
    pasting into such a pane, and took every other agent's pane with it."""
    other = tmux.new_session("other", tmp_path, "sleep 600", {}).pane
    pane = tmux.new_session("gone", tmp_path, "exit 3", {}).pane
    wait_until(lambda: tmux.list_panes()[pane].dead, message="the pane to die")  # still listed: dead
    with pytest.raises(DeliveryError, match="ended while the text was being typed"):
        deliver(tmux, pane, "too late", pane_alive=lambda: alive(tmux, pane), timeout=0.5)
    assert alive(tmux, other)
    assert tmux.run("list-buffers", "-F", "#{buffer_name}") == []  # nothing left behind


def test_short_texts_are_pasted_exactly_as_given_long_ones_too(tmux: Tmux, tmp_path: Path) -> None:
    """A short text goes to tmux on its command line (no file needed), where ';' ends a command and '#{'
    could be a format: each arrives byte for byte, like a long one loaded from a file."""
    pane, got = run_cli(tmux, tmp_path, """
        show("ready\\r\\n")
        while True:
            read(1)
    """)
    texts = ["ls;", "a\\;", ";", "-x", "--", "{", "%1 #{pane_id} ~ $HOME 'q' \"d\"", "é€ ✓", "z" * 9000 + ";"]
    for number, text in enumerate(texts, 1):
        tmux.paste(pane, text)
        expected = "".join(texts[:number]).encode()
        wait_until(lambda: got.read_bytes() == expected, message=f"{text[:20]!r} pasted")  # noqa: B023
