"""The link's protocol with the host program run on this machine (the transport is any argv whose stdio
carries it; over real sshd in test_host_link_ssh.py): what the host says first, calls in flight at once,
processes, files, spool watches, tmux relayed, git bundles, and a dropped link failing its calls at once."""

from __future__ import annotations

import ast
import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor.hosts import bundles
from supervisor.hosts.hostapp import HostApp, boot_source, build, host_app
from supervisor.hosts.link import Link, LinkDown, RemoteError, local_argv
from tests.conftest import process_gone, wait_until
from tests.git_env import isolate_git
from tests.links import Heard

HOSTSIDE = Path(__file__).parent.parent / "supervisor" / "hostside"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The host user's home for the host program run here."""
    folder = tmp_path / "hosthome"
    folder.mkdir()
    return folder


def open_link(home: Path, heard: Heard, app: HostApp | None = None) -> Link:
    app = app or host_app()
    link = Link("here", local_argv(app, "~/sv"), env={**os.environ, "HOME": str(home)}, on_event=heard.event,
                on_down=heard.down, app=app)
    link.connect()
    return link


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
def link(home: Path, heard: Heard) -> Iterator[Link]:
    opened = open_link(home, heard)
    try:
        yield opened
    finally:
        opened.close()


def test_the_host_program_imports_only_the_standard_library() -> None:
    """A host needs only Python: every import in the package is of the standard library or of the package
    itself (and the links here run it under `python -I -S`, without site packages)."""
    outside = []
    for path in sorted(HOSTSIDE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            outside += [f"{path.name}: {name}" for name in names
                        if name.partition(".")[0] not in sys.stdlib_module_names | {"__future__"}]
    assert outside == []
    assert "-I" in host_app().boot_words("~") and "-S" in host_app().boot_words("~")


def test_hello_says_what_the_host_has(link: Link, home: Path) -> None:
    hello = link.hello
    assert hello["version"] == host_app().version
    assert hello["python"] == ".".join(map(str, sys.version_info[:3]))
    assert hello["git"] in subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    assert hello["tmux"] in subprocess.run(["tmux", "-V"], capture_output=True, text=True).stdout
    assert isinstance(hello["bwrap"], bool)
    assert hello["cores"] >= 1 and hello["load1"] >= 0
    assert hello["disk_free"] == pytest.approx(shutil.disk_usage(home).free, rel=0.05)
    assert hello["dir"] == str(home / "sv") and hello["home"] == str(home)


def test_the_program_is_installed_once_per_version(home: Path, heard: Heard) -> None:
    app = build({"marker": b"install-once"})
    first = open_link(home, heard, app=app)
    first.close()
    installed = home / ".local" / "share" / "supervisor" / f"host-{app.version}.pyz"
    assert first.installed and installed.read_bytes() == app.data
    second = open_link(home, heard, app=app)
    try:
        assert not second.installed and second.hello["version"] == app.version
    finally:
        second.close()
    assert build({"marker": b"another"}).version != app.version  # any change to the program is a new version


def test_run_gives_rc_output_and_honours_cwd_env_stdin_and_timeout(link: Link, home: Path) -> None:
    (home / "sv").mkdir()
    done = link.call("run", argv=["sh", "-c", 'pwd; echo "$EXTRA"; cat; echo oops >&2; exit 3'], cwd="~/sv",
                     env={"EXTRA": "added"}, stdin="from stdin\n")
    assert done == {"rc": 3, "stdout": f"{home / 'sv'}\nadded\nfrom stdin\n", "stderr": "oops\n",
                    "timed_out": False}
    # A timeout ends the command's whole process group, its children too.
    slow = link.call("run", argv=["sh", "-c", "sleep 300 & echo $!; wait"], time_limit=1)
    assert slow["timed_out"] and slow["rc"] == -signal.SIGKILL
    wait_until(lambda: process_gone(int(slow["stdout"])), message="the timed-out command's child ended")
    with pytest.raises(RemoteError, match="here: run: cannot run no-such-program"):
        link.call("run", argv=["no-such-program"])
    with pytest.raises(RemoteError, match="missing argument 'argv'"):
        link.call("run")
    with pytest.raises(RemoteError, match="unknown op 'nope'"):
        link.call("nope")
    assert link.call("run", argv=["true"])["rc"] == 0  # the link is still up after the failures


def test_calls_are_in_flight_at_once(link: Link, tmp_path: Path) -> None:
    """A call that waits does not hold the others: the reader of a fifo finishes only when a later call
    writes it (with calls run one at a time, the first would wait forever)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    results: dict[str, Any] = {}
    reader = threading.Thread(target=lambda: results.update(read=link.call("run", argv=["cat", str(fifo)],
                                                                           timeout=30)))
    reader.start()
    link.call("run", argv=["sh", "-c", f"echo through > {fifo}"], timeout=30)
    reader.join(30)
    assert results["read"]["stdout"] == "through\n"

    # Many callers at once each get their own answer.
    answers: dict[int, str] = {}

    def ask(number: int) -> None:
        answers[number] = link.call("run", argv=["echo", str(number)])["stdout"].strip()

    callers = [threading.Thread(target=ask, args=(number,)) for number in range(24)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(60)
    assert answers == {number: str(number) for number in range(24)}


def test_ps_shows_a_process_tree_and_signal_ends_it(link: Link) -> None:
    tree = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 301 & wait"], start_new_session=True)
    try:
        # A child forked by sh shows sh's argv until it has exec'd sleep, and while it execs its name is already
        # sleep's but its arguments not yet there: wait for both to be sleeps with their arguments.
        found = wait_until(lambda: (rows := link.call("ps", pids=[tree.pid, 999_999_999])) and len(rows) == 3
                           and all(row["name"] == "sleep" and row["argv"] for row in rows[1:]) and rows,
                           message="the shell and its two sleeps")
        shell = found[0]
        assert shell["pid"] == tree.pid and shell["name"] == "sh" and shell["argv"][:2] == ["sh", "-c"]
        assert shell["start"] == pytest.approx(psutil.Process(tree.pid).create_time(), abs=0.05)
        assert sorted(row["argv"][-1] for row in found[1:]) == ["300", "301"]
        assert all(row["ppid"] == tree.pid and isinstance(row["cpu"], float) for row in found[1:])
        # The watch's brief form: the same processes, each a row of the columns it reads, without argv.
        brief = link.call("ps", pids=[tree.pid, 999_999_999], brief=True)
        assert [[row[0], row[1], row[3]] for row in brief] == [[row["pid"], row["ppid"], row["name"]] for row in found]
        assert all(row[2] in ("R", "S") for row in brief)  # (a state of each read: sleeping, or running just then)
        assert [row[5] for row in brief] == [row["start"] for row in found] and all(row[6] > 0 for row in brief)
        sent = link.call("signal", pids=[tree.pid, 999_999_999], signal="TERM", group=True)
        assert sent == {"sent": [tree.pid], "gone": [999_999_999], "refused": {}}
        wait_until(lambda: link.call("ps", pids=[tree.pid]) == [] or tree.poll() is not None, message="tree ended")
        wait_until(lambda: all(process_gone(row["pid"]) for row in found), message="every process of it ended")
    finally:
        tree.kill()
        tree.wait()


def test_files_cross_byte_for_byte(link: Link, home: Path) -> None:
    raw = "SESSION ✓\n".encode() + b"\xff\xfe not utf-8\n"
    text = raw.decode("utf-8", "surrogateescape")
    assert link.call("write", path="~/sv/a/SESSION.md", text=text) == {"size": len(raw)}
    assert (home / "sv" / "a" / "SESSION.md").read_bytes() == raw
    link.call("write", path="~/sv/a/SESSION.md", text="more\n", append=True)
    read = link.call("read", path="~/sv/a/SESSION.md")
    assert read["text"].encode("utf-8", "surrogateescape") == raw + b"more\n" and read["end"] == len(raw) + 5
    assert link.call("read", path="~/sv/a/SESSION.md", offset=len(raw))["text"] == "more\n"
    assert [row["name"] for row in link.call("list", dir="~/sv/a")] == ["SESSION.md"]
    assert link.call("remove", paths=["~/sv/a/SESSION.md", "~/sv/a/gone"]) == {"removed": 1}
    with pytest.raises(RemoteError, match="no such file"):
        link.call("read", path="~/sv/a/SESSION.md")


def test_a_watched_spool_pushes_each_file_that_appears(link: Link, heard: Heard, home: Path) -> None:
    spool = home / "sv" / "spool"
    spool.mkdir(parents=True)
    (spool / "1.json").write_text("{}")
    answer = link.call("watch", dir="~/sv/spool", watch="agent-1")
    assert answer == {"files": ["1.json"], "mode": "inotify"}
    (spool / ".2.json").write_text("{}")  # being written, as a spool names it: not yet
    os.rename(spool / ".2.json", spool / "2.json")
    (spool / "3.json").write_text("{}")
    heard.wait_for(lambda event: event.get("name") == "3.json", "the third file")
    files = [event for event in heard.events if event["event"] == "file"]
    assert files == [{"event": "file", "watch": "agent-1", "name": "2.json"},
                     {"event": "file", "watch": "agent-1", "name": "3.json"}]
    assert link.call("unwatch", watch="agent-1") == {"removed": True}
    shutil.rmtree(spool)


def test_tmux_control_mode_is_relayed(link: Link, heard: Heard) -> None:
    runtime = Path(tempfile.mkdtemp(prefix="svl-", dir="/tmp"))
    socket = runtime / "tmux.sock"
    try:
        started = link.call("tmux_start", socket=str(socket), relay="r1",
                            args=["-f", "/dev/null", "new-session", "-s", "work", "sh"])
        assert started["relay"] == "r1"
        link.call("tmux_send", relay="r1", lines=["display-message -p 'relayed #{session_name}'"])

        def relayed() -> list[str]:  # tmux's output as it wrote it, carried in base64 across the events
            data = b"".join(base64.b64decode(event["data"]) for event in list(heard.events) if event["event"] == "tmux")
            return data.decode().split("\n")

        wait_until(lambda: "relayed work" in relayed(), message="the command's output")
        lines = relayed()
        answer = lines.index("relayed work")
        assert lines[answer - 1].startswith("%begin ") and lines[answer + 1].startswith("%end ")
        link.call("tmux_send", relay="r1", lines=["kill-server"])
        ended = heard.wait_for(lambda event: event["event"] == "tmux_exit", "the relay's end")
        assert ended["relay"] == "r1"
        with pytest.raises(RemoteError, match="no tmux relay named 'r1'"):
            link.call("tmux_send", relay="r1", lines=["list-sessions"])
    finally:
        subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True)
        shutil.rmtree(runtime, ignore_errors=True)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def test_bundles_carry_only_what_the_other_side_lacks(link: Link, home: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(monkeypatch, tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "base")
    base = _git(repo, "rev-parse", "HEAD")
    first = bundles.push(link, repo, "~/sv/repo.git", {"refs/heads/main": "main"})
    assert first == {"created": True, "refs": {"refs/heads/main": base}}
    # Nothing new: no bundle, the ref set all the same.
    again = bundles.push(link, repo, "~/sv/repo.git", {"refs/heads/base": base})
    assert again == {"created": False, "refs": {"refs/heads/base": base}}
    clone = home / "sv" / "repo.git"
    _git(clone, "branch", "agent/a", "main")
    answer, data = link.call_payload("git_send", repo="~/sv/repo.git", refs=["refs/heads/agent/a"], have=[base])
    assert answer == {"refs": {"refs/heads/agent/a": base}, "bundle": False} and data == b""
    with pytest.raises(RemoteError, match="no such ref on the host: refs/heads/agent/b"):
        bundles.fetch(link, repo, "~/sv/repo.git", ["refs/heads/agent/b"], "refs/supervisor/hosts/here")
    # The ref comes home without a bundle: the commit is already here.
    fetched = bundles.fetch(link, repo, "~/sv/repo.git", ["refs/heads/agent/a"], "refs/supervisor/hosts/here")
    assert fetched == {"refs/supervisor/hosts/here/heads/agent/a": base}
    assert _git(repo, "rev-parse", "refs/supervisor/hosts/here/heads/agent/a") == base
    assert _git(repo, "for-each-ref", "refs/supervisor/outgoing") == ""  # the names a bundle needed are gone


def test_a_dropped_link_fails_every_pending_call_at_once_and_says_so_once(link: Link, heard: Heard) -> None:
    failures: list[Exception] = []

    def wait_long() -> None:
        try:
            link.call("run", argv=["sleep", "300"], timeout=300)
        except LinkDown as exc:
            failures.append(exc)

    callers = [threading.Thread(target=wait_long) for _ in range(3)]
    for caller in callers:
        caller.start()
    program = psutil.Process(link._process.pid if link._process else 0)
    sleeps = wait_until(lambda: (found := [p for p in program.children(recursive=True) if p.name() == "sleep"])
                        and len(found) == 3 and found, message="three calls running on the host")
    program.kill()  # the transport's process itself (over ssh: ssh, and the host program sees its input end)
    for sleep in sleeps:
        sleep.kill()
    for caller in callers:
        caller.join(15)
    assert len(failures) == 3 and all("here: the connection dropped (exit -9)" in str(exc) for exc in failures)
    assert len(heard.downs) == 1 and "here:" in str(heard.downs[0])
    with pytest.raises(LinkDown, match="here: the connection dropped"):
        link.call("run", argv=["true"])
    link.close()
    assert len(heard.downs) == 1


def test_closing_a_link_ends_the_commands_of_calls_in_flight(link: Link, tmp_path: Path) -> None:
    """No answer can be given once the link is gone: the host program ends what its calls still run (here
    a command that would run for 300 s), and a caller waiting for it learns at once that the link closed."""
    marker = tmp_path / "running"
    failures: list[LinkDown] = []

    def wait_long() -> None:
        try:
            link.call("run", argv=["sh", "-c", f"echo $$ > {marker}.tmp && mv {marker}.tmp {marker}; sleep 300"])
        except LinkDown as exc:
            failures.append(exc)

    caller = threading.Thread(target=wait_long)
    caller.start()
    shell = wait_until(lambda: marker.exists() and int(marker.read_text()), message="the call's command running")
    sleep = wait_until(lambda: psutil.Process(shell).children(), message="its sleep")[0]
    link.close()
    caller.join(15)
    assert [str(exc) for exc in failures] == ["here: the link was closed (during run)"]
    wait_until(lambda: process_gone(shell) and process_gone(sleep.pid), message="the call's command ended")


def test_a_host_without_python_is_named_in_the_error(heard: Heard, home: Path) -> None:
    argv = ["env", "PATH=/nonexistent", *host_app().boot_words("~/sv")]
    link = Link("bare", ["sh", "-c", 'exec "$@"', "sh", *argv], on_down=heard.down,
                env={**os.environ, "HOME": str(home)})
    with pytest.raises(LinkDown, match=r"bare: python3 was not found on the host \(supervisor needs Python >= "
                                       r"3.11 there\): env: .python3.: No such file or directory"):
        link.connect()
    assert heard.downs == []  # never up, so never down: connect said it


def test_a_host_with_an_older_python_is_told_which_it_has(heard: Heard, home: Path) -> None:
    """The bootstrap checks the version before anything else (this Python stands in for an older one by being
    asked for a newer minimum)."""
    app = host_app()
    link = Link("old", [sys.executable, "-I", "-S", "-c", boot_source((99, 0)), app.version, "~/sv"],
                env={**os.environ, "HOME": str(home)})
    wanted = ".".join(map(str, sys.version_info[:2]))
    with pytest.raises(LinkDown, match=rf"^old: the host's python3 is {wanted}; supervisor needs Python >= 99.0$"):
        link.connect()
    assert not (home / ".local").exists()  # nothing was installed
