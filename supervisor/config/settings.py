"""What supervisor.yaml holds, typed and frozen: a dataclass per section, the names each choice allows,
and the keys each mapping allows (supervisor/config/sections.py reads the file into them)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final

from supervisor.core.budget import Budget
from supervisor.hostsconfig import HostConfig
from supervisor.usage.prices import ModelPrice

CONFIG_FILENAME: Final = "supervisor.yaml"

PROFILES: Final = ("claude", "codex", "aider", "gemini", "demo", "generic")
DEFAULT_COMMANDS: Final[Mapping[str, str]] = MappingProxyType(
    {"claude": "claude", "codex": "codex", "aider": "aider", "gemini": "gemini",
     "demo": f"{shlex.quote(sys.executable)} -m supervisor.demo.agent"}
)
"""The command line each profile runs when `agent.command` is not set (generic has none)."""
DEFAULT_STAGGER: Final[Mapping[str, float]] = MappingProxyType(
    {"claude": 2.0, "codex": 0.0, "aider": 0.0, "gemini": 0.0, "demo": 0.0, "generic": 0.0}
)
"""Seconds between two agent launches when `agent.stagger` is not set."""
RESTART_POLICIES: Final = ("never", "on-failure", "always")
STALL_ACTIONS: Final = ("none", "interrupt", "restart")
RESTORE_MODES: Final = ("ask", "auto", "never")
LIMIT_ACTIONS: Final = ("alert", "wait")
BUDGET_ACTIONS: Final = ("alert", "stop")
EMAIL_SECURITY: Final = ("starttls", "ssl", "plain")
ALERT_TRIGGERS: Final = ("waiting", "stalled", "timeout", "boundary", "exited", "errors", "deadlock", "escape",
                          "done", "merge", "limited", "budget", "context", "tamper", "host_down")
MERGE_MODES: Final = ("manual", "auto")
ISOLATIONS: Final = ("sandbox", "none")


# ---------------------------------------------------------------------------------------------------
# The configuration


@dataclass(frozen=True)
class AgentConfig:
    profile: str = "claude"
    command: str = "claude"
    """Shell command line; already resolved to the profile's default when the file leaves it null."""
    stagger: float = 2.0
    """Seconds between agent launches; already resolved to the profile's default."""


@dataclass(frozen=True)
class WorktreesConfig:
    dir: Path
    """Absolute directory holding the sessions' worktrees (`{repo}` substituted)."""
    setup: tuple[str, ...] = ()


@dataclass(frozen=True)
class LimitsConfig:
    max_level: int = 3
    session_timeout: float | None = None
    helper_timeout: float | None = 3600.0
    stall_after: float = 600.0
    idle_after: float = 5.0
    restart: str = "never"
    max_restarts: int = 3
    start_seconds: float = 10.0  # an agent that ran at least this long before exiting had started fine
    max_auto_restarts: int = 10  # automatic restarts of one agent (policy, on_stall, restore: auto) within …
    auto_restart_window: float = 3600.0  # … this many seconds; past them it stays exited (engine/restart_cap.py)
    on_stall: str = "none"
    stop_grace: float = 5.0
    error_repeats: int = 3  # errors: the same error pattern this many times
    error_window: float = 600.0  # … within this many seconds
    restore: str = "ask"  # agents whose panes went with the tmux server, when the engine starts: ask | auto | never
    on_limit: str = "alert"  # a usage or rate limit: `alert` (a `limited` alert), or `wait` (the state alone)
    resume_after_limit: bool = False  # type "continue" into a limited agent once its limit has reset
    context_alert: float | None = 90.0  # percent of its context window an agent uses before a `context` alert


@dataclass(frozen=True)
class LogsConfig:
    max_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class SlackConfig:
    token: str | None = field(default=None, repr=False)
    channel: str | None = None
    webhook_url: str | None = field(default=None, repr=False)
    base_url: str | None = None
    approvers: tuple[str, ...] = ()  # Slack user ids who may answer approvals in a thread; none: nobody


@dataclass(frozen=True)
class EmailConfig:
    host: str
    sender: str
    to: tuple[str, ...]
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None


