"""supervisor.yaml: defaults, every key, ${VAR} expansion, and errors that name the right line."""

from __future__ import annotations

import dataclasses
import tempfile
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.config import (
    ALERT_TRIGGERS,
    INIT_TEMPLATE,
    Config,
    EmailConfig,
    SlackConfig,
    load_config,
    parse_config,
    parse_size,
    write_init,
)
from supervisor.errors import InputFileError, UsageError


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "myrepo"
    root.mkdir()
    return root


def load(repo: Path, text: str, environ: dict[str, str] | None = None) -> Config:
    (repo / "supervisor.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return load_config(repo, environ={} if environ is None else environ)


def error(repo: Path, text: str, environ: dict[str, str] | None = None) -> InputFileError:
    with pytest.raises(InputFileError) as info:
        load(repo, text, environ)
    assert info.value.path == repo / "supervisor.yaml"
    return info.value


# --- defaults -------------------------------------------------------------------------------------


def test_no_file_gives_the_defaults(repo: Path) -> None:
    config = load_config(repo, environ={})
    assert config.source is None
    assert config.repo_root == repo
    assert config.agent.profile == "claude"
    assert config.agent.command == "claude"
    assert config.agent.stagger == 2.0
    assert config.worktrees.dir == repo.parent / "myrepo-worktrees"
    assert config.worktrees.setup == ()
    limits = config.limits
    assert (limits.max_level, limits.session_timeout, limits.helper_timeout) == (3, None, 3600.0)
    assert (limits.stall_after, limits.idle_after) == (600.0, 5.0)
    assert (limits.restart, limits.max_restarts) == ("never", 3)
    assert limits.stop_grace == 5.0
    assert (limits.error_repeats, limits.error_window) == (3, 600.0)
    assert limits.start_seconds == 10.0
    assert limits.restore == "ask"
    assert limits.context_alert == 90.0
    assert config.logs.max_bytes == 10 * 1024 * 1024
    alerts = config.alerts
    assert (alerts.slack, alerts.email, alerts.command, alerts.tmux) == (None, None, None, True)
    assert alerts.notify_on == ALERT_TRIGGERS
    assert (alerts.repeat_after, alerts.group_wait) == (1800.0, 5.0)
    assert config.approval.require == ()
    assert config.approval.timeout == 600.0


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "~\n"])
def test_empty_file_gives_the_defaults(repo: Path, text: str) -> None:
    defaults = load_config(repo, {})
    config = load(repo, text)
    assert config.source == repo / "supervisor.yaml"
    assert dataclasses.replace(config, source=None) == defaults


def test_empty_section_gives_its_defaults(repo: Path) -> None:
    config = load(repo, "limits:\nagent:\n")
    assert config.limits.stall_after == 600.0
    assert config.agent.command == "claude"


# --- every key ------------------------------------------------------------------------------------

FULL = """\
agent:
  profile: codex
  command: codex --full-auto
  stagger: 3s
worktrees:
  dir: /srv/wt/{repo}
  setup: ["uv sync", "cp ../.env .env"]
limits:
  max_level: 2
  session_timeout: 2h
  helper_timeout: 45m
  stall_after: 90s
  idle_after: 2
  restart: on-failure
  max_restarts: 0
  stop_grace: 30s
  error_repeats: 5
  start_seconds: 30s
  error_window: 1h
logs:
  max_bytes: 512KiB
alerts:
  slack: {token: xoxb-secret, channel: "#agents", base_url: "http://localhost:9999/api/"}
  email:
    host: smtp.example.com
    port: 465
    security: ssl
    username: me
    password: hunter2
    sender: supervisor@example.com
    to: [a@example.com, b@example.com]
    ca_file: certs/ca.pem
  command: notify-send "$SUPERVISOR_ALERT"
  tmux: false
  notify_on: [waiting, done]
  repeat_after: 1h
  group_wait: 0s
approval:
  require: ["Bash(git push*)", "Bash(rm -rf*)"]
  timeout: null
"""


