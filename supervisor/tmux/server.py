"""The repository's dedicated tmux server: its own socket and config, so the user's tmux stays untouched.

Lifecycle goes through libtmux's `Server.cmd`. Commands that must happen together (create a pane and give
the focus back) are chained with `;` in one tmux invocation. The watch loop reads every pane with one
`list-panes -a` per tick, and the screens and new history lines of the panes that printed in one more
query (`look`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import libtmux

from supervisor.errors import SupervisorError
from supervisor.tmux.control import ControlClient, ControlError

ENGINE_SESSION = "_engine"  # never a valid agent name (agent names cannot contain '_')
MIN_PANE_WIDTH = 40  # an agent CLI is unusable in a narrower pane: a helper then gets a window of its own
MIN_PANE_HEIGHT = 10

_CONFIG = """\
# Written by supervisor for its own tmux server; the user's tmux server is never touched.
# The user's own key bindings still apply when attaching; what the agents' panes depend on is set after.
source-file -q ~/.tmux.conf
source-file -q ~/.config/tmux/tmux.conf
set -g exit-empty off
set -g exit-unattached off
set -g destroy-unattached off
set -g remain-on-exit on
set -g default-shell /bin/sh
set -g default-size 160x48
# Off (tmux's default): on, a client attaching or leaving sends focus events into the panes of CLIs that ask
# for them, and they redraw, which reads as a turn (a nested attach lost its hint to a false `done`). Claude
# Code's passing "tmux focus-events off" notice that follows is read as the idle screen it is.
set -g focus-events off
set -g history-limit 50000
# Off: on, tmux looks up a window's foreground process in /proc after its output (up to twice a second per
# window, with a timer that wakes the server in between), only to name the window in the status line; a window
# keeps the name of the command it started with, and the status line's session name says which agent it is.
set -g automatic-rename off
set -g status-left "[#{session_name}] "
set -g status-left-length 40
set -g status-right "supervisor"
"""

_PANE_FORMAT = "\t".join(
    [
        "#{pane_id}",
        "#{pane_pid}",
        "#{pane_dead}",
        "#{pane_dead_status}",
        "#{session_name}",
        "#{window_id}",
        "#{window_activity}",  # when the window last printed, in whole seconds
        "#{history_size}",  # lines scrolled off the screen into tmux's history
        "#{history_limit}",
        "#{pane_width}x#{pane_height}",  # a new size rewraps the history (see Transcripts.resync)
    ]
)
# The server instance, asked on the listing's command line (so one call per tick tells both), once: each field
# of _PANE_FORMAT costs the server about a microsecond per pane and tick.
_SERVER_FORMAT = "#{pid}:#{start_time}"
_SEPARATOR = "\x1fsupervisor-capture\x1f"
SHORT_PASTE = 8000  # bytes of text that go on the tmux command line itself


class TmuxError(SupervisorError):
    pass


@dataclass(frozen=True)
class Scrolled:
    """A pane's newest history rows (oldest first), and how many rows its history held when they were taken."""

    size: int
    rows: list[str]


@dataclass(frozen=True)
class PaneInfo:
    pane: str
    pid: int | None
    dead: bool
    dead_status: int | None
    session: str
    window: str
    activity: int = 0  # the window's last output, in whole seconds of the epoch (shared by its panes)
    history: int = 0  # lines in the pane's history (scrolled off its screen)
    history_limit: int = 0
    size: str = ""  # "WIDTHxHEIGHT"
    server: str = ""  # the server instance listing it (`Tmux.server_id`): pane ids mean something only with it


@dataclass(frozen=True)
class Grid:
    """A pane's newest history rows, then its screen's rows, taken together: `history` rows of history in all,
    the last `height` of `rows` on the screen."""

    history: int
    height: int
    rows: list[str]


