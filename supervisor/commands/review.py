"""Reviewing an agent's work without leaving the tool: `diff` (everything it changed against its base, see
`supervisor.git.changes`), `push` (its branch to the repository's remote) and `pr` (a pull request with `gh`,
when it is installed).

The agent's branch, base and worktree come from its record (`show`); a branch name is never built here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from supervisor.commands.common import Add, call
from supervisor.errors import SupervisorError, UsageError
from supervisor.git import environment, object_folders


def register(add: Add) -> None:
    p = add("diff", cmd_diff, "everything the agent changed against its base: commits, uncommitted edits, new files")
    p.add_argument("agent")
    p.add_argument("--stat", action="store_true", help="only the files and how many lines each gained and lost")
    p = add("push", cmd_push, "push the agent's branch to the repository's remote")
    p.add_argument("agent")
    p.add_argument("--remote", help="which remote (default: origin, or the only one)")
    p = add("pr", cmd_pr, "push the agent's branch and open a pull request with `gh` (title and body from its task, "
            "commits and audit)")
    p.add_argument("agent")
    p.add_argument("--remote", help="which remote (default: origin, or the only one)")
    p.add_argument("--draft", action="store_true", help="open it as a draft")


def _git(cwd: Path | str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The user's git, reading the sandboxed agents' own object folders too (their newest commits may not be in
    the shared store yet)."""
    environ = dict(os.environ if env is None else env)
    common = environment.common_dir(Path(cwd))
    found = None if common is None else object_folders.alternates(common, environ.get(object_folders.VARIABLE))
    if found:
        environ[object_folders.VARIABLE] = found
    return subprocess.run(["git", *args], cwd=cwd, env=environ, capture_output=True, text=True, check=False)


def _in_worktree(worktree: Path, *args: str, env: dict[str, str] | None = None,
                 input: str | None = None) -> subprocess.CompletedProcess[str]:
    """git in the agent's worktree as the engine runs it: its `config.worktree` and any nested repository in it
    are the agent's to write, so none of the programs they name (filters, fsmonitor, diff drivers) runs. `env`:
    variables added (the scratch index)."""
    argv, environ = environment.command(worktree, args, env)  # agents' own object folders read too
    return subprocess.run(argv, cwd=worktree, env=environ, input=input, capture_output=True, text=True, check=False)


def _agent(name: str) -> dict[str, Any]:
    agent: dict[str, Any] = call("show", {"name": name, "events": 0})
    return agent


# diff ----------------------------------------------------------------------------------------------------


def cmd_diff(args: argparse.Namespace) -> int:
    agent = _agent(args.agent)
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    if agent.get("host", "local") != "local":  # its worktree is on a host: the engine asks there
        found = call("diff", {"name": agent["name"], "text": True, "stat": args.stat, "colour": colour})
        text = str(found["text"])
        if found.get("host_error"):
            print(f"{agent['name']}: its commits only; what its worktree on host {agent['host']} has besides is "
                  f"missing: {found['host_error']}", file=sys.stderr)
    else:
        from supervisor.git.changes import agent_diff

        text = agent_diff(_root(), agent, stat=args.stat, colour=colour)
    if not text.strip():
        print(f"{agent['name']}: nothing changed against its base {agent['base'][:10]}", file=sys.stderr)
        return 0
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _root() -> Path:
    from supervisor.paths import find_repo

    return Path(find_repo().root)


# push, pr ------------------------------------------------------------------------------------------------


def remote_of(root: Path, wanted: str | None) -> str:
    """The remote to push to: the one asked for, else `origin`, else the only one; a clear error otherwise."""
    remotes = _git(root, "remote").stdout.split()
    if wanted:
        if wanted not in remotes:
            from supervisor.suggest import did_you_mean

            raise UsageError(f"no remote named {wanted!r}", hint=did_you_mean(wanted, remotes) or
                             (f"remotes: {', '.join(remotes)}" if remotes else "this repository has no remote"))
        return wanted
    if not remotes:
        raise SupervisorError("this repository has no remote to push to",
                              hint="add one with `git remote add origin URL`, then push again")
    if "origin" in remotes:
        return "origin"
    if len(remotes) > 1:
        raise UsageError(f"this repository has several remotes ({', '.join(remotes)}); which one?",
                         hint="name it with --remote")
    return remotes[0]


def source_ref(agent: dict[str, Any]) -> str:
    """Where the agent's commits are read here (supervisor.git.agent_refs): its branch for a local agent; for an
    agent on a host, the engine's copy fetched home from there (the user's repository has no such branch)."""
    from supervisor.git.agent_refs import on_host

    return on_host(agent.get("host") or "local", agent["branch"])


