"""Processes on the host: run a command (`run`), cancel one (`cancel`), look at process trees (`ps`, read from
/proc), signal them."""

from __future__ import annotations

import collections
import contextlib
import os
import signal as signals
import subprocess
import threading
import time
from typing import Any

from .calls import Call, OpError

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_running: set[subprocess.Popen[bytes]] = set()  # commands of calls not answered yet
_running_lock = threading.Lock()
_keyed: dict[str, subprocess.Popen[bytes]] = {}  # commands of calls given a `key`, which `cancel` ends


def _text(data: bytes) -> str:
    """Bytes as text that JSON carries and the home side turns back into the same bytes (surrogateescape)."""
    return data.decode("utf-8", "surrogateescape")


def run(call: Call) -> dict[str, Any]:
    """`argv` in `cwd` (`~` is the host user's home) with `env` added and `stdin` given; `time_limit` seconds,
    after which its whole process group is killed (`timed_out`); `key`: a name `cancel` ends it by (the group
    this program started, never a process named by a file an agent could write). → rc, stdout, stderr."""
    argv = call.strings("argv")
    if not argv:
        raise OpError("argument 'argv' is empty")
    cwd = call.arg("cwd", str, None)
    added = call.arg("env", dict, {})
    stdin = call.arg("stdin", str, None)
    time_limit = call.arg("time_limit", (int, float), None)
    key = call.arg("key", str, None)
    with _running_lock:
        if key is not None and key in _keyed:
            raise OpError(f"a command with key {key!r} is running already")
    env = dict(os.environ)
    env.update({str(name): str(value) for name, value in added.items()})
    try:
        process = subprocess.Popen(argv, cwd=os.path.expanduser(cwd) if cwd else None, env=env,
                                   stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        raise OpError(f"cannot run {argv[0]}: {exc.strerror or exc}: {exc.filename or argv[0]}") from None
    data = stdin.encode("utf-8", "surrogateescape") if stdin is not None else None
    timed_out = False
    with _running_lock:
        _running.add(process)
        if key is not None:
            _keyed[key] = process
    try:
        out, err = process.communicate(data, timeout=time_limit)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signals.SIGKILL)
        out, err = process.communicate()
    finally:
        with _running_lock:
            _running.discard(process)
            if key is not None:
                _keyed.pop(key, None)
    return {"rc": process.returncode, "stdout": _text(out), "stderr": _text(err), "timed_out": timed_out}


def cancel(call: Call) -> dict[str, Any]:
    """End the whole process group of the running command of the `run` call given `key` (KILL). → cancelled:
    whether such a command was running (it may not have started yet, or be done)."""
    key = call.arg("key", str)
    with _running_lock:
        process = _keyed.get(key)
        if process is not None and process.returncode is None:  # not reaped: its pid is still its own
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signals.SIGKILL)
    return {"cancelled": process is not None}


def keyed_pids(prefix: str) -> list[int]:
    """The pids of the running commands of `run` calls whose key starts with `prefix` (the engine names them)."""
    with _running_lock:
        return [process.pid for key, process in _keyed.items() if key.startswith(prefix)
                and process.returncode is None]


def end_running() -> None:
    """The link is gone, so no answer can be given: the commands of calls still running are ended (TERM to
    their process groups). What runs in tmux on the host was never one of them."""
    with _running_lock:
        running = list(_running)
    for process in running:
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signals.SIGTERM)


def _boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("btime "):
                return float(line.split()[1])
    raise OpError("/proc/stat has no boot time")


_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_CLOEXEC
_STAT_BYTES = 4096  # a stat line is a few hundred bytes: one read takes it whole


def _read_at(folder: int, name: str, limit: int | None = None) -> bytes:
    """File `name` under the open folder `folder`, whole (its first `limit` bytes: one read); OSError when it cannot
    be read. Raw reads: a process tree costs a few files per process, read every few seconds."""
    fd = os.open(name, _FILE, dir_fd=folder)
    try:
        if limit is not None:
            return os.read(fd, limit)
        chunks = []
        while data := os.read(fd, 65536):
            chunks.append(data)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _parsed(pid: int, raw: bytes, cmdline: bytes, boot: float) -> dict[str, Any]:
    name = raw[raw.index(b"(") + 1:raw.rindex(b")")]
    fields = raw[raw.rindex(b")") + 2:].split()  # fields[0] is the state (the third field of stat)
    return {
        "pid": pid,
        "ppid": int(fields[1]),
        "pgid": int(fields[2]),
        "sid": int(fields[3]),
        "state": fields[0].decode(),
        "name": _text(name),
        "argv": [_text(part) for part in cmdline.split(b"\0")[:-1]],
        "cpu": (int(fields[11]) + int(fields[12])) / _TICKS,  # user + system seconds
        "start": round(boot + int(fields[19]) / _TICKS, 2),  # seconds since the epoch
        "rss": int(fields[21]) * _PAGE,  # bytes
    }


