"""Transcripts that are complete and live: what an agent shows is on disk while it is still on its screen, `log -f`
follows it as it works, and a tmux server or an engine that is killed loses nothing that was shown."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from supervisor.engine.follow import Follower
from supervisor.engine.livescreen import LiveScreen, decode, encode, live_path, read_live, shown
from supervisor.engine.transcripts import Transcripts
from supervisor.tmux.server import Scrolled
from tests.conftest import PYTHON, Sandbox, process_gone, wait_until
from tests.test_sessions import script

BOX = "╭────╮\n│ >  │\n╰────╯"


def test_the_follow_view_prints_each_line_once_as_it_appears(tmp_path: Path) -> None:
    transcripts = Transcripts(tmp_path, 10_000)
    transcripts.begin("a", "s", "%1", 0)
    follower = Follower(transcripts.path("a"))
    assert follower.start() == ""
    transcripts.show("a", "%1", 0, f"one\n⠋ Thinking… (0s)\n{BOX}\n\n", "claude")
    assert follower.poll() == f"one\n⠋ Thinking… (0s)\n{BOX}\n"
    assert follower.poll() == ""
    # A new line above the spinner and the box, which move down; the spinner turned, its counter went on.
    transcripts.show("a", "%1", 0, f"one\ntwo\n⠙ Thinking… (1s)\n{BOX}", "claude")
    assert follower.poll() == "two\n"
    # "one" scrolls off; a long line shows, which the pane wraps in two rows.
    transcripts.append("a", "%1", Scrolled(1, ["one"]), 2000)
    transcripts.show("a", "%1", 1, f"two\nthree is a long line\n⠹ Thinking… (2s)\n{BOX}", "claude")
    assert follower.poll() == "three is a long line\n"
    # "two" and the long line's first row scroll off: the screen starts with the rest of it.
    transcripts.append("a", "%1", Scrolled(3, ["one", "two", "three is a"]), 2000)
    transcripts.show("a", "%1", 3, f"long line\nfour\n⠸ Thinking… (3s)\n{BOX}", "claude")
    assert follower.poll() == "four\n"
    # Output that scrolled by between two looks is printed from the transcript, before the screen's new lines.
    transcripts.append("a", "%1", Scrolled(6, ["long line", "four", "five"]), 2000)
    transcripts.show("a", "%1", 6, f"six\n{BOX}", "claude")
    assert follower.poll() == "five\nsix\n"
    transcripts.end("a", "%1", None, 2000, ["six", "done"], 6)  # the run's last screen is committed
    assert follower.poll() == "done\n"
    assert not live_path(transcripts.path("a")).exists()
    transcript = transcripts.path("a").read_text()
    assert transcript == "one\ntwo\nthree is a\nlong line\nfour\nfive\nsix\ndone\n"


def test_an_engine_started_after_the_pane_went_closes_the_transcript_with_the_live_screen(tmp_path: Path) -> None:
    first = Transcripts(tmp_path, 10_000)
    first.begin("a", "s1", "%1", 0)
    first.append("a", "%1", Scrolled(1, ["one"]), 2000)
    first.show("a", "%1", 1, "two\nthree\n", "demo")
    first.append("a", "%1", Scrolled(2, ["one", "two"]), 2000)  # killed before it wrote the screen again
    assert shown(first.path("a")).decode() == "one\ntwo\nthree\n"
    second = Transcripts(tmp_path, 10_000)  # the pane and its server are gone when it comes
    second.end("a", "%1", None, 0, None)
    assert first.path("a").read_text() == "one\ntwo\nthree\n"
    assert not live_path(first.path("a")).exists()
    # A run that no engine saw end (its server died with the engine) is closed before the next one starts.
    second.begin("a", "s1", "%1", 0)
    second.show("a", "%1", 0, "four", "demo")
    third = Transcripts(tmp_path, 10_000)
    third.begin("a", "s2", "%1", 0)
    lines = shown(first.path("a")).decode().splitlines()
    assert [line[:18] for line in lines] == ["one", "two", "three", "── a started again", "four",
                                             "── a started again"]


def test_a_live_screen_is_written_over_in_place_and_never_read_half_written(tmp_path: Path) -> None:
    transcripts = Transcripts(tmp_path, 10_000)
    transcripts.begin("a", "s", "%1", 0)
    transcripts.show("a", "%1", 0, "\n".join(f"a long first screen, line {n}" for n in range(40)), "demo")
    transcripts.show("a", "%1", 0, "short\nscreen", "demo")
    path = live_path(transcripts.path("a"))
    live = read_live(path)
    assert live is not None and live.lines == ("short", "screen") and live.profile == "demo"
    assert path.stat().st_size == len(encode(live))
    data = encode(LiveScreen("s", "%1", "demo", 0, 1, 2, ("one", "two")))
    assert decode(data) is not None
    assert decode(data[:-2]) is None and decode(data[:-4] + b"xx\n") is None  # a write under way: read again


def test_a_live_screen_written_before_a_rotation_still_follows_the_transcript(tmp_path: Path) -> None:
    transcripts = Transcripts(tmp_path, 55)
    transcripts.begin("a", "s", "%1", 0)
    transcripts.append("a", "%1", Scrolled(3, ["x" * 20, "y" * 20, "z" * 10]), 2000)
    transcripts.show("a", "%1", 3, "top\nbottom", "")
    transcripts.append("a", "%1", Scrolled(4, ["top"]), 2000)  # rotated: "top" starts the new file
    path = transcripts.path("a")
    assert path.read_text() == "top\n" and path.with_name("a.log.1").stat().st_size == 53
    assert shown(path).decode().splitlines() == ["x" * 20, "y" * 20, "z" * 10, "top", "bottom"]


class Followed:
    """`supervisor log -f NAME` running, and what it printed so far."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@contextlib.contextmanager
