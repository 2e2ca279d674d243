from __future__ import annotations

import os
from pathlib import Path

from supervisor.engine.transcripts import TranscriptSizes, last_words, read_transcript, rotate_if_needed, strip_ansi


def test_strip_ansi_keeps_the_last_version_of_a_redrawn_line() -> None:
    raw = "\x1b[1mbold\x1b[0m text\r\n⠋ Working… (0s)\r⠙ Working… (1s)\r\n\x1b]0;title\x07done\n"
    assert strip_ansi(raw) == "bold text\n⠙ Working… (1s)\ndone\n"


def test_rotation_keeps_one_previous_file_and_appends_continue(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    with open(log, "ab") as writer:  # the writer keeps its O_APPEND descriptor across rotation, like tmux's cat
        writer.write(b"x" * 100)
        writer.flush()
        assert rotate_if_needed(log, 50)
        writer.write(b"after")
        writer.flush()
    assert log.read_bytes() == b"after"
    assert (tmp_path / "a.log.1").read_bytes() == b"x" * 100
    assert read_transcript(log) == b"x" * 100 + b"after"
    assert not rotate_if_needed(log, 50)


def test_last_words(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"\x1b[31mError:\x1b[0m cannot connect\r\n\r\n\r\n")
    assert last_words(log) == ["Error: cannot connect"]
    assert last_words(tmp_path / "missing.log") == []


def test_sizes_through_open_descriptors_follow_growth_rotation_and_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    sizes = TranscriptSizes()
    assert sizes.size(path) == 0  # not written yet
    path.write_bytes(b"hello\n")
    assert sizes.size(path) == 6
    with open(path, "ab") as handle:
        handle.write(b"more\n")
    assert sizes.size(path) == 11
    assert rotate_if_needed(path, 5)
    assert sizes.size(path) == 0  # truncated in place
    path.unlink()
    path.write_bytes(b"new\n")  # removed, then started again under the same name
    assert sizes.size(path) == 4
    fds = len(os.listdir("/proc/self/fd"))
    sizes.keep_only([])
    assert len(os.listdir("/proc/self/fd")) == fds - 1
