"""A helper on a host merged into its parent, whose branch is checked out in the parent's worktree on that host.

As a local merge does (supervisor/git/merge.py), never disturbing uncommitted work: the merge is computed here,
from commits the engine holds (the helper's, audited; the parent's, brought home first when its branch moved
there), as objects only. The result is pushed into the host's clone, and there, in the parent's worktree, with
its index locked (`index.lock`, as git does), a two-tree `read-tree -m -u OLD NEW` on a copy of the index moves
its files, and the branch moves by compare-and-swap; a local change in the way, or a branch that moved, leaves
everything as it was and says so. The parent's branch here (its private ref) then holds the result: the
helper's work is the parent's commits, at home as on the host. The git there runs no hook, fsmonitor or
filter driver (worktrees.GIT).

Every agent of a tree runs on one host (a helper starts on its parent's), so a helper whose parent is on
another host (a record from elsewhere) is refused, in one line.
"""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.core.model import Agent
from supervisor.errors import SupervisorError
from supervisor.git import agent_refs, worktrees
from supervisor.git.merge import MergeResult, plan_merge
from supervisor.git.worktrees import GitError
from supervisor.hosts import bundles
from supervisor.hosts.link import LinkError
from supervisor.hosts.remote.worktrees import GIT, STEP_TIMEOUT

if TYPE_CHECKING:
    from supervisor.hosts.remote.host import RemoteHost

MERGES = "refs/supervisor/merges"  # in the host's clone: a merge's result while it is applied there

_APPLY = GIT + r"""set -u
wt=$1 branch=$2 old=$3 new=$4 reflog=$5 clone=$6 keep=$7
drop() { g --git-dir="$clone" update-ref -d "$keep" >/dev/null 2>&1 || true; }
if ! cd "$wt" 2>/dev/null; then drop; echo "its worktree $wt is not there" >&2; exit 3; fi
gitdir=$(g rev-parse --absolute-git-dir) || { drop; exit 3; }
head=$(g symbolic-ref -q HEAD || true)
if [ "$head" != "refs/heads/$branch" ]; then
  drop; echo "its worktree $wt is not on $branch (HEAD: ${head:-detached})" >&2; exit 4
fi
lock=$gitdir/index.lock scratch=$gitdir/index.supervisor-merge
if ! (set -C; : > "$lock") 2>/dev/null; then
  drop; echo "the index of $wt is locked by another git process ($lock exists)" >&2; exit 5
fi
trap 'rm -f "$lock" "$scratch" "$scratch.err"; drop' EXIT
if [ "$(g rev-parse --verify -q "refs/heads/$branch")" != "$old" ]; then
  echo "$branch moved while merging" >&2; exit 6
fi
if [ -f "$gitdir/index" ]; then cp "$gitdir/index" "$scratch"; else rm -f "$scratch"; fi
export GIT_INDEX_FILE="$scratch"
g update-index -q --ignore-submodules --refresh >/dev/null 2>&1 || true
if ! g read-tree -m -u "$old" "$new" 2>"$scratch.err"; then
  unset GIT_INDEX_FILE
  echo changed; g -c core.quotePath=false diff-tree -r --no-renames --name-only "$old" "$new"
  echo local; g -c core.quotePath=false --no-optional-locks status --porcelain --untracked-files=all | cut -c4-
  tail -n 1 "$scratch.err" >&2
  exit 7
fi
if ! g update-ref -m "$reflog" "refs/heads/$branch" "$new" "$old"; then
  g read-tree -m -u "$new" "$old" >/dev/null 2>&1 || echo "restoring the files in $wt failed" >&2
  echo "$branch moved while merging (nothing merged)" >&2; exit 6
fi
mv "$scratch" "$gitdir/index"
"""


