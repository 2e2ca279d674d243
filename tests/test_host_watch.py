"""The engine keeps one link per host and says the truth about it, against real sshd hosts (tests/sshd.py): both
hosts `up` with their latency; a host cut off is `down` with ssh's words, its agents `unreachable` with their
last state, one `host_down` alert naming them; back, they return to their last state and the alert is
resolved. A reload of supervisor.yaml adds and drops hosts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor.client import request_at
from supervisor.core.model import Agent, State
from supervisor.core.store import Store
from tests.conftest import Sandbox, wait_until
from tests.sshd import SshHosts

KEEPALIVE_BOUND = 20.0  # seconds: ssh's keep-alive notices a dead link within ~15 s (a cut is seen at once)
BACKOFF_BOUND = 90.0  # seconds: a host back is found by the next attempt (the delay doubles to 60 s at most)


def configure(sandbox: Sandbox, ssh_hosts: SshHosts, told: Path, *names: str) -> dict[str, str]:
    """supervisor.yaml with `names` as hosts, each with a `dir` of its own (returned by host), and every alert
    written to a file of `told` by the command channel (its status, subject and agents), at once."""
    keep = (f"printf '%s|%s|%s' \\\"$SUPERVISOR_ALERT_STATUS\\\" \\\"$SUPERVISOR_ALERT_SUBJECT\\\" "
            f"\\\"$SUPERVISOR_ALERT_AGENTS\\\" > {told}/$SUPERVISOR_ALERT_ID.txt")
    dirs = {name: ssh_hosts.fresh_dir(name) for name in names}
    lines = ["hosts:"]
    for name, folder in dirs.items():
        lines += [f"  {name}:", f"    ssh: {name}", f"    ssh_config: {ssh_hosts.config}", f"    dir: {folder}",
                  "    max_agents: 4"]
    sandbox.write_config("agent:\n  profile: generic\n  command: sleep 600\n"
                         f"alerts:\n  tmux: false\n  group_wait: 0s\n  command: \"{keep}\"\n"
                         + "\n".join(lines) + "\n")
    return dirs


def rows(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in json.loads(sandbox.sv("hosts", "--json").stdout)}


def wait_hosts(sandbox: Sandbox, timeout: float, **states: str) -> dict[str, dict[str, Any]]:
    """The hosts' rows once each host named is in its state (and, up, has its latency)."""

    def reached() -> dict[str, dict[str, Any]] | None:
        found = rows(sandbox)
        ok = all(name in found and found[name]["state"] == state
                 and (state != "up" or found[name]["latency_ms"] is not None) for name, state in states.items())
        return found if ok else None

    return dict(wait_until(reached, timeout=timeout, interval=0.2, message=f"hosts {states}"))


def host_events(sandbox: Sandbox) -> list[tuple[str, str]]:
    """(kind, host) of each event about a host, oldest first, from the engine's log."""
    events = request_at(sandbox.runtime / sandbox.paths.runtime_dir.name / "engine.sock", "events",
                        {"limit": 1000}, 10)
    return [(event["kind"], event["host"]) for event in events if str(event["kind"]).startswith("host_")]


def host_program(ssh_hosts: SshHosts, name: str, folder: str) -> bool:
    """Whether the engine's program runs on host `name` for `folder` (its link to that host is open)."""
    user = ssh_hosts.hosts[name].user
    return any(process.info["username"] == user and folder in " ".join(process.info["cmdline"] or [])
               for process in psutil.process_iter(["username", "cmdline"]))


def told(folder: Path) -> list[str]:
    """The alerts the command channel wrote, in the order of their ids."""
    return [path.read_text() for path in sorted(folder.glob("*.txt"), key=lambda p: int(p.stem))]


def place_agent(sandbox: Sandbox, name: str, host: str, state: State) -> None:
    """An agent record on `host`, written through the store before the engine starts: it stands for an agent a
    remote launch made, where what is tested needs none running there."""
    paths = sandbox.paths
    paths.ensure_dirs()
    store = Store(paths.db_path)
    try:
        now = time.time()
        base = sandbox.git("rev-parse", "HEAD")
        store.add_agent(Agent(name=name, profile="generic", command="sleep 600", worktree=f"/far/{name}",
                              branch=f"agent/{name}/work", base=base, target="main", state=state, state_since=now,
                              started_at=now, host=host))
    finally:
        store.close()


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "told"
    path.mkdir()
    yield path


