"""The files in which a host keeps its panes' transcripts while the engine is away (supervisor/hostside/spoolfiles.py),
and what the engine takes of them (supervisor/engine/host_transcripts.py): each kept row knows its row of the pane's
history, through a host that went down mid-write and a spool cut back after a long absence; and when the host
program tells the keeper that the engine is away."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from supervisor.core.model import validate_name
from supervisor.engine.host_transcripts import Copy, lines_beyond, rows_beyond
from supervisor.errors import UsageError
from supervisor.hosts.remote.layout import HostLayout
from supervisor.hostside import presence, spoolfiles
from tests.conftest import wait_until

SERVER, PANE = "4242:1700000000", "%3"


def rows(first: int, last: int) -> list[str]:
    return [f"row {number}" for number in range(first, last + 1)]


def copy_of(root: str) -> Copy:
    """The pane's copy as the engine takes it (every part)."""
    first = spoolfiles.take(root, SERVER, PANE)
    assert first is not None
    copy = Copy(first["start"], first["end"], list(first["rows"]), first["screen"], first["size"])
    offset = first["next"]
    while offset is not None:
        part = spoolfiles.take(root, SERVER, PANE, offset)
        assert part is not None and part["file"] == first["file"]
        copy.rows += part["rows"]
        offset = part["next"]
    return copy


def test_what_is_kept_comes_back_with_the_row_it_starts_at(tmp_path: Path) -> None:
    root = str(tmp_path)
    spoolfiles.begin(root, SERVER, PANE, 100)
    start = spoolfiles.add_rows(root, SERVER, PANE, rows(100, 104), 100, 105)
    spoolfiles.add_rows(root, SERVER, PANE, rows(105, 106), start, 107)
    spoolfiles.show(root, SERVER, PANE, "screen one\nscreen two")
    kept = copy_of(root)
    assert (kept.start, kept.end, kept.rows, kept.screen) == (100, 107, rows(100, 106), ["screen one", "screen two"])
    assert spoolfiles.kept_panes(root) == [(SERVER, PANE)]
    # the engine's transcript holds the history's first 103 rows: the rest, then the screen
    assert lines_beyond(kept, 103) == [*rows(103, 106), "screen one", "screen two"]
    assert not spoolfiles.drop(root, SERVER, PANE, 106, kept.size)  # not the copy it took: kept
    assert spoolfiles.drop(root, SERVER, PANE, kept.end, kept.size)
    assert spoolfiles.take(root, SERVER, PANE) is None and spoolfiles.kept_panes(root) == []


def test_a_copy_grown_after_the_engine_took_it_is_not_dropped(tmp_path: Path) -> None:
    """The engine went away again between its take and its drop: what the keeper added meanwhile stays."""
    root = str(tmp_path)
    spoolfiles.begin(root, SERVER, PANE, 0)
    spoolfiles.add_rows(root, SERVER, PANE, rows(0, 4), 0, 5)
    kept = copy_of(root)
    spoolfiles.add_rows(root, SERVER, PANE, rows(5, 6), 0, 7)
    assert not spoolfiles.drop(root, SERVER, PANE, kept.end, kept.size)
    assert copy_of(root).rows == rows(0, 6)


def test_a_large_copy_comes_in_parts_each_row_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spoolfiles, "CHUNK", 100)
    root = str(tmp_path)
    spoolfiles.begin(root, SERVER, PANE, 7)
    spoolfiles.add_rows(root, SERVER, PANE, rows(7, 206), 7, 207)
    first = spoolfiles.take(root, SERVER, PANE)
    assert first is not None and first["next"] is not None and len(first["rows"]) < 20
    assert copy_of(root).rows == rows(7, 206)


def test_the_engine_takes_the_rows_a_full_history_cannot_tell() -> None:
    """A pane at its history's limit printed a tenth of it while the engine was away: its history has the size it
    had, and the copy alone says what came."""
    copy = Copy(start=1891, end=1891, rows=rows(1, 3000), screen=["last"], size=1)
    assert rows_beyond(copy, 1891) == rows(1, 3000)
    assert rows_beyond(copy, 1900) == rows(10, 3000)  # the transcript had its first rows already
    assert rows_beyond(copy, 1800) == rows(1, 3000)  # rows scrolled by before the copy began: all it has
    assert rows_beyond(Copy(0, 5, rows(0, 4), [], 1), 9) == []  # the transcript past it: nothing twice


