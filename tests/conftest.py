"""Shared fixtures: every test gets its own HOME, git repository, runtime dir and so its own tmux server
and engine, all torn down afterwards. Nothing waits a fixed time: `wait_until` polls a condition."""

from __future__ import annotations

import compileall
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

import supervisor
from supervisor.git import object_folders
from supervisor.tmux.server import Tmux
from tests import sandboxed
from tests.sshd import ssh_hosts  # noqa: F401  (real sshd hosts for the hosts tests)

PYTHON = sys.executable
DEMO_AGENT = f"{shlex.quote(PYTHON)} -m supervisor.demo.agent"


def pytest_configure(config: pytest.Config) -> None:
    """Compile supervisor's modules once, before any test (the xdist workers start after this, in the
    controller). Every test's programs run with PYTHONDONTWRITEBYTECODE (no `__pycache__` in the test's
    repositories), and so, with no bytecode on disk, each CLI command, engine, hook and demo agent compiled
    the ~200 modules it imports anew (an engine start took 0.8 s of CPU instead of 0.45 s, on two shared
    cores)."""
    config.addinivalue_line("markers", f"{BOTH_ISOLATIONS}: run the test twice, its agents sandboxed and with "
                            "`isolation: none` (the `sandbox` fixture's `isolation`, which `write_config` applies)")
    if not hasattr(config, "workerinput"):
        compileall.compile_dir(Path(supervisor.__file__).parent, quiet=1)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI, no sandbox here fails the run at once, before any test runs (tests/sandboxed.py)."""
    if not hasattr(session.config, "workerinput") and (why := sandboxed.missing_in_ci()) is not None:
        pytest.exit(why, returncode=1)


# The focused subset that runs both ways (states, the commit guard, the audit, stop): a test marked so runs with
# its agents sandboxed (the suite's default) and again with `isolation: none`, which must keep working too.
BOTH_ISOLATIONS = "both_isolations"
ISOLATIONS = ("sandbox", "none")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker(BOTH_ISOLATIONS) is not None:
        metafunc.parametrize("sandbox", ISOLATIONS, indirect=True, ids=ISOLATIONS)


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05,
               message: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


# The test's folder (tmp_path: scripts, prompt records, stand-in programs) is outside what a sandboxed agent
# sees by default; its repository, worktrees and store in it stay hidden all the same.
TEST_FOLDER_WRITABLE = "sandbox:\n  write: [{folder}]\n"


@dataclass
class Sandbox:
    root: Path  # the repository
    home: Path
    runtime: Path
    env: dict[str, str]
    isolation: str = "sandbox"  # "none": write_config adds `isolation: none` where the text does not choose

    def sv(self, *args: str, check: bool = True, cwd: Path | None = None, input: str | None = None,
           timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """Run the real `supervisor` CLI in a subprocess."""
        done = subprocess.run([PYTHON, "-m", "supervisor", *args], cwd=cwd or self.root, env=self.env,
                              capture_output=True, text=True, input=input, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"supervisor {' '.join(args)} exited {done.returncode}:\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def ls(self) -> dict[str, dict[str, Any]]:
        """The agents, as `ls --json` gives them."""
        return {a["name"]: a for a in self.read("ls", {}, "ls", "--json")}

    def agent(self, name: str) -> dict[str, Any]:
        """The agent, as `show NAME --json` gives it."""
        return dict(self.read("show", {"name": name}, "show", name, "--json"))

    def read(self, method: str, params: dict[str, Any], *command: str) -> Any:
        """What the CLI's `command` (one with `--json`) prints, the result of the engine's `method`: asked of the
        engine's socket as the CLI asks it, without a Python start-up per look (the waiting helpers look many
        times a second, and on two cores those start-ups took the CPU the engine and the agents needed). When
        the engine does not answer it there (not running: the CLI starts it, as any command does), or answers
        with an error, the CLI itself runs, and says what it says."""
        from supervisor import client
        from supervisor.errors import SupervisorError

        try:
            return client.request_at(self.engine_socket, method, params, 600)
        except SupervisorError:
            return json.loads(self.sv(*command).stdout)
        finally:
            client.notes.clear()  # what the CLI would print on stderr beside the answer

    def state(self, name: str) -> str:
        return str(self.ls()[name]["state"])

    def wait_state(self, name: str, *states: str, timeout: float = 20.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            agent = self.ls().get(name)
            return agent if agent is not None and agent["state"] in states else None

        return dict(wait_until(reached, timeout, interval=0.1, message=f"{name} in {states}"))

    def screen(self, name: str) -> str:
        pane = self.ls()[name]["pane"]
        return self.tmux("capture-pane", "-p", "-t", pane).stdout

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-S", str(self.tmux_socket), *args], capture_output=True, text=True,
                              env=self.env, check=False)

    @property
    def paths(self) -> Any:
        from supervisor.paths import RepoPaths

        return RepoPaths(root=self.root, common_dir=self.root / ".git")

    @property
    def tmux_socket(self) -> Path:
        return self.runtime / self.paths.runtime_dir.name / "tmux.sock"

    @property
    def engine_socket(self) -> Path:
        return self.runtime / self.paths.runtime_dir.name / "engine.sock"

    def agent_runtime(self, name: str) -> Path:
        """The agent's own runtime folder (its socket, its spool), under this test's runtime directory."""
        return self.runtime / self.paths.runtime_dir.name / "agents" / name

    def write_config(self, text: str) -> None:
        """Write supervisor.yaml; agents' sandboxes may then also write the test's own folder (its scripts and
        prompt records are there), unless `text` says how to sandbox them. With the box's `isolation` none, the
        text gets `isolation: none` unless it chooses."""
        if self.isolation != "sandbox" and not re.search(r"^isolation:", text, re.MULTILINE):
            text = f"{text.rstrip()}\nisolation: {self.isolation}\n"
        if not re.search(r"^(sandbox|isolation):", text, re.MULTILINE):
            text = f"{text.rstrip()}\n{TEST_FOLDER_WRITABLE.format(folder=self.root.parent)}"
        (self.root / "supervisor.yaml").write_text(text)

    def git(self, *args: str, cwd: Path | None = None, plain: bool = False) -> str:
        """git's output, reading the sandboxed agents' own object folders as supervisor's commands do (an agent's
        newest commits reach the shared store a moment later); `plain`: the shared store alone, as the user's git."""
        env = dict(self.env)
        if not plain and (found := object_folders.alternates(self.paths.common_dir)):
            env[object_folders.VARIABLE] = found
        return subprocess.run(["git", *args], cwd=cwd or self.root, env=env, check=True,
                              capture_output=True, text=True).stdout.strip()

    def engine_pid(self) -> int:
        return int(json.loads(self.sv("engine", "status", "--json").stdout)["pid"])


