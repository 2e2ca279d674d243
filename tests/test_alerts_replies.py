"""Approvals answered in Slack: a human's `approve` / `deny <reason>` reply in the agent's alert thread."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

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


def waiting_for_a_push(sandbox: Sandbox, slack: SlackServer, approvers: str | None,
                       turns: str = "- [{ask: \"git push --force\"}, {say: pushed}]") -> dict[str, Any]:
    """An agent waiting to push, its alert in Slack (the message); `approvers` as supervisor.yaml spells them."""
    sandbox.env["SLACK_BOT_TOKEN"] = TOKEN
    listed = f", approvers: {approvers}" if approvers is not None else ""
    sandbox.write_config(
        "agent:\n  stagger: 0s\nlimits:\n  idle_after: 1s\n"
        "alerts:\n  tmux: false\n  group_wait: 0.2s\n"
        f"  slack: {{token: \"${{SLACK_BOT_TOKEN}}\", channel: \"#agents\", base_url: \"{slack.base_url}\"{listed}}}\n")
    command = fake_claude(sandbox, "sl", "turns:\n" + "".join(f"  {line}\n" for line in turns.splitlines()))
    sandbox.sv("start", "auth", "--task", "ship it", "--command", command)
    sandbox.wait_state("auth", "waiting")
    alert: dict[str, Any] = wait_until(
        lambda: next((m for m in slack.posted() if "auth" in m["text"] and "thread_ts" not in m), None),
        message="the waiting alert in Slack")
    return alert


def notes(slack: SlackServer, alert: dict[str, Any], start: str) -> list[str]:
    return [m["text"] for m in slack.thread_messages(alert["ts"]) if m.get("text", "").startswith(start)]


def test_a_deny_reply_in_the_thread_reaches_the_agent_with_its_reason(sandbox: Sandbox, slack: SlackServer) -> None:
    alert = waiting_for_a_push(sandbox, slack, "[U0HUMAN]")
    assert "supervisor approve auth" in alert["text"]
    slack.reply(alert["ts"], "looking…")  # chatter is ignored
    slack.reply(alert["ts"], "deny not on a Friday")
    wait_until(lambda: "denied (by hook): not on a Friday" in sandbox.screen("auth"), timeout=20,
               message="the denial and its reason at the agent")
    assert "pushed" not in sandbox.screen("auth")
    wait_until(lambda: any(m.get("text", "").startswith("Denied by <@U0HUMAN>: not on a Friday")
                           for m in slack.thread_messages(alert["ts"])), message="the note in the thread")


def test_an_answer_from_someone_not_listed_changes_nothing_and_is_told_once(sandbox: Sandbox,
                                                                           slack: SlackServer) -> None:
    alert = waiting_for_a_push(sandbox, slack, "[U0HUMAN, U0LEAD]")
    slack.reply(alert["ts"], "approve", user="U0INTRUDER")
    refused = "<@U0INTRUDER> may not answer approvals"
    wait_until(lambda: notes(slack, alert, refused), message="the refusal in the thread")
    assert sandbox.state("auth") == "waiting" and "approved" not in sandbox.screen("auth")
    slack.reply(alert["ts"], "approve!", user="U0INTRUDER")
    slack.reply(alert["ts"], "yes", user="U0OTHER")
    wait_until(lambda: notes(slack, alert, "<@U0OTHER> may not"), message="the second person's refusal")
    assert len(notes(slack, alert, refused)) == 1  # told once, however often they try
    assert sandbox.state("auth") == "waiting" and "approved" not in sandbox.screen("auth")
    slack.reply(alert["ts"], "approve", user="U0LEAD")
    wait_until(lambda: "pushed" in sandbox.screen("auth"), timeout=20, message="the approval at the agent")
    assert notes(slack, alert, "Approved by <@U0LEAD>")
    events = sandbox.agent("auth")["events"]
    assert [e.get("by") for e in events if e["kind"] == "approved"] == ["slack:U0LEAD"]


def test_without_approvers_answers_from_slack_are_off_and_doctor_says_how_to_turn_them_on(
        sandbox: Sandbox, slack: SlackServer) -> None:
    alert = waiting_for_a_push(sandbox, slack, None)
    slack.reply(alert["ts"], "approve")
    wait_until(lambda: notes(slack, alert, "Answers from Slack are off"), message="the note in the thread")
    last = slack.reply(alert["ts"], "approve", user="U0LEAD")
    wait_until(lambda: any(float(call.body.get("oldest") or 0) >= float(last)
                           for call in slack.calls("conversations.replies")), message="the engine reading past it")
    assert len(notes(slack, alert, "Answers from Slack are off")) == 1
    assert "alerts.slack.approvers" in notes(slack, alert, "Answers from Slack are off")[0]
    assert sandbox.state("auth") == "waiting" and "approved" not in sandbox.screen("auth")
    checks = {c["name"]: c for c in json.loads(sandbox.sv("doctor", "--json", check=False).stdout)}
    assert checks["slack approvals"]["detail"].startswith("off")
    assert "alerts.slack.approvers" in checks["slack approvals"]["detail"]


def reads_past(slack: SlackServer, ts: str) -> None:
    """Wait until the engine has read the thread past the message `ts`."""
    wait_until(lambda: any(float(call.body.get("oldest") or 0) >= float(ts)
                           for call in slack.calls("conversations.replies")), message="the engine reading past it")


def test_an_approve_sent_before_a_request_was_made_does_not_answer_it(sandbox: Sandbox, slack: SlackServer) -> None:
    """The first request was answered from the command line; an approver's `approve` came after it, while the
    agent worked: the agent's next request is not approved by it."""
    alert = waiting_for_a_push(sandbox, slack, "[U0HUMAN]", turns=(
        '- [{ask: "git push --force"}, {say: pushed}]\n- [{ask: "git push --force origin other"}, {say: again}]'))
    sandbox.sv("approve", "auth")
    wait_until(lambda: "pushed" in sandbox.screen("auth"), timeout=20, message="the first push")
    sandbox.wait_state("auth", "idle")
    slack.reply(alert["ts"], "approve")  # too late for the first request, before the second was made
    sandbox.sv("send", "auth", "push the other branch")
    sandbox.wait_state("auth", "waiting")
    before = len(slack.calls("conversations.replies"))
    wait_until(lambda: len(slack.calls("conversations.replies")) >= before + 2 or sandbox.state("auth") != "waiting",
               timeout=20, message="the engine reading the thread during the second wait")
    assert sandbox.state("auth") == "waiting" and "again" not in sandbox.screen("auth")
    slack.reply(alert["ts"], "approve")
    wait_until(lambda: "again" in sandbox.screen("auth"), timeout=20, message="the second push, approved anew")


