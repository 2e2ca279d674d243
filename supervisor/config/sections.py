"""supervisor.yaml's sections, each read into its dataclass and checked (what one value must be, what one
section needs as a whole)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final

import yaml

from supervisor.config.reader import _describe, _is_null, _Reader, _Section
from supervisor.config.settings import (
    _EMAIL_KEYS,
    _PRICE_KEYS,
    _SECTIONS,
    _SLACK_KEYS,
    ALERT_TRIGGERS,
    BUDGET_ACTIONS,
    DEFAULT_COMMANDS,
    DEFAULT_STAGGER,
    EMAIL_SECURITY,
    ISOLATIONS,
    LIMIT_ACTIONS,
    PROFILES,
    RESTART_POLICIES,
    RESTORE_MODES,
    STALL_ACTIONS,
    AgentConfig,
    AlertsConfig,
    ApprovalConfig,
    BudgetConfig,
    Config,
    EmailConfig,
    LimitsConfig,
    LogsConfig,
    MergeConfig,
    SandboxConfig,
    SlackConfig,
    WorktreesConfig,
)
from supervisor.core.budget import Budget, parse_budget
from supervisor.hostsconfig import read_hosts
from supervisor.usage.prices import ModelPrice

# A Slack member id (profile → ⋮ → Copy member ID): U… for a workspace's users, W… on Enterprise Grid.
_SLACK_USER_ID: Final = re.compile(r"[UW][A-Z0-9]{2,}")


class _Parser(_Reader):
    """Walks the node tree section by section into a Config."""

    def config(self, root: yaml.Node | None, source: Path | None) -> Config:
        if root is not None and not _is_null(root) and not isinstance(root, yaml.MappingNode):
            self.fail(
                root,
                f"the top level must be a mapping of sections (agent:, limits:, …), got {_describe(root)}",
            )
        top = self.section(root, "", tuple(_SECTIONS))
        hosts = read_hosts(self, top.get("hosts"))
        return Config(
            repo_root=self.repo_root,
            agent=self.agent(self.section(top.get("agent"), "agent", _SECTIONS["agent"])),
            worktrees=self.worktrees(self.section(top.get("worktrees"), "worktrees", _SECTIONS["worktrees"])),
            limits=self.limits(self.section(top.get("limits"), "limits", _SECTIONS["limits"])),
            logs=self.logs(self.section(top.get("logs"), "logs", _SECTIONS["logs"])),
            alerts=self.alerts(self.section(top.get("alerts"), "alerts", _SECTIONS["alerts"])),
            approval=self.approval(self.section(top.get("approval"), "approval", _SECTIONS["approval"])),
            merge=self.merge(self.section(top.get("merge"), "merge", _SECTIONS["merge"])),
            budget=self.budget(self.section(top.get("budget"), "budget", _SECTIONS["budget"])),
            isolation=self.isolation(top),
            sandbox=self.sandbox(self.section(top.get("sandbox"), "sandbox", _SECTIONS["sandbox"])),
            prices=self.prices(top.get("prices")),
            hosts=hosts.remote,
            local_max_agents=hosts.local_max_agents,
            source=source,
        )

    # -- sections ----------------------------------------------------------------------------------

    def agent(self, sec: _Section) -> AgentConfig:
        profile = self.choice(sec, "profile", "claude", PROFILES)
        command = self.opt_string(sec, "command") or DEFAULT_COMMANDS.get(profile)
        if command is None:
            self.fail(
                sec.get("profile"),
                f"agent.profile '{profile}' needs agent.command",
                "set agent.command to the command line that starts your agent",
            )
        stagger = self.opt_duration(sec, "stagger", None)
        return AgentConfig(
            profile=profile,
            command=command,
            stagger=DEFAULT_STAGGER[profile] if stagger is None else stagger,
        )

    def worktrees(self, sec: _Section) -> WorktreesConfig:
        template = self.string(sec, "dir", "../{repo}-worktrees")
        node = sec.get("dir")

        def substitute(match: re.Match[str]) -> str:
            if match.group(1) != "repo":
                message = f"worktrees.dir: unknown placeholder {match.group(0)}"
                self.fail(node, message, "only {repo} is known")
            return self.repo_root.name

        relative = re.sub(r"\{([^{}]*)\}", substitute, template)
        directory = Path(os.path.normpath(self.repo_root / Path(relative).expanduser()))
        return WorktreesConfig(dir=directory, setup=self.strings(sec, "setup"))

    def limits(self, sec: _Section) -> LimitsConfig:
        return LimitsConfig(
            max_level=self.integer(sec, "max_level", 3, 1, 3),
            session_timeout=self.opt_duration(sec, "session_timeout", None),
            helper_timeout=self.opt_duration(sec, "helper_timeout", 3600.0),
            stall_after=self.duration(sec, "stall_after", 600.0),
            idle_after=self.duration(sec, "idle_after", 5.0),
            restart=self.choice(sec, "restart", "never", RESTART_POLICIES),
            max_restarts=self.integer(sec, "max_restarts", 3, 0),
            start_seconds=self.duration(sec, "start_seconds", 10.0),
            max_auto_restarts=self.integer(sec, "max_auto_restarts", 10, 0),
            auto_restart_window=self.duration(sec, "auto_restart_window", 3600.0),
            on_stall=self.choice(sec, "on_stall", "none", STALL_ACTIONS),
            stop_grace=self.duration(sec, "stop_grace", 5.0),
            error_repeats=self.integer(sec, "error_repeats", 3, 1),
            error_window=self.duration(sec, "error_window", 600.0),
            restore=self.choice(sec, "restore", "ask", RESTORE_MODES),
            on_limit=self.choice(sec, "on_limit", "alert", LIMIT_ACTIONS),
            resume_after_limit=self.boolean(sec, "resume_after_limit", False),
            context_alert=self.percent(sec, "context_alert", 90.0),
        )

    def budget(self, sec: _Section) -> BudgetConfig:
        return BudgetConfig(
            per_session_tree=self.amount(sec, "per_session_tree"),
            per_repository_per_day=self.amount(sec, "per_repository_per_day"),
            on_budget=self.choice(sec, "on_budget", "alert", BUDGET_ACTIONS),
        )

    def amount(self, sec: _Section, key: str) -> Budget | None:
        """A budget (`$20`, `2M tokens`, both); null = none."""
        node = sec.get(key)
        value = self.text(node, sec.dotted(key)) if node is not None else None
        if node is None or value is None:
            return None
        try:
            return parse_budget(value)
        except ValueError as exc:
            self.fail(node, f"{sec.dotted(key)}: {exc}")

    def logs(self, sec: _Section) -> LogsConfig:
        return LogsConfig(max_bytes=self.size(sec, "max_bytes", 10 * 1024 * 1024))

    def alerts(self, sec: _Section) -> AlertsConfig:
        notify_on = self.strings(sec, "notify_on", allowed=ALERT_TRIGGERS)
        return AlertsConfig(
            slack=self.slack(sec),
            email=self.email(sec),
            command=self.opt_string(sec, "command"),
            tmux=self.boolean(sec, "tmux", True),
            notify_on=notify_on if sec.get("notify_on") is not None else ALERT_TRIGGERS,
            repeat_after=self.opt_duration(sec, "repeat_after", 1800.0),
            group_wait=self.duration(sec, "group_wait", 5.0),
            helper_done=self.choice(sec, "helper_done", "parent", ("parent", "human")),
            max_per_hour=self.integer(sec, "max_per_hour", 30, 1),
        )

    def slack(self, alerts: _Section) -> SlackConfig | None:
        node = alerts.get("slack")
        if node is None or _is_null(node):
            return None
        sec = self.section(node, "alerts.slack", _SLACK_KEYS)
        slack = SlackConfig(
            token=self.opt_string(sec, "token"),
            channel=self.opt_string(sec, "channel"),
            webhook_url=self.opt_string(sec, "webhook_url"),
            base_url=self.opt_string(sec, "base_url"),
            approvers=self.slack_users(sec, "approvers"),
        )
        if not ((slack.token and slack.channel) or slack.webhook_url):
            missing = "channel" if slack.token else "token" if slack.channel else "token and channel"
            self.fail(
                node,
                f"alerts.slack needs token and channel, or webhook_url (missing {missing})",
                'e.g. slack: {token: "${SLACK_BOT_TOKEN}", channel: "#agents"}',
            )
        if slack.approvers and not (slack.token and slack.channel):
            # A webhook only posts: nothing reads the replies, so the list would let nobody approve.
            self.fail(sec.get("approvers"), "alerts.slack.approvers needs token and channel: a webhook cannot read "
                      "the replies people answer in", 'add token: "${SLACK_BOT_TOKEN}" and channel: "#agents", '
                      "or remove approvers")
        return slack

    def slack_users(self, sec: _Section, key: str) -> tuple[str, ...]:
        """A list of Slack member ids (one id alone is a list of one); a name or a mention is refused."""
        users = self.strings(sec, key, one_ok=True)
        node = sec.get(key)
        if not users or node is None:
            return ()
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for user, item in zip(users, items, strict=True):
            if not _SLACK_USER_ID.fullmatch(user):
                self.fail(item, f"{sec.dotted(key)}: {user!r} is not a Slack member id (such as U024BE7LH)",
                          "in Slack, open the person's profile, then ⋮ → Copy member ID")
        return tuple(dict.fromkeys(users))

    def email(self, alerts: _Section) -> EmailConfig | None:
        node = alerts.get("email")
        if node is None or _is_null(node):
            return None
        sec = self.section(node, "alerts.email", _EMAIL_KEYS)
        host = self.opt_string(sec, "host")
        sender = self.opt_string(sec, "sender")
        to = self.strings(sec, "to", one_ok=True)
        missing = [key for key, value in (("host", host), ("sender", sender), ("to", to)) if not value]
        if host is None or sender is None or missing:
            self.fail(
                node,
                f"alerts.email is missing {', '.join(missing)}",
                "alerts.email needs at least host, sender and to (a list of addresses)",
            )
        ca_file = self.opt_string(sec, "ca_file")
        return EmailConfig(
            host=host,
            sender=sender,
            to=to,
            port=self.integer(sec, "port", 587, 1, 65535),
            security=self.choice(sec, "security", "starttls", EMAIL_SECURITY),
            username=self.opt_string(sec, "username"),
            password=self.opt_string(sec, "password"),
            ca_file=None if ca_file is None else self.repo_root / Path(ca_file).expanduser(),
        )

    def isolation(self, top: _Section) -> str | None:
        node = top.get("isolation")
        if node is None or _is_null(node):
            return None
        return self.choice(top, "isolation", ISOLATIONS[0], ISOLATIONS)

    def sandbox(self, sec: _Section) -> SandboxConfig:
        def folders(key: str) -> tuple[Path, ...]:
            return tuple(Path(os.path.normpath(self.repo_root / os.path.expanduser(text)))
                         for text in self.strings(sec, key, one_ok=True))

        return SandboxConfig(network=self.boolean(sec, "network", True), read=folders("read"),
                             write=folders("write"))

    def merge(self, sec: _Section) -> MergeConfig:
        return MergeConfig(check=self.opt_string(sec, "check"),
                           check_timeout=self.duration(sec, "check_timeout", 1800.0))

    def prices(self, node: yaml.Node | None) -> Mapping[str, ModelPrice]:
        """`prices:` maps model names (any) to {input, output, cache_read, cache_write} in USD per million
        tokens (input and output required; cache prices default to the input price) and context_window."""
        if node is None or _is_null(node):
            return MappingProxyType({})
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"'prices' must map model names to prices, got {_describe(node)}",
                      "e.g. prices: {my-model: {input: 3.0, output: 15.0}} (USD per million tokens)")
        found: dict[str, ModelPrice] = {}
        for key_node, value_node in node.value:
            model = self.required(key_node, "prices", "a model name")
            if model in found:
                self.fail(key_node, f"duplicate model 'prices.{model}'")
            sec = self.section(value_node, f"prices.{model}", _PRICE_KEYS)
            for key in ("input", "output"):
                if sec.get(key) is None:
                    self.fail(value_node, f"prices.{model} needs '{key}' (USD per million tokens)")
            per_token = {key: self.price(sec, key) for key in _PRICE_KEYS[:4]}
            window = sec.get("context_window")
            found[model] = ModelPrice(
                input=per_token["input"] or 0.0, output=per_token["output"] or 0.0, cache_read=per_token["cache_read"],
                cache_write=per_token["cache_write"],
                context_window=None if window is None else self.integer(sec, "context_window", 0, 1))
        return MappingProxyType(found)

    def price(self, sec: _Section, key: str) -> float | None:
        """A price in USD per million tokens, as USD per token (None when absent)."""
        node = sec.get(key)
        if node is None:
            return None
        name = sec.dotted(key)
        value = self.required(node, name, "a price in USD per million tokens")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not number >= 0 or number == float("inf"):
            self.fail(node, f"{name} must be a price in USD per million tokens (a number ≥ 0), got {value!r}")
        return number / 1e6

    def approval(self, sec: _Section) -> ApprovalConfig:
        return ApprovalConfig(
            require=self.strings(sec, "require"),
            timeout=self.opt_duration(sec, "timeout", 600.0),
        )