def test_every_key_is_parsed(repo: Path) -> None:
    config = load(repo, FULL)
    assert config.agent.profile == "codex"
    assert config.agent.command == "codex --full-auto"
    assert config.agent.stagger == 3.0
    assert config.worktrees.dir == Path("/srv/wt/myrepo")
    assert config.worktrees.setup == ("uv sync", "cp ../.env .env")
    limits = config.limits
    assert limits.max_level == 2
    assert limits.session_timeout == 7200.0
    assert limits.helper_timeout == 2700.0
    assert limits.stall_after == 90.0
    assert limits.idle_after == 2.0
    assert limits.restart == "on-failure"
    assert limits.max_restarts == 0
    assert limits.stop_grace == 30.0
    assert (limits.error_repeats, limits.error_window) == (5, 3600.0)
    assert limits.start_seconds == 30.0
    assert config.logs.max_bytes == 512 * 1024
    alerts = config.alerts
    assert alerts.slack == SlackConfig(
        token="xoxb-secret", channel="#agents", webhook_url=None, base_url="http://localhost:9999/api/"
    )
    assert alerts.email == EmailConfig(
        host="smtp.example.com",
        port=465,
        security="ssl",
        username="me",
        password="hunter2",
        sender="supervisor@example.com",
        to=("a@example.com", "b@example.com"),
        ca_file=repo / "certs" / "ca.pem",
    )
    assert alerts.command == 'notify-send "$SUPERVISOR_ALERT"'
    assert alerts.tmux is False
    assert alerts.notify_on == ("waiting", "done")
    assert alerts.repeat_after == 3600.0
    assert alerts.group_wait == 0.0
    assert config.approval.require == ("Bash(git push*)", "Bash(rm -rf*)")
    assert config.approval.timeout is None


@pytest.mark.parametrize(
    ("profile", "command", "stagger"),
    [("claude", "claude", 2.0), ("codex", "codex", 0.0), ("aider", "aider", 0.0), ("gemini", "gemini", 0.0)],
)
def test_profile_defaults(repo: Path, profile: str, command: str, stagger: float) -> None:
    config = load(repo, f"agent: {{profile: {profile}}}\n")
    assert (config.agent.command, config.agent.stagger) == (command, stagger)


def test_generic_profile_needs_a_command(repo: Path) -> None:
    err = error(repo, "agent:\n  profile: generic\n")
    assert err.line == 2
    assert "agent.command" in err.detail
    config = load(repo, "agent:\n  profile: generic\n  command: ./my-agent --go\n")
    assert (config.agent.command, config.agent.stagger) == ("./my-agent --go", 0.0)


def test_relative_worktree_dir_is_relative_to_the_repo(repo: Path) -> None:
    assert load(repo, "worktrees:\n  dir: .wt/{repo}\n").worktrees.dir == repo / ".wt" / "myrepo"


def test_slack_webhook_alone_is_enough(repo: Path) -> None:
    slack = load(repo, "alerts:\n  slack: {webhook_url: 'https://hooks.slack.com/x'}\n").alerts.slack
    assert slack is not None and slack.webhook_url == "https://hooks.slack.com/x" and slack.token is None


def test_slack_approvers_are_member_ids(repo: Path) -> None:
    text = "alerts:\n  slack:\n    token: t\n    channel: c\n    approvers: [U024BE7LH, W0ADMIN1, U024BE7LH]\n"
    slack = load(repo, text).alerts.slack
    assert slack is not None and slack.approvers == ("U024BE7LH", "W0ADMIN1")
    one = load(repo, "alerts:\n  slack: {token: t, channel: c, approvers: U024BE7LH}\n").alerts.slack
    assert one is not None and one.approvers == ("U024BE7LH",)
    none = load(repo, "alerts:\n  slack: {webhook_url: x}\n").alerts.slack
    assert none is not None and none.approvers == ()


def test_approvers_with_a_webhook_only_slack_are_refused_at_their_line(repo: Path) -> None:
    """A webhook only posts; nothing would read the replies, so the listed people could approve nothing."""
    err = error(repo, "alerts:\n  slack:\n    webhook_url: x\n    approvers: [U024BE7LH]\n")
    assert err.line == 4  # and the file: see error()
    assert err.detail.startswith("alerts.slack.approvers needs token and channel")