def test_a_broadcast_reply_answers_and_a_memberless_or_edited_one_does_not(sandbox: Sandbox,
                                                                          slack: SlackServer) -> None:
    alert = waiting_for_a_push(sandbox, slack, "[U0HUMAN]")
    slack.reply(alert["ts"], "approve", user=None)  # an app's message: no member sent it
    wait_until(lambda: notes(slack, alert, "A message with no Slack member behind it"),
               message="the refusal of a memberless answer")
    assert not [m for m in slack.thread_messages(alert["ts"]) if "<@>" in m.get("text", "")]
    edited = slack.reply(alert["ts"], "approve", edited={"user": "U0HUMAN", "ts": "1.0"})  # it said "wait" first
    wait_until(lambda: notes(slack, alert, "An edited message answers nothing"), message="the note on the edit")
    reads_past(slack, edited)
    assert sandbox.state("auth") == "waiting" and "pushed" not in sandbox.screen("auth")
    slack.reply(alert["ts"], "approve", subtype="thread_broadcast")  # "also send to #agents"
    wait_until(lambda: "pushed" in sandbox.screen("auth"), timeout=20, message="the broadcast approval at the agent")
    assert notes(slack, alert, "Approved by <@U0HUMAN>")


@pytest.mark.parametrize(("text", "answer"), [
    ("approve", (True, None)), ("Approve!", (True, None)), ("<@U0BOT> approve", (True, None)),
    ("deny", (False, None)), ("deny  too risky  today", (False, "too risky today")),
    ("no: not now", (False, "not now")),
    ("looks fine to me", None), ("", None), ("approvement", None),
])
def test_replies_are_read_as_answers_only_when_they_are(text: str, answer: tuple[bool, str | None] | None) -> None:
    assert parse_answer(text) == answer