def test_a_host_cut_off_is_down_its_agents_unreachable_and_back_again(sandbox: Sandbox, ssh_hosts: SshHosts,
                                                                       folder: Path) -> None:
    configure(sandbox, ssh_hosts, folder, "box1", "box2")
    place_agent(sandbox, "far", "box2", State.WAITING)
    place_agent(sandbox, "near", "box1", State.WORKING)
    sandbox.sv("engine", "start")

    found = wait_hosts(sandbox, 60, box1="up", box2="up")
    assert [name for name in found] == ["local", "box1", "box2"]
    for name in ("box1", "box2"):
        row = found[name]
        assert row["latency_ms"] >= 0 and row["error"] is None and row["last_seen"].endswith("Z")
        assert row["load"]["cores"] >= 1 and row["load"]["load1"] >= 0
        assert (row["agents"], row["max_agents"]) == (1, 4)
    far = sandbox.ls()["far"]
    assert (far["state"], far["host"], far["last_state"]) == ("waiting", "box2", None)

    ssh_hosts.cut("box2")
    try:
        found = wait_hosts(sandbox, KEEPALIVE_BOUND, box2="down")
        assert found["box1"]["state"] == "up"  # one host's drop is its own
        error = found["box2"]["error"]
        assert error and "\n" not in error and "box2: " not in error  # one line, ssh's own words
        far = sandbox.wait_state("far", "unreachable", timeout=10)
        assert (far["last_state"], far["host"]) == ("waiting", "box2")
        shown = sandbox.agent("far")
        assert (shown["state"], shown["last_state"], shown["host"]) == ("unreachable", "waiting", "box2")
        assert sandbox.ls()["near"]["state"] == "working"  # on box1, untouched
        listed = next(line for line in sandbox.sv("ls").stdout.splitlines() if line.startswith("far "))
        assert "unreachable (waiting)" in listed
        wait_until(lambda: told(folder), timeout=20, message="the host_down alert through the command channel")
    finally:
        ssh_hosts.resume("box2")

    wait_hosts(sandbox, BACKOFF_BOUND, box2="up")
    far = sandbox.wait_state("far", "waiting", timeout=10)
    assert far["last_state"] is None
    wait_until(lambda: len(told(folder)) == 2, timeout=20, message="the resolved follow-up")
    assert told(folder) == ["firing|host:box2|far", "resolved|host:box2|far"]  # one alert per drop, not per agent
    alerts = json.loads(sandbox.sv("alerts", "ls", "--json").stdout)
    assert [(a["subject"], a["status"], a["agents"]) for a in reversed(alerts)] == [
        ("host:box2", "firing", ["far"]), ("host:box2", "resolved", ["far"])]
    assert "host box2" in alerts[-1]["title"] and "host_down" in alerts[-1]["title"]
    assert [kind for kind, host in host_events(sandbox) if host == "box2"] == ["host_up", "host_down", "host_up"]


def test_a_reload_adds_and_drops_hosts(sandbox: Sandbox, ssh_hosts: SshHosts, folder: Path) -> None:
    first = configure(sandbox, ssh_hosts, folder, "box1")
    sandbox.sv("engine", "start")
    assert list(wait_hosts(sandbox, 60, box1="up")) == ["local", "box1"]
    assert host_program(ssh_hosts, "box1", first["box1"])  # the engine holds its link
    second = configure(sandbox, ssh_hosts, folder, "box2")  # box1 out, box2 in
    found = wait_hosts(sandbox, 60, box2="up")
    assert list(found) == ["local", "box2"]
    assert host_program(ssh_hosts, "box2", second["box2"])
    wait_until(lambda: not host_program(ssh_hosts, "box1", first["box1"]), timeout=20,
               message="box1's link closed, and the program on it ended with it")
    assert host_events(sandbox) == [("host_up", "box1"), ("host_removed", "box1"), ("host_up", "box2")]
    assert not told(folder)  # a host taken out of the file is not a host down


def test_a_host_without_tmux_is_down_saying_so(sandbox: Sandbox, ssh_hosts: SshHosts, folder: Path) -> None:
    configure(sandbox, ssh_hosts, folder, "box1")
    text = (sandbox.root / "supervisor.yaml").read_text().replace("ssh: box1", "ssh: box1-notmux")
    (sandbox.root / "supervisor.yaml").write_text(text)
    sandbox.sv("engine", "start")
    found = wait_hosts(sandbox, 60, box1="down")
    assert found["box1"]["error"] == ("tmux: not found on the PATH an ssh command gets there "
                                      f"({ssh_hosts.root / 'bare-bin'})")
    wait_until(lambda: told(folder), timeout=20, message="the host_down alert")
    assert told(folder) == ["firing|host:box1|"]  # no agents on it, and said once
