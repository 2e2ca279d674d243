"""What an alert says (SPEC §8): the repo, the agent, each trigger, what it was doing, for how long, and the
exact command to act. One `AlertContent` is one message about one subject (an agent, or e.g. supervisor's tmux
server, naming the agents it concerns: core/subjects.py); it may group several triggers.

The content is composed once, when the router writes the alert to the outbox, and stored as JSON, so every
channel (and every retry after a restart) sends the same words. Only "how late is this" is computed at send time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from supervisor.core import subjects
from supervisor.core.durations import format_duration

FIRING = "firing"
RESOLVED = "resolved"

SCREEN_LINES = 10
LINE_CHARS = 200
TASK_CHARS = 400
DELAYED_AFTER = 60.0  # seconds between writing and sending after which the message says it is late
# Conditions that hold a while (the others are moments).
LASTING = frozenset({"waiting", "stalled", "deadlock", "limited", "host_down"})


@dataclass(frozen=True)
class Item:
    """One trigger of the agent in this message."""

    trigger: str
    status: str  # FIRING or RESOLVED
    summary: str
    since: float  # when the condition started (epoch seconds)
    until: float | None = None  # when it cleared (resolved items)
    repeat: int = 0  # 0 for the first notice, n for the n-th reminder while still true
    count: int = 1  # occurrences merged into this item while the group waited
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertContent:
    repo: str
    agent: str  # the subject: an agent's name, or e.g. `tmux:` (then `agents` names the agents concerned)
    items: tuple[Item, ...]
    created: float
    task: str | None = None
    screen: tuple[str, ...] = ()
    alert_id: int = 0  # the outbox id; 0 for a test alert
    test: bool = False
    agents: tuple[str, ...] = ()

    # -- (de)serialisation ----------------------------------------------------------------------------

    def to_json(self) -> str:
        """As `json.dumps(asdict(self))` gives it, without asdict's deep copy of every field (an alert a second
        at many agents: that copy was most of the cost of writing one)."""
        return json.dumps({**vars(self), "items": [vars(item) for item in self.items]}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AlertContent:
        data = json.loads(text)
        items = tuple(Item(**item) for item in data.pop("items"))
        data["screen"] = tuple(data.get("screen") or ())
        data["agents"] = tuple(data.get("agents") or ())
        return cls(items=items, **data)

    # -- pieces ---------------------------------------------------------------------------------------

    @property
    def about_agent(self) -> bool:
        return subjects.is_agent(self.agent)

    @property
    def label(self) -> str:
        return subjects.label(self.agent)

    @property
    def firing(self) -> list[Item]:
        return [item for item in self.items if item.status == FIRING]

    @property
    def resolved(self) -> list[Item]:
        return [item for item in self.items if item.status == RESOLVED]

    @property
    def status(self) -> str:
        return FIRING if self.firing else RESOLVED

    def triggers(self) -> list[str]:
        return [item.trigger for item in self.items]

    def item_line(self, item: Item) -> str:
        """`waiting (for 3m): waiting for approval: Bash(rm -rf build/)`."""
        if item.status == RESOLVED:
            lasted = format_duration((item.until or self.created) - item.since)
            return f"resolved: {item.trigger} (lasted {lasted}): {item.summary}"
        label = item.trigger
        if item.repeat:
            label = f"still {item.trigger}"
        elif item.count > 1:
            label = f"{item.trigger} ×{item.count}"
        when = f"for {format_duration(self.created - item.since)}" if item.trigger in LASTING \
            else f"at {_clock(item.since)}"
        line = f"{label} ({when}): {item.summary}"
        if item.evidence:
            details = ", ".join(f"{key}={_value(value)}" for key, value in sorted(item.evidence.items()))
            line += f" [{_clip(details, 200)}]"
        return line

    def title(self) -> str:
        """One line: `repo: auth.test waiting, stalled — <first summary>`."""
        if self.test:
            return f"{self.repo}: test alert from supervisor"
        first = (self.firing or self.resolved)[0]
        names = ", ".join(dict.fromkeys(item.trigger for item in self.firing)) or \
            "resolved " + ", ".join(dict.fromkeys(item.trigger for item in self.resolved))
        return _clip(f"{self.repo}: {self.label} {names} — {first.summary}", 180)

    def actions(self) -> list[str]:
        """The exact commands that act on this alert, most useful first."""
        if self.test:
            return ["supervisor alerts test"]
        if not self.about_agent:
            if not self.firing:
                return ["supervisor ls"]
            if subjects.kind(self.agent) == "tmux":  # the agents it took are restorable: one command for all
                return ["supervisor restore --all", "supervisor ls"]
            if subjects.kind(self.agent) == "host":  # nothing to restart: its agents run on, out of reach
                return [f"supervisor hosts check {self.agent.partition(':')[2]}", "supervisor hosts"]
            return [f"supervisor restart {name}" for name in self.agents] + ["supervisor ls"]
        name = self.agent
        commands: list[str] = []
        for item in self.firing:
            if item.trigger == "waiting":
                commands += [f"supervisor approve {name}", f"supervisor deny {name} --reason TEXT"]
            elif item.trigger in ("exited", "timeout"):
                commands += [f"supervisor log {name}", f"supervisor restart {name}"]
            elif item.trigger == "stalled":
                commands += [f"supervisor restart {name}"]
            elif item.trigger == "done":
                commands += [f"supervisor send {name} TEXT"]
            elif item.trigger == "escape":
                commands += [f"supervisor stop {name}"]
            elif item.trigger == "errors":
                commands += [f"supervisor log {name}"]
            elif item.trigger == "merge":
                commands += [f"supervisor show {name}", f"supervisor merge {name}"]
            elif item.trigger == "limited":
                commands += [f"supervisor send {name} continue"]
            elif item.trigger == "budget":
                commands += ["supervisor usage --by tree", f"supervisor stop {name}"]
        if self.firing and not all(item.trigger in ("exited", "timeout") for item in self.firing):
            commands.append(f"supervisor attach {name}")
        commands.append(f"supervisor show {name}")
        return list(dict.fromkeys(commands))

    def snooze_hint(self) -> str | None:
        return None if self.test or not self.firing else f"supervisor alerts snooze {self.agent} --for 1h"

    def late_note(self, now: float) -> str | None:
        if now - self.created < DELAYED_AFTER:
            return None
        return f"(written at {_clock(self.created)}, delivered late: the channel was unreachable)"

    # -- renderings -----------------------------------------------------------------------------------

    def text(self, now: float) -> str:
        """Plain text, for email and the command channel."""
        lines = [self.title(), ""]
        if self.test:
            lines.append("This is a test alert: the channel works.")
        else:
            lines += [f"repo:  {self.repo}"]
            lines += [f"agent: {self.agent}"] if self.about_agent else \
                [f"about: {self.label}", f"agents: {', '.join(self.agents) or '-'}"]
            lines += [f"- {self.item_line(item)}" for item in self.items]
            if self.task:
                lines += ["", "task:", *("  " + line for line in _clip(self.task, TASK_CHARS).splitlines())]
            if self.screen and self.firing:
                lines += ["", "last screen lines:", *("  │ " + line for line in self.screen)]
        lines += ["", "act:", *("  " + command for command in self.actions())]
        hint = self.snooze_hint()
        if hint:
            lines += ["", f"snooze: {hint}"]
        late = self.late_note(now)
        if late:
            lines += ["", late]
        return "\n".join(lines) + "\n"

    def slack_text(self, now: float) -> str:
        """Slack mrkdwn (`&`, `<`, `>` escaped as Slack requires)."""
        if self.test:
            head = f":white_check_mark: *{_slack(self.repo)}*: test alert from supervisor; this channel works."
            return head
        mark = ":rotating_light:" if self.firing else ":white_check_mark:"
        lines = [f"{mark} *{_slack(self.label)}* in `{_slack(self.repo)}`"]
        lines += [f"• {_slack(self.item_line(item))}" for item in self.items]
        if not self.about_agent:
            lines.append(f"*Agents:* {_slack(', '.join(self.agents) or '-')}")
        if self.task and self.firing:
            lines.append(f"*Task:* {_slack(_clip(self.task, TASK_CHARS))}")
        if self.screen and self.firing:
            lines.append("```\n" + _slack("\n".join(self.screen)).replace("```", "'''") + "\n```")
        lines.append("Act: " + " · ".join(f"`{_slack(command)}`" for command in self.actions()))
        late = self.late_note(now)
        if late:
            lines.append(f"_{_slack(late)}_")
        return "\n".join(lines)

    def one_line(self) -> str:
        """The tmux status-line message."""
        if self.test:
            return f"supervisor: test alert ({self.repo})"
        return _clip(f"supervisor: {self.title()} → {self.actions()[0]}", 240)

    def document(self, now: float) -> dict[str, Any]:
        """The alert as the command channel gives it on stdin (JSON): the SUPERVISOR_ALERT_* variables' values,
        whole, under their names in lower case, with `triggers` and `screen` as lists."""
        values: dict[str, Any] = {key.removeprefix("SUPERVISOR_ALERT_").lower(): value
                                  for key, value in self.environment(now).items()}
        values["id"] = self.alert_id
        values["triggers"] = self.triggers() or ["test"]
        values["screen"] = list(self.screen)
        return values

    def environment(self, now: float) -> dict[str, str]:
        """SUPERVISOR_ALERT_* variables for the command channel (whole: the channel cuts them)."""
        first = (self.firing or self.resolved)[0] if self.items else None
        return {
            "SUPERVISOR_ALERT_ID": str(self.alert_id),
            "SUPERVISOR_ALERT_REPO": self.repo,
            "SUPERVISOR_ALERT_AGENT": self.agent if self.about_agent else "",
            "SUPERVISOR_ALERT_SUBJECT": self.agent,
            "SUPERVISOR_ALERT_AGENTS": " ".join(self.agents) if not self.about_agent else self.agent,
            "SUPERVISOR_ALERT_STATUS": "test" if self.test else self.status,
            "SUPERVISOR_ALERT_TRIGGER": first.trigger if first else "test",
            "SUPERVISOR_ALERT_TRIGGERS": " ".join(self.triggers()) or "test",
            "SUPERVISOR_ALERT_SUMMARY": first.summary if first else "test alert",
            "SUPERVISOR_ALERT_SINCE": iso(first.since if first else self.created) or "",
            "SUPERVISOR_ALERT_FOR": format_duration(self.created - first.since) if first else "0s",
            "SUPERVISOR_ALERT_TASK": self.task or "",
            "SUPERVISOR_ALERT_SCREEN": "\n".join(self.screen),
            "SUPERVISOR_ALERT_ACTION": self.actions()[0],
            "SUPERVISOR_ALERT_TITLE": self.title(),
            "SUPERVISOR_ALERT_TEXT": self.text(now),
        }


def build(alert_id: int, repo: str, agent: str, items: list[Item], evidence: dict[str, Any], created: float,
          secrets: tuple[str, ...] = (), agents: tuple[str, ...] = ()) -> AlertContent:
    """The content of one message about subject `agent`; `evidence` is the newest trigger data (task, screen);
    `agents`: the agents a non-agent subject concerns. Secrets are masked."""
    screen = [_clip(str(line).rstrip(), LINE_CHARS) for line in (evidence.get("screen") or []) if str(line).strip()]
    task = str(evidence["task"]) if evidence.get("task") else None
    if task and isinstance(evidence.get("task_cut"), int):  # the trigger kept the start of a long task
        task += f"… (cut: {evidence['task_cut']} characters in all; `supervisor show {agent} --json` has it whole)"
    content = AlertContent(
        repo=repo, agent=agent, items=tuple(items), created=created,
        task=task, screen=tuple(screen[-SCREEN_LINES:]), alert_id=alert_id, agents=agents,
    )
    if not secrets:
        return content
    return AlertContent.from_json(redact(content.to_json(), secrets))


def make_test_alert(repo: str, now: float) -> AlertContent:
    return AlertContent(repo=repo, agent="supervisor", items=(), created=now, test=True)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret (token, webhook URL, password) replaced by `***`."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
            escaped = json.dumps(secret)[1:-1]
            if escaped != secret:
                text = text.replace(escaped, "***")
    return text


def _slack(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S UTC")


def _value(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
