"""supervisor.yaml → typed, frozen configuration, with errors that name the file and line.

The file is read with `yaml.compose` rather than `yaml.safe_load` so that every key and value keeps
its position: each error points at the line a user has to fix. Scalars are read from their source
text (after `${VAR}` expansion), not from YAML's implicit typing, so a password such as `123456` or
`yes` taken from the environment stays the string it was.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, NoReturn

import yaml

from supervisor.core.budget import Budget, parse_budget
from supervisor.core.durations import parse_duration
from supervisor.errors import InputFileError, SupervisorError, UsageError
from supervisor.hostsconfig import HostConfig as HostConfig  # exported: supervisor.config.HostConfig
from supervisor.hostsconfig import read_hosts
from supervisor.suggest import closest
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
# Public entry points


def load_config(repo_root: Path, environ: Mapping[str, str] | None = None) -> Config:
    """The configuration of the repository at `repo_root`; all defaults when it has no supervisor.yaml."""
    env = os.environ if environ is None else environ
    path = repo_root / CONFIG_FILENAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return parse_config("", repo_root=repo_root, source=None, environ=env)
    except OSError as exc:
        raise InputFileError(path, None, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputFileError(path, line, "the file is not valid UTF-8", "save it as UTF-8 text") from None
    return parse_config(text, repo_root=repo_root, source=path, environ=env)


def parse_config(
    text: str, *, repo_root: Path, source: Path | None, environ: Mapping[str, str] | None = None
) -> Config:
    """The configuration in `text`, as if read from `source` (used to name the file in errors)."""
    env = os.environ if environ is None else environ
    shown = source if source is not None else repo_root / CONFIG_FILENAME
    root = _compose(text, shown)
    return _Parser(shown, env, Path(os.path.abspath(repo_root))).config(root, source)


def write_init(repo_root: Path) -> Path:
    """Write INIT_TEMPLATE as the repository's supervisor.yaml; never overwrites an existing file."""
    path = repo_root / CONFIG_FILENAME
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(INIT_TEMPLATE)
    except FileExistsError:
        raise UsageError(
            f"{path} already exists; refusing to overwrite it",
            hint="edit it by hand, or move it away and run `supervisor init` again",
        ) from None
    except OSError as exc:
        raise SupervisorError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


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
# A Slack member id (profile → ⋮ → Copy member ID): U… for a workspace's users, W… on Enterprise Grid.
_SLACK_USER_ID: Final = re.compile(r"[UW][A-Z0-9]{2,}")
_EMAIL_KEYS: Final = ("host", "port", "security", "username", "password", "sender", "to", "ca_file")

_TAG: Final = "tag:yaml.org,2002:"
_NULL_TAG: Final = _TAG + "null"
_SCALAR_TAGS: Final = frozenset(_TAG + name for name in ("null", "bool", "int", "float", "str", "timestamp"))
_TRUE: Final = frozenset({"true", "yes", "on"})
_FALSE: Final = frozenset({"false", "no", "off"})
_INTEGER: Final = re.compile(r"[+-]?\d+")
_PERCENT: Final = re.compile(r"(\d+(?:\.\d+)?)\s*%?")
_SYNTAX_HINT: Final = (
    "check the indentation and quoting near that line; quote values that contain ': ' or ' #' "
    "or start with one of * & ! { [ % @ `"
)


# ---------------------------------------------------------------------------------------------------
# ${VAR} expansion


