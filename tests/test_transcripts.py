"""Transcripts written from tmux's history: every line once, in order, through history trimming, clearing,
restarts and a new engine."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.engine.cursors import CURSOR_SIZE, Cursor
from supervisor.engine.livescreen import shown
from supervisor.engine.screentext import bare, find_end, same_line, strip_ansi, wiped
from supervisor.engine.transcripts import Transcripts, last_words, read_transcript
from supervisor.hostside.history import new_lines
from supervisor.tmux.server import Grid, Scrolled, Tmux
from tests.conftest import own_tmux, wait_until


def test_strip_ansi_keeps_the_last_version_of_a_redrawn_line() -> None:
    raw = "\x1b[1mbold\x1b[0m text\r\n⠋ Working… (0s)\r⠙ Working… (1s)\r\n\x1b]0;title\x07done\n"
    assert strip_ansi(raw) == "bold text\n⠙ Working… (1s)\ndone\n"


@pytest.mark.parametrize(("written", "history", "limit", "new"), [
    (0, 0, 2000, 0),
    (10, 25, 2000, 15),  # grew
    (1990, 1805, 2000, 15),  # full: tmux dropped the oldest 200, then 15 more came
    (2000, 1800, 2000, 0),  # dropped, nothing new
    (1500, 40, 2000, 40),  # cleared, then 40 lines
    (7, 0, 2000, 0),  # cleared
    (9, 9, 10, 0),  # a tiny history drops one line at a time
    (9, 9, 10, 0),
    (10, 9, 10, 0),
])
def test_new_lines(written: int, history: int, limit: int, new: int) -> None:
    assert new_lines(written, history, limit) == new


def test_a_run_is_appended_then_closed_by_its_last_screen(tmp_path: Path) -> None:
    transcripts = Transcripts(tmp_path, 10_000)
    transcripts.begin("auth", "s1", "%1", 0)
    assert transcripts.due("auth", "s1", "%1", 3, 2000) == 3
    assert transcripts.due("auth", "s1", "%2", 3, 2000) == 0  # another pane is not its business
    assert transcripts.due("auth", "s2", "%1", 3, 2000) == 0  # nor the same pane id of another server
    assert transcripts.append("auth", "%1", Scrolled(3, ["zero", "one", "\x1b[31mtwo\x1b[0m", "three   "][-3:]),
                              2000) == ["one", "\x1b[31mtwo\x1b[0m", "three   "]
    assert transcripts.due("auth", "s1", "%1", 3, 2000) == 0
    # 3 more scrolled off after the count of 2 was taken: nothing now, all of them at the next look.
    assert transcripts.append("auth", "%1", Scrolled(8, ["x", "y"]), 2000) == []
    # Shown, not committed: the row the transcript lacks, then the screen, as its live screen.
    transcripts.show("auth", "%1", 0, "four\nfive   \n\n", "demo", Scrolled(4, ["three", "four"]), 2000)
    assert shown(transcripts.path("auth")).decode().splitlines()[-3:] == ["four", "four", "five"]
    transcripts.end("auth", "%1", Scrolled(4, ["three", "four"]), 2000,
                    ["five", "──Pane is dead (signal 15, Tue Nov 24 01:49:20 2026)", "", ""])
    assert transcripts.ended("auth")
    transcripts.end("auth", "%1", None, 0, ["again"])  # a run ends once
    assert transcripts.append("auth", "%1", Scrolled(9, ["late"]), 2000) == []
    text = strip_ansi(read_transcript(transcripts.path("auth")).decode())
    assert text == "one\ntwo\nthree\nfour\nfive\n──\n"


def test_a_new_run_continues_after_a_marker_and_a_new_engine_continues_from_the_cursor(tmp_path: Path) -> None:
    first = Transcripts(tmp_path, 10_000)
    first.begin("auth", "s1", "%1", 0)
    first.append("auth", "%1", Scrolled(2, ["a", "b"]), 2000)
    first.end("auth", "%1", None, 0, ["bye"])
    first.begin("auth", "s1", "%1", 2)  # respawned in the same pane: its history holds the first run
    first.append("auth", "%1", Scrolled(3, ["b", "c"]), 2000)
    # The engine dies; the pane printed 2 more lines meanwhile. A new engine takes over from the cursor.
    second = Transcripts(tmp_path, 10_000)
    second.adopt("auth", "s1", "%1", 5)
    assert second.due("auth", "s1", "%1", 5, 2000) == 2
    second.append("auth", "%1", Scrolled(5, ["c", "d", "e"]), 2000)
    lines = read_transcript(second.path("auth")).decode().splitlines()
    assert lines[:3] == ["a", "b", "bye"] and lines[3].startswith("── auth started again at ")
    assert lines[4:] == ["c", "d", "e"]
    # A new tmux server: nothing of the old cursor applies; the transcript goes on from the pane as it is.
    third = Transcripts(tmp_path, 10_000)
    third.adopt("auth", "s2", "%1", 40)
    assert third.due("auth", "s2", "%1", 41, 2000) == 1


def resized(transcripts: Transcripts, size: str, grid: Grid) -> list[str]:
    assert transcripts.resized("auth", "s1", "%1", size)
    return transcripts.resync("auth", "%1", grid, size)


def test_a_resized_pane_is_followed_by_its_text_not_its_row_count(tmp_path: Path) -> None:
    transcripts = Transcripts(tmp_path, 10_000)
    transcripts.begin("auth", "s1", "%1", 0)
    transcripts.sized("auth", "%1", "40x3")
    assert not transcripts.resized("auth", "s1", "%1", "40x3")
    transcripts.append("auth", "%1", Scrolled(4, ["one", "two", "a long line of forty characters, wrapped", "three"]),
                       2000)
    # Taller by 2: "wrapped" and "three" are pulled back onto the screen, and the history is 2 rows shorter.
    grid = Grid(2, 5, ["one", "two", "a long line of forty characters, wrapped", "three", "four", "", ""])
    assert resized(transcripts, "40x5", grid) == []
    assert transcripts.due("auth", "s1", "%1", 2, 2000) == 0  # not a cleared history: nothing to write again
    assert transcripts.due("auth", "s1", "%1", 4, 2000) == 0  # they scroll off again: written already
    assert transcripts.append("auth", "%1", Scrolled(5, ["three", "four"]), 2000) == ["four"]
    # Narrower: the long line takes two rows, and "five" scrolled off since the last look.
    grid = Grid(7, 2, ["one", "two", "a long line of forty ", "characters, wrapped", "three", "four", "five", "six",
                       ""])
    assert resized(transcripts, "20x2", grid) == ["five"]
    assert transcripts.due("auth", "s1", "%1", 7, 2000) == 0
    # Wider again, after a clear: the transcript's end is nowhere, so the count goes on as it was.
    assert resized(transcripts, "80x2", Grid(0, 2, ["seven", ""])) == []
    assert transcripts.append("auth", "%1", Scrolled(1, ["seven"]), 2000) == ["seven"]
    text = read_transcript(transcripts.path("auth")).decode()
    assert text == "one\ntwo\na long line of forty characters, wrapped\nthree\nfour\nfive\nseven\n"


def test_rows_a_taller_screen_took_back_are_not_written_again_when_the_run_ends(tmp_path: Path) -> None:
    transcripts = Transcripts(tmp_path, 10_000)
    transcripts.begin("auth", "s1", "%1", 0)
    transcripts.sized("auth", "%1", "40x3")
    transcripts.append("auth", "%1", Scrolled(4, ["one", "two", "three", "four"]), 2000)
    assert resized(transcripts, "40x5", Grid(2, 5, ["one", "two", "three", "four", "five", "", ""])) == []
    assert transcripts.unwritten_screen("auth", "%1", 2, ["three", "four", "five"]) == ["five"]  # as `log` shows it
    transcripts.end("auth", "%1", None, 2000, ["three", "four", "five", "", ""], 2)
    assert read_transcript(transcripts.path("auth")).decode() == "one\ntwo\nthree\nfour\nfive\n"


def test_a_resize_before_anything_is_written_keeps_the_count(tmp_path: Path) -> None:
    transcripts = Transcripts(tmp_path, 10_000)
    transcripts.begin("auth", "s1", "%1", 0)
    transcripts.sized("auth", "%1", "40x3")
    assert resized(transcripts, "40x4", Grid(2, 4, ["one", "two", "three", "", "", ""])) == []
    assert transcripts.append("auth", "%1", Scrolled(2, ["one", "two"]), 2000) == ["one", "two"]


def test_rotation_keeps_one_previous_file(tmp_path: Path) -> None:
    transcripts = Transcripts(tmp_path, 50)
    transcripts.begin("auth", "s", "%1", 0)
    transcripts.append("auth", "%1", Scrolled(1, ["x" * 45]), 2000)
    transcripts.append("auth", "%1", Scrolled(2, ["after"]), 2000)
    path = transcripts.path("auth")
    assert path.read_text() == "after\n"
    assert path.with_name("auth.log.1").read_text() == "x" * 45 + "\n"
    assert read_transcript(path) == b"x" * 45 + b"\nafter\n"


def test_a_transcript_never_passes_its_cap(tmp_path: Path) -> None:
    """Rotation comes before the write that would pass the cap: a tick's many lines, or one line longer than the
    cap, are split between the files, and what the two files hold together is the newest output."""
    transcripts = Transcripts(tmp_path, 1000)
    transcripts.begin("auth", "s", "%1", 0)
    path = transcripts.path("auth")
    rows: list[str] = []
    for tick in range(1, 30):
        new = [f"tick {tick} line {n} " + "." * (tick * 3) for n in range(tick)]
        rows += new
        transcripts.append("auth", "%1", Scrolled(len(rows), new), 10**6)
        assert path.stat().st_size <= 1000
        assert not path.with_name("auth.log.1").exists() or path.with_name("auth.log.1").stat().st_size <= 1000
    held = read_transcript(path).decode().splitlines()
    assert len(held) > 10 and held == rows[-len(held):]  # whole lines, the newest, in order
    long = "y" * 2500
    transcripts.append("auth", "%1", Scrolled(len(rows) + 1, [long]), 10**6)
    assert path.stat().st_size <= 1000 and path.with_name("auth.log.1").stat().st_size == 1000
    assert read_transcript(path).decode().replace("\n", "").endswith("y" * 1500)


def test_a_transcript_removed_by_hand_starts_anew(tmp_path: Path) -> None:
    transcripts = Transcripts(tmp_path, 10_000)
    transcripts.begin("auth", "s", "%1", 0)
    transcripts.append("auth", "%1", Scrolled(1, ["old"]), 2000)
    transcripts.path("auth").unlink()
    transcripts.append("auth", "%1", Scrolled(2, ["new"]), 2000)
    assert transcripts.path("auth").read_text() == "new\n"


def test_last_words(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"\x1b[31mError:\x1b[0m cannot connect\r\n\r\n\r\n")
    assert last_words(log) == ["Error: cannot connect"]
    assert last_words(tmp_path / "missing.log") == []


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    with own_tmux(tmp_path, history_limit="100") as server:  # tmux drops its oldest 10 lines at a time
        server.use_control()
        yield server


def test_every_line_of_a_real_pane_once_in_order_while_tmux_trims_its_history(tmux: Tmux, tmp_path: Path) -> None:
    """Looks as the watcher makes them, after each burst of 7 lines a pane prints on cue: less than a tenth of
    its history limit between two looks (at 50,000 lines, 1 s ticks see up to 5,000; more than a tenth cannot
    be told from a trim of the history, see `new_lines`)."""
    cue = tmp_path / "cue"
    os.mkfifo(cue)
    pane = tmux.new_session("a", Path("/tmp"), f"n=0; while read x; do for j in 1 2 3 4 5 6 7; do n=$((n+1));"
                               f" echo line $n; done; done < {cue}; echo END; sleep 600", {}).pane
    transcripts = Transcripts(tmp_path, 10**9)
    server = tmux.server_id()
    transcripts.begin("a", server, pane, 0)

    def look() -> str:
        info = tmux.list_panes()[pane]
        due = transcripts.due("a", server, pane, info.history, info.history_limit)
        screens, scrolled = tmux.look([pane], {pane: due} if due else {})
        if pane in scrolled:
            transcripts.append("a", pane, scrolled[pane], info.history_limit)
        return screens[pane]

    def caught_up() -> bool:  # the burst is over: the transcript has all the pane's history
        info = tmux.list_panes()[pane]
        return transcripts.due("a", server, pane, info.history, info.history_limit) == 0

    with open(cue, "w") as prompter:
        for burst in range(1, 91):
            prompter.write("\n")
            prompter.flush()
            wait_until(lambda b=burst: f"line {7 * b}\n" in look() + "\n" and caught_up(), message=f"burst {burst}")
    wait_until(lambda: "END" in look(), message="the end")
    info = tmux.list_panes()[pane]
    due = transcripts.due("a", server, pane, info.history, info.history_limit)
    screens, scrolled = tmux.look([pane], {pane: due} if due else {})
    transcripts.end("a", pane, scrolled.get(pane), info.history_limit, screens[pane].splitlines())
    lines = read_transcript(transcripts.path("a")).decode().splitlines()
    assert lines == [f"line {i}" for i in range(1, 631)] + ["END"]
    assert info.history_limit == 100 and info.history < 100  # tmux trimmed it all along


def test_a_look_reads_one_spare_row_and_catches_up_on_rows_that_scrolled_off_meanwhile(
        tmux: Tmux, tmp_path: Path) -> None:
    """A pane that printed a line since the listing is read with one history row to spare, not ten (tmux formats
    every row it gives with its colours: most of what a printing pane costs it). When more rows scrolled off
    between the listing and the capture than were taken, the next look takes them: every line once, in order."""
    cue = tmp_path / "cue"
    os.mkfifo(cue)
    pane = tmux.new_session("a", Path("/tmp"), f"exec 3< {cue}; read x <&3; for i in $(seq 1 30); do echo line $i;"
                               f" done; read x <&3; echo line 31; read x <&3; echo line 32; read x <&3;"
                               f" for i in $(seq 33 41); do echo line $i; done; read x <&3; echo END; sleep 600",
                            {}).pane
    tmux.run("resize-window", "-t", pane, "-x", "40", "-y", "5")
    transcripts = Transcripts(tmp_path, 10**9)
    server = tmux.server_id()
    transcripts.begin("a", server, pane, 0)

    def due(history: int) -> int:
        return transcripts.due("a", server, pane, history, 100)

    def look(asked: int) -> list[str]:
        _screens, scrolled = tmux.look([pane], {pane: asked} if asked else {})
        return transcripts.append("a", pane, scrolled[pane], 100) if pane in scrolled else []

    def history() -> int:
        return tmux.list_panes()[pane].history

    with open(cue, "w") as prompter:
        prompter.write("\n")
        prompter.flush()
        wait_until(lambda: "line 30" in tmux.capture(pane), message="the first lines")
        look(due(history()))
        before = history()
        prompter.write("\n")  # line 31: one row scrolls off
        prompter.flush()
        wait_until(lambda: history() == before + 1, message="a row scrolled off")
        screens, scrolled = tmux.look([pane], {pane: due(history())})
        assert due(history()) == 1 and len(scrolled[pane].rows) == 2  # the row due, and one to spare
        assert transcripts.append("a", pane, scrolled[pane], 100) == ["line 27"]
        prompter.write("\n")  # line 32
        prompter.flush()
        wait_until(lambda: history() == before + 2, message="another row")
        asked = due(history())  # the listing's count; then nine more scroll off before the capture
        prompter.write("\n")
        prompter.flush()
        wait_until(lambda: history() == before + 11, message="nine rows more")
        assert look(asked) == []  # more than were taken: none now
        assert look(due(history())) == [f"line {i}" for i in range(28, 38)]
        prompter.write("\n")
        prompter.flush()
        wait_until(lambda: "END" in tmux.capture(pane), message="the end")
    size = history()
    screens, scrolled = tmux.look([pane], {pane: due(size)} if due(size) else {})
    transcripts.end("a", pane, scrolled.get(pane), 100, screens[pane].splitlines(), size)
    lines = read_transcript(transcripts.path("a")).decode().splitlines()
    assert lines == [f"line {i}" for i in range(1, 42)] + ["END"]


def test_lines_a_cleared_screen_wiped_are_in_the_log_once_in_order(tmux: Tmux, tmp_path: Path) -> None:
    """`clear` empties the history and the screen: the lines that were on the screen never scroll into the
    history, and are committed from the live screen before the next one is written over it."""
    cue = tmp_path / "cue"
    os.mkfifo(cue)
    pane = tmux.new_session("a", Path("/tmp"), f"exec 3< {cue}; read x <&3; for i in 1 2 3 4 5 6 7; do echo line $i;"
                               f" done; read x <&3; clear; read x <&3; echo line 8; echo line 9; read x <&3;"
                               f" echo line 10; read x <&3; clear; sleep 600", {}).pane
    tmux.run("resize-window", "-t", pane, "-x", "40", "-y", "5")
    transcripts = Transcripts(tmp_path, 10**9)
    server = tmux.server_id()
    transcripts.begin("a", server, pane, 0)

    def look() -> tuple[str, int]:
        info = tmux.list_panes()[pane]
        due = transcripts.due("a", server, pane, info.history, info.history_limit)
        screens, scrolled = tmux.look([pane], {pane: due} if due else {})
        history = info.history
        if pane in scrolled:
            transcripts.append("a", pane, scrolled[pane], info.history_limit)
            history = scrolled[pane].size
        transcripts.show("a", pane, history, screens[pane], "")
        return screens[pane], history

    with open(cue, "w") as prompter:
        for step, done in enumerate((lambda s, h: "line 7" in s and h == 3, lambda s, h: not s.strip() and h == 0,
                                       lambda s, h: "line 9" in s, lambda s, h: "line 10" in s)):
            prompter.write("\n")
            prompter.flush()
            wait_until(lambda d=done: d(*look()), message=f"step {step}")
    info = tmux.list_panes()[pane]
    screens, scrolled = tmux.look([pane], {})
    transcripts.end("a", pane, scrolled.get(pane), info.history_limit, screens[pane].splitlines(), info.history)
    assert shown(transcripts.path("a")).decode().splitlines() == [f"line {i}" for i in range(1, 11)]


@given(st.lists(st.text(alphabet="ab \x1b[m", max_size=6), max_size=8), st.text(alphabet="ab", max_size=12),
       st.lists(st.text(alphabet="ab ", max_size=6), max_size=4))
def test_the_wipe_check_reads_only_the_rows_it_needs_and_answers_as_a_whole_reading_would(
        rows: list[str], key: str, new: list[str]) -> None:
    """Where committed text ends at the top of a live screen, and what a new screen wiped off the old one, read
    from as few rows as tell it (most looks at a printing agent): the same answers as from all of them."""
    shown = [bare(row) for row in rows]
    text = "".join(shown)
    whole = None
    if key and text.startswith(key):
        reach = 0
        for count, row in enumerate(shown, start=1):
            reach += len(row)
            if reach >= len(key):
                whole = count if reach == len(key) else count - 1
                break
    assert find_end(iter(shown), key, at_start=True) == whole
    top = bare(new[0]) if new else None
    keys = [bare(line) for line in rows]
    expected = [] if not rows else rows if top is None else [] if same_line(keys[0], top) \
        else rows[:keys.index(top)] if top and top in keys else rows
    assert wiped(rows, new) == expected



@given(st.text(max_size=40), st.text(max_size=12), st.integers(0, 2**40), st.booleans(), st.integers(0, 2**40),
       st.text(max_size=12))
def test_cursor_record_is_the_json_of_its_fields(server: str, pane: str, lines: int, ended: bool, seen: int,
                                                 size: str) -> None:
    """The record is written each tick a pane printed, from a text partly cached: it stays the bytes `json.dumps`
    makes of the fields (what `load_cursor`, and engines before this one, read)."""
    cursor = Cursor(server, pane, lines, ended, seen, size)
    fields = {"server": server, "pane": pane, "lines": lines, "ended": ended, "seen": seen, "size": size}
    assert cursor.record() == json.dumps(fields).encode().ljust(CURSOR_SIZE) + b"\n"