class Tmux:
    def __init__(self, socket: Path, config: Path) -> None:
        self.socket = socket
        self.config = config
        self.server = libtmux.Server(socket_path=str(socket), config_file=str(config))
        self.listed_server: str | None = None  # the server instance seen by the last list_panes
        self._control: ControlClient | None = None  # the watcher's connection, once `use_control` is called
        self._control_wanted = False
        self._control_guard = threading.Lock()

    def use_control(self) -> None:
        """Answer list_panes and capture_many through a persistent control-mode client (the engine)."""
        self._control_wanted = True

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None

    def _query(self, commands: list[list[str]], lines: list[int] | None = None) -> list[tuple[bool, list[str]]]:
        """Run read-only commands: through the control client when there is one, else one tmux process.
        `lines`: how many commands go on each command line (tmux runs a line with no output read in between;
        one each by default), so a pane that vanished fails its own commands only."""
        if self._control_wanted:
            try:
                with self._control_guard:  # the watcher and the alert threads share one client
                    if self._control is None or not self._control.alive:
                        self._control = ControlClient(self.socket, ENGINE_SESSION)
                    control = self._control
                groups, start = [], 0
                for size in lines or [1] * len(commands):
                    groups.append(commands[start:start + size])
                    start += size
                return control.run(groups)
            except ControlError:
                self.close()  # the server restarted, or the session is gone: spawn this time, retry next
        if len(commands) == 1:
            proc = self.server.cmd(*commands[0])
            return [(proc.returncode == 0, list(proc.stdout) if proc.returncode == 0 else list(proc.stderr))]
        # Chained in one process, each output preceded by a marker line (a failing command ends the chain:
        # the ones after it come back empty-handed and are asked again next time).
        args: list[str] = []
        for index, command in enumerate(commands):
            args += ["display-message", "-p", f"{_SEPARATOR}{index}", ";", *command, ";"]
        proc = self.server.cmd(*args[:-1])
        results: list[tuple[bool, list[str]]] = [(False, []) for _ in commands]
        current: int | None = None
        for line in proc.stdout:
            if line.startswith(_SEPARATOR):
                current = int(line[len(_SEPARATOR):])
                results[current] = (True, [])
            elif current is not None:
                results[current][1].append(line)
        return results

    def query(self, *args: str) -> list[str]:
        """One command's output lines, through the control client when there is one (no process spawned:
        for commands run often, like the tmux alert channel's); TmuxError when it fails."""
        ok, lines = self._query([list(args)])[0]
        if not ok:
            raise TmuxError(f"tmux {args[0]} failed: {' '.join(lines) or 'no output'}")
        return lines

    def run(self, *args: str) -> list[str]:
        """Run one tmux command line (commands may be chained with ';'); its stdout lines."""
        proc = self.server.cmd(*args)
        if proc.returncode != 0 or proc.stderr:
            detail = " ".join(proc.stderr) or f"exit {proc.returncode}"
            raise TmuxError(f"tmux {args[0]} failed: {detail}")
        return list(proc.stdout)

    def alive(self) -> bool:
        return bool(self.server.is_alive())

    def ensure_server(self) -> None:
        """Start the server with our config if it is not running (it then stays up even when empty)."""
        if self.alive():
            return
        self.config.write_text(_CONFIG)
        self.run("start-server")
        if not self.alive():
            raise TmuxError(f"could not start the tmux server at {self.socket}")

    def kill_server(self) -> None:
        if self.alive():
            self.server.cmd("kill-server")

    def server_id(self) -> str:
        """Which server instance this is: pane ids restart with a new server, so they are only
        meaningful together with this."""
        return self.run("display-message", "-p", "#{pid}:#{start_time}")[0]

    def reap(self) -> None:
        """Make the server collect its children's exit statuses.

        tmux 3.3 built with utempter can miss a SIGCHLD, leaving a dead pane without its exit status and
        its process a zombie; another SIGCHLD makes it reap them (tmux/tmux#311)."""
        try:
            pid = int(self.run("display-message", "-p", "#{pid}")[0])
        except (TmuxError, ValueError, IndexError):
            return
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGCHLD)

    def has_session(self, name: str) -> bool:
        return self.server.cmd("has-session", "-t", f"={name}").returncode == 0

    # panes --------------------------------------------------------------------------------------------

    def new_session(
        self,
        name: str,
        cwd: Path,
        command: str,
        env: Mapping[str, str],
    ) -> tuple[str, int]:
        """A detached session running `command` in its only pane; returns (pane id, pane pid)."""
        args = ["new-session", "-d", "-s", name, "-c", str(cwd), "-P", "-F", "#{pane_id}\t#{pane_pid}"]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        args.append(command)
        pane, pid = self.run(*args)[0].split("\t")
        return pane, int(pid)

    def split(
        self,
        beside: str,
        cwd: Path,
        command: str,
        env: Mapping[str, str],
    ) -> tuple[str, int] | None:
        """A new pane beside `beside` (right of it, or below when too narrow) running `command`; None when
        the pane is too small to share. The focus stays where it was, so an attached user keeps typing into
        the pane they were in."""
        size = self.run("display-message", "-p", "-t", beside, "#{pane_width}\t#{pane_height}\t#{window_id}")[0]
        width, height, window = size.split("\t")
        if int(width) >= 2 * MIN_PANE_WIDTH + 1:
            direction = "-h"
        elif int(height) >= 2 * MIN_PANE_HEIGHT + 1:
            direction = "-v"
        else:
            return None
        args = ["split-window", direction, "-t", beside, "-c", str(cwd), "-P", "-F", "#{pane_id}\t#{pane_pid}"]
        return self._create(args, env, command, back=["last-pane", "-t", window])

    def new_window(
        self,
        session: str,
        cwd: Path,
        command: str,
        env: Mapping[str, str],
    ) -> tuple[str, int]:
        """A new window of `session` running `command` (the session's current window stays current)."""
        args = ["new-window", "-t", f"={session}:", "-c", str(cwd), "-P", "-F", "#{pane_id}\t#{pane_pid}"]
        created = self._create(args, env, command, back=["last-window", "-t", f"={session}"])
        assert created is not None
        return created

    def _create(self, args: list[str], env: Mapping[str, str], command: str, *,
                back: list[str]) -> tuple[str, int] | None:
        """Run a pane-creating command, then `back` to return the focus where it was."""
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        args.append(command)
        args += [";", *back]
        proc = self.server.cmd(*args)
        if proc.returncode != 0 or not proc.stdout:
            detail = " ".join(proc.stderr) or f"exit {proc.returncode}"
            if "no space" in detail or "too small" in detail:
                return None
            raise TmuxError(f"tmux {args[0]} failed: {detail}")
        pane, pid = proc.stdout[0].split("\t")
        return pane, int(pid)

    def kill_pane(self, pane: str) -> None:
        with contextlib.suppress(TmuxError):
            self.run("kill-pane", "-t", pane)

    def respawn(self, pane: str, cwd: Path, command: str, env: Mapping[str, str]) -> int:
        """Run `command` again in `pane` (killing what runs there); the pane keeps its history."""
        args = ["respawn-pane", "-k", "-t", pane, "-c", str(cwd)]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        args.append(command)
        self.run(*args)
        return self.pane_pid(pane)

    def pane_pid(self, pane: str) -> int:
        return int(self.run("display-message", "-p", "-t", pane, "#{pane_pid}")[0])

    def list_panes(self) -> dict[str, PaneInfo]:
        """Every pane of the server, in one tmux call."""
        (_, said), (ok, lines) = self._query([["display-message", "-p", _SERVER_FORMAT],
                                              ["list-panes", "-a", "-F", _PANE_FORMAT]], [2])
        if not ok:
            if not self.alive():
                self.listed_server = None
                return {}
            raise TmuxError(f"tmux list-panes failed: {' '.join(lines)}")
        server = said[0] if said else ""
        self.listed_server = server if lines else None
        panes: dict[str, PaneInfo] = {}
        for line in lines:
            pane, pid, dead, status, session, window, activity, history, limit, size = line.split("\t")
            panes[pane] = PaneInfo(
                pane=pane,
                pid=int(pid) if pid else None,
                dead=dead == "1",
                dead_status=int(status) if status else None,
                session=session,
                window=window,
                activity=int(activity or 0),
                history=int(history or 0),
                history_limit=int(limit or 0),
                size=size,
                server=server,
            )
        return panes

    def capture(self, pane: str, *, history: int = 0, ansi: bool = False) -> str:
        """The pane's visible screen (and `history` lines above it) as text."""
        args = ["capture-pane", "-p", "-J", "-t", pane]
        if history:
            args += ["-S", str(-history)]
        if ansi:
            args.append("-e")
        return "\n".join(self.run(*args))

    def capture_many(self, panes: list[str]) -> dict[str, str]:
        """The visible screens of several panes in one tmux call (panes that vanished are left out)."""
        return self.look(panes, {})[0]

    def look(self, screens: list[str], history: Mapping[str, int]) -> tuple[dict[str, str], dict[str, Scrolled]]:
        """In one tmux call: the visible screens of `screens`, and for those in `history` their newest
        lines of history (at least the count asked, with some to spare for lines that scrolled off since the
        count was taken), with their colours, one per screen row, and its history's size as they were taken.
        Panes that vanished are left out."""
        # Per pane, on a command line of its own: its history's size and newest history rows when asked for,
        # read together with its screen.
        commands: list[list[str]] = []
        lines: list[int] = []
        for pane in screens:
            count = history.get(pane, 0)
            if count > 0:
                commands += [["display-message", "-p", "-t", pane, "#{history_size}"],
                             ["capture-pane", "-p", "-e", "-S", str(-(count + max(10, count))), "-E", "-1", "-t", pane]]
            commands.append(["capture-pane", "-p", "-J", "-t", pane])
            lines.append(3 if count > 0 else 1)
        if not commands:
            return {}, {}
        results = iter(self._query(commands, lines))
        shown, scrolled = {}, {}
        for pane, size in zip(screens, lines, strict=True):
            if size == 3:
                (sized, held), (ok, rows) = next(results), next(results)
                if sized and ok and held and held[0].isdigit():
                    count = int(held[0])
                    scrolled[pane] = Scrolled(count, rows[-count:] if count else [])
            seen, screen = next(results)
            if seen:
                shown[pane] = "\n".join(screen)
        return shown, scrolled

    def grid(self, pane: str, history: int) -> Grid | None:
        """The pane's newest `history` rows of history and its screen's rows, in one command line (no output
        lands in between), with their colours; None when the pane is gone."""
        (sized, held), (ok, rows) = self._query([
            ["display-message", "-p", "-t", pane, "#{history_size} #{pane_height}"],
            ["capture-pane", "-p", "-e", "-S", str(-history), "-t", pane],
        ], [2])
        if not (sized and ok and held):
            return None
        size, height = (int(n) for n in held[0].split())
        rows += [""] * (min(size, history) + height - len(rows))  # blank rows at the end may come back trimmed
        return Grid(size, height, rows)

    def paste(self, pane: str, text: str) -> None:
        """Paste `text` literally into the pane, bracketed when the program asked for bracketed paste.

        Never into a dead pane: tmux before 3.4 crashes pasting into one, taking every agent with it
        (tmux/tmux#3830), and our panes stay on screen once dead (remain-on-exit). The check and the paste
        run in one command line, with nothing between them.

        A text that fits a tmux command line (16 KB) goes on it, so a full or read-only runtime folder does not
        stop it; a longer one is loaded from a private file (one argument is also limited to 128 KiB). A file
        that cannot be written is a TmuxError like any other failure to paste."""
        buffer = f"supervisor-{pane.lstrip('%')}"
        then = [";", "if-shell", "-F", "-t", pane, "#{pane_dead}",
                f"delete-buffer -b {buffer}", f"paste-buffer -p -d -b {buffer} -t {pane}"]
        data = text.encode("utf-8", "replace")
        if len(data) <= SHORT_PASTE and b"\0" not in data:
            # An argument ending in ';' would end the command; '\;' at its end stands for ';'.
            argument = data.decode()
            argument = argument[:-1] + "\\;" if argument.endswith(";") else argument
            self.run("set-buffer", "-b", buffer, "--", argument, *then)
            return
        try:
            # In the runtime folder (private to the user), removed as soon as tmux has read it.
            with tempfile.NamedTemporaryFile(prefix="paste-", dir=self.socket.parent) as file:
                file.write(data)
                file.flush()
                self.run("load-buffer", "-b", buffer, file.name, *then)
        except OSError as exc:
            raise TmuxError(f"the text ({len(data)} bytes) could not be written for tmux to read: "
                            f"{exc.strerror or exc}") from None

    def send_keys(self, pane: str, *keys: str) -> None:
        """Send key names (`Enter`, `C-c`, `Escape`), not text."""
        self.run("send-keys", "-t", pane, *keys)

    def kill_session(self, name: str) -> None:
        if self.has_session(name):
            self.run("kill-session", "-t", f"={name}")

