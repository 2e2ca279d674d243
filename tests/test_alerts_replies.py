"""Approvals answered in Slack: a human's `approve` / `deny <reason>` reply in the agent's alert thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from supervisor.alerts.replies import parse_answer
from tests.alert_servers import TOKEN, SlackServer
from tests.conftest import Sandbox, wait_until
from tests.test_watching import fake_claude


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    server = SlackServer().start()
    yield server
    server.stop()


def test_a_deny_reply_in_the_thread_reaches_the_agent_with_its_reason(sandbox: Sandbox, slack: SlackServer) -> None:
    sandbox.env["SLACK_BOT_TOKEN"] = TOKEN
    sandbox.write_config(
        "agent:\n  stagger: 0s\nlimits:\n  idle_after: 1s\n"
        "alerts:\n  tmux: false\n  group_wait: 0.2s\n"
        f"  slack: {{token: \"${{SLACK_BOT_TOKEN}}\", channel: \"#agents\", base_url: \"{slack.base_url}\"}}\n")
    command = fake_claude(sandbox, "sl", """
        turns:
          - [{ask: "git push --force"}, {say: pushed}]
    """)
    sandbox.sv("start", "auth", "--task", "ship it", "--command", command)
    sandbox.wait_state("auth", "waiting")
    alert = wait_until(lambda: next((m for m in slack.posted() if "auth" in m["text"] and "thread_ts" not in m),
                                    None), message="the waiting alert in Slack")
    assert "supervisor approve auth" in alert["text"]
    slack.reply(alert["ts"], "looking…")  # chatter is ignored
    slack.reply(alert["ts"], "deny not on a Friday")
    wait_until(lambda: "denied (by hook): not on a Friday" in sandbox.screen("auth"), timeout=20,
               message="the denial and its reason at the agent")
    assert "pushed" not in sandbox.screen("auth")
    wait_until(lambda: any(m.get("text", "").startswith("Denied by <@U0HUMAN>: not on a Friday")
                           for m in slack.thread_messages(alert["ts"])), message="the note in the thread")


@pytest.mark.parametrize(("text", "answer"), [
    ("approve", (True, None)), ("Approve!", (True, None)), ("<@U0BOT> approve", (True, None)),
    ("deny", (False, None)), ("deny  too risky  today", (False, "too risky today")),
    ("no: not now", (False, "not now")),
    ("looks fine to me", None), ("", None), ("approvement", None),
])
def test_replies_are_read_as_answers_only_when_they_are(text: str, answer: tuple[bool, str | None] | None) -> None:
    assert parse_answer(text) == answer
