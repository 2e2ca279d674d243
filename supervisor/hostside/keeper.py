"""`host.pyz keep ROOT SOCKET`: the host keeps its panes' transcripts on its own disk while the engine is away, so
a tmux server that dies, or a host that reboots, before the engine is back loses nothing that was shown (SPEC §12,
§13).

While the engine is here it watches the panes itself (their screens and the rows that scroll off them come home
within a tick), and the keeper only notes, every LOOK_EVERY seconds, how long each pane's history is (one
`list-panes` through a control-mode client of its own: no process per look). Whether the engine is here is told
by a lock: each host program it talks through holds `.home` shared (supervisor/hostside/presence.py), and lets go
when its connection ends or stays silent; the keeper takes it exclusively for each of its looks while no one
holds it.

While the engine is away, each TICK the keeper writes each pane's new history rows (with their colours, as the
engine's transcripts keep them) and its screen when it changed (spoolfiles.py), holding `.home`: a host program
the engine connects through meanwhile waits for the look to end before it reads a spool. Each pane's spool starts
at the history row the pane had LOOKBACK seconds before (the engine's own transcript is at or past it: it looked
within a tick of going away, or within the silence a host program waits before it lets go), so the engine, which
knows which row its transcript holds, takes exactly the rows it lacks (supervisor/engine/host_transcripts.py).

The engine back: the keeper deletes nothing. A full history (its limit reached) drops its oldest tenth each time it
refills, so its size after an absence says little of how much was printed meanwhile: the engine takes each pane's
copy before it reads that pane's history again (the rows its transcript lacks, up to the copy's end, then the
history from there), and only then tells the host program to drop it; a pane gone is closed from its copy. A copy
the engine has not taken yet when it goes away again is continued, never begun anew. Copies no transcript of the
engine follows any more are swept by the engine when it comes back (spoolfiles.sweep).

The keeper ends when no tmux server answers (nothing left to keep), when ROOT is removed,
or when another host program is the one wanted (`.keeper.want`: an upgraded engine's; the host program then starts
its own keeper). A fault (a full disk, a damaged file) is written to `.keeper.log`, and the keeper goes on: the
host program reports new lines there to the engine.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field

from . import spoolfiles
from .history import new_lines
from .presence import SILENT
from .presence import answers as server_answers

TICK = 1.0  # seconds between looks while the engine is away (the engine's own tick)
LOOK_EVERY = 2.0  # seconds between looks at the histories' sizes while it is here
LOOKBACK = SILENT + 3 * LOOK_EVERY + 5.0  # seconds: how far back a pane's spool starts
ANSWER_TIMEOUT = 5.0  # seconds tmux has to answer a command
SESSION = "_engine"  # the session the engine keeps on every server for its control client
_PANES = "#{pane_id}\t#{history_size}\t#{history_limit}\t#{window_activity}\t#{session_name}"


class NoServer(Exception):
    """No tmux server answers (or its control client ended)."""


class Control:
    """A tmux control-mode client: commands written one a line, each answered in a %begin/%end block."""

    def __init__(self, socket: str) -> None:
        self.process = subprocess.Popen(
            ["tmux", "-N", "-C", "-S", socket, "attach-session", "-t", f"={SESSION}", "-f",
             "no-output,ignore-size,read-only"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
        self._buffer = b""

    def run(self, commands: list[str]) -> list[tuple[bool, list[str]]]:
        """Each command's success and output lines (the commands run together, on one line)."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write((" ; ".join(commands) + "\n").encode("utf-8", "surrogateescape"))
            self.process.stdin.flush()
        except OSError as exc:
            raise NoServer(str(exc)) from None
        answers: list[tuple[bool, list[str]]] = []
        block: list[str] | None = None
        guard = ""
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while len(answers) < len(commands):
            line = self._line(deadline)
            if block is None:
                # A reply to this client's commands says so (flags 1); the attach's own, and notifications, not.
                if line.startswith("%begin ") and line.endswith(" 1"):
                    block, guard = [], line[len("%begin "):]
                continue
            if line in (f"%end {guard}", f"%error {guard}"):
                answers.append((line.startswith("%end"), block))
                block = None
                if not answers[-1][0]:  # tmux skips the rest of the line
                    answers += [(False, [])] * (len(commands) - len(answers))
            else:
                block.append(line)
        return answers

    def _line(self, deadline: float) -> str:
        assert self.process.stdout is not None
        descriptor = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([descriptor], [], [], left)[0]:
                raise NoServer("tmux did not answer")
            data = os.read(descriptor, 65536)
            if not data:
                raise NoServer("the control client ended")
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", "surrogateescape")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Kept:
    """A pane's spool as this absence writes it."""

    start: int  # the history row its copy starts at
    taken: int  # rows of its history in the copy (counted as tmux counts them)
    activity: int = -1  # the window's last output (whole seconds) at the last look
    looked: int = -1  # the second of the last look
    screen: str | None = None