@pytest.mark.parametrize("who", ["alice", "'@alice'", "'<@U024BE7LH>'", "u024be7lh"])
def test_a_slack_approver_that_is_no_member_id_names_its_line(repo: Path, who: str) -> None:
    err = error(repo, "alerts:\n  slack:\n    token: t\n    channel: c\n"
                      f"    approvers:\n      - U024BE7LH\n      - {who}\n")
    assert err.line == 7
    assert err.detail.startswith("alerts.slack.approvers: ") and "is not a Slack member id" in err.detail
    assert err.hint is not None and "Copy member ID" in err.hint


def test_email_defaults_and_single_recipient(repo: Path) -> None:
    email = load(repo, "alerts:\n  email: {host: h, sender: s@x, to: me@x}\n").alerts.email
    assert email is not None
    assert (email.port, email.security, email.to, email.ca_file) == (587, "starttls", ("me@x",), None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1048576", 1048576),
        ("512KiB", 512 * 1024),
        ("10MiB", 10 * 1024**2),
        ("1GiB", 1024**3),
        ("5MB", 5_000_000),
        ("100kb", 100_000),
        ("1.5 MiB", 1572864),
    ],
)
def test_sizes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_integer_size_in_yaml(repo: Path) -> None:
    assert load(repo, "logs: {max_bytes: 4096}\n").logs.max_bytes == 4096


# --- durations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90.0), ("10m", 600.0), ("1h30m", 5400.0), ("45", 45.0)]
)
def test_durations(repo: Path, text: str, seconds: float) -> None:
    assert load(repo, f"limits:\n  stall_after: {text}\n").limits.stall_after == seconds


def test_null_disables_a_nullable_duration(repo: Path) -> None:
    config = load(repo, "limits:\n  helper_timeout: null\nalerts:\n  repeat_after: ~\n")
    assert config.limits.helper_timeout is None
    assert config.alerts.repeat_after is None


def test_null_is_refused_where_a_duration_is_required(repo: Path) -> None:
    err = error(repo, "limits:\n  stall_after: null\n")
    assert err.line == 2
    assert "limits.stall_after" in err.detail


@pytest.mark.parametrize("text", ["9" * 400 + "d", "9" * 5000 + "h", "9" * 400, "36501d", "1d" + "9" * 20 + "m"])
def test_a_duration_too_long_names_key_and_line(repo: Path, text: str) -> None:
    err = error(repo, f"limits:\n  max_level: 2\n  stall_after: {text}\n")
    assert err.line == 3
    assert "limits.stall_after" in err.detail and "too long to be a duration" in err.detail


def test_bad_duration_names_key_and_line(repo: Path) -> None:
    err = error(repo, "limits:\n  max_level: 2\n  stall_after: ten minutes\n")
    assert err.line == 3
    assert "limits.stall_after" in err.detail
    assert "not a duration" in err.detail


# --- ${VAR} expansion -----------------------------------------------------------------------------


def test_env_expansion(repo: Path) -> None:
    text = """\
    agent:
      command: "${AGENT_BIN} --model ${MODEL:-opus}"
    limits:
      stall_after: ${STALL:-5m}
      max_level: ${LEVEL}
    alerts:
      tmux: ${TMUX_ALERTS:-off}
      command: echo $$HOME costs $$5 and $PATH stays
    """
    config = load(repo, text, {"AGENT_BIN": "/opt/claude", "LEVEL": "2"})
    assert config.agent.command == "/opt/claude --model opus"
    assert config.limits.stall_after == 300.0
    assert config.limits.max_level == 2
    assert config.alerts.tmux is False
    assert config.alerts.command == "echo $HOME costs $5 and $PATH stays"


def test_env_default_applies_to_an_empty_variable(repo: Path) -> None:
    config = load(repo, "agent: {command: '${CMD:-claude --resume}'}\n", {"CMD": ""})
    assert config.agent.command == "claude --resume"


def test_env_values_stay_strings(repo: Path) -> None:
    text = "alerts:\n  email:\n    {host: h, sender: s, to: [t], password: '${PW}', username: '${USER_}'}\n"
    email = load(repo, text, {"PW": "123456", "USER_": "yes"}).alerts.email
    assert email is not None
    assert (email.password, email.username) == ("123456", "yes")


