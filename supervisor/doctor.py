"""`supervisor doctor`: what a fresh machine needs, checked one line at a time."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.errors import SupervisorError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str | None = None


def _version(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout or done.stderr).strip() if done.returncode == 0 else None


def _numbers(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def checks() -> list[Check]:
    found: list[Check] = []
    python = sys.version_info
    found.append(Check("python", python >= (3, 11), f"{python.major}.{python.minor}.{python.micro}",
                       "supervisor needs Python >= 3.11"))
    tmux = _version(["tmux", "-V"])
    found.append(Check("tmux", tmux is not None and _numbers(tmux) >= (3, 2), tmux or "not found",
                       "install tmux >= 3.2"))
    git = _version(["git", "--version"])
    found.append(Check("git", git is not None and _numbers(git) >= (2, 25), git or "not found",
                       "install git >= 2.25"))
    try:
        from supervisor.config import load_config
        from supervisor.paths import find_repo

        paths = find_repo()
        config = load_config(paths.root)
        found.append(Check("repository", True, str(paths.root)))
        from supervisor.repair import store_check

        found.append(Check("store", *store_check(paths)))
        found += [Check("store notice", False, line, "see engine.log; `supervisor show NAME` for an agent")
                  for line in _notices(paths)]
        source = str(config.source) if config.source else "no supervisor.yaml (defaults)"
        found.append(Check("config", True, source))
        from supervisor.hosts.isolation import describe

        found.append(Check("isolation", *describe(config.isolation, network=config.sandbox.network)))
        from supervisor.agents import get_profile

        profile = get_profile(config.agent.profile)
        command = config.agent.command or profile.default_command or ""
        program = command.split()[0] if command else ""
        where = shutil.which(program) if program else None
        found.append(Check(f"agent CLI ({profile.name})", where is not None, where or f"{program or '?'} not on PATH",
                           f"install {program} or set agent.command in supervisor.yaml"))
        from supervisor.client import engine_running

        running = engine_running(paths)
        found.append(Check("engine", True, "running" if running else "not running (starts on demand)"))
        found.append(identity_check())
        found += alert_checks(paths, config)
        found += host_checks(config)
        found += boundary_checks(config, paths)
    except SupervisorError as exc:
        found.append(Check("repository/config", False, exc.message, exc.hint))
    return found


def identity_check() -> Check:
    """What keeps agents from acting as the human without a sandbox (supervisor/engine/callers.py): said as what
    it is, never as more."""
    lineage = Path("/proc/self/stat").exists()
    detail = ("each agent talks to the engine through a socket of its own, which is who it is. Without a sandbox "
              "one OS user cannot be kept from another process of the same user: a request on your socket from "
              "inside an agent's process tree is refused your requests, but a process started for it from outside "
              "that tree (tmux run-shell, at, cron, a systemd unit) passes for you")
    if not lineage:
        return Check("agent identity", True, detail.split(". ")[0] + "; this system has no /proc, so nothing ties a "
                     "process an agent starts to it: without a sandbox run only agents you trust")
    from supervisor.engine.confinement import cgroup_base

    if cgroup_base()[0] is None:
        detail += (", and so does one that outlived the agent's first process (left to init once it exited): "
                   "agents get no cgroup here, which would tie it to the agent")
    else:
        detail += ("; one that outlived the agent's first process is still the agent's by its cgroup (which a "
                   "process of yours can leave)")
    return Check("agent identity", True, detail)


def alert_checks(paths: Any, config: Any) -> list[Check]:
    """Each configured alert channel's reachability (Slack auth.test, SMTP connect/EHLO/STARTTLS/login)."""
    from supervisor.alerts.checks import reachability

    return [Check(f"alerts: {name}", result.ok, result.detail, result.hint)
            for name, result in reachability(config.alerts, paths)]