def _threads(raw: bytes) -> int:
    """How many threads the process of stat line `raw` has."""
    return int(raw[raw.rindex(b")") + 2:].split()[17])


def _read(pid: int, boot: float, argv: bool = True, cwd: bool = False,
          children: bool = False) -> tuple[dict[str, Any], list[int]] | None:
    """What `ps` tells of `pid` (`argv` an empty list unless asked: one more file to read; with `cwd`, its working
    directory, None when it cannot be read) and, with `children`, its children; None when it is gone (or not ours
    to read). Everything is read through one open `/proc/PID` folder, which stays the process's own: once it ends,
    nothing more can be read through it, even when its pid is another process's by then (its working directory is
    never a later process's). Without `argv`, the files of the process are kept open for the next read (`_KEPT`)."""
    if not argv:
        kept = _KEPT.read(pid, boot, cwd, children)
        if kept is not _UNKEPT:
            return kept  # type: ignore[return-value]  # not _UNKEPT: what it read
    try:
        folder = os.open(f"/proc/{pid}", _FOLDER)
    except OSError:
        return None
    try:
        try:
            raw = _read_at(folder, "stat", _STAT_BYTES)
            info = _parsed(pid, raw, _read_at(folder, "cmdline") if argv else b"", boot)
        except (OSError, ValueError, IndexError):
            return None  # gone meanwhile, or not ours to read
        if cwd:
            info["cwd"] = _cwd_at(folder)
        return info, (_children_at(folder, pid, _threads(raw)) if children else [])
    finally:
        os.close(folder)


def _cwd_at(folder: int) -> str | None:
    try:
        return os.readlink("cwd", dir_fd=folder)
    except OSError:
        return None


FORGET_SECONDS = 15.0  # the engine reads every tree every 5 s: files of processes not read for this long are closed
_SPARE_FILES = 256  # descriptors left for everything else the program opens (its connections, relays, commands)
_UNKEPT = object()


class _Held:
    """One process's files, kept open: its stat and its threads' children files by thread id; its stat text as last
    read, and what it was parsed into."""

    __slots__ = ("children", "parsed", "stat", "text", "used")

    def __init__(self, stat: int, used: float) -> None:
        self.stat = stat
        self.children: dict[str, int] = {}
        self.used = used
        self.text = b""
        self.parsed: tuple[float, dict[str, Any]] | None = None  # (boot, info) that `text` was parsed into

    def close(self) -> None:
        for fd in (self.stat, *self.children.values()):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.children.clear()


