"""The demo agent, driven in a real tmux server of its own, as the engine will drive it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from supervisor import __version__
from supervisor.demo import durations
from supervisor.demo import script as scripts

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

ROOT = Path(__file__).resolve().parents[1]
RULE = re.compile(r"^─+$")
TIMEOUT = 10.0


def wait_until(predicate: Callable[[], object], timeout: float = TIMEOUT,
               describe: Callable[[], str] = lambda: "") -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds with ``describe()``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s\n{describe()}")
        time.sleep(0.02)


class Tmux:
    """An isolated tmux server (own socket, no config, /bin/sh)."""

    def __init__(self, socket: Path, env: dict[str, str]) -> None:
        self.socket, self.env = socket, env

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        result = subprocess.run(["tmux", "-u", "-S", str(self.socket), "-f", "/dev/null", *args],
                                input=stdin, capture_output=True, text=True, env=self.env, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def agent(self, *args: str, cwd: Path, env: dict[str, str] | None = None, wait: bool = True) -> Pane:
        """Start the demo agent in a new window; wait until its input box shows."""
        command = "exec " + shlex.join([sys.executable, "-m", "supervisor.demo.agent", *args])
        extra = [f"-e{k}={v}" for k, v in {"PYTHONPATH": str(ROOT), **(env or {})}.items()]
        pane = Pane(self, self("new-window", "-d", "-P", "-F", "#{pane_id}", "-c", str(cwd), *extra,
                               command).strip())
        if wait:
            pane.wait_idle()
        return pane


class Pane:
    def __init__(self, tmux: Tmux, pane_id: str) -> None:
        self.tmux, self.id = tmux, pane_id

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", self.id)

    def lines(self) -> list[str]:
        """The non-blank lines of the screen and its history, without trailing spaces."""
        return [line.rstrip() for line in self.screen().splitlines() if line.strip()]

    def fmt(self, fmt: str) -> str:
        return self.tmux("display-message", "-p", "-t", self.id, fmt).strip()

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.id, *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.id, "-l", "--", text)

    def paste(self, text: str) -> None:
        self.tmux("load-buffer", "-b", "demo", "-", stdin=text)
        self.tmux("paste-buffer", "-p", "-d", "-b", "demo", "-t", self.id)

    def input_lines(self) -> list[str] | None:
        """The lines inside the input box when it is the last thing on screen, else None."""
        lines = self.lines()
        if len(lines) < 3 or not RULE.match(lines[-1]):
            return None
        top = max(i for i, line in enumerate(lines[:-1]) if RULE.match(line))
        return lines[top + 1:-1] if lines[top + 1].startswith("›") else None

    def wait_for(self, text: str, timeout: float = TIMEOUT) -> None:
        wait_until(lambda: text in self.screen(), timeout, self.screen)

    def wait_idle(self) -> None:
        wait_until(lambda: self.input_lines() == ["›"], describe=self.screen)

    def submit(self, text: str) -> None:
        """Paste ``text``, check it arrived in the input box, then press Enter separately."""
        self.paste(text)
        first, *rest = text.split("\n")
        expected = [f"› {first}", *(f"  {line}" for line in rest)]
        wait_until(lambda: self.input_lines() == expected, describe=self.screen)
        self.keys("Enter")

    def wait_exit(self) -> int:
        """The exit status of the pane's process once it has ended."""

        def status() -> str:
            dead, status, server = (self.fmt("#{pane_dead}|#{pane_dead_status}|#{pid}") + "||").split("|")[:3]
            if dead == "1" and not status:
                # tmux 3.3a with utempter can lose the SIGCHLD of a pane that ended (tmux/tmux#311):
                # the child stays a zombie and the status stays empty until another SIGCHLD arrives.
                os.kill(int(server), signal.SIGCHLD)
            return status

        wait_until(status, describe=self.screen)
        return int(status())

    @property
    def pid(self) -> int:
        return int(self.fmt("#{pane_pid}"))


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    home = Path(tempfile.mkdtemp(prefix="demo-agent-", dir="/tmp"))  # short: socket paths are limited
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
    env.update(SHELL="/bin/sh", LANG="C.UTF-8", HOME=str(home), GIT_CONFIG_NOSYSTEM="1")
    server = Tmux(home / "sock", env)
    server("new-session", "-d", "-s", "t", "-x", "120", "-y", "40")
    server("set", "-g", "remain-on-exit", "on")
    server("set", "-g", "default-size", "120x40")
    try:
        yield server
    finally:
        server("kill-server", check=False)
        shutil.rmtree(home, ignore_errors=True)


