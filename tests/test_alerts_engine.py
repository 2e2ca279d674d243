"""Alerts through the real engine: an alert written before a kill -9 is delivered once after the restart, a
slow channel never holds up the watch loop, and the CLI's `alerts` commands and `doctor` checks."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from tests.alert_servers import TOKEN, SlackServer
from tests.conftest import DEMO_AGENT, Sandbox, process_gone, wait_until


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    server = SlackServer()
    yield server
    server.stop()


def configure(sandbox: Sandbox, server: SlackServer, token: str = TOKEN, extra: str = "") -> None:
    sandbox.env["SLACK_BOT_TOKEN"] = token
    sandbox.write_config(
        f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\nlimits:\n  idle_after: 1s\n"
        f"alerts:\n  tmux: false\n  group_wait: 0.2s\n"
        f"  slack: {{token: \"${{SLACK_BOT_TOKEN}}\", channel: \"#agents\", base_url: \"{server.base_url}\"}}\n"
        + extra)


def alerts(sandbox: Sandbox) -> list[dict[str, Any]]:
    return list(json.loads(sandbox.sv("alerts", "ls", "--json").stdout))


def deliveries(sandbox: Sandbox) -> list[tuple[int, str, str, int]]:
    """(alert, channel, status, attempts) straight from the store: cheaper to poll than a CLI process."""
    path = sandbox.root / ".git" / "supervisor" / "state.db"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT alert, channel, status, attempts FROM alert_deliveries ORDER BY alert").fetchall()
    except sqlite3.OperationalError:  # the engine has not created its tables yet
        return []
    finally:
        db.close()


def test_an_unsent_alert_survives_kill_9_and_is_delivered_once_after_restart(
        sandbox: Sandbox, slack: SlackServer) -> None:
    configure(sandbox, slack)  # the server is not started: Slack is down
    sandbox.sv("start", "crash", "--command", "sh -c 'sleep 0.3; exit 3'")

    def unsent() -> bool:
        found = deliveries(sandbox)
        return bool(found) and found[0][2] == "pending" and found[0][3] >= 1

    wait_until(unsent, timeout=20, interval=0.1, message="an alert in the outbox that could not be sent")
    pid = sandbox.engine_pid()
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: process_gone(pid), message="the engine dead")
    slack.start()  # the channel comes back while no engine runs
    sandbox.sv("ls")  # any command starts a new engine, which resumes the outbox
    wait_until(lambda: len(slack.posted()) == 1, timeout=20, message="the alert delivered after the restart")
    wait_until(lambda: [d[2] for d in deliveries(sandbox)] == ["sent"], interval=0.1, message="recorded as sent")
    (alert,) = alerts(sandbox)
    assert sandbox.engine_pid() != pid
    assert [item["trigger"] for item in alert["items"]] == ["exited"]
    assert "*crash*" in slack.posted()[0]["text"] and "exited 3" in slack.posted()[0]["text"]
    assert len(slack.posted()) == 1  # once, although it was attempted before the kill
    log = (sandbox.root / ".git" / "supervisor" / "engine.log").read_text()
    assert TOKEN not in log


def test_a_slow_slack_never_delays_the_watch_loop(sandbox: Sandbox, slack: SlackServer) -> None:
    slack.delay = 30.0  # every Slack request takes half a minute
    slack.start()
    configure(sandbox, slack)
    sandbox.sv("start", "first", "--command", "sh -c 'exit 4'")
    wait_until(lambda: slack.requests, timeout=20, message="a post to Slack in flight")
    sandbox.sv("start", "second", "--command", "sh -c 'sleep 0.3; exit 0'")
    sandbox.wait_state("second", "exited", timeout=10)  # seen within ticks, not after the slow post
    assert slack.posted() == []  # the first post is still in flight meanwhile
    status = json.loads(sandbox.sv("engine", "status", "--json").stdout)
    assert status["tick_seconds"] is not None and status["tick_seconds"] < 2.0  # no tick waited on Slack


def test_alerts_test_reports_each_channel_and_fails_when_one_fails(sandbox: Sandbox, slack: SlackServer) -> None:
    slack.start()
    configure(sandbox, slack, extra="  command: \"echo no pager here >&2; exit 7\"\n")
    done = sandbox.sv("alerts", "test", check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("ok") and "slack" in line for line in lines)
    assert any(line.startswith("FAIL") and "command" in line and "exited 7: no pager here" in line for line in lines)
    assert len(slack.posted()) == 1 and "test alert" in slack.posted()[0]["text"]
    configure(sandbox, slack)
    done = sandbox.sv("alerts", "test", check=False)
    assert done.returncode == 0 and done.stdout.startswith("ok   slack"), done.stdout + done.stderr
    assert alerts(sandbox) == []  # a test goes around the outbox


def test_doctor_checks_slack_with_auth_test(sandbox: Sandbox, slack: SlackServer) -> None:
    slack.start()
    configure(sandbox, slack)
    checks = {c["name"]: c for c in json.loads(sandbox.sv("doctor", "--json", check=False).stdout)}
    assert checks["alerts: slack"]["ok"] and "token valid" in checks["alerts: slack"]["detail"]
    configure(sandbox, slack, token="xoxb-not-the-right-one")
    done = sandbox.sv("doctor", check=False)
    assert done.returncode == 1 and "auth.test failed: invalid_auth" in done.stdout
    assert "xoxb-not-the-right-one" not in done.stdout


def test_snooze_unsnooze_and_silences_from_the_cli(sandbox: Sandbox, slack: SlackServer) -> None:
    slack.start()
    configure(sandbox, slack)
    sandbox.sv("start", "auth", "--command", "sleep 600")
    typo = sandbox.sv("alerts", "snooze", "atuh", check=False)  # would silence nothing: refused
    assert typo.returncode == 2 and "no agent named 'atuh'" in typo.stderr and "did you mean 'auth'?" in typo.stderr
    out = sandbox.sv("alerts", "snooze", "auth", "--for", "10m").stdout
    assert out.startswith("snoozed auth for 10m")
    sandbox.sv("alerts", "snooze", "--trigger", "stalled")
    found = json.loads(sandbox.sv("alerts", "silences", "--json").stdout)
    assert [(s["agent"], s["trigger"]) for s in found] == [("auth", None), (None, "stalled")]
    assert "auth" in sandbox.sv("alerts", "silences").stdout
    bad = sandbox.sv("alerts", "snooze", "--for", "10m", check=False)
    assert bad.returncode == 2 and "say what to snooze" in bad.stderr and "Traceback" not in bad.stderr
    sandbox.sv("alerts", "unsnooze", "auth")
    sandbox.sv("alerts", "unsnooze", "--id", str(found[1]["id"]))
    assert json.loads(sandbox.sv("alerts", "silences", "--json").stdout) == []
    assert sandbox.sv("alerts", "unsnooze", "auth", check=False).returncode == 2

