"""`stop` against an agent that tries to outlive it: from inside a real agent pane (the demo agent's `run:`
steps), processes that drop their environment, leave their session or double-fork away from their parent, and
a loop that forks faster than anyone walks a process table (ignoring the hangup a closing pane sends). After
`supervisor stop` none of them runs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from supervisor.engine.confinement import cgroup_base
from tests.conftest import DEMO_AGENT, Sandbox, wait_until

# Each attack starts one `sleep` of its own length (a fraction unique to this test run), so the test finds
# exactly its processes whatever they did to their environment, session or parent.
ATTACKS = {
    "env -u": "env -u SUPERVISOR_TOKEN -u SUPERVISOR_AGENT sleep {d} >/dev/null 2>&1 &",
    "env -i": "env -i sh -c 'sleep {d}' >/dev/null 2>&1 &",
    "setsid -f": "setsid -f sleep {d} >/dev/null 2>&1",
    "double fork": "(sleep {d} >/dev/null 2>&1 &) &",
    "nohup": "nohup sleep {d} >/dev/null 2>&1 &",
    "nohup, no environment": "env -i nohup sleep {d} >/dev/null 2>&1 &",
    "double fork, no environment, no hangup": "env -i sh -c 'trap \"\" HUP; (sleep {d} &) &' >/dev/null 2>&1",
    "setsid, no environment": "env -i setsid -f sleep {d} >/dev/null 2>&1",
    # A loop that keeps double-forking sleepers away from itself, with no environment: stop must freeze it
    # before it can outrun the walk of its tree.
    "fork loop": "env -i sh -c 'trap \"\" HUP; while :; do (sleep {d} &); sleep 0.05; done' >/dev/null 2>&1 &",
}


def _durations() -> dict[str, str]:
    return {name: f"{1000 + n}.{os.getpid()}" for n, name in enumerate(ATTACKS)}


def _sleepers(durations: dict[str, str]) -> dict[str, list[psutil.Process]]:
    """The running (not zombie) `sleep`s each attack started, by attack."""
    by_length = {length: name for name, length in durations.items()}
    found: dict[str, list[psutil.Process]] = {}
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if len(cmdline) == 2 and cmdline[0].endswith("sleep") and cmdline[1] in by_length:
            with contextlib.suppress(psutil.Error):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.setdefault(by_length[cmdline[1]], []).append(proc)
    return found


def _below(proc: psutil.Process, pid: int) -> bool:
    """Whether `pid` is an ancestor of `proc`; also when a process of the lineage ended while it was walked (the
    fork loop's subshell exits right after starting its sleeper, which the agent then adopts)."""
    try:
        return pid in {a.pid for a in proc.parents()}
    except psutil.Error:
        return True


def _fork_loops(durations: dict[str, str]) -> list[psutil.Process]:
    marker = f"sleep {durations['fork loop']}"
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline[:2] == ["sh", "-c"] and marker in " ".join(cmdline[2:]):
            found.append(proc)
    return found


@pytest.mark.both_isolations
def test_stop_ends_every_process_the_agent_started_whatever_it_did_to_leave(sandbox: Sandbox) -> None:
    durations = _durations()
    steps = [{"run": command.format(d=durations[name])} for name, command in ATTACKS.items()]
    script = sandbox.root.parent / "escaper.json"
    script.write_text(json.dumps({"start": [*steps, {"say": "all planted"}], "turns": []}))
    try:
        sandbox.sv("start", "escaper", "--command", f"{DEMO_AGENT} --script {script}")
        wait_until(lambda: "all planted" in sandbox.screen("escaper"), timeout=30, message="the attacks planted")
        planted = wait_until(lambda: (found := _sleepers(durations)).keys() == ATTACKS.keys() and found,
                             message="every attack's sleep running")
        pid = sandbox.ls()["escaper"]["pid"]
        assert sandbox.agent("escaper")["isolation"] == sandbox.isolation
        outside = {name: [p.pid for p in procs if not _below(p, pid)] for name, procs in planted.items()}
        assert {name: pids for name, pids in outside.items() if pids} == {}  # adopted by the agent, not init
        assert sandbox.sv("stop", "escaper").returncode == 0

        def survivors() -> dict[str, list[int]]:
            return {name: [p.pid for p in procs] for name, procs in _sleepers(durations).items()}

        with contextlib.suppress(AssertionError):
            wait_until(lambda: not survivors(), timeout=10, message="every attack's processes gone")
        assert survivors() == {}
        assert _fork_loops(durations) == []
        assert sandbox.state("escaper") == "stopped"
    finally:
        for proc in _fork_loops(durations) + [p for procs in _sleepers(durations).values() for p in procs]:
            with contextlib.suppress(psutil.Error):
                proc.kill()


@pytest.mark.skipif(cgroup_base()[0] is None, reason="no writable cgroup v2 folder on this machine")
def test_where_the_machine_allows_each_agent_has_a_cgroup_that_stop_empties(sandbox: Sandbox) -> None:
    """An agent that ended on its own (its first process gone, so no tree adopts its orphans) left a daemon
    that ignores hangups and carries no environment: a stop of the ended agent kills it by its cgroup."""
    sandbox.write_config("isolation: none\n")  # in the sandbox its PID namespace does this, and more
    length = f"1100.{os.getpid()}"
    script = sandbox.root.parent / "leaver.json"
    escape = f"env -i sh -c 'trap \"\" HUP; (sleep {length} &) &' >/dev/null 2>&1"
    script.write_text(json.dumps({"start": [{"run": escape}, {"say": "planted"}], "turns": [[{"exit": 0}]]}))
    try:
        sandbox.sv("start", "leaver", "--command", f"{DEMO_AGENT} --script {script}")
        wait_until(lambda: "planted" in sandbox.screen("leaver"), timeout=30, message="the daemon planted")
        pid = sandbox.ls()["leaver"]["pid"]
        group = Path(f"/proc/{pid}/cgroup").read_text().strip().rpartition("/supervisor.")[2]
        base = cgroup_base()[0]
        assert base is not None and group.endswith("/leaver") and (base / f"supervisor.{group}").is_dir()
        sandbox.sv("send", "leaver", "bye")
        sandbox.wait_state("leaver", "exited")
        assert "daemon" in _sleepers({"daemon": length})  # outlived the agent, which no longer adopts it
        assert sandbox.sv("stop", "leaver").returncode == 0
        wait_until(lambda: not _sleepers({"daemon": length}), timeout=10, message="the daemon gone")
        assert not (base / f"supervisor.{group}").exists()
    finally:
        for procs in _sleepers({"daemon": length}).values():
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    proc.kill()


def _repository_cgroup(sandbox: Sandbox) -> Path:
    """The folder the sandbox repository's agents' cgroups go in, as the engine names it."""
    code = ("from supervisor.engine.confinement import cgroup_base, repository_cgroup\n"
            "from supervisor.paths import find_repo\n"
            "print(repository_cgroup(cgroup_base()[0], find_repo()))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=sandbox.root, env=sandbox.env, capture_output=True,
                          text=True, check=True)
    return Path(done.stdout.strip())


@pytest.mark.skipif(cgroup_base()[0] is None, reason="no writable cgroup v2 folder on this machine")
def test_an_agent_that_cannot_join_its_cgroup_is_said_so_and_stop_ends_its_term_ignoring_orphan(
        sandbox: Sandbox) -> None:
    """The machine lets the engine make the agent's cgroup but refuses its process in it (a threaded cgroup
    beside it makes every new one there invalid for processes): that is an event and a doctor line, and `stop`
    walks the tree. The agent's first process exits on SIGTERM; the orphan it adopted ignores SIGTERM and would
    go to init then: it is ended all the same."""
    sandbox.write_config("isolation: none\n")
    repository = _repository_cgroup(sandbox)
    threaded = repository / "threaded"
    length = f"1200.{os.getpid()}"
    script = sandbox.root.parent / "orphaner.json"
    escape = f"setsid -f sh -c 'trap \"\" TERM; exec sleep {length}' >/dev/null 2>&1"
    script.write_text(json.dumps({"start": [{"run": escape}, {"say": "planted"}], "turns": []}))
    try:
        threaded.mkdir(parents=True)
        (threaded / "cgroup.type").write_text("threaded")
        sandbox.sv("start", "orphaner", "--command", f"{DEMO_AGENT} --script {script}")
        wait_until(lambda: "planted" in sandbox.screen("orphaner"), timeout=30, message="the orphan planted")
        pid = sandbox.ls()["orphaner"]["pid"]
        orphan = wait_until(lambda: _sleepers({"orphan": length}).get("orphan"), message="the orphan running")
        assert [p.ppid() for p in orphan] == [pid]  # adopted by the agent's first process
        failed = [e for e in sandbox.agent("orphaner")["events"] if e["kind"] == "cgroup_join_failed"]
        assert len(failed) == 1 and "process tree" in failed[0]["why"]
        checks = {c["name"]: c for c in json.loads(sandbox.sv("doctor", "--json", check=False).stdout)}
        assert "cannot join" in checks["stop"]["detail"] and str(repository) in checks["stop"]["detail"]
        assert sandbox.sv("stop", "orphaner").returncode == 0
        with contextlib.suppress(AssertionError):
            wait_until(lambda: not _sleepers({"orphan": length}), timeout=10, message="the orphan gone")
        assert _sleepers({"orphan": length}) == {}
    finally:
        for procs in _sleepers({"orphan": length}).values():
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        for folder in [*(p for p in repository.glob("*") if p.is_dir()), repository]:
            with contextlib.suppress(OSError):
                folder.rmdir()