def following(sandbox: Sandbox, name: str) -> Iterator[Followed]:
    proc = subprocess.Popen([PYTHON, "-m", "supervisor", "log", "-f", name], cwd=sandbox.root, env=sandbox.env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        yield Followed(proc)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def captured(sandbox: Sandbox, pane: str) -> str:
    return sandbox.tmux("capture-pane", "-p", "-J", "-t", pane).stdout


def shown_lines(screen: str) -> list[str]:
    return [line.rstrip() for line in screen.splitlines() if line.strip()]


def holds_in_order(text: str, lines: list[str]) -> bool:
    """Whether `text` has each of `lines` as a line of its own, in this order."""
    have = [line.rstrip() for line in text.splitlines()]
    at = 0
    for line in lines:
        try:
            at = have.index(line, at) + 1
        except ValueError:
            return False
    return True


def conversation(sandbox: Sandbox, name: str, answers: int) -> tuple[str, list[str]]:
    """An agent that answered `answers` prompts, each with three numbered lines, all still on its screen; its
    command, and the lines it answered."""
    turns = "\n".join(f"  - [{{say: '{name} answer {n} line 1'}}, {{say: '{name} answer {n} line 2'}},"
                      f" {{say: '{name} answer {n} line 3'}}]" for n in range(1, answers + 1))
    command, _ = script(sandbox, name, f"turns:\n{turns}\n")
    sandbox.sv("start", name, "--command", command)
    sandbox.wait_state(name, "idle")
    pane = sandbox.ls()[name]["pane"]
    for n in range(1, answers + 1):
        sandbox.sv("send", name, f"question {n}")
        wait_until(lambda n=n: f"{name} answer {n} line 3" in captured(sandbox, pane), message=f"{name} answer {n}")
    return command, [f"{name} answer {n} line {k}" for n in range(1, answers + 1) for k in (1, 2, 3)]


def test_log_follow_shows_a_line_while_it_is_still_on_the_screen(sandbox: Sandbox) -> None:
    command, _ = script(sandbox, "beta", """
        turns:
          - [{say: the first answer}]
          - [{say: the second answer}]
    """)
    sandbox.sv("start", "beta", "--command", command)
    sandbox.wait_state("beta", "idle")
    pane = sandbox.ls()["beta"]["pane"]
    with following(sandbox, "beta") as followed:
        wait_until(lambda: "demo-agent" in followed.text, message="the banner in `log -f`")
        for n, answer in enumerate(("the first answer", "the second answer")):
            sandbox.sv("send", "beta", f"question {n}")
            wait_until(lambda a=answer: a in captured(sandbox, pane), interval=0.02, message=f"{answer} on screen")
            wait_until(lambda a=answer: a in followed.lines, timeout=2.0, interval=0.02,
                       message=f"{answer} in `log -f` within 2 s")
        assert followed.lines.count("the first answer") == 1


def test_a_killed_tmux_server_loses_nothing_that_was_shown(sandbox: Sandbox) -> None:
    """Killing the tmux server ends the agents (the engine runs apart from it and sees them gone), and the
    transcripts still hold what their screens showed."""
    screens = {}
    for name, answers in (("alpha", 3), ("beta", 9)):
        conversation(sandbox, name, answers)
        sandbox.wait_state(name, "idle")
    for name in ("alpha", "beta"):
        screens[name] = shown_lines(captured(sandbox, sandbox.ls()[name]["pane"]))
    assert any("beta answer 9 line 3" in line for line in screens["beta"])
    server = int(sandbox.tmux("display-message", "-p", "#{pid}").stdout)
    os.kill(server, signal.SIGKILL)
    wait_until(lambda: process_gone(server), message="the tmux server gone")
    for name, screen in screens.items():
        assert holds_in_order(sandbox.sv("log", name).stdout, screen), name
    for name in screens:  # the engine found the panes gone and closed the transcripts
        sandbox.wait_state(name, "exited")
    sandbox.sv("engine", "stop")
    for name, screen in screens.items():
        written = sandbox.paths.transcript(name).read_text()
        assert holds_in_order(written, screen), name
        assert not sandbox.paths.transcript(name).with_name(f"{name}.log.live").exists()
        text = sandbox.sv("log", name).stdout
        assert holds_in_order(text, screen), name
        for line in screen:
            if "answer" in line:
                assert text.count(line) == 1, line


def test_the_whole_conversation_on_screen_is_in_the_log_after_the_engine_is_killed(sandbox: Sandbox) -> None:
    _, answered = conversation(sandbox, "beta", 5)
    sandbox.wait_state("beta", "idle")  # the engine saw its last screen
    pane = sandbox.ls()["beta"]["pane"]
    screen = shown_lines(captured(sandbox, pane))
    engine = sandbox.engine_pid()
    os.kill(engine, signal.SIGKILL)
    wait_until(lambda: process_gone(engine), message="the engine gone")
    text = sandbox.sv("log", "beta").stdout  # no engine: `log` starts none
    assert holds_in_order(text, screen) and holds_in_order(text, answered)
    assert all(text.count(line) == 1 for line in answered)
    assert sandbox.sv("engine", "status", check=False).returncode == 1
    # The tmux server goes too (a reboot); the next engine closes the transcript with the screen it kept.
    sandbox.tmux("kill-server")
    sandbox.wait_state("beta", "exited")
    written = sandbox.paths.transcript("beta").read_text()
    assert holds_in_order(written, screen) and all(written.count(line) == 1 for line in answered)


# A TUI: entries appear above a spinner and an input box, which move down as the entries grow; between entries the
# spinner turns and the box is drawn again in place, the same rows. Each redraw is one write.
TUI = r"""
import sys, time
entries = int(sys.argv[1])
box = ["╭" + "─" * 30 + "╮", "│ > a draft of the next question │", "╰" + "─" * 30 + "╯"]
def bottom(frame):
    return f"{'⠋⠙⠹⠸'[frame % 4]} Thinking… ({frame // 3}s)\r\n" + "\r\n".join(box) + "\r\n"
def write(text):
    sys.stdout.write(text)
    sys.stdout.flush()
write(bottom(0))
for entry in range(1, entries + 1):
    for frame in range(2):
        time.sleep(0.1)
        write("\x1b[4A\x1b[J" + bottom(frame))
    write("\x1b[4A\x1b[J" + f"entry {entry} of the conversation\r\n" + bottom(entry))
time.sleep(1.5)
write("\x1b[4A\x1b[J" + "all entries written\r\n")
"""


def test_redraws_are_not_repeated_in_log_follow_nor_in_the_transcript(sandbox: Sandbox) -> None:
    entries = 30
    tui = sandbox.root.parent / "tui.py"
    tui.write_text(TUI)
    command, _ = script(sandbox, "tui", f"""
        turns:
          - [{{run: "{PYTHON} {tui} {entries}"}}]
    """)
    sandbox.sv("start", "beta", "--command", command)
    sandbox.wait_state("beta", "idle")
    pane = sandbox.ls()["beta"]["pane"]
    sandbox.tmux("resize-window", "-t", pane, "-y", "20")  # some entries scroll off, others stay on screen
    wanted = [f"entry {n} of the conversation" for n in range(1, entries + 1)]
    with following(sandbox, "beta") as followed:
        sandbox.sv("send", "beta", "go")
        wait_until(lambda: "Thinking" in followed.text, message="the spinner in `log -f`")
        wait_until(lambda: wanted[-1] in followed.lines, 30, message="the last entry in `log -f`")
        seen = list(followed.lines)  # while the spinner and the box are still on screen
        wait_until(lambda: "all entries written" in followed.lines, message="the end in `log -f`")
    assert [line for line in seen if line.startswith("entry ")] == wanted
    assert sum("Thinking…" in line for line in seen) == 1
    assert sum(line.startswith("╭") for line in seen) == 1
    assert sum("a draft of the next question" in line for line in seen) == 1
    sandbox.wait_state("beta", "idle")
    sandbox.sv("stop", "beta")
    text = sandbox.sv("log", "beta").stdout
    assert [line for line in text.splitlines() if line.startswith("entry ")] == wanted
    assert text.count("Thinking…") <= 1 and text.count("a draft of the next question") <= 1
    assert text.count("all entries written") == 1


def test_log_follow_goes_on_across_a_rotation(sandbox: Sandbox) -> None:
    """The size cap holds with a live screen beside the transcript, and `log -f` follows the new file without
    losing or repeating a line."""
    sandbox.write_config(f"agent:\n  profile: generic\n  command: {PYTHON} -m supervisor.demo.agent\n"
                         "logs:\n  max_bytes: 3000\n")
    command, _ = script(sandbox, "big", """
        turns:
          - [{run: "for i in $(seq 1 400); do echo counted $i; sleep 0.005; done"}, {say: all counted}]
    """)
    sandbox.sv("start", "beta", "--command", command)
    sandbox.wait_state("beta", "idle")
    log = sandbox.paths.transcript("beta")
    with following(sandbox, "beta") as followed:
        sandbox.sv("send", "beta", "count")
        wait_until(lambda: "all counted" in followed.lines, 30, message="the end in `log -f`")
    assert log.with_name("beta.log.1").exists() and log.stat().st_size <= 3000
    assert log.with_name("beta.log.1").stat().st_size <= 3000
    counted = [int(m) for m in re.findall(r"^counted (\d+)$", followed.text, re.MULTILINE)]
    assert counted == list(range(1, 401))
    text = sandbox.sv("log", "beta").stdout
    assert text.count("all counted") == 1 and "counted 400\n" in text
    assert Path(log.with_name("beta.log.live")).exists()  # the screen beyond it, beside it


def test_a_row_that_scrolled_by_is_not_taken_for_a_line_further_down_the_screen(tmp_path: Path) -> None:
    transcripts = Transcripts(tmp_path, 10_000)
    transcripts.begin("a", "s", "%1", 0)
    follower = Follower(transcripts.path("a"))
    transcripts.show("a", "%1", 0, "hello\n>\n────", "demo")
    assert follower.start() == "hello\n>\n────\n"
    # "hello" scrolls off, then a separator and a line printed between two looks; the box stays at the bottom.
    transcripts.append("a", "%1", Scrolled(3, ["hello", "────", "more"]), 2000)
    transcripts.show("a", "%1", 3, "last\n>\n────", "demo")
    assert follower.poll() == "────\nmore\nlast\n"


def test_a_blank_line_that_scrolled_off_is_not_shown_twice(tmp_path: Path) -> None:
    transcripts = Transcripts(tmp_path, 10_000)
    transcripts.begin("a", "s", "%1", 0)
    transcripts.show("a", "%1", 0, "one\n\n\ntwo", "demo")
    transcripts.append("a", "%1", Scrolled(2, ["one", ""]), 2000)  # the screen is not written again yet
    assert shown(transcripts.path("a")).decode() == "one\n\n\ntwo\n"
