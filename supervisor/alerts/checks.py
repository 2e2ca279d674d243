"""Reachability of each configured alert channel, for `supervisor doctor`: Slack `auth.test` for a token, SMTP
connect + EHLO (+ STARTTLS, + login when configured) for email, the program on PATH for a command, and the
clients attached to supervisor's tmux server. Nothing is sent; `supervisor alerts test` sends."""

from __future__ import annotations

from supervisor.alerts.channels import Reachability, build_channels
from supervisor.config import AlertsConfig
from supervisor.paths import RepoPaths
from supervisor.tmux.server import Tmux


def reachability(config: AlertsConfig, paths: RepoPaths) -> list[tuple[str, Reachability]]:
    tmux = Tmux(paths.tmux_socket, paths.tmux_conf)
    try:
        channels = build_channels(config, paths.root, "doctor", tmux)
    except ValueError as exc:
        return [("alerts", Reachability(False, str(exc)))]
    if not channels:
        return [("alerts", Reachability(True, "no alert channel configured (alerts are only recorded)"))]
    results = []
    for name, channel in channels.items():
        try:
            results.append((name, channel.check()))
        except Exception as exc:  # a check reports; it never crashes the doctor
            results.append((name, Reachability(False, f"{type(exc).__name__}: {exc}"[:300])))
    return results