def parent_of(agent: Agent, parent: Agent | None) -> Agent:
    """The parent a remote helper merges into: there, on the same host, on the branch it targets."""
    if parent is None:
        raise SupervisorError(f"{agent.name} merges into its parent {agent.parent}, which is gone")
    if parent.host != agent.host:
        raise SupervisorError(f"{agent.name} runs on host {agent.host} and its parent {parent.name} on "
                              f"{parent.host}: a helper is merged only on its parent's host")
    if parent.branch != agent.target:
        raise SupervisorError(f"{agent.name} merges into {agent.target}, which is not its parent's branch")
    return parent


def merge_into_parent(host: RemoteHost, helper: Agent, parent: Agent, message: str, *, expected_tip: str,
                      expected_target: str | None = None) -> MergeResult:
    """Merge `helper`'s branch (as fetched home, audited at `expected_tip`) into `parent`'s on the host, its
    worktree there moved along; the parent's branch here then holds the result."""
    root = host.paths.root
    into = agent_refs.branch_ref(parent)
    try:
        link, layout = host.link(), host.layout()
        _parent_home(host, parent)
        plan = plan_merge(root, agent_refs.branch_ref(helper), into, message, expected_tip=expected_tip,
                          expected_target=expected_target)
        if plan is None:
            return MergeResult(worktrees.resolve(root, into), fast_forward=False, already_merged=True,
                               updated_worktree=None)
        keep = f"{MERGES}/{secrets.token_hex(6)}"
        bundles.push(link, root, layout.clone, {keep: plan.new})
        done = link.call("run", argv=["sh", "-c", _APPLY, "sh", parent.worktree, parent.branch, plan.old, plan.new,
                                      f"supervisor merge {helper.branch}: "
                                      f"{'fast-forward' if plan.fast_forward else 'merge'}", layout.clone, keep],
                         timeout=STEP_TIMEOUT)
    except LinkError as exc:
        raise SupervisorError(f"{helper.name} is not merged: host {host.name}: {exc.message}") from None
    if done["rc"] != 0:
        raise _refused(host, helper, parent, done)
    # The parent's branch here holds the result (unless the fetch of its commits moved it past it already).
    with contextlib.suppress(GitError):
        worktrees.run_git(root, "update-ref", "-m", f"supervisor merge {helper.branch}", into, plan.new, plan.old)
    return MergeResult(plan.new, plan.fast_forward, already_merged=False, updated_worktree=Path(parent.worktree))


def _parent_home(host: RemoteHost, parent: Agent) -> None:
    """The parent's branch here as it is on the host now (its commits fetched when it moved there)."""
    link, layout = host.link(), host.layout()
    ref = f"refs/heads/{parent.branch}"
    there = bundles.heads(link, layout.clone, STEP_TIMEOUT).get(ref)
    if there is None:
        raise SupervisorError(f"{parent.name}'s branch {parent.branch} is not on host {host.name}")
    try:
        here = worktrees.resolve(host.paths.root, agent_refs.branch_ref(parent))
    except GitError:
        here = None
    if here != there:
        bundles.fetch(link, host.paths.root, layout.clone, [ref], agent_refs.host_namespace(host.name),
                      have=[parent.base] if bundles.valid_sha(parent.base) else [])


def _refused(host: RemoteHost, helper: Agent, parent: Agent, done: dict[str, object]) -> SupervisorError:
    said = str(done.get("stderr") or "").strip().splitlines()
    last = said[-1] if said else f"exit status {done.get('rc')}"
    where = f"{parent.worktree} on host {host.name}"
    if done.get("rc") == 7:  # the files could not move: name the local changes in the way
        out = str(done.get("stdout") or "").splitlines()
        split = out.index("local") if "local" in out else len(out)
        touched = sorted(set(out[1:split]) & set(out[split + 1:]))
        what = (f"local changes in {where} touch paths the merge changes: {', '.join(touched)}" if touched else
                f"cannot update {where}: {last}")
        return GitError(f"{helper.name} is not merged into {parent.branch}: {what}",
                        hint=f"{parent.name} commits or stashes those changes there, then merge again")
    hint = "run the merge again" if done.get("rc") == 6 else None
    return GitError(f"{helper.name} is not merged into {parent.branch}: {last}", hint=hint)
