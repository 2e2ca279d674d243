"""The files in which a host keeps its panes' transcripts while the engine is away (supervisor/hostside/spoolfiles.py),
and what the engine takes of them (supervisor/engine/host_transcripts.py): each kept row knows its row of the pane's
history, through a host that went down mid-write and a spool cut back after a long absence; and when the host
program tells the keeper that the engine is away."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from supervisor.engine.host_transcripts import lines_beyond
from supervisor.hostside import presence, spoolfiles
from tests.conftest import wait_until

SERVER, PANE = "4242:1700000000", "%3"


def rows(first: int, last: int) -> list[str]:
    return [f"row {number}" for number in range(first, last + 1)]


def test_what_is_kept_comes_back_with_the_row_it_starts_at(tmp_path: Path) -> None:
    root = str(tmp_path)
    spoolfiles.begin(root, SERVER, PANE, 100)
    spoolfiles.add_rows(root, SERVER, PANE, rows(100, 104))
    spoolfiles.add_rows(root, SERVER, PANE, rows(105, 106))
    spoolfiles.show(root, SERVER, PANE, "screen one\nscreen two")
    kept = spoolfiles.take(root, SERVER, PANE)
    assert kept == {"start": 100, "rows": rows(100, 106), "screen": ["screen one", "screen two"]}
    assert spoolfiles.kept_panes(root) == [(SERVER, PANE)]
    # the engine's transcript holds the history's first 103 rows: the rest, then the screen
    assert lines_beyond(kept, 103) == [*rows(103, 106), "screen one", "screen two"]
    spoolfiles.drop(root, SERVER, PANE)
    assert spoolfiles.take(root, SERVER, PANE) is None and spoolfiles.kept_panes(root) == []


def test_a_row_being_written_when_the_host_went_down_is_left_to_the_screen(tmp_path: Path) -> None:
    root = str(tmp_path)
    spoolfiles.begin(root, SERVER, PANE, 0)
    spoolfiles.add_rows(root, SERVER, PANE, rows(0, 2))
    with open(spoolfiles.paths(root, SERVER, PANE)[1], "ab") as handle:
        handle.write(b"row 3 half")
    kept = spoolfiles.take(root, SERVER, PANE)
    assert kept is not None and kept["rows"] == rows(0, 2)


def test_a_new_absence_starts_a_new_spool(tmp_path: Path) -> None:
    root = str(tmp_path)
    spoolfiles.begin(root, SERVER, PANE, 0)
    spoolfiles.add_rows(root, SERVER, PANE, rows(0, 9))
    spoolfiles.show(root, SERVER, PANE, "old screen")
    spoolfiles.begin(root, SERVER, PANE, 50)
    assert spoolfiles.take(root, SERVER, PANE) == {"start": 50, "rows": [], "screen": [""]}


def test_a_long_absence_is_cut_back_to_its_newest_rows_still_counted_right(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spoolfiles, "ROWS_CAP", 64)
    root = str(tmp_path)
    spoolfiles.begin(root, SERVER, PANE, 10)
    for first in range(10, 60, 5):
        spoolfiles.add_rows(root, SERVER, PANE, rows(first, first + 4))
    kept = spoolfiles.take(root, SERVER, PANE)
    assert kept is not None and 0 < len(kept["rows"]) < 50
    assert kept["rows"] == rows(kept["start"], 59)  # each row where its number says
    assert Path(spoolfiles.paths(root, SERVER, PANE)[1]).stat().st_size <= 2 * 64


def test_what_the_engine_takes_of_a_spool_that_does_not_reach_back_to_its_transcript() -> None:
    kept = {"start": 200, "rows": rows(200, 201), "screen": ["last"]}
    assert lines_beyond(kept, 150) == [*rows(200, 201), "last"]  # rows lost before it began: all it has
    assert lines_beyond(kept, 300) == [*rows(200, 201), "last"]  # a history cleared since: all of it too
    assert lines_beyond({"start": "x", "rows": [], "screen": []}, 0) is None  # not what a host program sends


def test_a_host_program_hearing_nothing_from_the_engine_lets_the_keeper_write(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection cut without a word (the host program lives on, hearing nothing): after SILENT seconds the
    keeper may write; the engine's next line takes it back."""
    monkeypatch.setattr(presence, "SILENT", 0.3)
    monkeypatch.setattr(presence, "_LOOK_EVERY", 0.05)
    root = str(tmp_path)
    program = presence.Presence()
    program.here(root)
    keeper = spoolfiles.lock_file(root, ".home")  # the keeper's own open file: flock tells the two apart

    def keeper_may_write() -> bool:
        if spoolfiles.try_lock(keeper, fcntl.LOCK_EX):
            fcntl.flock(keeper, fcntl.LOCK_UN)
            return True
        return False

    assert not keeper_may_write()  # the engine is here
    wait_until(keeper_may_write, timeout=10, message="the engine taken to be away")
    program.heard()
    assert not keeper_may_write()