class _ExpansionError(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


_ENV_TOKEN: Final = re.compile(r"\$\$|\$\{(?P<body>[^}]*)\}|\$\{")
_ENV_BODY: Final = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def expand_env(text: str, environ: Mapping[str, str]) -> str:
    """Replace `${VAR}`, `${VAR:-default}` and `$$` in `text`.

    A `$` not followed by `{` or `$` is kept as it is, so `$HOME` in a shell command is left for the
    shell. `${VAR:-default}` uses the default when VAR is unset or empty (as in sh).
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        body = match.group("body")
        if body is None:
            raise _ExpansionError("unterminated '${'", "close it with '}', or write $$ for a literal $")
        ref = _ENV_BODY.fullmatch(body)
        if ref is None:
            raise _ExpansionError(
                f"bad variable reference '${{{body}}}'",
                "write ${NAME} or ${NAME:-default}; $$ is a literal $",
            )
        name, default = ref.group("name"), ref.group("default")
        value = environ.get(name)
        if default is not None:
            return value if value else default
        if value is None:
            raise _ExpansionError(
                f"environment variable '{name}' is not set",
                f"export {name}, or give a default with ${{{name}:-default}}",
            )
        return value

    return _ENV_TOKEN.sub(replace, text)


def named_variables(text: str) -> set[str]:
    """The environment variables `text` names as `${VAR}` or `${VAR:-default}` (what expand_env reads)."""
    names = set()
    for match in _ENV_TOKEN.finditer(text):
        ref = _ENV_BODY.fullmatch(match.group("body") or "")
        if ref is not None:
            names.add(ref.group("name"))
    return names


# ---------------------------------------------------------------------------------------------------
# Sizes


_SIZE: Final = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kmgt]i?b|b)?", re.IGNORECASE)
_SIZE_UNITS: Final = {
    "b": 1,
    **{f"{p}b": 1000 ** (i + 1) for i, p in enumerate("kmgt")},
    **{f"{p}ib": 1024 ** (i + 1) for i, p in enumerate("kmgt")},
}


def parse_size(text: str) -> int:
    """Bytes in `text`: `1048576`, `512KiB`, `10MiB`, `1GiB`, `5MB`; raises ValueError otherwise."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a size: {text!r} (write e.g. 512KiB, 10MiB, 1GiB, 5MB)")
    unit = (match.group("unit") or "b").lower()
    return int(float(match.group("number")) * _SIZE_UNITS[unit])


# ---------------------------------------------------------------------------------------------------
# Reading the YAML node tree