def host_checks(config: Any) -> list[Check]:
    """Each configured host's `supervisor hosts check`, all at once: a line per host when it has all it needs,
    else a line for each thing it lacks, with its hint."""
    from supervisor.hosts.survey import check_all
    from supervisor.hosts.unsandboxed import ENFORCED, EXPOSED

    found = []
    for name, result in check_all(config.hosts, config.isolation, [config.agent.command]).items():
        said = (EXPOSED, ENFORCED)  # a host's agents unsandboxed: what they reach, and what holds, on lines apart
        if result.ok:
            found.append(Check(f"host {name}", True,
                               "; ".join(r.detail for r in result.requirements if r.name not in said)))
            found += [Check(f"host {name}: {r.name}", True, r.detail) for r in result.requirements
                      if r.name in said]
        else:
            found += [Check(f"host {name}: {r.name}", False, r.detail, r.hint)
                      for r in result.requirements if not r.ok]
    return found


def boundary_checks(config: Any, paths: Any = None) -> list[Check]:
    """Who may answer approvals from Slack, and what keeps an agent's processes together for `stop`."""
    from supervisor.engine.confinement import cgroup_offer

    found = [Check("stop", True, cgroup_offer(paths)), *contract_checks(config, paths)]
    slack = config.alerts.slack
    if slack is not None and slack.token and slack.channel:
        if slack.approvers:
            found.append(Check("slack approvals", True, f"from {', '.join(slack.approvers)} only"))
        else:
            found.append(Check("slack approvals", True,
                               "off: replies in Slack answer nothing; to turn them on, list who may answer in "
                               "alerts.slack.approvers (Slack member ids, e.g. approvers: [U024BE7LH])"))
    return found


def contract_checks(config: Any, paths: Any) -> list[Check]:
    """What holds an agent to its contract: where the commit guard reads it, and the digest of stored ones."""
    if paths is None:
        return []
    import os
    import stat

    from supervisor.hosts import isolation

    sandboxed = isolation.in_force(config.isolation) == isolation.SANDBOX
    guard = ("reads each agent's contract from the file the engine writes into its runtime folder (contract.json), "
             "read-only inside its sandbox; no file: the commit is refused")
    if not sandboxed:
        guard += ("; without a sandbox the agent can rewrite that file (or commit with --no-verify): advice only, "
                  "the audit of every commit decides")
    found = [Check("commit guard", True, guard)]
    key = paths.contract_key
    try:
        mode = stat.S_IMODE(os.lstat(key).st_mode)
    except FileNotFoundError:
        found.append(Check("contract digest", True, f"no key yet at {key} (the engine makes it when it starts)"))
        return found
    detail = (f"every stored contract carries an HMAC-SHA256 digest (key {key}): one changed outside the engine is "
              "a tamper event, audited as allowing nothing, and merge refuses it until --confirm-contract")
    detail += ("; the key is hidden from sandboxed agents" if sandboxed else
               "; without a sandbox an agent can read the key too: this catches accidents and careless agents, "
               "not a determined process of your user")
    if mode & 0o077:
        return [*found, Check("contract digest", False, f"{key} is readable by others (mode {mode:o})",
                              f"chmod 600 {key}")]
    return [*found, Check("contract digest", True, detail)]


def _notices(paths: Any) -> list[str]:
    try:
        return [line for line in paths.store_notice.read_text().splitlines() if line.strip()]
    except OSError:
        return []


def run_repair() -> int:
    """`doctor --repair`: repair the store if it needs it, say what was done, then run the checks."""
    from supervisor.paths import find_repo
    from supervisor.repair import repair

    paths = find_repo()
    done = repair(paths)
    if done is None:
        print(f"store: {paths.db_path} is sound; nothing to repair")
    else:
        print(f"store: repaired ({done.problem})")
        for moved in done.moved_to:
            print(f"  kept the damaged file as {moved}")
        for table, count in done.carried.items():
            print(f"  carried over {count} row(s) of {table}")
        for table, problem in done.unreadable.items():
            print(f"  could not read {table}: {problem}")
        if done.rebuilt:
            print(f"  rebuilt from tmux and git: {', '.join(done.rebuilt)} (contracts unverified: "
                  "`supervisor merge NAME --confirm-contract` once you have read them)")
    print()
    return run_doctor()


def run_doctor(json_output: bool = False) -> int:
    results = checks()
    if json_output:
        print(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        for result in results:
            mark = "ok  " if result.ok else "FAIL"
            print(f"{mark} {result.name:<20} {result.detail}")
            if not result.ok and result.hint:
                print(f"     {'':<20} hint: {result.hint}")
    return 0 if all(r.ok for r in results) else 1
