"""Slack with a bot token posts each alert exactly once across an engine killed with SIGKILL mid-post: the local
Slack stand-in holds a post (after storing it, or before) and the test kills the engine while it waits, so the
kill lands between Slack accepting the message and the store marking it sent, or before Slack has it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from tests.alert_servers import SlackServer
from tests.conftest import Sandbox, process_gone, wait_until
from tests.test_alerts_engine import configure, deliveries

CRASH = "sh -c 'sleep 0.3; exit 3'"  # an agent that exits by itself: one `exited` alert per run


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    server = SlackServer().start()
    yield server
    server.stop()


def kill_engine_while_held(sandbox: Sandbox, slack: SlackServer) -> None:
    """Wait for the held post, SIGKILL the engine that made it, then let the stand-in answer a dead socket."""
    pid = sandbox.engine_pid()
    wait_until(slack.held.is_set, timeout=20, message="the post held by Slack")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: process_gone(pid), message="the engine dead")
    slack.let_go()


def sent(sandbox: Sandbox, count: int) -> None:
    wait_until(lambda: [d[2] for d in deliveries(sandbox)] == ["sent"] * count, timeout=20, interval=0.1,
               message=f"{count} alert(s) recorded as sent")


def test_a_first_message_accepted_before_the_kill_is_not_posted_again(sandbox: Sandbox, slack: SlackServer) -> None:
    configure(sandbox, slack)
    slack.hold_post("accepted")
    sandbox.sv("start", "crash", "--command", CRASH)
    kill_engine_while_held(sandbox, slack)
    assert len(slack.posted()) == 1 and [d[2] for d in deliveries(sandbox)] == ["pending"]
    sandbox.sv("ls")  # a new engine resumes the outbox
    sent(sandbox, 1)
    assert len(slack.posted()) == 1, [m["text"] for m in slack.posted()]
    assert slack.calls("conversations.history"), "the new engine did not look before posting"
    # The thread it started is known: the agent's next alert is a reply in it.
    sandbox.sv("restart", "crash")
    sent(sandbox, 2)
    first, second = slack.posted()
    assert second["thread_ts"] == first["ts"]


def test_a_thread_reply_accepted_before_the_kill_is_not_posted_again(sandbox: Sandbox, slack: SlackServer) -> None:
    configure(sandbox, slack)
    slack.hold_post("accepted", after=1)  # the first alert starts the thread; its reply is held
    sandbox.sv("start", "crash", "--command", CRASH)
    sent(sandbox, 1)
    sandbox.sv("restart", "crash")
    kill_engine_while_held(sandbox, slack)
    sandbox.sv("ls")
    sent(sandbox, 2)
    assert len(slack.posted()) == 2, [m["text"] for m in slack.posted()]
    first, reply = slack.posted()
    assert reply["thread_ts"] == first["ts"]
    assert slack.calls("conversations.replies"), "the new engine did not look in the thread before posting"


def test_a_post_killed_before_it_reached_slack_is_posted_once_after_restart(
        sandbox: Sandbox, slack: SlackServer) -> None:
    configure(sandbox, slack)
    slack.hold_post("arrived")  # the engine's request is on its way; Slack never stores it
    sandbox.sv("start", "crash", "--command", CRASH)
    kill_engine_while_held(sandbox, slack)
    assert slack.posted() == []
    sandbox.sv("ls")
    sent(sandbox, 1)
    assert slack.calls("conversations.history"), "the new engine posted without looking first"
    (message,) = slack.posted()
    assert "*crash*" in message["text"]
    assert message["metadata"]["event_type"] == "supervisor_alert"