def _compose(text: str, path: Path) -> yaml.Node | None:
    """The YAML node tree of `text`; syntax errors become InputFileError with the line of the problem."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "malformed YAML"
        if exc.context:
            problem = f"{problem} ({exc.context})"
        line = mark.line + 1 if mark is not None else None
        raise InputFileError(path, line, f"invalid YAML: {problem}", _syntax_hint(text, line)) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise InputFileError(
            path, line, f"invalid character {chr(exc.character)!r} in the file", "remove it or quote it"
        ) from None
    except yaml.YAMLError as exc:
        raise InputFileError(path, None, f"invalid YAML: {exc}", _SYNTAX_HINT) from None
    except RecursionError:
        raise InputFileError(path, None, "invalid YAML: nested too deeply") from None


def _syntax_hint(text: str, line: int | None) -> str:
    """A hint for the two mistakes that cause most YAML syntax errors in this file."""
    lines = text.splitlines()
    nearby = "\n".join(lines[max(0, line - 2) : line]) if line is not None else ""
    if "\t" in nearby:
        return "indent with spaces: YAML does not allow tabs"
    if "${" in nearby:
        return 'quote values that use ${VAR} inside { } or [ ], e.g. {token: "${SLACK_BOT_TOKEN}"}'
    return _SYNTAX_HINT


def _line(node: yaml.Node) -> int | None:
    return node.start_mark.line + 1 if node.start_mark is not None else None


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


def _describe(node: yaml.Node) -> str:
    """How a value looks to a user, for 'got …' in messages."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "null"
    text = str(node.value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


@dataclass
class _Section:
    """One YAML mapping, checked against the keys it allows: key → (key node, value node)."""

    name: str
    """Dotted name of the mapping ('' for the top level, 'alerts.slack')."""
    entries: dict[str, tuple[yaml.Node, yaml.Node]]

    def get(self, key: str) -> yaml.Node | None:
        entry = self.entries.get(key)
        return entry[1] if entry is not None else None

    def dotted(self, key: str) -> str:
        return _join(self.name, key)


class _Parser:
    """Walks the node tree section by section; every method raises InputFileError on bad input."""

    def __init__(self, path: Path, environ: Mapping[str, str], repo_root: Path) -> None:
        self.path = path
        self.environ = environ
        self.repo_root = repo_root

    def fail(self, node: yaml.Node | None, message: str, hint: str | None = None) -> NoReturn:
        raise InputFileError(self.path, _line(node) if node is not None else None, message, hint)

    # -- the document ------------------------------------------------------------------------------

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

    def section(self, node: yaml.Node | None, name: str, allowed: tuple[str, ...]) -> _Section:
        """The mapping at `node` (absent or null = empty), rejecting duplicate and unknown keys."""
        if node is None or _is_null(node):
            return _Section(name, {})
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"'{name}' must be a mapping of keys, got {_describe(node)}")
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, f"keys in '{name or 'the top level'}' must be plain names")
            key = str(key_node.value)
            dotted = _join(name, key)
            if key in entries:
                first = _line(entries[key][0])
                hint = f"it is already set on line {first}; keep one"
                self.fail(key_node, f"duplicate key '{dotted}'", hint)
            if key not in allowed:
                self.fail(key_node, f"unknown key '{dotted}'", self.suggest(name, key, allowed))
            entries[key] = (key_node, value_node)
        return _Section(name, entries)

    @staticmethod
    def suggest(name: str, key: str, allowed: tuple[str, ...]) -> str:
        """Hint for an unknown key: the closest valid key, or the section where that key belongs."""
        close = closest(key, allowed)
        if close:
            return f"did you mean '{_join(name, close)}'?"
        if key == "<<":
            return "YAML merge keys (<<) are not supported here; repeat the keys instead"
        if name == "":
            homes = [section for section, keys in _SECTIONS.items() if key in keys]
            if homes:
                return f"'{key}' belongs under '{homes[0]}:'"
        else:
            homes = [section for section, keys in _SECTIONS.items() if key in keys and section != name]
            if homes:
                return f"did you mean '{homes[0]}.{key}'?"
        where = f"in '{name}'" if name else "at the top level"
        return f"valid keys {where}: {', '.join(allowed)}"

    # -- scalars -----------------------------------------------------------------------------------

    def text(self, node: yaml.Node, name: str) -> str | None:
        """The scalar's source text with ${VAR} expanded; None for a YAML null."""
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, f"{name} must be a single value, got {_describe(node)}")
        if node.tag not in _SCALAR_TAGS:
            self.fail(node, f"{name}: unsupported YAML tag '{node.tag}'", "remove the tag")
        if node.tag == _NULL_TAG:
            return None
        try:
            return expand_env(str(node.value), self.environ)
        except _ExpansionError as exc:
            self.fail(node, f"{name}: {exc.message}", exc.hint)

    def required(self, node: yaml.Node, name: str, what: str) -> str:
        """Non-null text; `what` describes the expected value in the error."""
        value = self.text(node, name)
        if value is None:
            self.fail(node, f"{name} must be {what}, got null", "remove the key to use the default")
        return value

    def opt_string(self, sec: _Section, key: str) -> str | None:
        """A string, or None when absent, null, or empty (so `${VAR:-}` can leave it unset)."""
        node = sec.get(key)
        if node is None:
            return None
        return self.text(node, sec.dotted(key)) or None

    def string(self, sec: _Section, key: str, default: str) -> str:
        node = sec.get(key)
        if node is None:
            return default
        value = self.required(node, sec.dotted(key), "a string")
        if not value:
            self.fail(node, f"{sec.dotted(key)} must not be empty", "remove the key to use the default")
        return value

    def integer(self, sec: _Section, key: str, default: int, low: int, high: int | None = None) -> int:
        node = sec.get(key)
        if node is None:
            return default
        name = sec.dotted(key)
        what = f"an integer from {low} to {high}" if high is not None else f"an integer ≥ {low}"
        value = self.required(node, name, what)
        if not _INTEGER.fullmatch(value.strip()):
            self.fail(node, f"{name} must be {what}, got {value!r}")
        number = int(value)
        if number < low or (high is not None and number > high):
            self.fail(node, f"{name} must be {what}, got {number}")
        return number

    def boolean(self, sec: _Section, key: str, default: bool) -> bool:
        node = sec.get(key)
        if node is None:
            return default
        name = sec.dotted(key)
        value = self.required(node, name, "true or false").strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        self.fail(node, f"{name} must be true or false, got {value!r}")

    def choice(self, sec: _Section, key: str, default: str, allowed: tuple[str, ...]) -> str:
        node = sec.get(key)
        if node is None:
            return default
        name = sec.dotted(key)
        value = self.required(node, name, f"one of: {', '.join(allowed)}").strip()
        if value not in allowed:
            close = difflib.get_close_matches(value, allowed, n=1)
            hint = f"did you mean '{close[0]}'?" if close else None
            self.fail(node, f"{name} must be one of: {', '.join(allowed)}; got {value!r}", hint)
        return value

    def percent(self, sec: _Section, key: str, default: float | None) -> float | None:
        """A percentage above 0 and at most 100 (`90%`, or `90`); null or `off` → None (never)."""
        node = sec.get(key)
        if node is None:
            return default
        name = sec.dotted(key)
        value = self.text(node, name)
        if value is None or value.strip().lower() in _FALSE:
            return None
        match = _PERCENT.fullmatch(value.strip())
        number = float(match.group(1)) if match else None
        if number is None or not 0 < number <= 100:
            self.fail(node, f"{name} must be a percentage above 0% and at most 100% (or off), got {value!r}")
        return number

    def opt_duration(self, sec: _Section, key: str, default: float | None) -> float | None:
        """A duration in seconds; null → None (no limit)."""
        node = sec.get(key)
        if node is None:
            return default
        value = self.text(node, sec.dotted(key))
        return None if value is None else self.seconds(node, sec.dotted(key), value)

    def duration(self, sec: _Section, key: str, default: float) -> float:
        node = sec.get(key)
        if node is None:
            return default
        name = sec.dotted(key)
        return self.seconds(node, name, self.required(node, name, "a duration such as 90s, 10m or 1h30m"))

    def seconds(self, node: yaml.Node, name: str, value: str) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(node, f"{name}: {exc}")

    def size(self, sec: _Section, key: str, default: int) -> int:
        node = sec.get(key)
        if node is None:
            return default
        name = sec.dotted(key)
        value = self.required(node, name, "a size such as 10MiB")
        try:
            size = parse_size(value)
        except ValueError as exc:
            self.fail(node, f"{name}: {exc}")
        if size <= 0:
            self.fail(node, f"{name} must be more than 0 bytes, got {value!r}")
        return size

    def strings(
        self, sec: _Section, key: str, *, one_ok: bool = False, allowed: tuple[str, ...] | None = None
    ) -> tuple[str, ...]:
        """A list of non-empty strings; null → empty; with `one_ok`, a single string is a list of one.

        With `allowed`, every item must be one of those names (duplicates are dropped).
        """
        node = sec.get(key)
        if node is None or _is_null(node):
            return ()
        name = sec.dotted(key)
        if isinstance(node, yaml.ScalarNode) and one_ok:
            items: list[yaml.Node] = [node]
        elif isinstance(node, yaml.SequenceNode):
            items = list(node.value)
        else:
            self.fail(node, f"{name} must be a list of strings, got {_describe(node)}")
        values: list[str] = []
        for item in items:
            value = self.required(item, f"{name} item", "a string")
            if not value.strip():
                self.fail(item, f"{name}: empty item", "remove it")
            if allowed is not None and value not in allowed:
                close = difflib.get_close_matches(value, allowed, n=1)
                self.fail(
                    item,
                    f"{name}: unknown name {value!r}; allowed: {', '.join(allowed)}",
                    f"did you mean '{close[0]}'?" if close else None,
                )
            values.append(value)
        return tuple(dict.fromkeys(values)) if allowed is not None else tuple(values)

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


