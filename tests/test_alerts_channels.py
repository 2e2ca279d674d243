"""The command and tmux channels: a real shell command with the alert in SUPERVISOR_ALERT_*, retried when it
fails; and a status-line message plus a bell for a real client attached to supervisor's tmux server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.alerts.channels.tmux import TmuxChannel
from supervisor.tmux.server import ENGINE_SESSION, Tmux
from tests.alert_servers import Rig, Rigs, make_repo
from tests.conftest import wait_until


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rigs]:
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("SUPERVISOR_TOKEN", "engine-secret-token")  # must never reach the alert command
    rigs = Rigs(tmp_path)
    yield rigs
    rigs.close()


NOTIFY = """\
import json, os, sys
out = sys.argv[1]
if not os.path.exists(out + ".failed-once"):
    open(out + ".failed-once", "w").close()
    print("pager unreachable", file=sys.stderr)
    sys.exit(1)
env = {k: v for k, v in os.environ.items() if k.startswith("SUPERVISOR_")}
path = os.path.join(out, env["SUPERVISOR_ALERT_ID"] + ".json")
with open(path + ".partial", "w") as handle:  # renamed whole: the test reads the file as soon as it shows
    json.dump(env, handle)
os.replace(path + ".partial", path)
"""


def test_command_gets_the_alert_in_environment_variables_and_is_retried(rig: Rigs, tmp_path: Path) -> None:
    out = tmp_path / "notified"
    out.mkdir()
    script = tmp_path / "notify.py"
    script.write_text(NOTIFY)
    python = shutil.which("python3") or "python3"
    r = rig(f"  group_wait: 0.1s\n  command: \"{python} {script} {out}\"\n")
    r.fire("auth", "waiting", "waiting for approval: Bash(rm -rf build/)", task="Clean up",
           screen=["rm -rf build/?", "❯ 1. Yes"])

    def delivered() -> list[Path]:
        return sorted(out.glob("*.json"))

    (path,) = wait_until(delivered, message="the command ran successfully")
    env = json.loads(path.read_text())
    assert env["SUPERVISOR_ALERT_AGENT"] == "auth"
    assert env["SUPERVISOR_ALERT_TRIGGER"] == "waiting" and env["SUPERVISOR_ALERT_STATUS"] == "firing"
    assert env["SUPERVISOR_ALERT_SUMMARY"] == "waiting for approval: Bash(rm -rf build/)"
    assert env["SUPERVISOR_ALERT_ACTION"] == "supervisor approve auth"
    assert env["SUPERVISOR_ALERT_TASK"] == "Clean up" and "rm -rf build/?" in env["SUPERVISOR_ALERT_SCREEN"]
    assert env["SUPERVISOR_ALERT_REPO"] == "repo" and env["SUPERVISOR_ALERT_FOR"].endswith("s")
    assert "supervisor attach auth" in env["SUPERVISOR_ALERT_TEXT"]
    assert "SUPERVISOR_TOKEN" not in env
    delivery = wait_until(lambda: r.history()[0]["deliveries"][0]["status"] == "sent" and r.history()[0],
                          message="recorded as sent")["deliveries"][0]
    assert delivery["attempts"] == 2  # the first run failed and was retried
    events = [e.kind for e in r.engine.store.events("auth", limit=20)]
    assert events.count("alert_failed") == 1 and events.count("alert_sent") == 1
    failed = next(e for e in r.engine.store.events("auth", limit=20) if e.kind == "alert_failed")
    assert failed.data["error"] == "alert command exited 1: pager unreachable"


@pytest.fixture
def tmux_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Rig, list[str]]]:
    runtime = Path(tempfile.mkdtemp(prefix="sva-", dir="/tmp"))  # socket paths must stay short
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("HOME", str(tmp_path))
    rig = Rig(make_repo(tmp_path / "repo", "alerts:\n  group_wait: 0.1s\n"))
    user = ["tmux", "-S", str(runtime / "user.sock"), "-f", "/dev/null"]
    try:
        yield rig, user
    finally:
        rig.close()
        subprocess.run([*user, "kill-server"], capture_output=True, check=False)
        rig.engine.tmux.kill_server()
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.mark.parametrize("control", [False, True], ids=["spawned", "control-client"])
def test_tmux_shows_a_status_line_message_and_rings_the_bell(tmux_rig: tuple[Rig, list[str]], control: bool) -> None:
    """Also through the engine's control-mode client, as a running engine sends it (no process per alert)."""
    r, user = tmux_rig
    tmux = r.engine.tmux
    r.fire("auth", "done", "nobody attached yet")
    first = wait_until(lambda: r.history() and r.history()[0]["deliveries"][0]["status"] == "sent" and r.history(),
                       message="the first alert")[0]
    assert first["deliveries"][0]["detail"] == "no client attached"  # nothing to show it on: done, not retried

    tmux.ensure_server()
    tmux.run("new-session", "-d", "-s", "main", "sleep 600")
    if control:
        assert tmux.has_session(ENGINE_SESSION)  # the server keeps it for the control client
        tmux.use_control()
    attach = f"tmux -S {tmux.socket} attach -t main"
    subprocess.run([*user, "new-session", "-d", "-s", "user", "-x", "150", "-y", "30", attach], check=True)
    wait_until(lambda: any("/dev/" in line for line in tmux.run("list-clients")), message="a client attached")

    def user_screen() -> str:
        return subprocess.run([*user, "capture-pane", "-p", "-t", "user"], capture_output=True, text=True).stdout

    r.fire("auth", "waiting", "waiting for approval: Bash(git push #1)")
    wait_until(lambda: "auth waiting" in user_screen(), message="the message in the status line")
    assert "Bash(git push #1)" in user_screen()  # a '#' is shown as typed, not taken as a tmux format
    bell = [*user, "display-message", "-p", "-t", "user", "#{window_bell_flag}"]
    wait_until(lambda: subprocess.run(bell, capture_output=True, text=True).stdout.strip() == "1",
               message="the bell")
    # Recorded once the channel returns, a moment after the bell.
    second = wait_until(lambda: r.history()[-1]["deliveries"][0]["status"] == "sent" and r.history()[-1],
                        message="recorded as sent")["deliveries"][0]
    assert second["detail"] == "shown to 1 client(s)"


