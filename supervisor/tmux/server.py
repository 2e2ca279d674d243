"""The repository's dedicated tmux server: its own socket and config, so the user's tmux stays untouched.

Commands that must happen together (create a pane and give the focus back) are chained with `;` in one tmux
invocation. The watch loop reads every pane with one `list-panes -a` per tick, and the screens and new history
lines of the panes that printed in one more query (`look`).

Only `ensure_server` starts a server; every other command runs with `tmux -N` (never start one), so a server
that died under a launch is an error, not a new empty server that nobody recorded. Every tmux process runs
with `env`: the server takes the environment of the client that starts it and gives it to every pane, and a
new session copies some of its client's variables.

The commands reach the server through a `Transport` (supervisor/tmux/transport.py): on this machine, or on a
host over its link, with the same code for both.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from supervisor.errors import SupervisorError
from supervisor.tmux.control import ControlClient, ControlError
from supervisor.tmux.transport import LOCAL_TRANSPORT, Done, Transport

# A session the server always has, for the engine's control-mode client to attach to (the engine itself runs
# apart from tmux). Never a valid agent name (agent names cannot contain '_').
ENGINE_SESSION = "_engine"
_PLACEHOLDER = ("echo 'supervisor keeps this session for its connection to tmux; the engine runs apart "
                "(see: supervisor engine status)'; exec sleep 2147483647")
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


def spare_rows(count: int) -> int:
    """History rows taken beyond the `count` a look asks for, for rows that scrolled off between the listing that
    counted them and the capture: as many again. A row taken with its colours costs tmux about 8 µs: a fixed ten
    spare rows made a pane printing a line a second cost it 11 rows a tick. When more scrolled off in between
    than were taken (output that sped up), the look takes none, and the next one all (`Transcripts.append`)."""
    return max(1, count)


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
class Created:
    """A pane just made: its id, its process, and the server instance it is on (`#{pid}:#{start_time}`)."""

    pane: str
    pid: int
    server: str


@dataclass(frozen=True)
class Grid:
    """A pane's newest history rows, then its screen's rows, taken together: `history` rows of history in all,
    the last `height` of `rows` on the screen."""

    history: int
    height: int
    rows: list[str]


# What a pane-creating command prints: the pane, its process, and the server instance that made it.
_CREATED = "#{pane_id}\t#{pane_pid}\t#{pid}:#{start_time}"


class Tmux:
    def __init__(self, socket: Path, config: Path, env: Mapping[str, str] | None = None,
                 transport: Transport = LOCAL_TRANSPORT) -> None:
        self.transport = transport
        self.socket = socket
        self.config = config
        self.env = env  # every tmux process's environment, and so the server's and its panes' (None: ours)
        self.withheld: frozenset[str] = frozenset()  # names taken out of a running server's own environment
        self._scrubbed: str | None = None  # the server instance `withheld` was last taken out of
        self.listed_server: str | None = None  # the server instance seen by the last list_panes
        self.known_server: str | None = None  # the last server instance seen at all (see `ensure_server`)
        self._control: ControlClient | None = None  # the watcher's connection, once `use_control` is called
        self._control_wanted = False
        self._control_guard = threading.Lock()
        self._listed: dict[str, PaneInfo] = {}  # the last listing's panes by their line: most come back the same

    def use_control(self) -> None:
        """Answer list_panes and capture_many through a persistent control-mode client (the engine)."""
        self._control_wanted = True

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None

    def cmd(self, *args: str) -> Done:
        """Run one tmux command line on the running server (never starting one)."""
        return self._spawn(["-N", *args])

    def _spawn(self, args: list[str]) -> Done:
        return self.transport.spawn(self.socket, args, self.env)

    def _query(self, commands: list[list[str]], lines: list[int] | None = None) -> list[tuple[bool, list[str]]]:
        """Run read-only commands: through the control client when there is one, else one tmux process.
        `lines`: how many commands go on each command line (tmux runs a line with no output read in between;
        one each by default), so a pane that vanished fails its own commands only."""
        if self._control_wanted:
            try:
                with self._control_guard:  # the watcher and the alert threads share one client
                    if self._control is None or not self._control.alive:
                        self._control = self.transport.control(self.socket, ENGINE_SESSION, self.env)
                    control = self._control
                groups, start = [], 0
                for size in lines or [1] * len(commands):
                    groups.append(commands[start:start + size])
                    start += size
                return control.run(groups)
            except ControlError:
                self.close()  # the server restarted, or the session is gone: spawn this time, retry next
        if len(commands) == 1:
            proc = self.cmd(*commands[0])
            return [(proc.returncode == 0, list(proc.stdout) if proc.returncode == 0 else list(proc.stderr))]
        # Chained in one process, each output preceded by a marker line (a failing command ends the chain:
        # the ones after it come back empty-handed and are asked again next time).
        args: list[str] = []
        for index, command in enumerate(commands):
            args += ["display-message", "-p", f"{_SEPARATOR}{index}", ";", *command, ";"]
        proc = self.cmd(*args[:-1])
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

    def queries(self, *commands: list[str]) -> list[tuple[bool, list[str]]]:
        """Several commands in one round trip: each one's success and output lines (its error when it failed).
        Without a control client they run chained in one process, where a failing command also fails the
        ones after it: put the one that must answer first."""
        return self._query(list(commands))

    def run(self, *args: str) -> list[str]:
        """Run one tmux command line (commands may be chained with ';'); its stdout lines."""
        proc = self.cmd(*args)
        if proc.returncode != 0 or proc.stderr:
            detail = " ".join(proc.stderr) or f"exit {proc.returncode}"
            raise TmuxError(f"tmux {args[0]} failed: {detail}")
        return list(proc.stdout)

    def nothing_answers(self) -> bool:
        """No server can answer here: a local one with no socket (a server whose socket was removed is not reached
        either way). Told without a tmux process, as an engine whose agents all run on hosts asks every tick."""
        return self.transport.local and not self.socket.exists()

    def alive(self) -> bool:
        return self.cmd("list-sessions").returncode == 0

    def ensure_server(self) -> None:
        """Start the server with our config and `env` if it is not running (it then stays up even when empty),
        with its `_engine` session. Only a launch calls this: a query never starts a server. A server whose
        socket was removed (a cleaner of /tmp) while it runs is given its socket back, not replaced."""
        if not self.alive() and not self.recreate_socket():
            self.transport.write_file(self.config, _CONFIG)
            start = self._spawn(["-f", str(self.config), "start-server", ";", "new-session", "-d", "-s",
                                 ENGINE_SESSION, "-n", "engine", _PLACEHOLDER])
            if not self.alive():
                detail = " ".join(start.stderr) or f"exit {start.returncode}"
                raise TmuxError(f"could not start the tmux server at {self.socket}: {detail}")
            # else it started, or another launch started it this very moment
        self.keep_engine_session()
        self._scrub()

    def recreate_socket(self, server: str | None = None, *, wait: bool = True) -> bool:
        """Whether the server instance `server` (default: the last one seen) still runs though its socket is
        gone; if so it is told to make its socket again (tmux does on SIGUSR1), and with `wait` this waits,
        briefly, until it answers."""
        server = server or self.known_server
        if server is None or not self.transport.local or not self.transport.still_runs(server, self.socket):
            return False
        self.known_server = server
        if self.socket.exists():  # another server's, perhaps: never taken from it
            return self.alive()
        with contextlib.suppress(OSError):
            self.socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.kill(int(server.split(":")[0]), signal.SIGUSR1)
        for _ in range(50 if wait else 0):
            if self.alive():
                return True
            time.sleep(0.02)
        return not wait or self.alive()

    def keep_engine_session(self, panes: Mapping[str, PaneInfo] | None = None) -> None:
        """Make the `_engine` session again when the running server lacks it (closed by hand; a server left
        with no session at all answers no `list-panes -a`). `panes`: a listing that has just been made."""
        if panes is not None and any(info.session == ENGINE_SESSION for info in panes.values()):
            return
        if not self.has_session(ENGINE_SESSION):
            with contextlib.suppress(TmuxError):  # gone, or another launch made it just now
                self.run("new-session", "-d", "-s", ENGINE_SESSION, "-n", "engine", _PLACEHOLDER)

    def _scrub(self) -> None:
        """Take `withheld` out of the running server's own environment, once per server instance (a server
        started by an earlier engine may hold what no agent may see)."""
        try:
            server = self.server_id()
        except TmuxError:
            return
        if server == self._scrubbed or not self.withheld:
            return
        held = [line.split("=", 1)[0] for line in self.cmd("show-environment", "-g").stdout]
        unset = [arg for name in sorted(self.withheld.intersection(held))
                 for arg in ("set-environment", "-g", "-u", name, ";")]
        if unset:
            self.run(*unset[:-1])
        self._scrubbed = server

    def kill_server(self) -> None:
        if self.alive():
            self.cmd("kill-server")

    def server_id(self) -> str:
        """Which server instance this is: pane ids restart with a new server, so they are only
        meaningful together with this."""
        server = self.run("display-message", "-p", "#{pid}:#{start_time}")[0]
        self.known_server = server
        return server

    def reap(self) -> None:
        """Make the server collect its children's exit statuses.

        tmux 3.3 built with utempter can miss a SIGCHLD, leaving a dead pane without its exit status and
        its process a zombie; another SIGCHLD makes it reap them (tmux/tmux#311)."""
        try:
            pid = int(self.run("display-message", "-p", "#{pid}")[0])
        except (TmuxError, ValueError, IndexError):
            return
        if not self.transport.local:
            return  # a host's server: its pid is not ours to signal from here
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGCHLD)

    def has_session(self, name: str) -> bool:
        return self.cmd("has-session", "-t", f"={name}").returncode == 0

    # panes --------------------------------------------------------------------------------------------

    def new_session(self, name: str, cwd: Path, command: str, env: Mapping[str, str]) -> Created:
        """A detached session running `command` in its only pane. `env` is the pane's alone: tmux keeps what
        `-e` gives in the session's environment, where a window the user opens in the session would inherit it
        (and be taken for the agent), so it is taken out again in the same command line."""
        args = ["new-session", "-d", "-s", name, "-c", str(cwd), "-P", "-F", _CREATED]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        args.append(command)
        for key in env:
            args += [";", "set-environment", "-t", f"={name}", "-u", key]
        return self._created(self.run(*args))

    def split(self, beside: str, cwd: Path, command: str, env: Mapping[str, str]) -> Created | None:
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
        args = ["split-window", direction, "-t", beside, "-c", str(cwd), "-P", "-F", _CREATED]
        return self._create(args, env, command, back=["last-pane", "-t", window])

    def new_window(self, session: str, cwd: Path, command: str, env: Mapping[str, str]) -> Created:
        """A new window of `session` running `command` (the session's current window stays current)."""
        args = ["new-window", "-t", f"={session}:", "-c", str(cwd), "-P", "-F", _CREATED]
        created = self._create(args, env, command, back=["last-window", "-t", f"={session}"])
        assert created is not None
        return created

    def _create(self, args: list[str], env: Mapping[str, str], command: str, *,
                back: list[str]) -> Created | None:
        """Run a pane-creating command, then `back` to return the focus where it was."""
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        args.append(command)
        args += [";", *back]
        proc = self.cmd(*args)
        if proc.returncode != 0 or not proc.stdout:
            detail = " ".join(proc.stderr) or f"exit {proc.returncode}"
            if "no space" in detail or "too small" in detail:
                return None
            raise TmuxError(f"tmux {args[0]} failed: {detail}")
        return self._created(proc.stdout)

    def _created(self, lines: list[str]) -> Created:
        """What a pane-creating command printed (`_CREATED`), the server instance told by the same command."""
        pane, pid, server = lines[0].split("\t")
        self.known_server = server
        return Created(pane, int(pid), server)

    def kill_pane(self, pane: str) -> None:
        with contextlib.suppress(TmuxError):
            self.run("kill-pane", "-t", pane)

    def respawn(self, pane: str, server: str, cwd: Path, command: str, env: Mapping[str, str]) -> int:
        """Run `command` again in `pane` of the server instance `server` (killing what runs there); the pane
        keeps its history. Its new process; TmuxError when the pane is not that server's (it died meanwhile)."""
        before = self.run("display-message", "-p", "-t", pane, "#{pid}:#{start_time}")
        if before[:1] != [server]:
            raise TmuxError(f"tmux respawn-pane failed: {pane} is not on the server it was listed on any more")
        args = ["respawn-pane", "-k", "-t", pane, "-c", str(cwd)]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        args.append(command)
        self.run(*args)
        return self.pane_pid(pane)

    def pane_pid(self, pane: str) -> int:
        return int(self.run("display-message", "-p", "-t", pane, "#{pane_pid}")[0])

    def list_panes(self) -> dict[str, PaneInfo]:
        """Every pane of the server, in one tmux call; none when no server runs, or it runs with no session
        left (tmux then fails `list-panes -a`: "no current target")."""
        if self.nothing_answers():
            self.listed_server = None
            return {}
        (_, said), (ok, lines) = self._query([["display-message", "-p", _SERVER_FORMAT],
                                              ["list-panes", "-a", "-F", _PANE_FORMAT]], [2])
        if not ok:
            sessions = self.cmd("list-sessions", "-F", "#{session_name}")
            if sessions.returncode != 0:  # no server: `listed_server` None tells it
                self.listed_server = None
                return {}
            if sessions.stdout:
                raise TmuxError(f"tmux list-panes failed: {' '.join(lines)}")
            self.listed_server = self.server_id()
            return {}
        server = said[0] if said else ""
        self.listed_server = server or None
        if server:
            self.known_server = server
        panes: dict[str, PaneInfo] = {}
        known, listed = self._listed, {}
        for line in lines:
            info = known.get(line)  # a pane listed the same as last time (by this server): its record as made then
            if info is not None and info.server == server:
                panes[info.pane] = listed[line] = info
                continue
            pane, pid, dead, status, session, window, activity, history, limit, size = line.split("\t")
            panes[pane] = listed[line] = PaneInfo(
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
        self._listed = listed
        return panes

    def keepers(self, panes: Mapping[str, PaneInfo]) -> set[int]:
        """The processes no agent's ending may take, whatever they carry: the server itself and the `_engine`
        session's placeholder (`panes`: a listing just made)."""
        kept = {info.pid for info in panes.values() if info.session == ENGINE_SESSION and info.pid}
        server = next((info.server for info in panes.values()), None) or self.listed_server
        if server and server.split(":")[0].isdigit():
            kept.add(int(server.split(":")[0]))
        return kept

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
        lines of history (at least the count asked, with as many to spare for lines that scrolled off since the
        count was taken: `spare_rows`), with their colours, one per screen row, and its history's size as they
        were taken. Panes that vanished are left out."""
        # Per pane, on a command line of its own: its history's size and newest history rows when asked for,
        # read together with its screen.
        commands: list[list[str]] = []
        lines: list[int] = []
        for pane in screens:
            count = history.get(pane, 0)
            if count > 0:
                start = str(-(count + spare_rows(count)))
                commands += [["display-message", "-p", "-t", pane, "#{history_size}"],
                             ["capture-pane", "-p", "-e", "-S", start, "-E", "-1", "-t", pane]]
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
            with self.transport.staged(data, self.socket.parent) as name:
                self.run("load-buffer", "-b", buffer, name, *then)
        except OSError as exc:
            raise TmuxError(f"the text ({len(data)} bytes) could not be written for tmux to read: "
                            f"{exc.strerror or exc}") from None

    def send_keys(self, pane: str, *keys: str) -> None:
        """Send key names (`Enter`, `C-c`, `Escape`), not text."""
        self.run("send-keys", "-t", pane, *keys)

    def kill_session(self, name: str) -> None:
        if self.has_session(name):
            self.run("kill-session", "-t", f"={name}")