# ---------------------------------------------------------------------------------------------------
# `supervisor init`

INIT_TEMPLATE: Final = """\
# supervisor.yaml: settings for `supervisor` in this repository.
#
# Every key is optional and every value below is the default, so deleting a line changes nothing.
# Durations are written like 90s, 10m, 1h30m or 1d (a plain number is seconds).
# In any value, ${VAR} is replaced by the environment variable VAR, ${VAR:-fallback} gives a
# fallback for when VAR is unset or empty, and $$ is a literal $ ($NAME without braces is left
# alone, for the shell). Keep secrets (tokens, passwords) in environment variables, not here.

agent:
  # Which AI coding CLI runs in each pane: claude | codex | aider | gemini | generic.
  # The profile decides how its state is read and how prompts and approvals reach it.
  profile: claude
  # The command line that starts the agent (run by a shell). null = the profile's own command
  # (claude, codex, aider, gemini). Profile generic runs any program and needs one, e.g.
  #   command: ./scripts/my-agent --verbose
  command: null
  # Pause between starting two agents, so a batch of launches does not hit the CLI's login or
  # rate limits all at once. null = the profile's default (claude 2s, the others 0s).
  stagger: null

worktrees:
  # Where each session's git worktree is created. {repo} is this repository's directory name;
  # a relative path is relative to the repository root.
  dir: ../{repo}-worktrees
  # Shell commands run in every new worktree before its agent starts, e.g.
  #   setup: ["uv sync", "cp ../.env .env"]
  setup: []

limits:
  # Deepest agent tree: 1 = sessions only, 2 = sessions and helpers, 3 = also sub-helpers.
  max_level: 3
  # How long a session (a level-1 agent) may run before it is killed; null = no limit.
  session_timeout: null
  # How long a helper or sub-helper may run before it is killed; null = no limit.
  helper_timeout: 1h
  # A working agent with no output, no agent event and no CPU for this long is `stalled`.
  stall_after: 10m
  # An agent of profile generic (which reports no state of its own) counts as idle after
  # this long without output.
  idle_after: 5s
  # When an agent's process ends by itself: never | on-failure (only after a non-zero exit) |
  # always (a fresh agent in the same worktree each time, e.g. for task-board swarms).
  restart: never
  # How many times one agent is restarted before it is left `failed`.
  max_restarts: 3
  # An agent that exits sooner than this after its start counts as a failed start (as
  # supervisord's startsecs): the restart delay grows, and max_restarts of them in a row give up.
  start_seconds: 10s
  # At most this many automatic restarts of one agent (by the restart policy, on_stall: restart or
  # restore: auto) within auto_restart_window, however long each run lasted: past them it stays
  # exited, with the reason, and one `exited` alert (an agent whose screen or host keeps saying it
  # ended cannot make a restart storm). `supervisor restart` is yours and always counts afresh.
  max_auto_restarts: 10
  auto_restart_window: 1h
  # What to do, besides alerting, when an agent stalls: none | interrupt (Ctrl-C, then the
  # agent can be told what to do) | restart (stop it and start it again in its worktree).
  on_stall: none
  # How long `supervisor stop` (and a restart) waits after SIGTERM for an agent's processes
  # to end by themselves before it sends SIGKILL.
  stop_grace: 5s
  # `errors` fires when the same error line (per profile: API Error, Error: …) shows this
  # many times within this long.
  error_repeats: 3
  error_window: 10m
  # Agents whose panes went with supervisor's tmux server (it was killed, the machine rebooted), when
  # the engine starts: ask (the dashboard offers to restore them all) | auto (restored at once, each in
  # its own conversation) | never (only `supervisor restore` brings them back).
  restore: ask
  # An agent that hits a usage or rate limit is `limited` until the reset its CLI printed (ls
  # says when). on_limit: alert (a `limited` alert) | wait (the state alone). With
  # resume_after_limit: true, "continue" is typed into it once the limit has reset (not when
  # the CLI continues by itself, as Claude Code does after a 5-hour limit).
  on_limit: alert
  resume_after_limit: false
  # A `context` alert when an agent's conversation fills this much of its model's context window
  # (once each time it crosses it; resolved when it drops, after a compaction). off = never.
  context_alert: 90%

logs:
  # Size of one agent's pane transcript before it is rotated: a number of bytes, or
  # 512KiB, 10MiB, 1GiB, 5MB (KiB/MiB/GiB are powers of 1024, KB/MB/GB powers of 1000).
  max_bytes: 10MiB

alerts:
  # Slack, either a bot token + channel (alerts about one agent share a thread, and you can
  # answer approvals by replying `approve` or `deny <reason>` there, if listed in `approvers`)
  # or an incoming webhook (alerts only).
  # base_url points at another Slack API endpoint (Enterprise Grid, tests). For example:
  # Replies in a thread answer approvals only from the Slack members listed in `approvers`
  # (member ids: profile → ⋮ → Copy member ID); without the list, answers from Slack are off.
  #   slack: {token: "${SLACK_BOT_TOKEN}", channel: "#agents", approvers: [U024BE7LH]}
  #   slack: {webhook_url: "${SLACK_WEBHOOK_URL}"}
  slack: null
  # Email through SMTP. port defaults to 587; security: starttls (default) | ssl (usually
  # port 465) | plain (a local relay, no encryption). ca_file: a PEM file of extra CA
  # certificates to trust. `to` is a list of addresses (or one address). For example:
  #   email:
  #     host: smtp.example.com
  #     port: 587
  #     security: starttls
  #     username: "${SMTP_USER}"
  #     password: "${SMTP_PASSWORD}"
  #     sender: supervisor@example.com
  #     to: [me@example.com]
  email: null
  # A shell command run for every alert, with the alert's details in environment variables
  # (desktop notifications, pagers, chat tools). null = none.
  command: null
  # Show alerts in the status line of the supervisor's tmux session and ring its bell.
  tmux: true
  # Which triggers alert you (remove names to silence them):
  #   waiting   an agent needs a human: an approval prompt or a question
  #   stalled   a working agent went silent for limits.stall_after
  #   timeout   an agent ran past its time limit and was killed
  #   boundary  a commit touched a path the agent's contract forbids
  #   exited    an agent's process ended unexpectedly and will not be restarted
  #   errors    the same error keeps repeating
  #   deadlock  helpers wait for each other in a cycle
  #   escape    an agent's process works in another agent's worktree or the main checkout
  #   done      a session finished its turn
  #   merge     an automatic merge was stopped by a conflict or a failing merge.check
  #   limited   an agent hit a usage or rate limit (see limits.on_limit)
  #   budget    spending reached 80% or 100% of a budget
  #   context   an agent's context window is nearly full (see limits.context_alert)
  #   tamper    a branch moved by someone who may not move it (see `supervisor merge --accept-tamper`)
  #   host_down a host of `hosts:` cannot be reached: one alert naming its agents, resolved when it is back
  notify_on: [waiting, stalled, timeout, boundary, exited, errors, deadlock, escape, done, merge, limited,
              budget, context, tamper, host_down]
  # Send an alert again this often while its condition still holds; null = never repeat.
  repeat_after: 30m
  # Wait this long so that alerts firing together go out as one message.
  group_wait: 5s
  # Who hears that a helper finished its turn: its parent agent (parent), or you too (human).
  helper_done: parent
  # Alerts about one agent (or one host) in an hour; past them, what fires about it is gathered and
  # sent at most once every hour/max_per_hour (30: every 2 minutes), with how many times each
  # trigger fired. Nothing is dropped: an agent whose screen flaps cannot flood your channels.
  max_per_hour: 30

approval:
  # Tool calls that always need your approval, even where the agent CLI would allow them:
  #   require: ["Bash(git push*)", "Bash(rm -rf*)"]
  require: []
  # How long an approval waits for your answer before falling back to the CLI's own prompt;
  # null = wait indefinitely.
  timeout: 10m

merge:
  # A shell command that must pass before a plan merges a finished session by itself
  # (`merge: auto`), and that `supervisor compare` runs for each best-of-N candidate. It runs
  # in a scratch worktree holding the merged result (after worktrees.setup), e.g. "make test".
  # null = no check.
  check: null
  # How long the check may run before it counts as failed.
  check_timeout: 30m

budget:
  # What one session and all its helpers may spend, and what all agents of this repository
  # may spend in a day (midnight to midnight, local time): $20, 2M tokens, or both ($20, 2M
  # tokens; tokens count input, output and cache). null = no budget. A session's SESSION.md
  # may say `- Budget: …` too (the narrower applies); a helper's may only narrow its parent's.
  per_session_tree: null
  per_repository_per_day: null
  # A `budget` alert goes out at 80% and at 100%. At 100%: alert | stop (the session tree
  # is stopped, as `supervisor stop` does, and the alert says so).
  on_budget: alert

# Each agent runs in a bubblewrap sandbox (Linux; apt-get install bubblewrap): it sees its own worktree,
# its own branch and CLI folder, and not the supervisor's store, other agents' worktrees or your
# credentials; `stop` ends every process it started. Unset: sandbox when bubblewrap is installed.
# none = agents run as you, unsandboxed (`supervisor doctor` says what is then not enforced).
# isolation: sandbox
sandbox:
  # false: sandboxed agents get no network (loopback only).
  network: true
  # More folders agents may read, or write (a shared cache: ~/.cache/pip); relative to the repository.
  # What the sandbox hides (the store, other worktrees, credentials) stays hidden inside them.
  read: []
  write: []

# Machines that run agents over SSH (`supervisor hosts check` tells what one lacks). Each needs sshd, git,
# tmux >= 3.2 and Python >= 3.11; your own ssh setup applies (config, keys, agent, ProxyJump, known_hosts),
# and it must log you in without a password prompt. For example:
#   hosts:
#     box1:
#       ssh: box1                 # any destination your ssh accepts: an alias of ~/.ssh/config, user@host
#       ssh_config: ~/.ssh/config # the ssh config file to read (ssh -F); default: OpenSSH's own files
#       dir: ~/supervisor         # where clones and worktrees live on the host (~: the host user's home)
#       max_agents: 10            # how many agents it takes (placement capacity)
#     local: {max_agents: 10}     # this machine's capacity (`local` is this machine's name)
hosts: {}

# What a model's tokens cost, in USD per million tokens, over the table shipped with supervisor (see
# `supervisor usage`). Needed for a model the table does not know (its tokens are then shown with no
# cost, never a guess) or to use your own rates. input and output are required; cache_read and
# cache_write default to the input price; context_window (tokens) gives `context_percent`. E.g.
#   prices:
#     claude-opus-4-8: {input: 5.0, output: 25.0, cache_read: 0.5, cache_write: 6.25, context_window: 1000000}
prices: {}
"""