def test_unset_variable_is_an_error_with_its_line(repo: Path) -> None:
    text = """\
    alerts:
      slack:
        channel: "#agents"
        token: ${SLACK_BOT_TOKEN}
    """
    err = error(repo, text)
    assert err.line == 4
    assert "SLACK_BOT_TOKEN" in err.detail
    assert err.hint is not None and "SLACK_BOT_TOKEN" in err.hint


def test_unterminated_reference_is_an_error(repo: Path) -> None:
    err = error(repo, "agent:\n  command: 'run ${OOPS'\n")
    assert err.line == 2


# --- errors ---------------------------------------------------------------------------------------


def test_unknown_key_names_the_line_and_suggests_the_closest(repo: Path) -> None:
    err = error(repo, "limits:\n  max_level: 2\n  stal_after: 5m\n")
    assert err.line == 3
    assert err.detail == "unknown key 'limits.stal_after'"
    assert err.hint is not None and "limits.stall_after" in err.hint
    assert str(err).startswith(f"{repo / 'supervisor.yaml'}:3: ")


def test_unknown_top_level_key(repo: Path) -> None:
    err = error(repo, "agent: {}\nlimit:\n  stall_after: 5m\n")
    assert err.line == 2
    assert err.detail == "unknown key 'limit'"
    assert err.hint is not None and "'limits'" in err.hint


def test_key_in_the_wrong_section_points_to_the_right_one(repo: Path) -> None:
    err = error(repo, "agent:\n  stall_after: 5m\n")
    assert err.hint is not None and "limits.stall_after" in err.hint


def test_unknown_key_inside_slack(repo: Path) -> None:
    err = error(repo, "alerts:\n  slack:\n    webhook: x\n")
    assert (err.line, err.detail) == (3, "unknown key 'alerts.slack.webhook'")
    assert err.hint is not None and "webhook_url" in err.hint


def test_bad_enum_lists_the_allowed_values(repo: Path) -> None:
    err = error(repo, "agent:\n  profile: claud\n")
    assert err.line == 2
    for name in ("claude", "codex", "aider", "gemini", "generic"):
        assert name in err.detail
    assert err.hint == "did you mean 'claude'?"
    err = error(repo, "limits:\n\n  restart: sometimes\n")
    assert err.line == 3
    assert "never, on-failure, always" in err.detail
    err = error(repo, "limits:\n  restore: automatic\n")
    assert (err.line, err.detail, err.hint) == (2, "limits.restore must be one of: ask, auto, never; got 'automatic'",
                                                "did you mean 'auto'?")
    assert load(repo, "limits:\n  restore: never\n").limits.restore == "never"


def test_bad_notify_on_name(repo: Path) -> None:
    err = error(repo, "alerts:\n  notify_on:\n    - waiting\n    - stall\n")
    assert err.line == 4
    assert "'stall'" in err.detail and "stalled" in err.detail


def test_notify_on_drops_duplicates_and_can_be_empty(repo: Path) -> None:
    assert load(repo, "alerts: {notify_on: [done, waiting, done]}\n").alerts.notify_on == ("done", "waiting")
    assert load(repo, "alerts: {notify_on: []}\n").alerts.notify_on == ()


def test_list_items_keep_their_order_and_repeats(repo: Path) -> None:
    assert load(repo, "worktrees:\n  setup: [make, make]\n").worktrees.setup == ("make", "make")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("limits:\n  max_level: 4\n", 2, "limits.max_level"),
        ("limits:\n  max_level: two\n", 2, "limits.max_level"),
        ("limits:\n  max_restarts: -1\n", 2, "limits.max_restarts"),
        ("alerts:\n  tmux: maybe\n", 2, "alerts.tmux"),
        ("worktrees:\n  setup: uv sync\n", 2, "worktrees.setup"),
        ("worktrees:\n  setup:\n    - [nested]\n", 3, "worktrees.setup"),
        ("agent:\n  command: {a: b}\n", 2, "agent.command"),
        ("agent: claude\n", 1, "'agent'"),
        ("logs:\n  max_bytes: lots\n", 2, "logs.max_bytes"),
        ("logs:\n  max_bytes: 0\n", 2, "logs.max_bytes"),
        ("alerts:\n  email: {host: h, sender: s, to: [t], port: 70000}\n", 2, "alerts.email.port"),
        ("alerts:\n  email: {host: h, sender: s, to: [t], security: tls}\n", 2, "alerts.email.security"),
        ("agent:\n  command: !!python/name:os.system\n", 2, "agent.command"),
        ("limits:\n  context_alert: nearly full\n", 2, "limits.context_alert must be a percentage"),
        ("limits:\n  stall_after: 5m\n  context_alert: 120%\n", 3, "limits.context_alert"),
        ("limits:\n  context_alert: 0%\n", 2, "limits.context_alert"),
    ],
)
def test_wrong_type_or_value_names_key_and_line(repo: Path, text: str, line: int, fragment: str) -> None:
    err = error(repo, text)
    assert err.line == line
    assert fragment in err.detail


