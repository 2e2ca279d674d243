"""An agent's worktree on a host: the clone brought up to date over the link, worktrees, SESSION.md and guard,
its own code run there, and what is uncommitted there (its commits come home: supervisor/engine/commits_home.py).

Every step is one request over the host's link (`run`, `write`, `git_receive` through bundles.push): a small
`sh` script run on the host with its arguments as words, never pasted into the script. The git of these
scripts runs no hook, no fsmonitor and no filter driver (the clone's configuration and attributes are writable
by the agents there). What the host says when a step fails is named in a SupervisorError, and what the step made
is taken away again.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import shlex
import threading
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from supervisor.core.model import Agent
from supervisor.errors import SupervisorError
from supervisor.git import agent_refs, worktrees
from supervisor.git.worktrees import SUPERVISOR_FILES, GitError
from supervisor.hosts import bundles
from supervisor.hosts.commands import STOPPED, TIMED_OUT, Ran
from supervisor.hosts.link import LinkError
from supervisor.hosts.remote import isolated
from supervisor.hostside.lineage import AGENT_RUNS

if TYPE_CHECKING:
    from supervisor.hosts.link import Link
    from supervisor.hosts.remote.host import RemoteHost

log = logging.getLogger(__name__)

BASES = "refs/supervisor/bases"  # in the host's clone: each agent's base commit, kept until it is removed
EXCLUDE_MARK = "# supervisor: files it writes into agent worktrees (never committed)"
HOOKS = "hooks"  # under the repository's folder on the host: the guard's hooks, shared by its worktrees
GUARD_HOOKS = ("pre-commit", "pre-merge-commit")
# The engine's git on the host: no hook, fsmonitor or auto gc, and every filter driver the configuration of its
# call names (the clone's, the worktree's own: agents can write both, and the attributes that pick a driver)
# emptied, as supervisor/git/environment.py does at home: listed first (`--git-dir=DIR` or `-C DIR` as the call's
# first words say where), then set empty through GIT_CONFIG_COUNT, which outranks every configuration file.
GIT = r"""g() (
  case $1 in
    --git-dir=*) keys=$(git "$1" config --name-only --list 2>/dev/null || true) ;;
    -C) keys=$(git -C "$2" config --name-only --list 2>/dev/null || true) ;;
    *) keys=$(git config --name-only --list 2>/dev/null || true) ;;
  esac
  n=0
  while IFS= read -r key; do
    case $key in
      filter.*.clean|filter.*.smudge|filter.*.process)
        export "GIT_CONFIG_KEY_$n=$key" "GIT_CONFIG_VALUE_$n="
        export "GIT_CONFIG_KEY_$((n + 1))=${key%.*}.required" "GIT_CONFIG_VALUE_$((n + 1))=false"
        n=$((n + 2)) ;;
    esac
  done <<EOF
$keys
EOF
  export GIT_CONFIG_COUNT=$n
  exec git -c core.hooksPath=/dev/null -c core.fsmonitor=false -c core.untrackedCache=false -c gc.auto=0 \
    -c maintenance.auto=false "$@"
)
"""
STEP_TIMEOUT = 120.0
STOP_POLL = 0.1
# What an agent's own command gets of the engine's environment on a host: its identity; the rest (PATH,
# HOME, …) is the host user's own, as the host program has it.
IDENTITY_PREFIX = "SUPERVISOR_"

_MAKE = GIT + r"""set -eu
clone=$1 path=$2 branch=$3 base=$4 within=$5; shift 5
g --git-dir="$clone" config extensions.worktreeConfig true
# With per-worktree configuration, the clone's `core.bare` must be its own, not every worktree's (gitconfig(1)).
if [ "$(g config --file "$clone/config" --get core.bare || true)" = true ]; then
  g config --file "$clone/config.worktree" core.bare true
  g config --file "$clone/config" --unset core.bare
fi
mkdir -p "$clone/info"
if ! grep -qxF "$1" "$clone/info/exclude" 2>/dev/null; then printf '%s\n' "$@" >> "$clone/info/exclude"; fi
if g --git-dir="$clone" rev-parse --verify --quiet "refs/heads/$branch" >/dev/null; then
  echo "branch $branch already exists there" >&2; exit 3
fi
if [ -e "$path" ] || [ -L "$path" ]; then
  if [ -L "$path" ] || [ ! -d "$path" ] || [ -n "$(ls -A "$path")" ]; then
    echo "$path already exists and is not empty" >&2; exit 3
  fi
