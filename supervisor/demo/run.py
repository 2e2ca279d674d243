"""`supervisor demo`: a scratch repository with sessions run by the bundled demo agent.

No AI CLI or account is needed: each session runs `python -m supervisor.demo.agent` with a scenario that
shows one behaviour (working, asking for approval, going quiet, crashing, committing inside its contract and
so ready to merge, committing outside it, running out of time), each under a SESSION.md contract, and one
session has a helper with a sub-helper of its own (the three levels of the tree).

`stall_after` (of the whole demo) and `timeout` (of `reports`) are options, so a test or an impatient user
sees those two states sooner."""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from supervisor.errors import SupervisorError, UsageError
from supervisor.paths import RepoPaths

SESSIONS = [
    ("auth", "worker", "Harden the auth package: validate tokens and add tests"),
    ("ui", "asker", "Polish the settings page"),
    ("billing", "staller", "Use the new auth roles in billing"),
    ("api", "committer", "Add the /health endpoint"),
    ("docs", "boundary", "Document the auth package"),
    ("search", "crasher", "Speed up the search index"),
    ("reports", "worker", "Rebuild the monthly report"),
]
# (parent, name, role, task): helpers started under the sessions above, in this order (a refactor-agent may
# start test-agents of its own: level 3).
HELPERS = [
    ("auth", "tokens", "refactor-agent", "Split token parsing from token validation"),
    ("auth.tokens", "tests", "test-agent", "Pin down how tokens are parsed today"),
]
STALL_AFTER = "1m"
TIMEOUT = "40s"  # of `reports`


def _contract(modify: str, *, timeout: str | None = None, helpers: str = "") -> str:
    lines = ["# What This Session Can Do", f"- Modify: {modify}"]
    lines += ["- Can spawn helpers: yes", "- Max helpers: 2"] if helpers else ["- Can spawn helpers: no"]
    lines += [f"- Timeout: {timeout}"] if timeout else []
    lines += ["", "# Helper Permissions", *(f"- {entry}" for entry in helpers.split("; ") if entry)]
    return "\n".join(lines) + "\n"


# Each session's boundaries: `docs` commits outside its own (a boundary violation), `api` commits inside
# (ready to merge), `reports` runs out of time.
def contracts(timeout: str = TIMEOUT) -> dict[str, str]:
    return {
        "auth": _contract("packages/auth/**", helpers="refactor-agent: packages/auth/**; "
                                                      "test-agent: packages/auth/tests/**"),
        "ui": _contract("packages/ui/**"),
        "billing": _contract("packages/billing/**"),
        "api": _contract("services/api/**, notes/**"),
        "docs": _contract("docs/**"),
        "search": _contract("packages/search/**"),
        "reports": _contract("packages/reports/**", timeout=timeout),
    }

_FILES = {
    "README.md": "# demo-shop\n\nA scratch repository created by `supervisor demo`.\n",
    "packages/auth/tokens.py": "def validate(token: str) -> bool:\n    return bool(token)\n",
    "packages/ui/settings.py": "TITLE = 'Settings'\n",
    "packages/billing/invoice.py": "def total(items):\n    return sum(items)\n",
    "services/api/app.py": "ROUTES = ['/']\n",
    "docs/index.md": "# Docs\n",
}


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def create_repo(directory: Path, stall_after: str = STALL_AFTER) -> Path:
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(f"{directory} exists and is not empty", hint="pick a new directory for the demo")
    directory.mkdir(parents=True, exist_ok=True)
    _git(directory, "init", "-q", "-b", "main")
    _git(directory, "config", "user.name", "Demo User")
    _git(directory, "config", "user.email", "demo@example.com")
    for name, text in _FILES.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    agent = f"{shlex.quote(sys.executable)} -m supervisor.demo.agent"
    (directory / "supervisor.yaml").write_text(
        "# The demo runs the bundled demo agent instead of a real AI CLI (its profile reads its screen).\n"
        f"agent:\n  profile: demo\n  command: {agent}\nlimits:\n  idle_after: 3s\n  stall_after: {stall_after}\n"
    )
    _git(directory, "add", "-A")
    _git(directory, "commit", "-q", "-m", "Initial demo repository")
    return directory


def run_demo(directory: Path | None, open_ui: bool = True, *, stall_after: str = STALL_AFTER,
             timeout: str = TIMEOUT) -> int:
    from supervisor.cli import main as cli_main
    from supervisor.client import call
    from supervisor.paths import find_repo

    target = directory or Path(tempfile.mkdtemp(prefix="supervisor-demo-")) / "demo-shop"
    repo = create_repo(target.resolve(), stall_after)
    terms = contracts(timeout)
    paths = find_repo(repo)
    agent = f"{shlex.quote(sys.executable)} -m supervisor.demo.agent"
    print(f"demo repository: {repo}")
    for name, scenario, task in SESSIONS:
        try:
            call(paths, "start", {"name": name, "task": task, "command": f"{agent} --scenario {scenario}",
                                  "wait": False, "contract": terms[name], "contract_path": f"{name}'s contract"})
        except SupervisorError as exc:
            print(f"  {name}: {exc.message}", file=sys.stderr)
            continue
        print(f"  started {name} ({scenario})")
    for parent, name, role, task in HELPERS:
        try:
            call(paths, "helper", {"name": name, "role": role, "parent": parent, "task": task, "wait": False})
        except SupervisorError as exc:
            print(f"  {parent}.{name}: {exc.message}", file=sys.stderr)
            continue
        print(f"  started {parent}.{name} ({role}, a helper of {parent})")
    import os

    os.chdir(repo)
    code = 0
    if open_ui and sys.stdin.isatty() and sys.stdout.isatty():
        from supervisor.ui.app import run_demo_dashboard  # Textual is imported only here

        # The dashboard shows them starting; it returns when the user quits, having asked whether to end the demo.
        if run_demo_dashboard(paths):
            return finish(repo)
    elif open_ui:
        code = cli_main(["ui"])  # without a terminal: the listing
    else:
        _wait_started(paths, timeout=10.0)
        print()
        cli_main(["ls"])
    print(
        f"\nNext: cd {repo}\n"
        "  supervisor                    the dashboard (? lists its keys)\n"
        "  supervisor ls                 every agent and its state\n"
        "  supervisor attach auth        take over a pane (detach with your tmux prefix + d)\n"
        "  supervisor send ui 'yes'      type into an agent\n"
        "  supervisor merge api          merge a finished session into main (docs's is refused)\n"
        "  supervisor stop billing       stop one; `supervisor engine stop` stops watching"
    )
    return code


def finish(repo: Path) -> int:
    """End the demo whose repository is `repo` (the current directory): `supervisor down` there, every agent, the
    engine and the tmux server; the repository stays."""
    from supervisor.cli import main as cli_main

    print("ending the demo…")
    code = cli_main(["down"])
    print(f"\nThe demo ended; its repository stays at {repo}.\n"
          "  supervisor demo               starts a new one")
    return code


def _wait_started(paths: RepoPaths, timeout: float) -> None:
    """Until every demo session has left `starting` (its task delivered), so the listing shows them working."""
    from supervisor.client import call

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(agent["state"] != "starting" for agent in call(paths, "ls")):
            return
        time.sleep(0.2)
