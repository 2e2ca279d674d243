"""The command channel: any shell command, run once per alert with the alert in SUPERVISOR_ALERT_* variables
(desktop notifications, pagers, chat tools) and, whole, as JSON on its stdin. A non-zero exit is a failed
delivery, retried like any other.

Each variable is cut to ENV_CHARS: the system refuses to start a program with a variable over 128 KiB
("Argument list too long"), and an alert can carry a task of megabytes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from supervisor.alerts.channels.base import DeliveryFailed, Reachability, Sent
from supervisor.alerts.content import AlertContent, redact

TIMEOUT = 60.0
ENV_CHARS = 4096
CUT = "… (cut: the whole alert is on stdin)"


class CommandChannel:
    name = "command"

    def __init__(self, command: str, cwd: Path, secrets: tuple[str, ...] = (), timeout: float = TIMEOUT) -> None:
        self.command = command
        self.cwd = cwd
        self._secrets = secrets
        self.timeout = timeout

    @property
    def thread_key(self) -> str | None:
        return None

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def send(self, alert: AlertContent, thread: str | None, now: float) -> Sent:
        env = {key: value for key, value in os.environ.items() if key != "SUPERVISOR_TOKEN"}
        env["TERM"] = "dumb"  # the engine that runs it has no terminal; a program that asks still gets an answer
        env.update({key: cut(value) for key, value in alert.environment(now).items()})
        whole = json.dumps(alert.document(now), ensure_ascii=False)
        try:
            # A command that does not read its stdin is fine: the unread rest is dropped.
            done = subprocess.run(self.command, shell=True, cwd=self.cwd, env=env, input=whole,
                                  capture_output=True, text=True, errors="replace", timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise DeliveryFailed(f"alert command timed out after {self.timeout:.0f}s") from None
        except OSError as exc:
            raise DeliveryFailed(f"alert command could not run: {exc}") from None
        if done.returncode != 0:
            output = [line for line in (done.stderr or done.stdout or "").splitlines() if line.strip()]
            last = f": {output[-1][:200]}" if output else ""
            raise DeliveryFailed(redact(f"alert command exited {done.returncode}{last}", self._secrets))
        return Sent("command exited 0")

    def check(self) -> Reachability:
        program = self.command.split()[0] if self.command.split() else ""
        shell_syntax = any(ch in self.command for ch in ";|&$`()<>")
        if program and not shell_syntax and "/" not in program and shutil.which(program) is None:
            return Reachability(False, f"{program} not on PATH", "install it or fix alerts.command")
        # Only the program: the rest of the line may hold an expanded ${SECRET}.
        return Reachability(True, f"runs {program or 'a shell command'} (not run by this check)")


def cut(value: str) -> str:
    """`value`, or its first ENV_CHARS characters marked as cut."""
    return value if len(value) <= ENV_CHARS else value[:ENV_CHARS - len(CUT)] + CUT