fi
parent=${path%/*}
if [ -n "$within" ]; then
  top=$(cd "$within" && pwd -P)
  mkdir -p "$parent"
  if [ "$(cd "$parent" && pwd -P)" != "$top${parent#"$within"}" ]; then
    echo "$parent goes through a symbolic link below $within; refusing to make a worktree there" >&2; exit 3
  fi
fi
mkdir -p "$parent"
g --git-dir="$clone" worktree add --quiet -b "$branch" "$path" "$base" >&2
if ! g -C "$path" rev-parse --absolute-git-dir; then
  g --git-dir="$clone" worktree remove --force --force "$path" >&2 || true
  g --git-dir="$clone" branch -D "$branch" >/dev/null 2>&1 || true
  exit 4
fi
"""

_GUARD = GIT + r"""set -eu
worktree=$1 hooks=$2
g -C "$worktree" config --worktree --replace-all core.hooksPath "$hooks"
"""

_REMOVE = GIT + r"""set -u
clone=$1 path=$2 branch=$3 base=$4; shift 4
if [ -d "$clone" ]; then
  if [ -e "$path" ]; then g --git-dir="$clone" worktree remove --force --force "$path" >&2 || rm -rf "$path"; fi
  g --git-dir="$clone" worktree prune >&2
  if g --git-dir="$clone" rev-parse --verify --quiet "refs/heads/$branch" >/dev/null; then
    g --git-dir="$clone" branch -D "$branch" >/dev/null || exit 5
  fi
  g --git-dir="$clone" update-ref -d "$base" >&2 || true
fi
rm -rf "$path" "$@"
[ ! -e "$path" ]
"""

# A branch an earlier make of the same name left when the link dropped mid-way (no record owns it): its worktrees
# (those git lists for it, inside the repository's folder there) removed, then the branch and the base ref.
_CLEAR = GIT + r"""set -u
clone=$1 branch=$2 base=$3 root=$4
g --git-dir="$clone" worktree list --porcelain | while IFS= read -r line; do
  case $line in
    "worktree "*) path=${line#worktree } ;;
    "branch refs/heads/$branch")
      case $path in "$root"/*) g --git-dir="$clone" worktree remove --force --force "$path" >&2 || true ;; esac ;;
  esac
done
g --git-dir="$clone" worktree prune >&2
g --git-dir="$clone" branch -D "$branch" >/dev/null 2>&1 || true
g --git-dir="$clone" update-ref -d "$base" >&2 || true
"""

_STATUS = GIT + r"""set -eu
[ -d "$1" ] || exit 0
cd "$1"
g --no-optional-locks status --porcelain --untracked-files=all --ignore-submodules=dirty
"""

# The worktree's files against commit $2 (new files included, through a copy of its index marked to add them):
# what the host has that the engine does not (edits not committed, commits not fetched yet).
_DIFF = GIT + r"""set -eu
cd "$1"
rev=$2 colour=$3 form=$4
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
index=$(g rev-parse --path-format=absolute --git-path index)
if [ -f "$index" ]; then cp "$index" "$scratch/index"; fi
export GIT_INDEX_FILE="$scratch/index"
if [ -n "$(g ls-files --others --exclude-standard | head -c 1)" ]; then
  g ls-files --others --exclude-standard -z | g add --intent-to-add --pathspec-from-file=- --pathspec-file-nul
fi
g -c core.quotePath=false diff --color="$colour" "$form" --no-ext-diff --no-textconv --ignore-submodules=dirty \
  "$rev" --
"""

# Runs its words (`sh -c COMMAND`, in its sandbox there) with its output and errors together, in the process
# group `run` starts for it, which `cancel` (by the call's key) ends whole: no file an agent could write says
# which processes a stop kills.
_ISOLATED = 'exec "$@" 2>&1'


class RemoteWorktrees:
    def __init__(self, host: RemoteHost) -> None:
        self.host = host

    # the Host methods -----------------------------------------------------------------------------------

    def make_worktree(self, agent: Agent, base: str, within: str | None) -> str:
        link, layout = self.host.link(), self.host.layout()
        base_ref = self._base_ref(agent)
        try:
            there = bundles.heads(link, layout.clone, STEP_TIMEOUT)
            if f"refs/heads/{agent.branch}" in there and not self._owned(agent):
                # left by an earlier start of this name that the link's drop cut short: taken away, looked at again
                log.warning("host %s: branch %s, left by an earlier start of %s, is removed", self.host.name,
                            agent.branch, agent.name)
                self._script(link, _CLEAR, layout.clone, agent.branch, base_ref, layout.root)
                there = bundles.heads(link, layout.clone, STEP_TIMEOUT)
            if f"refs/heads/{agent.branch}" in there:  # said before anything is sent or made
                raise SupervisorError(f"cannot make {agent.name}'s worktree on host {self.host.name}: branch "
                                      f"{agent.branch} already exists there",
                                      hint=f"an earlier {agent.name} left it: `git --git-dir {layout.clone} branch "
                                           f"-D {agent.branch}` on the host, or choose another name")
            bundles.push(link, self.host.paths.root, layout.clone, {base_ref: base})
        except (LinkError, GitError) as exc:
            raise SupervisorError(f"cannot bring the base commit {base[:12]} to host {self.host.name}: "
                                  f"{_said(exc)}") from None
        try:
            done = self._script(link, _MAKE, layout.clone, agent.worktree, agent.branch, base, within or "",
                                EXCLUDE_MARK, *SUPERVISOR_FILES)
        except SupervisorError:
            self._forget_base(link, layout.clone, base_ref)
            raise
        if done["rc"] != 0:
            self._forget_base(link, layout.clone, base_ref)
            raise SupervisorError(f"cannot make {agent.name}'s worktree on host {self.host.name}: "
                                  f"{_last_line(done)}", hint=f"`supervisor hosts check {self.host.name}`")
        return str(done["stdout"]).strip()

    def write_session(self, agent: Agent, contract: str) -> None:
        """SESSION.md, and the guard: the worktree's own `core.hooksPath` names the repository's hooks folder
        on the host, whose pre-commit runs the host client's `guard` (the staged paths checked against the
        contract by the engine). As locally, the guard is advice; the audit at home is the check."""
        link, layout = self.host.link(), self.host.layout()
        what = "SESSION.md"
        try:
            link.call("write", path=posixpath.join(agent.worktree, "SESSION.md"), text=contract,
                      timeout=STEP_TIMEOUT)
            what = "the commit guard"
            hooks = posixpath.join(layout.root, HOOKS)
            script = guard_hook(self.host.channel.client_command())
            for name in GUARD_HOOKS:
                link.call("write", path=posixpath.join(hooks, name), text=script, mode=0o755, timeout=STEP_TIMEOUT)
            done = self._script(link, _GUARD, agent.worktree, hooks)
        except LinkError as exc:
            raise SupervisorError(f"cannot write {what} of {agent.name} on host {self.host.name}: "
                                  f"{_said(exc)}") from None
        if done["rc"] != 0:
            raise SupervisorError(f"cannot install the commit guard of {agent.name} on host {self.host.name}: "
                                  f"{_last_line(done)}")

    def run_isolated(self, agent: Agent, command: str, cwd: str, env: Mapping[str, str], *,
                     timeout: float | None = None, stop: threading.Event | None = None, keep: int = 20) -> Ran:
        """`command` in `cwd` on the host, isolated as the agent is there (isolated.py: CannotIsolate, never less
        isolated than asked), with the agent's identity from `env`; its process group killed past `timeout` or
        once `stop` is set."""
        link, layout = self.host.link(), self.host.layout()
        key = f"{AGENT_RUNS}{agent.name}/{uuid.uuid4().hex}"  # its socket answers this command's processes
        added = {key: value for key, value in env.items() if key.startswith(IDENTITY_PREFIX) or key == "TERM"}
        added["SUPERVISOR_SOCKET"] = layout.socket(agent.name)
        wrapped, added = isolated.wrap_argv(self.host, agent, ["sh", "-c", command], cwd, added)
        answer: dict[str, Any] = {}
        started = time.monotonic()

        def ask() -> None:
            try:
                answer["done"] = link.call(
                    "run", argv=["sh", "-c", _ISOLATED, "sh", *wrapped], key=key, cwd=cwd, env=added,
                    time_limit=timeout,
                    timeout=(timeout or 24 * 3600.0) + STEP_TIMEOUT)
            except LinkError as exc:
                answer["error"] = exc

        asking = threading.Thread(target=ask, name=f"run-{self.host.name}", daemon=True)
        asking.start()
        stopped = cancelled = False
        while asking.is_alive():
            asking.join(STOP_POLL)
            if stop is not None and stop.is_set() and not cancelled and asking.is_alive():
                stopped = True  # until the host has the command (the call may still be on its way), asked again
                cancelled = self._cancel(link, key)
        if "error" in answer:
            raise SupervisorError(f"`{command}` on host {self.host.name}: {_said(answer['error'])}")
        done = answer["done"]
        lines = str(done["stdout"]).splitlines()
        cut = TIMED_OUT if done.get("timed_out") else STOPPED if stopped else None
        return Ran(None if cut else int(done["rc"]), tuple(lines[-keep:]) if keep else (),
                   round(time.monotonic() - started, 1), cut)

    def remove_worktree(self, agent: Agent) -> None:
        """Its worktree, branch and base on the host, and its commits as fetched home (its private ref)."""
        link, layout = self.host.link(), self.host.layout()
        done = self._script(link, _REMOVE, layout.clone, agent.worktree, agent.branch, self._base_ref(agent))
        if done["rc"] != 0:
            raise SupervisorError(f"cannot remove {agent.name}'s worktree on host {self.host.name}: "
                                  f"{_last_line(done)}")
        worktrees.run_git(self.host.paths.root, "update-ref", "-d", agent_refs.branch_ref(agent))

    def remove_state(self, agent: Agent) -> None:
        """Its CLI's own folder on the host (its HOME there, config, sessions) and its spool."""
        link, layout = self.host.link(), self.host.layout()
        done = self._script(link, 'rm -rf "$@"', layout.state(agent.name), layout.spool(agent.name))
        if done["rc"] != 0:
            raise SupervisorError(f"cannot remove {agent.name}'s folders on host {self.host.name}: "
                                  f"{_last_line(done)}")

    # what is uncommitted there ---------------------------------------------------------------------------

    def uncommitted_changes(self, agent: Agent) -> list[str]:
        """`git status --porcelain` lines of its worktree on the host (supervisor's own files excluded)."""
        done = self._script(self.host.link(), _STATUS, agent.worktree)
        if done["rc"] != 0:
            raise SupervisorError(f"cannot read {agent.name}'s worktree on host {self.host.name}: "
                                  f"{_last_line(done)}")
        return [line for line in str(done["stdout"]).splitlines() if line]

    def diff_against(self, agent: Agent, commit: str, *, stat: bool = False, colour: bool = False) -> str:
        """Its worktree on the host against `commit` (edits, new files, and commits home lacks yet)."""
        done = self._script(self.host.link(), _DIFF, agent.worktree, commit, "always" if colour else "never",
                            "--stat" if stat else "--patch")
        if done["rc"] != 0:
            raise SupervisorError(f"cannot show {agent.name}'s changes on host {self.host.name}: "
                                  f"{_last_line(done)}")
        return str(done["stdout"])

    # helpers -----------------------------------------------------------------------------------------------

    def _owned(self, agent: Agent) -> bool:
        """Whether a record of the engine's has its worktree on this host on `agent`'s branch (one being made
        has none yet: its git folder is recorded once the make succeeds)."""
        return any(other.host == self.host.name and other.branch == agent.branch
                   and worktrees.GIT_DIR_KEY in other.extra for other in self.host.store.agents())

    @staticmethod
    def _base_ref(agent: Agent) -> str:
        return f"{BASES}/{agent.branch}"

    def _script(self, link: Link, script: str, *args: str) -> dict[str, Any]:
        """`script` run by sh on the host with `args` as its words → the `run` answer (rc, stdout, stderr)."""
        try:
            done: dict[str, Any] = link.call("run", argv=["sh", "-c", script, "sh", *args], timeout=STEP_TIMEOUT)
        except LinkError as exc:
            raise SupervisorError(f"host {self.host.name}: {_said(exc)}") from None
        return done

    def _forget_base(self, link: Link, clone: str, ref: str) -> None:
        # a ref left in the clone keeps one commit; the next make of that agent replaces it
        with contextlib.suppress(LinkError):
            link.call("run", argv=["git", "--git-dir", clone, "update-ref", "-d", ref], timeout=STEP_TIMEOUT)

    @staticmethod
    def _cancel(link: Link, key: str) -> bool:
        """End the command of the `run` call given `key` (its whole process group, as the host program started
        it) → whether it was running there."""
        try:
            return bool(link.call("cancel", key=key, timeout=STEP_TIMEOUT).get("cancelled"))
        except (LinkError, AttributeError):
            return False


def guard_hook(client: list[str]) -> str:
    """The guard's hook script on the host: the host client's `guard`."""
    return ("#!/bin/sh\n# supervisor's commit guard: the staged paths checked against the agent's contract\n"
            f"exec {shlex.join([*client, 'guard'])}\n")


def _said(exc: SupervisorError) -> str:
    return exc.message.partition(": ")[2] if isinstance(exc, LinkError) and ": " in exc.message else exc.message


def _last_line(done: Mapping[str, Any]) -> str:
    lines = str(done.get("stderr") or "").strip().splitlines()
    return lines[-1] if lines else f"exit status {done.get('rc')}"