def _make_repo(root: Path, env: dict[str, str]) -> None:
    root.mkdir()
    setup = (["init", "-q", "-b", "main"], ["config", "user.name", "Test"], ["config", "user.email", "t@example.com"])
    for args in setup:
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    (root / "README.md").write_text("# test repo\n")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("print('hello')\n")
    subprocess.run(["git", "add", "-A"], cwd=root, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "initial"], cwd=root, env=env, check=True)


@contextlib.contextmanager
def own_tmux(config_dir: Path, **options: str) -> Iterator[Tmux]:
    """The engine's own kind of tmux server (its config, global `options`, its `_engine` session) on a short
    socket path, killed afterwards."""
    runtime = Path(tempfile.mkdtemp(prefix="svt-", dir="/tmp"))  # socket paths are limited to ~100 bytes
    server = Tmux(runtime / "tmux.sock", config_dir / "tmux.conf")
    server.ensure_server()
    for name, value in options.items():
        server.run("set-option", "-g", name.replace("_", "-"), value)
    try:
        yield server
    finally:
        server.close()
        server.kill_server()
        shutil.rmtree(runtime, ignore_errors=True)


@contextlib.contextmanager
def made_sandbox(folder: Path, isolation: str = "sandbox") -> Iterator[Sandbox]:
    """A Sandbox in `folder` (its HOME, repository and runtime dir), torn down on leaving: for a fixture of any
    scope (a module's tests can share one engine and repository where they do not disturb one another)."""
    home = folder / "home"
    home.mkdir()
    # Socket paths are limited to ~100 bytes, so the runtime dir is short and outside the folder.
    runtime = Path(tempfile.mkdtemp(prefix="sv-", dir="/tmp"))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "SHELL": "/bin/sh",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "xterm-256color",
        "SUPERVISOR_RUNTIME_DIR": str(runtime),
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if "VIRTUAL_ENV" in os.environ:
        env["VIRTUAL_ENV"] = os.environ["VIRTUAL_ENV"]
    root = folder / "repo"
    _make_repo(root, env)
    box = Sandbox(root=root, home=home, runtime=runtime, env=env, isolation=isolation)
    box.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\nlimits:\n  idle_after: 1s\n")
    try:
        yield box
    finally:
        _teardown(box)


