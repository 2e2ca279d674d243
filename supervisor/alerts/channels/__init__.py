"""Alert channels, one module each, built from `alerts:` in supervisor.yaml."""

from __future__ import annotations

from pathlib import Path

from supervisor.alerts.channels.base import Channel, DeliveryFailed, Reachability, Recalling, Sent
from supervisor.config import AlertsConfig
from supervisor.tmux.server import Tmux

__all__ = ["Channel", "DeliveryFailed", "Reachability", "Recalling", "Sent", "build_channels", "configured_names"]


def configured_names(config: AlertsConfig, tmux_available: bool = True) -> tuple[str, ...]:
    names = []
    if config.slack is not None:
        names.append("slack")
    if config.email is not None:
        names.append("email")
    if config.command:
        names.append("command")
    if config.tmux and tmux_available:
        names.append("tmux")
    return tuple(names)


def build_channels(config: AlertsConfig, repo_root: Path, instance: str, tmux: Tmux | None) -> dict[str, Channel]:
    """One channel object per configured channel, by name."""
    from supervisor.alerts.channels.command import CommandChannel
    from supervisor.alerts.channels.email import EmailChannel
    from supervisor.alerts.channels.slack import SlackChannel
    from supervisor.alerts.channels.tmux import TmuxChannel

    channels: dict[str, Channel] = {}
    secrets = tuple(s for s in ((config.slack.token, config.slack.webhook_url) if config.slack else ()) if s)
    secrets += (config.email.password,) if config.email and config.email.password else ()
    if config.slack is not None:
        channels["slack"] = SlackChannel(config.slack, instance)
    if config.email is not None:
        channels["email"] = EmailChannel(config.email, instance)
    if config.command:
        channels["command"] = CommandChannel(config.command, repo_root, secrets)
    if config.tmux and tmux is not None:
        channels["tmux"] = TmuxChannel(tmux)
    return channels
