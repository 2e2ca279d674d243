from __future__ import annotations

from pathlib import Path

from supervisor.engine.transcripts import last_words, read_transcript, rotate_if_needed, strip_ansi


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