def push(agent: dict[str, Any], remote: str) -> None:
    """Push the agent's commits (from where the engine reads them) to `remote` under its branch's name; a local
    branch tracks it."""
    root = _root()
    branch = agent["branch"]
    source = source_ref(agent)
    host = agent.get("host") or "local"
    if _git(root, "rev-parse", "--verify", "-q", f"{source}^{{commit}}").returncode != 0:
        if host == "local":
            raise SupervisorError(f"{agent['name']}: its branch {branch} is not in this repository",
                                  hint=f"`supervisor show {agent['name']}` says what became of it")
        raise SupervisorError(f"{agent['name']}: its commits have not come home from host {host} yet",
                              hint="the engine fetches them as its branch moves there; push again in a moment")
    upstream = ["--set-upstream"] if source == f"refs/heads/{branch}" else []  # a fetched copy tracks nothing
    done = _git(root, "push", *upstream, remote, f"{source}:refs/heads/{branch}")
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["git push failed"])[-1]
        raise SupervisorError(f"pushing {branch} to {remote} failed: {detail}",
                              hint=f"`git push {remote} {source}:refs/heads/{branch}` shows git's whole answer")


def helper_base(agent: dict[str, Any], root: Path, remote: str) -> None:
    """Refuse a helper's pull request, before anything is pushed, when its target (its parent's branch) is not on
    the remote: gh could only fail there after the push."""
    from supervisor.git.refs import agent_of_branch

    target = str(agent["target"]).removeprefix("refs/heads/")
    parent = agent_of_branch(target)
    if parent is None:  # a session's target: the user's own base branch
        return
    found = _git(root, "ls-remote", "--heads", remote, f"refs/heads/{target}")
    if found.returncode != 0:
        detail = (found.stderr.strip().splitlines() or ["git ls-remote failed"])[-1]
        raise SupervisorError(f"cannot tell whether {target} is on {remote}: {detail}",
                              hint=f"`git ls-remote {remote}` shows git's whole answer")
    if not found.stdout.strip():
        raise SupervisorError(
            f"{agent['name']} is a helper of {parent}: its pull request would go into {target}, which {remote} "
            "does not have; nothing was pushed",
            hint=f"`supervisor push {parent}` first, then open it again; or `supervisor merge {agent['name']}` into "
                 f"{parent} and open the pull request of {parent}")


def cmd_push(args: argparse.Namespace) -> int:
    agent = _agent(args.agent)
    remote = remote_of(_root(), args.remote)
    push(agent, remote)
    url = _git(_root(), "remote", "get-url", remote).stdout.strip()
    print(f"{agent['name']}: pushed {agent['branch']} to {remote} ({url})")
    return 0


def cmd_pr(args: argparse.Namespace) -> int:
    agent = _agent(args.agent)
    gh = shutil.which("gh")
    if gh is None:  # said before anything is pushed
        raise SupervisorError("cannot open a pull request: `gh` (the GitHub CLI) is not installed",
                              hint=f"install it (https://cli.github.com) and run `gh auth login`; or "
                                   f"`supervisor push {agent['name']}` and open the pull request on the website")
    remote = remote_of(_root(), args.remote)
    helper_base(agent, _root(), remote)
    push(agent, remote)
    title, body = pr_text(agent, _root())
    command = [gh, "pr", "create", "--head", agent["branch"], "--base", agent["target"], "--title", title,
               "--body-file", "-", *(["--draft"] if args.draft else [])]
    done = subprocess.run(command, cwd=_root(), input=body, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["gh failed"])[-1]
        raise SupervisorError(f"gh could not open the pull request: {detail}",
                              hint=f"the branch is pushed to {remote}; `gh pr create --head {agent['branch']}` "
                                   "shows gh's whole answer")
    print(f"{agent['name']}: pull request {done.stdout.strip()}")
    return 0


def pr_text(agent: dict[str, Any], root: Path) -> tuple[str, str]:
    """The pull request's title (the task's first line) and body (task, commits, audit)."""
    task = (agent.get("task") or "").strip()
    title = (task.splitlines()[0] if task else f"Work of {agent['name']}")[:72]
    log = _git(root, "log", "--reverse", "--format=- %h %s", f"{agent['base']}..{source_ref(agent)}").stdout.strip()
    violations = agent.get("violations") or []
    if violations:
        audit = "\n".join(f"- {v['commit'][:10]} {v['subject']}: outside the contract: {', '.join(v['paths'])}"
                          for v in violations)
    else:
        audit = "Every commit stays within the agent's contract (SESSION.md)."
    check = agent.get("check")
    if check:
        verdict = "passed" if check["passed"] else "failed"
        audit += f"\n\n`{check['command']}` {verdict} on {check['branch_tip'][:10]}."
    body = (f"## Task\n\n{task or '(none given)'}\n\n## Commits\n\n{log or '(none yet)'}\n\n## Audit\n\n{audit}\n\n"
            f"Work of the agent `{agent['name']}` (branch `{agent['branch']}`), opened with supervisor.\n")
    return title, body