@pytest.mark.parametrize("control", [False, True], ids=["spawned", "control-client"])
def test_tmux_shows_each_alert_in_one_round_trip_and_a_newly_attached_client_too(
        tmux_rig: tuple[Rig, list[str]], control: bool) -> None:
    """Once the clients are known, the message goes to them in the round trip that lists them; a client that
    attached since is listed there and shown it right after; one that left does not fail the delivery."""
    from supervisor.alerts.content import make_test_alert

    r, user = tmux_rig
    tmux = r.engine.tmux
    tmux.ensure_server()
    tmux.run("new-session", "-d", "-s", "main", "sleep 600")
    if control:
        tmux.use_control()
    attach = f"tmux -S {tmux.socket} attach -t main"
    channel = TmuxChannel(tmux)
    trips: list[int] = []
    query = tmux._query

    def counted(commands: list[list[str]], lines: list[int] | None = None) -> list[tuple[bool, list[str]]]:
        trips.append(len(commands))
        return query(commands, lines)

    tmux._query = counted  # type: ignore[method-assign]

    def attach_user(session: str) -> None:
        subprocess.run([*user, "new-session", "-d", "-s", session, "-x", "150", "-y", "30", attach], check=True)

    def screen(session: str) -> str:
        return subprocess.run([*user, "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

    def clients() -> int:
        return sum("/dev/" in line for line in tmux.run("list-clients"))

    attach_user("one")
    wait_until(lambda: clients() == 1, message="a client attached")
    assert channel.send(make_test_alert("first", 1.0), None, 1.0).detail == "shown to 1 client(s)"
    wait_until(lambda: "first" in screen("one"), message="the first message")
    trips.clear()
    assert channel.send(make_test_alert("second", 2.0), None, 2.0).detail == "shown to 1 client(s)"
    assert trips == [2], trips  # the list and the message, in one round trip
    wait_until(lambda: "second" in screen("one"), message="the second message")
    attach_user("two")
    wait_until(lambda: clients() == 2, message="a second client attached")
    assert channel.send(make_test_alert("third", 3.0), None, 3.0).detail == "shown to 2 client(s)"
    wait_until(lambda: "third" in screen("one") and "third" in screen("two"), message="the third message on both")
    subprocess.run([*user, "kill-session", "-t", "one"], check=True)
    wait_until(lambda: clients() == 1, message="the first client gone")
    assert channel.send(make_test_alert("fourth", 4.0), None, 4.0).detail == "shown to 1 client(s)"
    wait_until(lambda: "fourth" in screen("two"), message="the fourth message")


def test_tmux_with_no_server_here_starts_no_tmux_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine whose agents all run on hosts has no tmux server here: nobody is attached, told without a tmux
    process (each alert started three before: the control client, the query, a check that the server lives)."""
    calls = tmp_path / "calls"
    shim = tmp_path / "bin" / "tmux"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {shutil.which("tmux")} "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim.parent}:{os.environ['PATH']}")
    tmux = Tmux(tmp_path / "tmux.sock", tmp_path / "tmux.conf")
    tmux.use_control()  # as the engine's
    channel = TmuxChannel(tmux)
    assert channel.clients() == []
    assert channel.check().detail == "0 client(s) attached to supervisor's tmux server"
    assert not calls.exists()