@dataclass
class Pane:
    pane: str
    history: int
    limit: int
    activity: int


@dataclass
class Keeper:
    root: str
    socket: str
    control: Control | None = None
    server: str = ""  # `#{pid}:#{start_time}` of the server the control client is attached to
    sizes: collections.deque[tuple[float, str, dict[str, int]]] = field(
        default_factory=lambda: collections.deque(maxlen=int(LOOKBACK / LOOK_EVERY) + 4))
    kept: dict[str, Kept] | None = None  # by pane, while the engine is away

    def panes(self) -> dict[str, Pane]:
        if self.control is None:
            if not server_answers(self.socket):
                raise NoServer("no tmux server")
            self.control = Control(self.socket)
            (ok, said), = self.control.run(["display-message -p '#{pid}:#{start_time}'"])
            if not ok or not said:
                self.close()
                raise NoServer("no session to attach to")
            if said[0] != self.server and self.kept:
                self.kept = {}  # another server: its panes' ids are not the ones kept so far
            self.server = said[0]
        try:
            (ok, lines), = self.control.run([f"list-panes -a -F '{_PANES}'"])
        except NoServer:
            self.close()
            raise
        found = {}
        for line in lines if ok else []:
            pane, history, limit, activity, session = (line.split("\t") + ["0"] * 5)[:5]
            if session != SESSION:  # the engine's own control client's: nothing of an agent's
                found[pane] = Pane(pane, _number(history), _number(limit), _number(activity))
        return found

    def close(self) -> None:
        if self.control is not None:
            self.control.close()
            self.control = None

    def here(self, panes: dict[str, Pane]) -> None:
        """The engine is here: note the histories' sizes (what an absence kept waits for the engine to take it)."""
        self.kept = None
        self.sizes.append((time.monotonic(), self.server, {pane: info.history for pane, info in panes.items()}))

    def away(self, panes: dict[str, Pane]) -> None:
        """The engine is away: each pane's new rows and changed screen written down."""
        assert self.control is not None
        if self.kept is None:
            self.kept = {}
        now = int(time.time())
        faults: list[OSError] = []
        for info in panes.values():
            kept = self.kept.get(info.pane)
            if kept is None:
                where = spoolfiles.head(self.root, self.server, info.pane)
                if where is not None:  # a copy the engine has not taken yet: it goes on from its end
                    kept = self.kept[info.pane] = Kept(*where)
                else:
                    start = self._start(info)
                    kept = self.kept[info.pane] = Kept(start, start)
                    spoolfiles.begin(self.root, self.server, info.pane, start)
            due = new_lines(kept.taken, info.history, info.limit)
            if not due and info.activity == kept.activity and kept.looked > info.activity:
                continue  # nothing printed since the last look
            try:
                self._look(info, kept, due)
            except OSError as exc:  # this pane's files: the others are kept all the same
                faults.append(exc)
                continue
            kept.activity, kept.looked = info.activity, now
        if faults:
            raise faults[0]

    def _start(self, info: Pane) -> int:
        """The history row a pane's spool starts at: its history's size LOOKBACK seconds ago (or as long ago as
        known; from its first row for a pane that came since)."""
        known = [(at, sizes) for at, server, sizes in self.sizes if server == self.server]
        if not known:
            return 0
        then = time.monotonic() - LOOKBACK
        older = [sizes for at, sizes in known if at <= then]
        sizes = older[-1] if older else known[0][1]
        return min(sizes.get(info.pane, 0), info.history)

    def _look(self, info: Pane, kept: Kept, due: int) -> None:
        assert self.control is not None
        target = f"-t '{info.pane}'"
        commands = [f"display-message -p {target} '#{{history_size}}'"]
        if due:
            commands.append(f"capture-pane -p -e -S -{due + max(10, due)} -E -1 {target}")
        commands.append(f"capture-pane -p -J {target}")
        try:
            answers = self.control.run(commands)
        except NoServer:
            self.close()
            raise
        (sized, held), screen = answers[0], answers[-1]
        if not sized or not held or not screen[0]:
            return  # gone since the listing
        size = _number(held[0])
        if due:
            ok, rows = answers[1]
            count = new_lines(kept.taken, size, info.limit)
            if ok and count <= len(rows):
                kept.start = spoolfiles.add_rows(self.root, self.server, info.pane,
                                                 rows[len(rows) - count:] if count else [], kept.start, size)
                kept.taken = size
        text = "\n".join(screen[1])
        if text != kept.screen:
            spoolfiles.show(self.root, self.server, info.pane, text)
            kept.screen = text


