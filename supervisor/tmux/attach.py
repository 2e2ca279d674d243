"""Putting the user's terminal on an agent's pane, and getting it back, wherever the user runs supervisor.

Supervisor's tmux server is not the user's. Attaching from a plain terminal is a plain `attach-session`.
Attaching from inside the user's own tmux nests one tmux client in another, and the outer tmux takes every
prefix key for itself: prefix + d would detach the user's whole terminal, not supervisor's client. So:
- from inside the user's tmux (3.2 or later, with a client on screen), the agent's session opens in a
  `display-popup` of the user's tmux that fills its window: a popup gets every key, the prefix included,
  so the usual prefix + d detaches supervisor's client and closes the popup, and the user is back where
  they were;
- from an older tmux, or one with no client to show a popup on, the clients are nested: prefix twice
  (the outer tmux's send-prefix) then d;
- from inside supervisor's own server, `switch-client` (prefix + L comes back).
Either way supervisor's server takes the user's outer prefix key, so the same keys work at both levels, and
the attached client shows, in its status line until a key is pressed, how to come back.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

POPUP_VERSION = (3, 2)  # display-popup; -B (no border) came with 3.3


@dataclass(frozen=True)
class Outer:
    """The user's own tmux, around the process that attaches."""

    prefix: str | None  # its prefix key (None: none set)
    version: tuple[int, int]
    client: bool  # a client shows the pane we run in (a popup needs one)


@dataclass(frozen=True)
class AttachPlan:
    argv: list[str]
    env: dict[str, str]
    how: str  # "direct", "popup", "nested" or "switch"
    back: str  # the keys that come back, as the message says them


def parse_version(text: str) -> tuple[int, int]:
    """`3.3a` → (3, 3); `next-3.4` → (3, 4); unknown → (0, 0)."""
    digits = text.strip().removeprefix("next-").split(".")
    try:
        return int(digits[0]), int("".join(ch for ch in digits[1] if ch.isdigit()) or 0)
    except (IndexError, ValueError):
        return 0, 0


def probe_outer(environ: Mapping[str, str]) -> Outer | None:
    """The user's tmux (from $TMUX): its prefix, its version, whether a client shows our pane."""
    if not environ.get("TMUX"):
        return None
    done = subprocess.run(["tmux", "show-options", "-gv", "prefix", ";", "display-message", "-p",
                           "#{version}|#{client_tty}"], capture_output=True, text=True, env=dict(environ),
                          check=False, timeout=10)
    lines = done.stdout.splitlines()
    if done.returncode != 0 or len(lines) < 2:
        return Outer(prefix=None, version=(0, 0), client=False)
    version, _, tty = lines[-1].partition("|")
    prefix = lines[0].strip()
    return Outer(prefix=None if prefix in ("", "None") else prefix, version=parse_version(version),
                 client=bool(tty.strip()))


def our_prefix(socket: Path) -> str:
    done = subprocess.run(["tmux", "-S", str(socket), "show-options", "-gv", "prefix"], capture_output=True,
                          text=True, check=False, timeout=10)
    return done.stdout.strip() or "C-b"


def sync_prefix(socket: Path, prefix: str) -> None:
    """Give supervisor's server the user's prefix key (its key bindings come from the user's own config)."""
    subprocess.run(["tmux", "-S", str(socket), "set-option", "-g", "prefix", prefix], capture_output=True,
                   check=False, timeout=10)


def show_pane(socket: Path, pane: str) -> None:
    """Bring `pane` to the front of its session, so a terminal attaching to the session lands on it (a pane
    gone meanwhile is left to the attach to report)."""
    subprocess.run(["tmux", "-S", str(socket), "select-window", "-t", pane, ";", "select-pane", "-t", pane],
                   capture_output=True, check=False, timeout=10)


