"""supervisor.yaml → typed, frozen configuration, with errors that name the file and line.

The file is read with `yaml.compose` rather than `yaml.safe_load` so that every key and value keeps
its position: each error points at the line a user has to fix. Scalars are read from their source
text (after `${VAR}` expansion), not from YAML's implicit typing, so a password such as `123456` or
`yes` taken from the environment stays the string it was.

The package: `settings` (the dataclasses and the names each key allows), `values` (`${VAR}` expansion, sizes),
`reader` (the YAML node tree, each scalar checked), `sections` (each section read and checked), `template`
(what `supervisor init` writes). Everything a caller needs is imported from here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from supervisor.config.reader import _compose
from supervisor.config.sections import _Parser
from supervisor.config.settings import (
    ALERT_TRIGGERS,
    BUDGET_ACTIONS,
    CONFIG_FILENAME,
    DEFAULT_COMMANDS,
    DEFAULT_STAGGER,
    EMAIL_SECURITY,
    ISOLATIONS,
    LIMIT_ACTIONS,
    MERGE_MODES,
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
from supervisor.config.template import INIT_TEMPLATE, write_init
from supervisor.config.values import expand_env, named_variables, parse_size
from supervisor.errors import InputFileError
from supervisor.hostsconfig import HostConfig

__all__ = [
    "ALERT_TRIGGERS", "BUDGET_ACTIONS", "CONFIG_FILENAME", "DEFAULT_COMMANDS", "DEFAULT_STAGGER", "EMAIL_SECURITY",
    "INIT_TEMPLATE", "ISOLATIONS", "LIMIT_ACTIONS", "MERGE_MODES", "PROFILES", "RESTART_POLICIES", "RESTORE_MODES",
    "STALL_ACTIONS", "AgentConfig", "AlertsConfig", "ApprovalConfig", "BudgetConfig", "Config", "EmailConfig",
    "HostConfig", "LimitsConfig", "LogsConfig", "MergeConfig", "SandboxConfig", "SlackConfig", "WorktreesConfig",
    "expand_env", "load_config", "named_variables", "parse_config", "parse_size", "write_init",
]


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