def _number(text: str) -> int:
    return int(text) if text.isdigit() else 0


def say(text: str, said: set[str]) -> None:
    """A fault written to the keeper's log (its stderr), once for each kind; never raises (a full disk refuses
    the log too: the fault then waits until it can be said)."""
    if text in said:
        return
    with contextlib.suppress(OSError, ValueError):
        os.write(2, f"{time.strftime('%Y-%m-%d %H:%M:%S')} supervisor keeper: {text}\n".encode(errors="replace"))
        said.add(text)


def run(root: str, socket: str) -> int:
    try:
        mine = spoolfiles.lock_file(root, ".keeper")
    except OSError:
        return 1
    if not spoolfiles.try_lock(mine, fcntl.LOCK_EX):
        return 0  # another keeper keeps this folder
    home = spoolfiles.lock_file(root, ".home")
    keeper = Keeper(root, socket)
    said: set[str] = set()
    me = os.path.realpath(sys.argv[0])
    while os.path.isdir(root):
        want = spoolfiles.wanted(root)
        if want is not None and os.path.realpath(want) != me:
            break  # another host program's keeper is wanted (an upgrade): it takes over once this one is gone
        started = time.monotonic()
        away = spoolfiles.try_lock(home, fcntl.LOCK_EX)
        try:
            panes = keeper.panes()
            if away:
                keeper.away(panes)
            else:
                keeper.here(panes)
            said.clear()  # a look done whole: a fault said before is said again when it comes back
        except NoServer:
            keeper.close()
            if not server_answers(socket):
                return 0  # nothing left to keep (what is kept waits for the engine); one is started again by the
                # host program the engine talks through once a tmux server answers there
        except OSError as exc:  # a full disk: tried again next time
            say(f"{'the disk is full' if exc.errno == errno.ENOSPC else 'cannot write'}: {exc}", said)
        except Exception as exc:  # anything else: the keeper goes on, and says it
            keeper.close()
            keeper.kept = None  # each pane's copy read again from its files
            say(f"{type(exc).__name__}: {exc}", said)
        finally:
            if away:
                fcntl.flock(home, fcntl.LOCK_UN)
        time.sleep(max(0.0, (TICK if away else LOOK_EVERY) - (time.monotonic() - started)))
    keeper.close()
    return 0


def main(args: list[str]) -> int:
    if len(args) != 2:
        print("usage: host.pyz keep ROOT SOCKET", file=sys.stderr)
        return 2
    return run(args[0], args[1])