@pytest.fixture
def sandbox(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """The test's repository and engine; marked `both_isolations`, once per isolation (`box.isolation`)."""
    with made_sandbox(tmp_path, getattr(request, "param", "sandbox")) as box:
        yield box


def _teardown(box: Sandbox) -> None:
    """Kill the test's engine (which runs apart from tmux) with anything else still carrying the test's runtime
    dir in its environment, then its tmux server, then what is left. The engine goes first: killed after the
    server, it could start a new one in between (an agent under `restart: always` started again), which outlived
    the test."""
    leftovers = _kill(_carrying(box))
    server_pid = None
    pid_text = box.tmux("display-message", "-p", "#{pid}").stdout.strip()
    if pid_text.isdigit():
        server_pid = int(pid_text)
    box.tmux("kill-server")
    if server_pid:
        with contextlib.suppress(psutil.Error):
            leftovers += _kill([psutil.Process(server_pid)])
    leftovers += _kill(_carrying(box))
    # Until each has ended: a zombie holds nothing any more. Its reaping is init's (the engine and what it
    # started were re-parented there), which here reaps about every 1.6 s: a wait for it was most of each
    # engine test's teardown. (At the deadline, as before, the test ends all the same.)
    deadline = time.monotonic() + 5
    while any(_running(proc) for proc in leftovers) and time.monotonic() < deadline:
        time.sleep(0.01)
    shutil.rmtree(box.runtime, ignore_errors=True)


def _carrying(box: Sandbox) -> list[psutil.Process]:
    """Every process but this one with the test's runtime dir in its environment."""
    found = []
    for proc in psutil.process_iter(["pid", "environ"]):
        try:
            environ = proc.info["environ"] or {}
        except psutil.Error:
            continue
        if environ.get("SUPERVISOR_RUNTIME_DIR") == str(box.runtime) and proc.pid != os.getpid():
            found.append(proc)
    return found


def _kill(procs: list[psutil.Process]) -> list[psutil.Process]:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)
    return procs


def _running(proc: psutil.Process) -> bool:
    """Running and not a zombie (the same process: `is_running` checks its start time too)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def process_gone(pid: int) -> bool:
    """Gone, or a zombie (its parent reaps it when it will): checked in one look, since a process can be
    reaped between a `pid_exists` and a `status`."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def host_pid(agent_pid: int, pid: int) -> int:
    """The host's pid of the process an agent's sandbox knows as `pid`: a sandbox has a PID namespace of its own,
    so a pid printed from inside it (`$$`, a pid file) names another process, or none, out here. `agent_pid` is
    the agent's as `show` gives it (the host's); the sandbox is the namespace of the first of its processes
    that lives in one of its own."""
    namespace = None
    top = psutil.Process(agent_pid)
    for proc in (top, *top.children(recursive=True)):
        with contextlib.suppress(OSError):
            if len(_ns_pids(proc.pid)) > 1:
                namespace = os.readlink(f"/proc/{proc.pid}/ns/pid")
                break
    if namespace is None:
        return pid  # not sandboxed (isolation: none): the pid is already the host's
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{entry.name}/ns/pid") == namespace and _ns_pids(int(entry.name))[-1] == pid:
                return int(entry.name)
    raise AssertionError(f"no process is {pid} in the sandbox of {agent_pid}")


def _ns_pids(pid: int) -> list[int]:
    """The process's pid in each PID namespace it is in, the host's first (the NSpid line of its status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return [int(word) for word in line.split()[1:]]
    return [pid]