@dataclass(frozen=True)
class AlertsConfig:
    slack: SlackConfig | None = None
    email: EmailConfig | None = None
    command: str | None = None
    tmux: bool = True
    notify_on: tuple[str, ...] = ALERT_TRIGGERS
    repeat_after: float | None = 1800.0
    group_wait: float = 5.0
    helper_done: str = "parent"  # parent | human: who hears that a helper finished its turn
    max_per_hour: int = 30  # alerts about one agent (or host) in an hour before they are paced (alerts/pace.py)


@dataclass(frozen=True)
class ApprovalConfig:
    require: tuple[str, ...] = ()
    timeout: float | None = 600.0


@dataclass(frozen=True)
class MergeConfig:
    check: str | None = None
    """A shell command that must pass in a scratch worktree of the merged result before an automatic merge
    (and that `compare` runs for each candidate); None = no check."""
    check_timeout: float = 1800.0


@dataclass(frozen=True)
class BudgetConfig:
    per_session_tree: Budget | None = None  # what one session and all its helpers may spend
    per_repository_per_day: Budget | None = None  # what all agents of the repository may spend in a day
    on_budget: str = "alert"  # at 100%: alert (a `budget` alert, as at 80%), or stop (the tree) and alert


@dataclass(frozen=True)
class SandboxConfig:
    network: bool = True
    """False: each sandboxed agent gets a network of its own with only loopback in it."""
    read: tuple[Path, ...] = ()
    """More folders agents may read (absolute); what the sandbox hides stays hidden inside them."""
    write: tuple[Path, ...] = ()
    """More folders agents may write (a shared cache); what the sandbox hides stays hidden inside them."""


@dataclass(frozen=True)
class Config:
    repo_root: Path
    agent: AgentConfig
    worktrees: WorktreesConfig
    limits: LimitsConfig
    logs: LogsConfig
    alerts: AlertsConfig
    approval: ApprovalConfig
    merge: MergeConfig = MergeConfig()
    budget: BudgetConfig = BudgetConfig()
    isolation: str | None = None
    """`sandbox` or `none` (supervisor/hosts/isolation.py); None when unset: sandbox where the machine can."""
    sandbox: SandboxConfig = SandboxConfig()
    prices: Mapping[str, ModelPrice] = field(default_factory=lambda: MappingProxyType({}))
    """`prices:`: per model, over the packaged table (supervisor/usage/prices.py)."""
    hosts: Mapping[str, HostConfig] = field(default_factory=lambda: MappingProxyType({}))
    """`hosts:` reached over SSH, by name in the file's order (supervisor/hostsconfig.py); never `local`."""
    local_max_agents: int | None = None
    """`hosts.local.max_agents`: this machine's capacity; None when unset."""
    source: Path | None = None
    """The supervisor.yaml that was read, or None when the defaults apply."""


# ---------------------------------------------------------------------------------------------------
# Schema: the keys each mapping allows (used for unknown-key errors and suggestions)

_PRICE_KEYS: Final = ("input", "output", "cache_read", "cache_write", "context_window")
_SECTIONS: Final[dict[str, tuple[str, ...]]] = {
    "agent": ("profile", "command", "stagger"),
    "worktrees": ("dir", "setup"),
    "limits": (
        "max_level",
        "session_timeout",
        "helper_timeout",
        "stall_after",
        "idle_after",
        "restart",
        "max_restarts",
        "start_seconds",
        "max_auto_restarts",
        "auto_restart_window",
        "on_stall",
        "stop_grace",
        "error_repeats",
        "error_window",
        "restore",
        "on_limit",
        "resume_after_limit",
        "context_alert",
    ),
    "logs": ("max_bytes",),
    "alerts": ("slack", "email", "command", "tmux", "notify_on", "repeat_after", "group_wait", "helper_done",
               "max_per_hour"),
    "approval": ("require", "timeout"),
    "merge": ("check", "check_timeout"),
    "budget": ("per_session_tree", "per_repository_per_day", "on_budget"),
    "isolation": (),  # a scalar: sandbox | none
    "sandbox": ("network", "read", "write"),
    "prices": (),  # model names of the user's choosing: checked by _Parser.prices
    "hosts": (),  # host names of the user's choosing: checked by supervisor/hostsconfig.py
}
_SLACK_KEYS: Final = ("token", "channel", "webhook_url", "base_url", "approvers")
_EMAIL_KEYS: Final = ("host", "port", "security", "username", "password", "sender", "to", "ca_file")