def plan_attach(socket: Path, pane: str, session: str, environ: Mapping[str, str] | None = None,
                outer: Outer | None = None, *, probe: bool = True) -> AttachPlan:
    """How to put this terminal on `pane` (in `session` of supervisor's server at `socket`) and come back.

    `outer` is the user's tmux as probed (`probe_outer`); tests pass one to pick a path."""
    environ = dict(os.environ if environ is None else environ)
    here = environ.get("TMUX", "").split(",")[0]
    base = ["tmux", "-S", str(socket)]
    if here and here == str(socket):  # the dashboard runs in supervisor's own server
        prefix = our_prefix(socket)
        back = f"{prefix} L"
        return AttachPlan([*base, "switch-client", "-t", pane, ";", *_message(f"{back} comes back")], environ,
                          "switch", back)
    if here and outer is None and probe:
        outer = probe_outer(environ)
    without = {key: value for key, value in environ.items() if key != "TMUX"}
    if not here or outer is None:
        prefix = our_prefix(socket)
        back = f"{prefix} d"
        return AttachPlan([*base, "attach-session", "-t", f"={session}", ";", *_message(f"{back} comes back")],
                          without, "direct", back)
    if outer.prefix:
        sync_prefix(socket, outer.prefix)
    prefix = outer.prefix or our_prefix(socket)
    if outer.version >= POPUP_VERSION and outer.client:
        back = f"{prefix} d"
        inner = ["env", "-u", "TMUX", *base, "attach-session", "-t", f"={session}", ";",
                 *_message(f"{back} comes back (a popup of your tmux)")]
        border = ["-B"] if outer.version >= (3, 3) else []
        return AttachPlan(["tmux", "display-popup", "-E", *border, "-w", "100%", "-h", "100%", shlex.join(inner)],
                          environ, "popup", back)
    back = f"{prefix} {prefix} d"
    return AttachPlan([*base, "attach-session", "-t", f"={session}", ";",
                       *_message(f"inside your tmux: {back} comes back (prefix twice, then d)")], without,
                      "nested", back)


def plan_remote(ssh: list[str], environ: Mapping[str, str] | None = None, outer: Outer | None = None, *,
                probe: bool = True) -> AttachPlan:
    """How to put this terminal on a pane of a host's server: `ssh` (`ssh -t … 'tmux … attach-session …'`, the
    user's own ssh setup, its last word the command line run there). Inside the user's tmux (3.2 or later, with
    a client on screen) in a popup of it, so prefix + d detaches the host's client and closes the popup; else
    the terminal itself (nested inside an older tmux: prefix twice, then d, the host's server given the user's
    prefix as supervisor's server here is). The attached client shows how to come back, as here."""
    environ = dict(os.environ if environ is None else environ)
    if environ.get("TMUX") and outer is None and probe:
        outer = probe_outer(environ)
    prefix = "#{prefix}"  # the host's server's own prefix key, as it expands it there
    if outer is not None and outer.version >= POPUP_VERSION and outer.client:
        border = ["-B"] if outer.version >= (3, 3) else []
        inner = _then(ssh, _message(f"{prefix} d comes back (a popup of your tmux)"))
        return AttachPlan(["tmux", "display-popup", "-E", *border, "-w", "100%", "-h", "100%", shlex.join(inner)],
                          environ, "popup", "prefix d")
    if outer is None:
        return AttachPlan(_then(ssh, _message(f"{prefix} d comes back")), environ, "direct", "prefix d")
    synced = ["set-option", "-g", "prefix", outer.prefix, ";"] if outer.prefix else []
    prefix = outer.prefix or prefix
    return AttachPlan(_then(ssh, [*synced, *_message(f"inside your tmux: {prefix} {prefix} d comes back (prefix "
                                                     "twice, then d)")]), environ, "nested", "prefix prefix d")


def plan_for(info: Mapping[str, str], environ: Mapping[str, str] | None = None) -> AttachPlan:
    """How to attach to the pane the engine's `attach_info` describes: over ssh on a host (`ssh`), else on
    supervisor's server here, the pane brought to the front of its session first."""
    if info.get("ssh"):
        return plan_remote(shlex.split(info["ssh"]), environ)
    socket = Path(info["socket"])
    plan = plan_attach(socket, info["pane"], info["session"], environ)
    show_pane(socket, info["pane"])
    return plan


def _then(ssh: list[str], words: list[str]) -> list[str]:
    """`ssh` with the tmux command line it runs on the host followed by `words` (more commands of that tmux)."""
    return [*ssh[:-1], f"{ssh[-1]} {shlex.join([';', *words])}"]


def _message(text: str) -> list[str]:
    """A status-line message on the attaching client, shown until a key is pressed."""
    return ["display-message", "-d", "0", f"supervisor: {text}"]
