"""The link over real sshd (tests/sshd.py): one connection carries the bootstrap, the calls, git bundles both
ways and the drop; the host program is installed once per version in the host user's own home."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.hosts import bundles
from supervisor.hosts.hostapp import HostApp, build, host_app
from supervisor.hosts.link import Link, LinkDown
from tests.conftest import wait_until
from tests.git_env import IDENTITY, isolate_git
from tests.links import Heard, host_argv
from tests.sshd import SshHosts


def link_to(ssh_hosts: SshHosts, name: str, host_dir: str, heard: Heard | None = None,
            app: HostApp | None = None) -> Link:
    app = app or host_app()
    heard = heard or Heard()
    link = Link(name, host_argv(ssh_hosts, name, app.boot_words(host_dir)), on_event=heard.event,
                on_down=heard.down, app=app)
    link.connect()
    return link


@pytest.fixture
def box1(ssh_hosts: SshHosts) -> Iterator[tuple[Link, str]]:
    host_dir = ssh_hosts.fresh_dir("box1")
    link = link_to(ssh_hosts, "box1", host_dir)
    try:
        yield link, host_dir
    finally:
        link.close()


def test_hello_over_ssh_says_what_the_host_has(ssh_hosts: SshHosts, box1: tuple[Link, str]) -> None:
    link, host_dir = box1
    host = ssh_hosts.hosts["box1"]
    hello = link.hello
    assert hello["user"] == host.user and hello["home"] == str(host.home)
    assert hello["dir"] == str(host.home / host_dir.removeprefix("~/"))
    assert hello["version"] == host_app().version and hello["python"].startswith("3.")
    assert hello["git"] and hello["tmux"] and isinstance(hello["bwrap"], bool)
    assert hello["cores"] >= 1 and hello["disk_free"] > 0


def test_calls_over_ssh_are_in_flight_at_once(box1: tuple[Link, str]) -> None:
    link, host_dir = box1
    link.call("run", argv=["sh", "-c", f"mkdir -p {host_dir} && mkfifo {host_dir}/fifo"])
    read: dict[str, str] = {}
    reader = threading.Thread(target=lambda: read.update(
        link.call("run", argv=["cat", "fifo"], cwd=host_dir, timeout=30)))
    reader.start()
    link.call("run", argv=["sh", "-c", "echo across > fifo"], cwd=host_dir, timeout=30)
    reader.join(30)
    assert read["stdout"] == "across\n"
    answers: dict[int, str] = {}

    def ask(number: int) -> None:
        answers[number] = link.call("run", argv=["echo", str(number)])["stdout"].strip()

    callers = [threading.Thread(target=ask, args=(number,)) for number in range(20)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(60)
    assert answers == {number: str(number) for number in range(20)}  # 20 at once on one connection


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def test_commits_go_to_the_host_and_come_home_through_the_link(box1: tuple[Link, str], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    link, host_dir = box1
    isolate_git(monkeypatch, tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("base\n")
    _git(repo, "add", "a.txt")
    _git(repo, "commit", "-q", "-m", "base")
    base = _git(repo, "rev-parse", "HEAD")
    clone = f"{host_dir}/repo.git"
    assert bundles.push(link, repo, clone, {"refs/heads/main": "main"}) == {
        "created": True, "refs": {"refs/heads/main": base}}
    # An agent's commit on the host, in a worktree of the clone.
    script = (f"git -C {clone} worktree add -q -b agent/one ../wt main && cd ../wt && echo work > b.txt && "
              "git add b.txt && git commit -q -m 'agent work' && git rev-parse HEAD")
    done = link.call("run", argv=["sh", "-c", script], cwd=clone, env=IDENTITY)
    assert done["rc"] == 0, done["stderr"]
    made = done["stdout"].strip()
    fetched = bundles.fetch(link, repo, clone, ["refs/heads/agent/one"], "refs/supervisor/hosts/box1")
    assert fetched == {"refs/supervisor/hosts/box1/heads/agent/one": made}
    # The commit and its objects are here, its parent the base, and nothing of the host touched the user's
    # own branches.
    assert _git(repo, "show", "-s", "--format=%P %s", made) == f"{base} agent work"
    assert _git(repo, "show", f"{made}:b.txt") == "work"
    assert _git(repo, "rev-parse", "main") == base and _git(repo, "branch", "--list") == "* main"
    _git(repo, "fsck", "--strict", "--no-dangling")
    # A commit more on the host: only it crosses (the base is had), and the private ref moves.
    done = link.call("run", argv=["sh", "-c", "echo more >> b.txt && git commit -qam more && git rev-parse HEAD"],
                     cwd=f"{host_dir}/wt", env=IDENTITY)
    answer, data = link.call_payload("git_send", repo=clone, refs=["refs/heads/agent/one"], have=[made])
    assert answer["bundle"] and data.startswith(b"# v2 git bundle")
    prerequisites = [line for line in data.split(b"\n\n")[0].splitlines() if line.startswith(b"-")]
    assert [line.split()[0] for line in prerequisites] == [b"-" + made.encode()]
    fetched = bundles.fetch(link, repo, clone, ["refs/heads/agent/one"], "refs/supervisor/hosts/box1")
    assert fetched == {"refs/supervisor/hosts/box1/heads/agent/one": done["stdout"].strip()}


def test_the_program_is_installed_once_over_ssh(ssh_hosts: SshHosts) -> None:
    app = build({"marker": uuid.uuid4().hex.encode()})  # a version no other test installed
    installed = f".local/share/supervisor/host-{app.version}.pyz"
    host_dir = ssh_hosts.fresh_dir("box1")
    try:
        first = link_to(ssh_hosts, "box1", host_dir, app=app)
        first.close()
        second = link_to(ssh_hosts, "box1", host_dir, app=app)
        second.close()
        assert first.installed and not second.installed
        assert second.hello["version"] == app.version
        assert (ssh_hosts.hosts["box1"].home / installed).read_bytes() == app.data
    finally:
        ssh_hosts.ssh("box1", "rm", "-f", installed)


def test_a_cut_host_fails_pending_calls_at_once_and_is_said_once(ssh_hosts: SshHosts) -> None:
    heard = Heard()
    host_dir = ssh_hosts.fresh_dir("box2")
    link = link_to(ssh_hosts, "box2", host_dir, heard)
    failures: list[LinkDown] = []

    def wait_long() -> None:
        try:
            link.call("run", argv=["sh", "-c", f"mkdir -p {host_dir}; touch {host_dir}/waiting-$$; sleep 300"],
                      timeout=300)
        except LinkDown as exc:
            failures.append(exc)

    callers = [threading.Thread(target=wait_long) for _ in range(2)]
    for caller in callers:
        caller.start()
    folder = ssh_hosts.hosts["box2"].home / host_dir.removeprefix("~/")
    wait_until(lambda: len(list(folder.glob("waiting-*"))) == 2, message="two calls running on box2")
    program = ["pgrep", "-u", ssh_hosts.hosts["box2"].user, "-f", f"{host_app().version} {host_dir}"]
    assert subprocess.run(program, capture_output=True).returncode == 0  # the host program, found by its dir
    try:
        ssh_hosts.cut("box2")
        for caller in callers:
            caller.join(30)
        assert len(failures) == 2
        assert all(str(exc).startswith("box2: the connection dropped (exit 255)") for exc in failures)
        assert len(heard.downs) == 1
        with pytest.raises(LinkDown, match="box2: the connection dropped"):
            link.call("run", argv=["true"])
        link.close()
        assert len(heard.downs) == 1
        # The host program saw its link drop and ended, and so did the commands whose answers it could no
        # longer give.
        commands = ["pgrep", "-u", ssh_hosts.hosts["box2"].user, "-f", f"{host_dir}/waiting-"]
        wait_until(lambda: subprocess.run(program, capture_output=True).returncode == 1
                   and subprocess.run(commands, capture_output=True).returncode == 1,
                   message="the host program on box2 and its calls' commands ended")
    finally:
        ssh_hosts.resume("box2")
    again = link_to(ssh_hosts, "box2", host_dir)  # a link is made again after a drop
    try:
        assert again.call("run", argv=["echo", "back"])["stdout"] == "back\n"
    finally:
        again.close()


def test_a_host_without_python_is_named_in_the_error(ssh_hosts: SshHosts) -> None:
    words = ["env", "PATH=/nonexistent", *host_app().boot_words(ssh_hosts.fresh_dir("box1"))]
    link = Link("box1", host_argv(ssh_hosts, "box1", words))
    with pytest.raises(LinkDown, match=r"^box1: python3 was not found on the host \(supervisor needs Python >= "
                                       r"3.11 there\): env: .python3.: No such file or directory"):
        link.connect()


def test_a_host_ssh_refuses_is_named_with_what_ssh_said(ssh_hosts: SshHosts) -> None:
    argv = host_argv(ssh_hosts, "box1", host_app().boot_words("~/unused"))
    argv[1:1] = ["-o", "HostKeyAlias=unknown"]  # a host key ssh does not know: never accepted blindly
    with pytest.raises(LinkDown, match=r"^box1: could not connect \(exit 255\): Host key verification failed"):
        Link("box1", argv).connect()
