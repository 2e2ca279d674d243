"""`supervisor hosts [--json]` (each host's state) and `supervisor hosts check [NAME]` (what a host needs, each
requirement with a hint; exit status 1 when one fails)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from supervisor.commands.common import Add, call
from supervisor.errors import UsageError

if TYPE_CHECKING:
    from supervisor.config import Config
    from supervisor.hosts.check import HostCheck

SETUP = "hosts:\n  box1:\n    ssh: box1"  # supervisor.yaml's three lines (an alias of your ssh config)


def register(add: Add) -> None:
    p = add("hosts", cmd_hosts, "machines that run agents over SSH: their state, and what each lacks (check)")
    p.add_argument("--json", action="store_true")
    actions = p.add_subparsers(dest="hosts_action", metavar="ACTION")
    a = actions.add_parser("check", help="connect to each host (or NAME) with your ssh and check what it needs: "
                           "ssh by key, python3 >= 3.11, git, tmux >= 3.2, bubblewrap, the agent CLI, disk")
    a.add_argument("name", nargs="?", metavar="NAME", help="only this host")
    a.add_argument("--json", action="store_true")


def cmd_hosts(args: argparse.Namespace) -> int:
    config = _config()
    if args.hosts_action == "check":
        return _check(config, args.name, args.json)
    rows, counted = _rows(config)
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    print(_table(rows))
    if not config.hosts:
        print(f"\nno hosts in {config.source or 'supervisor.yaml'}; to add one, write there:\n{SETUP}")
    elif not counted:
        print("\n(the engine is not running: agents are not counted)")
    return 0


def _config() -> Config:
    from supervisor.config import load_config
    from supervisor.paths import find_repo

    return load_config(find_repo().root)


def _rows(config: Config) -> tuple[list[dict[str, Any]], bool]:
    """The engine's answer when it runs (it knows the agents), else the hosts checked here; and whether the
    agents were counted."""
    from supervisor import client
    from supervisor.paths import find_repo

    if client.engine_running(find_repo()):
        try:
            return list(call("hosts", autostart=False, timeout=120)), True
        except client.EngineNotRunning:
            pass  # it stopped meanwhile
    from supervisor.hosts.survey import survey

    return survey(config, None), False


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [["HOST", "STATE", "AGENTS", "LOAD", "LATENCY", "LAST SEEN", "ERROR"]]
    for row in rows:
        load = row["load"]
        agents = "-" if row["agents"] is None else str(row["agents"])
        limit = "" if row["max_agents"] is None else f"/{row['max_agents']}"
        lines.append([
            row["name"], row["state"], agents + limit,
            "-" if load is None else f"{load['load1']:.2f}" + (f" of {load['cores']}" if load["cores"] else ""),
            "-" if row["latency_ms"] is None else f"{row['latency_ms']:.0f} ms",
            row["last_seen"] or "-", row["error"] or "",
        ])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines)


def _check(config: Config, name: str | None, as_json: bool) -> int:
    from supervisor.hosts.survey import check_all
    from supervisor.hostsconfig import LOCAL
    from supervisor.suggest import did_you_mean

    if name == LOCAL:
        raise UsageError("local is this machine", hint="`supervisor doctor` checks it")
    if name is not None and name not in config.hosts:
        known = ", ".join(config.hosts) or "none"
        raise UsageError(f"no host {name!r} in supervisor.yaml (hosts: {known})",
                         hint=did_you_mean(name, config.hosts) or f"add it there, e.g.\n{SETUP}")
    if not config.hosts:
        if as_json:
            print("[]")
        else:
            print(f"no hosts in {config.source or 'supervisor.yaml'}; to add one, write there:\n{SETUP}")
        return 0
    chosen = {name: config.hosts[name]} if name else dict(config.hosts)
    found = check_all(chosen, config.isolation, [config.agent.command])
    if as_json:
        print(json.dumps([_view(result) for result in found.values()], indent=2, sort_keys=True))
    else:
        for index, result in enumerate(found.values()):
            host = chosen[result.host]
            print(("\n" if index else "") + f"{result.host} (ssh {host.ssh}, dir {host.dir})")
            for requirement in result.requirements:
                print(f"  {'ok  ' if requirement.ok else 'FAIL'}  {requirement.name:<9}  {requirement.detail}")
                if requirement.hint and (not requirement.ok or requirement.name == "isolation"):
                    print(f"        {'':<9}  hint: {requirement.hint}")
    failed = [result.host for result in found.values() if not result.ok]
    if failed and not as_json:
        print(f"\nsupervisor: {', '.join(failed)}: not ready for agents (above)", file=sys.stderr)
    return 1 if failed else 0


def _view(result: HostCheck) -> dict[str, Any]:
    return {"host": result.host, "ok": result.ok, "latency_ms": result.latency_ms,
            "requirements": [{"name": r.name, "ok": r.ok, "detail": r.detail, "hint": r.hint}
                             for r in result.requirements]}