@pytest.mark.parametrize(("text", "percent"), [("80%", 80.0), ("95", 95.0), ("99.5 %", 99.5), ("off", None),
                                               ("null", None), ("100%", 100.0)])
def test_context_alert_is_a_percentage_or_off(repo: Path, text: str, percent: float | None) -> None:
    assert load(repo, f"limits:\n  context_alert: {text}\n").limits.context_alert == percent


@pytest.mark.parametrize("text", ["- agent\n- limits\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(repo: Path, text: str) -> None:
    err = error(repo, text)
    assert err.line == 1
    assert "top level" in err.detail


def test_yaml_syntax_error_has_its_line(repo: Path) -> None:
    err = error(repo, "agent:\n  profile: claude\nlimits:\n  stall_after: [10m\n  max_level: 2\nlogs: {}\n")
    assert err.line is not None and 4 <= err.line <= 6
    assert err.detail.startswith("invalid YAML")
    err = error(repo, "agent:\n  profile: claude\n command: x\n")
    assert err.line == 3


def test_duplicate_key_is_an_error(repo: Path) -> None:
    err = error(repo, "limits:\n  stall_after: 5m\n  max_level: 2\n  stall_after: 6m\n")
    assert err.line == 4
    assert err.detail == "duplicate key 'limits.stall_after'"
    assert err.hint is not None and "line 2" in err.hint


def test_duplicate_section_is_an_error(repo: Path) -> None:
    err = error(repo, "agent: {}\nlimits: {}\nagent: {}\n")
    assert (err.line, err.detail) == (3, "duplicate key 'agent'")


@pytest.mark.parametrize(
    "slack",
    ["{token: t}", "{channel: c}", "{}", "{base_url: 'http://x'}", "{token: '${EMPTY:-}', channel: c}"],
)
def test_slack_needs_token_and_channel_or_webhook(repo: Path, slack: str) -> None:
    err = error(repo, f"alerts:\n  tmux: true\n  slack: {slack}\n")
    assert err.line == 3
    assert "alerts.slack" in err.detail and "webhook_url" in err.detail


@pytest.mark.parametrize(
    ("email", "missing"),
    [
        ("{sender: s, to: [t]}", "host"),
        ("{host: h, to: [t]}", "sender"),
        ("{host: h, sender: s}", "to"),
        ("{host: h, sender: s, to: []}", "to"),
    ],
)
def test_email_needs_host_sender_and_to(repo: Path, email: str, missing: str) -> None:
    err = error(repo, f"alerts:\n  email: {email}\n")
    assert err.line == 2
    assert "alerts.email" in err.detail and missing in err.detail


def test_invalid_utf8_is_an_input_error(repo: Path) -> None:
    (repo / "supervisor.yaml").write_bytes(b"agent:\n  command: \xff\n")
    with pytest.raises(InputFileError) as info:
        load_config(repo, {})
    assert info.value.line == 2


def test_input_errors_are_usage_errors(repo: Path) -> None:
    err = error(repo, "nope: 1\n")
    assert isinstance(err, UsageError) and err.exit_code == 2


# --- init template and secrets --------------------------------------------------------------------


def test_init_template_loads_to_exactly_the_defaults(repo: Path) -> None:
    defaults = load_config(repo, environ={})
    path = write_init(repo)
    assert path == repo / "supervisor.yaml"
    assert path.read_text(encoding="utf-8") == INIT_TEMPLATE
    config = load_config(repo, environ={})
    assert config.source == path
    assert dataclasses.replace(config, source=None) == defaults


def test_init_template_sets_every_key(repo: Path) -> None:
    data = yaml.safe_load(INIT_TEMPLATE)
    assert set(data) == {"agent", "worktrees", "limits", "logs", "alerts", "approval", "merge", "budget", "prices",
                         "sandbox", "hosts"}  # isolation: commented out (unset: a sandbox where the machine can)
    assert set(data["sandbox"]) == {"network", "read", "write"}
    assert "# isolation: sandbox" in INIT_TEMPLATE
    assert set(data["budget"]) == {"per_session_tree", "per_repository_per_day", "on_budget"}
    assert {"on_limit", "resume_after_limit", "context_alert"} <= set(data["limits"])
    assert set(data["merge"]) == {"check", "check_timeout"}
    assert set(data["limits"]) >= {"max_level", "idle_after", "max_restarts"}
    assert set(data["alerts"]) == {
        "slack",
        "email",
        "command",
        "tmux",
        "notify_on",
        "repeat_after",
        "group_wait",
        "helper_done",
        "max_per_hour",
    }
    assert {"max_auto_restarts", "auto_restart_window"} <= set(data["limits"])


def test_init_template_examples_are_valid_when_uncommented(repo: Path) -> None:
    text = INIT_TEMPLATE.replace("  slack: null\n", "").replace("  email: null\n", "")
    text = text.replace("  #   slack: {token", "  slack: {token").replace("  #   email:", "  email:")
    text = "\n".join(
        line.replace("  #     ", "    ", 1) if line.startswith("  #     ") else line
        for line in text.splitlines()
    )
    config = parse_config(
        text,
        repo_root=repo,
        source=None,
        environ={"SLACK_BOT_TOKEN": "t", "SMTP_USER": "u", "SMTP_PASSWORD": "p"},
    )
    assert config.alerts.slack is not None and config.alerts.slack.channel == "#agents"
    assert config.alerts.email is not None and config.alerts.email.host == "smtp.example.com"


def test_write_init_refuses_to_overwrite(repo: Path) -> None:
    (repo / "supervisor.yaml").write_text("agent: {profile: codex}\n", encoding="utf-8")
    with pytest.raises(UsageError) as info:
        write_init(repo)
    assert "refusing to overwrite" in info.value.message
    assert info.value.hint
    assert (repo / "supervisor.yaml").read_text(encoding="utf-8") == "agent: {profile: codex}\n"


def test_secrets_never_appear_in_repr(repo: Path) -> None:
    text = """\
    alerts:
      slack: {token: "${TOKEN}", channel: "#agents", webhook_url: "https://hooks.example/${HOOK}"}
      email: {host: h, sender: s, to: [t], username: bob, password: "${PW}"}
    """
    secrets = {"TOKEN": "xoxb-SECRET-TOKEN", "HOOK": "SECRET-HOOK", "PW": "SECRET-PASSWORD"}
    config = load(repo, text, secrets)
    assert config.alerts.slack is not None and config.alerts.slack.token == "xoxb-SECRET-TOKEN"
    shown = repr(config) + str(config) + repr(config.alerts) + repr(config.alerts.slack)
    shown += repr(config.alerts.email)
    for secret in secrets.values():
        assert secret not in shown
    assert "bob" in shown  # the non-secret fields are still shown


# --- robustness -----------------------------------------------------------------------------------

_KEYS = st.sampled_from(
    [
        "agent",
        "worktrees",
        "limits",
        "logs",
        "alerts",
        "approval",
        "profile",
        "command",
        "stagger",
        "dir",
        "setup",
        "max_level",
        "session_timeout",
        "stall_after",
        "restart",
        "max_bytes",
        "slack",
        "email",
        "token",
        "channel",
        "webhook_url",
        "host",
        "port",
        "to",
        "sender",
        "notify_on",
        "tmux",
        "require",
        "timeout",
        "bogus",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "claude",
            "generic",
            "10m",
            "1h30m",
            "10MiB",
            "${X}",
            "${X:-5s}",
            "$$",
            "${",
            "{repo}",
            "never",
            "waiting",
            "ssl",
            "",
            "#agents",
            "a@b",
        ]
    ),
    st.text(max_size=12),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=20,
)
_DOCS = st.dictionaries(_KEYS, _VALUES, max_size=6)


def _load_or_input_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        try:
            config = parse_config(text, repo_root=Path(directory), source=None, environ={"X": "1s"})
        except InputFileError as err:
            assert err.line is None or err.line >= 1
        else:
            assert isinstance(config, Config)


@settings(max_examples=300, deadline=None)
@given(_DOCS)
def test_random_mappings_load_or_raise_input_file_error(doc: dict[str, object]) -> None:
    _load_or_input_error(yaml.safe_dump(doc))


# Mostly valid documents: each key of the schema with a value that is usually right for it.
_PLAUSIBLE: dict[str, dict[str, list[object]]] = {
    "agent": {
        "profile": ["claude", "codex", "generic", "gpt"],
        "command": ["claude --x", None, "${X}", 3],
        "stagger": ["2s", None, "soon"],
    },
    "worktrees": {"dir": ["../{repo}-wt", "/tmp/{repo}", "{bad}"], "setup": [[], ["make"], "make"]},
    "limits": {
        "max_level": [1, 3, 4, "2"],
        "session_timeout": [None, "1h", -1],
        "stall_after": ["10m", 5, None],
        "restart": ["always", "on-failure", "sometimes"],
        "max_restarts": [0, 5, -2],
    },
    "logs": {"max_bytes": ["10MiB", 1024, "1.5GiB", "big", 0]},
    "alerts": {
        "slack": [None, {"webhook_url": "https://x"}, {"token": "t", "channel": "c"}, {"token": "t"}],
        "email": [None, {"host": "h", "sender": "s", "to": "t"}, {"host": "h", "to": ["t"], "port": "x"}],
        "tmux": [True, False, "on", "maybe"],
        "notify_on": [[], ["done"], ["done", "done"], ["nope"]],
        "repeat_after": ["30m", None, "1h30m"],
    },
    "approval": {"require": [[], ["Bash(git push*)"]], "timeout": ["10m", None, "forever"]},
}
_PLAUSIBLE_DOCS = st.fixed_dictionaries(
    {},
    optional={
        section: st.fixed_dictionaries(
            {}, optional={key: st.sampled_from(pool) for key, pool in keys.items()}
        )
        for section, keys in _PLAUSIBLE.items()
    },
)


@settings(max_examples=300, deadline=None)
@given(_PLAUSIBLE_DOCS)
def test_plausible_documents_load_or_raise_input_file_error(doc: dict[str, object]) -> None:
    _load_or_input_error(yaml.safe_dump(doc))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "agent:",
                "limits:",
                "  stall_after: 5m",
                "  profile: x",
                "- a",
                "  - b",
                "{",
                "}",
                "[",
                "]",
                ": ",
                "&a",
                "*a",
                "!!int",
                "'",
                '"',
                "#c",
                "${X}",
                "  ",
                "\t",
                "\n",
                "---",
                "?",
                "<<: *a",
                "|",
                "\x00",
                "\ufeff",
                "é",
            ]
        )
        | st.text(max_size=8),
        max_size=30,
    ).map("".join)
)
def test_random_text_loads_or_raises_input_file_error(text: str) -> None:
    _load_or_input_error(text)


def test_prices_are_per_model_in_usd_per_million_tokens_and_a_bad_one_names_its_line(repo: Path) -> None:
    text = "prices:\n  my-model: {input: 3, output: 15, cache_read: 0.3, context_window: 200000}\n"
    price = parse_config(text, repo_root=repo, source=None).prices["my-model"]
    assert (price.input, price.output, price.cache_read, price.cache_write, price.context_window) == \
        (3e-6, 15e-6, 0.3e-6, None, 200_000)
    for bad, line, words in (("prices: 3\n", 1, "must map model names"),
                             ("prices:\n  m: {output: 1}\n", 2, "needs 'input'"),
                             ("prices:\n  m: {input: -1, output: 1}\n", 2, "a number ≥ 0"),
                             ("prices:\n  m: {input: 1, output: 1, extra: 2}\n", 2, "unknown key 'prices.m.extra'")):
        with pytest.raises(InputFileError) as info:
            parse_config(bad, repo_root=repo, source=repo / "supervisor.yaml")
        assert f"supervisor.yaml:{line}:" in str(info.value) and words in str(info.value)
