"""The engine killed (SIGKILL) at seeded random moments, 20 times in a row, while fake Claude Code agents work
and fire hooks: afterwards every agent, every hook event and every alert is there exactly once."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from typing import Any

import psutil

from supervisor.engine.detached import engine_argv
from supervisor.engine.environments import engine_environment
from tests.conftest import DEMO_AGENT, Sandbox, process_gone, wait_until
from tests.test_watching import fake_claude

SEED = 16
KILLS = 20
STALLS = 3
HOOK_PATIENCE = 5  # seconds `supervisor hook` waits for the engine's answer before it spools the event
AGENTS = {"ant": 14, "bee": 22, "cat": 30}  # each agent's one turn: that many tool calls, ~0.4 s apart


def _rows(sandbox: Sandbox, query: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{sandbox.root / '.git' / 'supervisor' / 'state.db'}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def _launch_engine(sandbox: Sandbox) -> subprocess.Popen[bytes]:
    """An engine started apart as `supervisor` starts it (its own session, no terminal), without a CLI process's
    start-up in between, and without its fork away from this process (so its pid is known from the start)."""
    argv = [arg for arg in engine_argv() if arg != "--detached"]
    return subprocess.Popen(argv, cwd=sandbox.root, env=engine_environment(sandbox.env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _hook_connected(agent_pids: list[int], timeout: float) -> bool:
    """Wait until a `supervisor hook` an agent runs is connected to the engine (within `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        for agent_pid in agent_pids:
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(agent_pid).children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        if "hook" in child.cmdline() and child.net_connections("unix"):
                            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


def _freeze_after_a_hook_event(sandbox: Sandbox, pid: int, timeout: float) -> None:
    """Stop the engine (SIGSTOP) as soon as it has recorded a hook event (or after `timeout`): often before it has
    answered the hook, which then spools the event it applied when the kill that follows closes the connection."""
    db = sqlite3.connect(f"file:{sandbox.root / '.git' / 'supervisor' / 'state.db'}?mode=ro", uri=True, timeout=30)
    try:
        def newest() -> int:
            return int(db.execute("SELECT coalesce(max(id), 0) FROM events WHERE kind = 'hook'").fetchone()[0])

        seen = newest()
        deadline = time.monotonic() + timeout
        while newest() == seen and time.monotonic() < deadline:
            time.sleep(0.001)
        os.kill(pid, signal.SIGSTOP)
    finally:
        db.close()


def _stall_store(sandbox: Sandbox, seconds: float) -> None:
    """Hold the store's write lock for `seconds`: the engine's writes wait, and so do the hooks it is applying."""
    db = sqlite3.connect(sandbox.root / ".git" / "supervisor" / "state.db", timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        time.sleep(seconds)
        db.execute("ROLLBACK")
    finally:
        db.close()


def _turn(name: str, steps: int) -> str:
    calls = ", ".join(f'{{run: "sleep 0.4; echo {name}-{n}"}}' for n in range(1, steps + 1))
    return f"turns:\n  - [{calls}, {{say: {name} finished}}]\n"


def test_twenty_engine_kills_under_load_lose_and_repeat_nothing(sandbox: Sandbox) -> None:
    sandbox.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n  stagger: 0s\n"
                         "limits:\n  idle_after: 1s\n"
                         "alerts:\n  tmux: false\n  group_wait: 0.2s\n  command: \"cat > /dev/null\"\n")
    for name, steps in AGENTS.items():
        command = fake_claude(sandbox, name, _turn(name, steps))
        sandbox.sv("start", name, "--task", f"{name}'s task", "--command", command)
    agent_pids = [sandbox.agent(name)["pid"] for name in AGENTS]
    rng = random.Random(SEED)
    # The moment of each kill, drawn from the seed: a while after the engine's launch (while it starts, adopting
    # and reading the spool, or while it serves); just after it recorded a hook event (before or after it answered
    # the hook); or just after a stall of its store (as by a slow disk) long enough for the hooks to give up and
    # spool their events, which the engine then applies all the same.
    stalls = set(rng.sample(range(KILLS), STALLS))
    moments = [("stall" if n in stalls else rng.choice(["launch", "hook"]), rng.uniform(0.2, 1.5),
                rng.uniform(0.0, 0.3)) for n in range(KILLS)]
    started = time.monotonic()
    pid = sandbox.engine_pid()  # the one `start` launched
    launched: list[subprocess.Popen[bytes]] = []
    for kind, delay, shortly in moments:
        if process_gone(pid):
            launched.append(_launch_engine(sandbox))
            pid = launched[-1].pid
        if kind == "hook":
            _freeze_after_a_hook_event(sandbox, pid, timeout=3.0)
        elif kind == "stall" and _hook_connected(agent_pids, timeout=3.0):
            _stall_store(sandbox, seconds=HOOK_PATIENCE + 1)
            time.sleep(shortly)
        else:
            time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda killed=pid: process_gone(killed), message="the engine killed")
    killing = time.monotonic() - started
    for engine in launched:
        engine.wait()

    for name in AGENTS:
        sandbox.wait_state(name, "idle", timeout=60)
    spooled = sandbox.root / ".git" / "supervisor" / "spool"
    wait_until(lambda: not list(spooled.glob("*.json")), message="the spool read")

    # Every agent once, each where its work left it, in the process it started with.
    agents = sandbox.ls()
    assert sorted(agents) == sorted(AGENTS)
    assert [agents[name]["pid"] for name in AGENTS] == agent_pids
    assert sorted(row[0] for row in _rows(sandbox, "SELECT name FROM agents")) == sorted(AGENTS)
    for name in AGENTS:
        assert f"{name} finished" in sandbox.screen(name)

    # Every hook event the agents fired, once: by its id, and by what it was about.
    hooks = [(agent, json.loads(data)) for agent, data in
             _rows(sandbox, "SELECT agent, data FROM events WHERE kind = 'hook' ORDER BY id")]
    keys = Counter(event["key"] for _, event in hooks if "key" in event)
    assert [key for key, count in keys.items() if count > 1] == []
    for name, steps in AGENTS.items():
        fired = Counter((event["hook_event_name"], event.get("tool")) for agent, event in hooks if agent == name)
        expected = Counter({("SessionStart", None): 1, ("UserPromptSubmit", None): 1, ("Stop", None): 1})
        for n in range(1, steps + 1):
            expected[("PreToolUse", f"Bash(sleep 0.4; echo {name}-{n})")] = 1
            expected[("PostToolUse", f"Bash(sleep 0.4; echo {name}-{n})")] = 1
        assert fired == expected, name
    assert len(keys) == len(hooks)  # each recorded with its id

    # Every alert once: each agent's turn ended once, so one `done`, and nothing else fired.
    def alerted() -> list[tuple[str, str, str, int]]:
        return sorted((agent, item["trigger"], item["status"], item["count"])
                      for agent, content in _rows(sandbox, "SELECT agent, content FROM alerts")
                      for item in json.loads(content)["items"])

    wait_until(lambda: len(alerted()) >= len(AGENTS), message="the alerts composed")
    assert alerted() == sorted((name, "done", "firing", 1) for name in AGENTS)
    triggers = Counter((agent, json.loads(data)["trigger"]) for agent, data in
                       _rows(sandbox, "SELECT agent, data FROM events WHERE kind = 'trigger'"))
    assert triggers == Counter({(name, "done"): 1 for name in AGENTS})
    assert killing < 75, f"the kills took {killing:.0f} s"