class _Kept:
    """The /proc files of the processes the engine's watch reads, kept open between its reads, as the engine keeps
    its own (supervisor/engine/procfiles.py): a file kept open is read again with one `pread` (the kernel makes its
    text anew), where opening it costs an open, a path walk and a close; a stat text the same as last time (a
    process that did not run) is not parsed again. An open /proc file is its process's own, not its pid's: once
    the process ended, its stat reads nothing, and every file of that pid is closed and opened anew (the pid may be
    another process's by then). A working directory is read by its path before the stat: a stat read through the
    process's own file after it says the pid was still that process's. At most `limit()` processes are kept (the
    descriptors the program may open, each kept file counted: a process with many threads keeps a children file for
each); the others are read once, as `_read` reads them, and so is a thread's children file past the limit."""

    def __init__(self) -> None:
        self._open: dict[int, _Held] = {}
        self._lock = threading.Lock()
        self._pruned = time.monotonic()
        self._limit: int | None = None
        self._files = 0  # descriptors kept open now: each kept process's stat and its threads' children files

    def read(self, pid: int, boot: float, cwd: bool, children: bool) -> object:
        with self._lock:
            now = time.monotonic()
            if now - self._pruned > FORGET_SECONDS / 3:
                self._prune(now)
            held = self._open.get(pid)
            if held is None:
                if self._files >= self.limit():
                    return _UNKEPT
                try:
                    held = _Held(os.open(f"/proc/{pid}/stat", _FILE), now)
                except OSError:
                    return None
                self._open[pid] = held
                self._files += 1
            where = _cwd_of(pid) if cwd else None  # before the stat that says it was this process's
            try:
                raw = os.pread(held.stat, _STAT_BYTES, 0)
            except OSError:
                raw = b""
            if not raw:  # ended: its pid may be another process's now (read anew next time)
                self._drop(pid)
                return None
            held.used = now
            if raw != held.text or held.parsed is None or held.parsed[0] != boot:
                try:
                    held.parsed = (boot, _parsed(pid, raw, b"", boot))
                except (ValueError, IndexError):
                    return None
                held.text = raw
            info = dict(held.parsed[1])
            if cwd:
                info["cwd"] = where
            return info, (self._children(held, pid, _threads(raw)) if children else [])

    def limit(self) -> int:
        """How many descriptors may be kept open: by the program's limit on open descriptors (not raised: what it
        starts, tmux and the agents' panes, would have it too), keeping _SPARE_FILES for the rest."""
        if self._limit is None:
            try:
                import resource

                soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
                self._limit = 1 << 16 if soft == resource.RLIM_INFINITY else \
                    max(0, soft - _SPARE_FILES)
            except (ImportError, ValueError, OSError):
                self._limit = 0
        return self._limit

    def _children(self, held: _Held, pid: int, threads: int) -> list[int]:
        """The children of every thread of the process (one thread: its own only); files of threads that ended are
        closed."""
        if threads == 1:
            tasks = [str(pid)]
        else:
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                return []
        found: list[int] = []
        for task in tasks:
            fd = held.children.get(task)
            kept = fd is not None
            if fd is None:
                try:
                    fd = os.open(f"/proc/{pid}/task/{task}/children", _FILE)
                except OSError:
                    continue  # that thread ended meanwhile
                if self._files < self.limit():
                    held.children[task], kept = fd, True
                    self._files += 1
            with contextlib.suppress(OSError):
                found += [int(child) for child in os.pread(fd, 65536, 0).split()]
            if not kept:  # past the limit: read once
                os.close(fd)
        if len(held.children) > len(tasks):
            for task in [task for task in held.children if task not in tasks]:
                with contextlib.suppress(OSError):
                    os.close(held.children.pop(task))
                self._files -= 1
        return found

    def _drop(self, pid: int) -> None:
        held = self._open.pop(pid)
        self._files -= 1 + len(held.children)
        held.close()

    def _prune(self, now: float) -> None:
        self._pruned = now
        for pid in [pid for pid, held in self._open.items() if now - held.used > FORGET_SECONDS]:
            self._drop(pid)


def _cwd_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


_KEPT = _Kept()


def _stat(pid: int, boot: float, argv: bool = True) -> dict[str, Any] | None:
    """What `ps` tells of `pid` (`argv` an empty list unless asked: one more file to read)."""
    read = _read(pid, boot, argv)
    return None if read is None else read[0]


def table() -> list[dict[str, Any]]:
    """Every process this user can see, from /proc."""
    boot = _boot_time()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _stat(int(entry), boot)
            if info is not None:
                found.append(info)
    return found


def _children_at(folder: int, pid: int, threads: int) -> list[int]:
    """The children of `pid` (its `/proc` folder open as `folder`), as its threads' `children` files tell: a process
    of one thread has only its own (no listing of its threads)."""
    if threads == 1:
        tasks = [str(pid)]
    else:
        try:
            listed = os.open("task", _FOLDER, dir_fd=folder)
        except OSError:
            return []
        try:
            tasks = os.listdir(listed)
        finally:
            os.close(listed)
    found: list[int] = []
    for task in tasks:
        try:
            found += [int(child) for child in _read_at(folder, f"task/{task}/children").split()]
        except OSError:
            continue  # that thread ended meanwhile
    return found


def _has_children_files() -> bool:
    """Whether this kernel tells a process's children (CONFIG_PROC_CHILDREN): then a tree is read from its root
    down, not from every process's stat (thousands on a busy host, every second)."""
    return os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