def test_no_agent_owns_the_folder_of_the_panes_copies_nor_the_keepers_files(tmp_path: Path) -> None:
    """Each agent's own spool folder is spool/NAME (its sandbox may write there): no name is the panes' copies,
    the keeper's locks or its log."""
    layout = HostLayout(str(tmp_path))
    taken = [spoolfiles.panes_folder(layout.root), *(str(Path(spoolfiles.folder(layout.root)) / name)
                                                      for name in (".home", ".keeper", spoolfiles.LOG,
                                                                   spoolfiles.WANT))]
    for path in taken:
        assert Path(path).parent == Path(layout.spool("a")).parent
        with pytest.raises(UsageError):
            validate_name(Path(path).name)


def test_copies_no_transcript_follows_are_swept(tmp_path: Path) -> None:
    root = str(tmp_path)
    for pane in ("%1", "%2", "%3"):
        spoolfiles.begin(root, SERVER, pane, 0)
        spoolfiles.add_rows(root, SERVER, pane, rows(0, 1), 0, 2)
    Path(spoolfiles.paths(root, SERVER, "%3")[0] + ".77.new").write_text("half")  # a host down mid-replace
    assert spoolfiles.sweep(root, {(SERVER, "%2")}) == 2
    assert spoolfiles.kept_panes(root) == [(SERVER, "%2")]
    assert sorted(path.name for path in Path(spoolfiles.panes_folder(root)).iterdir()) == [
        f"{spoolfiles.key(SERVER, '%2')}.head", f"{spoolfiles.key(SERVER, '%2')}.rows"]


def test_a_row_being_written_when_the_host_went_down_is_left_to_the_screen(tmp_path: Path) -> None:
    root = str(tmp_path)
    spoolfiles.begin(root, SERVER, PANE, 0)
    spoolfiles.add_rows(root, SERVER, PANE, rows(0, 2), 0, 3)
    with open(spoolfiles.paths(root, SERVER, PANE)[1], "ab") as handle:
        handle.write(b"row 3 half")
    assert copy_of(root).rows == rows(0, 2)


def test_a_damaged_head_reads_as_no_copy(tmp_path: Path) -> None:
    root = str(tmp_path)
    spoolfiles.begin(root, SERVER, PANE, 0)
    Path(spoolfiles.paths(root, SERVER, PANE)[0]).write_bytes(b"{not json")
    assert spoolfiles.head(root, SERVER, PANE) is None and spoolfiles.take(root, SERVER, PANE) is None


def test_a_long_absence_is_cut_back_to_its_newest_rows_still_counted_right(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spoolfiles, "ROWS_CAP", 64)
    root = str(tmp_path)
    spoolfiles.begin(root, SERVER, PANE, 10)
    start = 10
    for first in range(10, 60, 5):
        start = spoolfiles.add_rows(root, SERVER, PANE, rows(first, first + 4), start, first + 5)
    assert start > 10
    kept = copy_of(root)
    assert 0 < len(kept.rows) < 50
    assert kept.rows == rows(kept.start, 59)  # each row where its number says
    assert Path(spoolfiles.paths(root, SERVER, PANE)[1]).stat().st_size <= 2 * 64


def test_what_the_engine_takes_of_a_spool_that_does_not_reach_back_to_its_transcript() -> None:
    kept = Copy(start=200, end=202, rows=rows(200, 201), screen=["last"], size=1)
    assert lines_beyond(kept, 150) == [*rows(200, 201), "last"]  # rows lost before it began: all it has
    assert lines_beyond(kept, 300) == [*rows(200, 201), "last"]  # a history cleared since: all of it too


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
    program.heard()  # the reader waits on no lock: the program's watch takes it again at once
    wait_until(lambda: not keeper_may_write(), timeout=10, message="the engine taken to be here again")