def script(tmp_path: Path, text: str) -> str:
    path = tmp_path / "script.yaml"
    path.write_text(text)
    return str(path)


def records(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["text"] for line in path.read_text().splitlines()]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


# ------------------------------------------------------------------------------------------ tests


def test_banner_and_prompt(tmux: Tmux, tmp_path: Path) -> None:
    pane = tmux.agent(cwd=tmp_path)
    assert pane.lines()[0] == f"demo-agent {__version__} — {tmp_path}"
    assert pane.input_lines() == ["›"]


def test_paste_then_enter_is_one_prompt(tmux: Tmux, tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    pane = tmux.agent("--script", script(tmp_path, "turns: []"), "--record", str(record), cwd=tmp_path)
    pane.submit("fix the login bug")
    wait_until(lambda: records(record) == ["fix the login bug"], describe=pane.screen)
    pane.wait_idle()
    pane.submit("first line\nsecond line\nthird line")
    wait_until(lambda: len(records(record)) == 2, describe=pane.screen)
    assert records(record)[1] == "first line\nsecond line\nthird line"
    pane.wait_idle()
    lines = pane.lines()
    assert "› first line" in lines
    assert lines[lines.index("› first line") + 1:][:3] == ["  second line", "  third line",
                                                           "(nothing more to do)"]
    entry = json.loads(record.read_text().splitlines()[0])
    assert abs(entry["ts"] - time.time()) < 60


def test_typed_keys_and_backspace(tmux: Tmux, tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    pane = tmux.agent("--script", script(tmp_path, "turns: []"), "--record", str(record), cwd=tmp_path)
    pane.type("helo")
    wait_until(lambda: pane.input_lines() == ["› helo"], describe=pane.screen)
    pane.keys("BSpace")
    wait_until(lambda: pane.input_lines() == ["› hel"], describe=pane.screen)
    pane.type("lo")
    wait_until(lambda: pane.input_lines() == ["› hello"], describe=pane.screen)
    pane.keys("Enter")
    wait_until(lambda: records(record) == ["hello"], describe=pane.screen)


def test_work_turn_ends_with_done(tmux: Tmux, tmp_path: Path) -> None:
    pane = tmux.agent("--script", script(tmp_path, "turns: [[work: 1s, say: finished]]"), cwd=tmp_path)
    pane.submit("go")
    pane.wait_for("Working… (")
    assert pane.input_lines() is None  # no input box while working
    pane.wait_idle()
    lines = pane.lines()
    assert lines[-5:-3] == ["finished", "✓ done"]
    assert "· Worked for 1s" in lines
    assert not any("Working…" in line for line in lines)


def test_ask_approved_and_denied(tmux: Tmux, tmp_path: Path) -> None:
    turn = '[say: before, ask: "Proceed?", say: after]'
    pane = tmux.agent("--script", script(tmp_path, f"turns: [{turn}, {turn}, {turn}]"), cwd=tmp_path)
    pane.submit("one")
    wait_until(lambda: pane.lines()[-4:] == ["Proceed?", "❯ 1. Yes", "  2. No", "Esc to cancel"],
               describe=pane.screen)
    pane.keys("1")
    pane.wait_idle()
    assert pane.lines()[-7:-3] == ["Proceed?", "approved", "after", "✓ done"]

    pane.submit("two")
    wait_until(lambda: pane.lines()[-1] == "Esc to cancel", describe=pane.screen)
    pane.keys("2")
    pane.wait_idle()
    assert pane.lines()[-7:-3] == ["before", "Proceed?", "denied", "✓ done"]

    pane.submit("three")
    wait_until(lambda: pane.lines()[-1] == "Esc to cancel", describe=pane.screen)
    pane.paste("yes")
    pane.keys("Enter")
    pane.wait_idle()
    assert pane.lines()[-6:-3] == ["approved", "after", "✓ done"]


def test_exit_step_sets_the_exit_code(tmux: Tmux, tmp_path: Path) -> None:
    pane = tmux.agent("--script", script(tmp_path, "turns: [[say: crashing, exit: 3]]"), cwd=tmp_path)
    pane.submit("go")
    assert pane.wait_exit() == 3
    assert "crashing" in pane.screen()


def test_commit_step_commits(tmux: Tmux, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.name", "Demo")
    git(repo, "config", "user.email", "demo@example.com")
    git(repo, "config", "commit.gpgsign", "false")
    git(repo, "commit", "-q", "--allow-empty", "-m", "initial")
    steps = "[write: {path: a/b.txt, content: hello}, commit: Add b]"
    pane = tmux.agent("--script", script(tmp_path, f"turns: [{steps}]"), cwd=repo)
    pane.submit("go")
    pane.wait_idle()
    assert git(repo, "log", "-1", "--format=%s") == "Add b"
    assert git(repo, "show", "--name-only", "--format=", "HEAD") == "a/b.txt"
    assert (repo / "a/b.txt").read_text() == "hello"
    assert f"committed {git(repo, 'rev-parse', '--short', 'HEAD')} Add b" in pane.lines()


def test_boundary_scenario_commits_outside(tmux: Tmux, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.name", "Demo")
    git(repo, "config", "user.email", "demo@example.com")
    git(repo, "commit", "-q", "--allow-empty", "-m", "initial")
    pane = tmux.agent("--scenario", "boundary", cwd=repo)
    pane.submit("go")
    pane.wait_idle()
    assert git(repo, "show", "--name-only", "--format=", "HEAD") == "outside/boundary-violation.txt"


def test_sigterm_exits_143(tmux: Tmux, tmp_path: Path) -> None:
    pane = tmux.agent(cwd=tmp_path)
    os.kill(pane.pid, signal.SIGTERM)
    assert pane.wait_exit() == 143
    assert "bye" in pane.lines()


def test_ignore_term_survives_sigterm(tmux: Tmux, tmp_path: Path) -> None:
    pane = tmux.agent("--ignore-term", "--script", script(tmp_path, "turns: [[say: still here]]"),
                      cwd=tmp_path)
    os.kill(pane.pid, signal.SIGTERM)
    pane.wait_for("(ignoring SIGTERM)")
    pane.wait_idle()
    pane.submit("are you there?")
    pane.wait_for("still here")
    pane.wait_idle()
    assert pane.fmt("#{pane_dead}") == "0"


def test_ctrl_c_interrupts_and_twice_exits_130(tmux: Tmux, tmp_path: Path) -> None:
    pane = tmux.agent("--script", script(tmp_path, "turns: [[work: 30s]]"), cwd=tmp_path)
    pane.submit("go")
    pane.wait_for("Working… (")
    pane.keys("C-c")
    pane.wait_idle()
    assert pane.lines()[-4] == "(interrupted)"
    assert "✓ done" not in pane.screen()
    pane.keys("C-c", "C-c")  # one write: both reach the agent while its tty is still raw
    assert pane.wait_exit() == 130


@pytest.mark.parametrize("how", ["ctrl-d", "/exit"])
def test_clean_exit(tmux: Tmux, tmp_path: Path, how: str) -> None:
    pane = tmux.agent(cwd=tmp_path)
    if how == "ctrl-d":
        pane.keys("C-d")
    else:
        pane.submit("/exit")
    assert pane.wait_exit() == 0


def test_prompt_typed_during_a_turn_runs_next(tmux: Tmux, tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    pane = tmux.agent("--script", script(tmp_path, "turns: [[work: 1s], [say: second turn]]"),
                      "--record", str(record), cwd=tmp_path)
    pane.submit("first")
    pane.wait_for("Working… (")
    pane.paste("queued")
    pane.keys("Enter")
    pane.wait_for("second turn")
    pane.wait_idle()
    assert records(record) == ["first", "queued"]


def test_spawn_stays_in_tree_and_spawn_detached_escapes(tmux: Tmux, tmp_path: Path) -> None:
    steps = '[spawn: "sleep 60", spawn_detached: "sleep 61", echo_env: DEMO_MARK]'
    pane = tmux.agent("--script", script(tmp_path, f"turns: [{steps}]"), cwd=tmp_path,
                      env={"DEMO_MARK": "marked"})
    pane.submit("go")
    pane.wait_idle()
    screen = pane.screen()
    child = int(re.findall(r"spawned pid (\d+)", screen)[0])
    detached = int(re.findall(r"spawned detached pid (\d+)", screen)[0])
    try:
        assert "DEMO_MARK=marked" in pane.lines()
        tree = {p.pid for p in psutil.Process(pane.pid).children(recursive=True)}
        assert child in tree
        assert detached not in tree
        assert os.getsid(detached) not in (os.getsid(pane.pid), os.getsid(0))
        wait_until(lambda: "sleep 61" in " ".join(psutil.Process(detached).cmdline()))
        assert psutil.Process(detached).environ().get("DEMO_MARK") == "marked"
    finally:
        # Both are shells running sleep. The detached one leads a process group of its own: end the
        # group. The other is in the agent's tree: end it and its children.
        with contextlib.suppress(ProcessLookupError):
            if (group := os.getpgid(detached)) not in (os.getpgid(0), os.getpgid(pane.pid)):
                os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(psutil.NoSuchProcess):
            shell = psutil.Process(child)
            for proc in [*shell.children(recursive=True), shell]:
                proc.kill()


def test_start_steps_and_start_delay(tmux: Tmux, tmp_path: Path) -> None:
    started = time.monotonic()
    pane = tmux.agent("--start-delay", "0.3s", "--script",
                      script(tmp_path, "start: [say: warming up]\nturns: []"), cwd=tmp_path)
    assert time.monotonic() - started >= 0.3
    assert pane.lines()[1] == "warming up"


@pytest.mark.parametrize("drop", [False, True])
def test_input_before_the_prompt(tmux: Tmux, tmp_path: Path, drop: bool) -> None:
    """A slow-starting CLI keeps what was typed before its prompt showed, unless it drops it."""
    record = tmp_path / "record.jsonl"
    args = ["--start-delay", "3s", "--script", script(tmp_path, "turns: []"), "--record", str(record)]
    pane = tmux.agent(*args, *(["--drop-early-input"] if drop else []), cwd=tmp_path, wait=False)
    pane.wait_for("demo-agent ")  # the tty is raw from here on, the prompt comes 3 s later (room for a slow paste)
    pane.paste("early")
    pane.keys("Enter")
    if drop:
        pane.wait_idle()
        pane.submit("late")
        wait_until(lambda: records(record) == ["late"], describe=pane.screen)
    else:
        wait_until(lambda: records(record) == ["early"], describe=pane.screen)


def test_ctrl_c_during_ask_removes_the_dialog(tmux: Tmux, tmp_path: Path) -> None:
    pane = tmux.agent("--script", script(tmp_path, 'turns: [[ask: "Proceed?"]]'), cwd=tmp_path)
    pane.submit("go")
    wait_until(lambda: pane.lines()[-1] == "Esc to cancel", describe=pane.screen)
    pane.keys("C-c")
    pane.wait_idle()
    assert pane.lines()[-5:-3] == ["Proceed?", "(interrupted)"]


# ----------------------------------------------------------------------------- without a terminal


def test_durations() -> None:
    assert durations.parse_duration("3s") == 3
    assert durations.parse_duration("1.5s") == 1.5
    assert durations.parse_duration("2m") == 120
    assert durations.parse_duration("1h30m") == 5400
    assert durations.parse_duration("500ms") == 0.5
    assert durations.parse_duration(4) == 4
    assert durations.parse_duration("2.5") == 2.5
    for bad in ("soon", "3x", True, "1s2"):
        with pytest.raises(durations.ScriptError):
            durations.parse_duration(bad)


@pytest.mark.parametrize("text", ["turns: [[fly: away]]", "turns: [[work: soon]]", "turns: [[exit: x]]",
                                  "turns: [[write: a.txt]]", "turn: []", "- say: hi", "turns: [say: hi]"])
def test_invalid_scripts_are_refused(text: str) -> None:
    with pytest.raises(durations.ScriptError):
        scripts.parse_script(text, "test.yaml")


def test_builtin_scenarios_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in scripts.SCENARIOS:
        assert scripts.builtin_script(name).turns
    write = dict(scripts.builtin_script("committer").turns[0])["write"]
    assert write["path"] == f"notes/{tmp_path.name}.md"


def test_bad_script_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = script(tmp_path, "turns: [[fly: away]]")
    result = subprocess.run([sys.executable, "-m", "supervisor.demo.agent", "--script", bad],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("demo-agent: error: ")
    assert len(result.stderr.splitlines()) == 1