_CHILDREN_FILES = _has_children_files()


def trees(roots: list[int], argv: bool = True, cwd: bool = False) -> list[dict[str, Any]]:
    """The processes under `roots`, each root first and then its descendants, level by level, read from the
    roots down (with `cwd`, each one's working directory, read with the rest of it)."""
    boot = _boot_time()
    result: list[dict[str, Any]] = []
    seen: set[int] = set()
    queue = collections.deque(roots)
    while queue:
        pid = queue.popleft()
        if pid in seen:
            continue
        seen.add(pid)
        read = _read(pid, boot, argv, cwd, children=True)
        if read is None:
            continue
        result.append(read[0])
        queue.extend(read[1])
    return result


BRIEF = ("pid", "ppid", "state", "name", "cpu", "start", "rss")  # a `brief` row's columns


def ps(call: Call) -> list[Any]:
    """The processes under `pids` (themselves and every descendant): pid, ppid, pgid, sid, state, name, argv,
    cpu (user + system seconds), start (epoch seconds), rss (bytes), and with `cwd` each one's working directory
    (`cwd`: None when it cannot be read). A pid that is gone is left out. `brief`: each process as a row of
    BRIEF's columns instead (then `cwd` last when asked for: the engine's watch, every second: a tenth of the
    bytes)."""
    roots = call.arg("pids", list)
    if not all(isinstance(pid, int) for pid in roots):
        raise OpError("argument 'pids' must be a list of process ids")
    brief = call.arg("brief", bool, False)
    with_cwd = call.arg("cwd", bool, False)
    found = _under(roots, argv=not brief, cwd=with_cwd)
    if not brief:
        return found
    columns = (*BRIEF, "cwd") if with_cwd else BRIEF
    return [[info[column] for column in columns] for info in found]


def _cwd(info: dict[str, Any], boot: float) -> str | None:
    """The working directory of the process `info` describes, read now: None when it is gone or not readable, or
    its pid is another process's since (its start time read again)."""
    try:
        where = os.readlink(f"/proc/{info['pid']}/cwd")
    except OSError:
        return None
    again = _stat(int(info["pid"]), boot, False)
    return where if again is not None and again["start"] == info["start"] else None


def _under(roots: list[int], argv: bool, cwd: bool = False) -> list[dict[str, Any]]:
    """The processes under `roots`: read down from them, or (a kernel that does not tell children) from all."""
    if _CHILDREN_FILES:
        return trees(roots, argv, cwd)
    every = table()
    children: dict[int, list[dict[str, Any]]] = {}
    by_pid = {}
    for info in every:
        children.setdefault(info["ppid"], []).append(info)
        by_pid[info["pid"]] = info
    result: list[dict[str, Any]] = []
    seen: set[int] = set()
    queue = collections.deque(by_pid[pid] for pid in roots if pid in by_pid)
    while queue:
        info = queue.popleft()
        if info["pid"] in seen:
            continue
        seen.add(info["pid"])
        result.append(info)
        queue.extend(children.get(info["pid"], []))
    if cwd:
        boot = _boot_time()
        for info in result:
            info["cwd"] = _cwd(info, boot)
    return result


def send_signal(call: Call) -> dict[str, Any]:
    """`signal` (a name such as TERM, or a number) to each of `pids` (to its process group with `group`).
    → which were signalled, which were gone, and which refused (with why)."""
    pids = call.arg("pids", list)
    which = call.arg("signal", (str, int))
    group = call.arg("group", bool, False)
    try:
        number = which if isinstance(which, int) else signals.Signals["SIG" + which.upper().removeprefix("SIG")]
    except KeyError:
        raise OpError(f"unknown signal {which!r}") from None
    sent: list[int] = []
    gone: list[int] = []
    refused: dict[str, str] = {}
    for pid in pids:
        if not isinstance(pid, int) or pid <= 0:
            refused[str(pid)] = "not a process id"
            continue
        try:
            (os.killpg if group else os.kill)(pid, number)
        except ProcessLookupError:
            gone.append(pid)
        except OSError as exc:
            refused[str(pid)] = exc.strerror or str(exc)
        else:
            sent.append(pid)
    return {"sent": sent, "gone": gone, "refused": refused}
