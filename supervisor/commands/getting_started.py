"""`demo` (a scratch repository with demo agents) and `init` (a commented supervisor.yaml)."""

from __future__ import annotations

import argparse
from pathlib import Path

from supervisor.commands.common import Add, repo_paths
from supervisor.errors import UsageError


def register(add: Add) -> None:
    p = add("demo", cmd_demo, "a scratch repository with demo agents")
    p.add_argument("dir", nargs="?", help="where to create the scratch repository (default: a temp dir)")
    p.add_argument("--no-ui", action="store_true", help="only start the demo; do not open the dashboard")
    p.add_argument("--stall-after", default="1m", metavar="DURATION",
                   help="silence that makes a working agent stalled (default 1m)")
    p.add_argument("--timeout", default="40s", metavar="DURATION",
                   help="how long the `reports` session may run before it is killed (default 40s)")
    add("init", cmd_init, "write a commented supervisor.yaml (never overwrites)")


def cmd_demo(args: argparse.Namespace) -> int:
    from supervisor.core.durations import parse_duration
    from supervisor.demo.run import run_demo

    for option, value in (("--stall-after", args.stall_after), ("--timeout", args.timeout)):
        try:
            parse_duration(value)  # a bad one is a usage error before anything is created
        except ValueError as exc:
            raise UsageError(f"{option}: {exc}") from None
    return int(run_demo(Path(args.dir) if args.dir else None, open_ui=not args.no_ui, stall_after=args.stall_after,
                        timeout=args.timeout))


def cmd_init(args: argparse.Namespace) -> int:
    from supervisor.config import write_init

    path = write_init(repo_paths().root)
    print(f"wrote {path}")
    return 0
