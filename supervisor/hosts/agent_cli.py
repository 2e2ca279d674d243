"""Where an agent's CLI must live on a host: on the PATH an ssh command gets there (which is the PATH its pane
gets, after its `supervisor`), and outside what an agent's sandbox there hides — the host's `dir` (every
repository's clone, worktrees and agents' folders; when `dir` holds the host user's home, as `dir: ~` does, the
home stays readable and only this repository's folder in it is hidden: `hidden_parts`, which the sandbox's own
spec uses, supervisor/hosts/remote/isolated.py) and the credentials under the home (MASKED_IN_HOME). A CLI
installed in a hidden place is found by the host user but cannot start in the sandbox.

`hosts check` looks for the program of `agent.command` (check.py runs WHERE_SH in its script); `start --host`
looks for the agent's own (supervisor/hosts/remote/panes.py `missing_program`); both word what is wrong and the
fix from here.
"""

from __future__ import annotations

import posixpath
import shlex
from typing import Final

from supervisor.hostside.sandbox import MASKED_IN_HOME

# sh functions: `where PROGRAM` prints where PROGRAM is on this PATH (symbolic links resolved; `~/` is the home;
# a builtin by its name) or fails; `real PATH` prints PATH with its links resolved (as it is when it cannot).
WHERE_SH: Final = r"""real() { readlink -f "$1" 2>/dev/null || printf '%s\n' "$1"; }
where() {
  case $1 in "~/"*) set -- "$HOME/${1#"~/"}" ;; esac
  case $1 in
    */*) [ -x "$1" ] && [ ! -d "$1" ] || return 1; w=$1 ;;
    *) w=$(command -v "$1" 2>/dev/null) || return 1 ;;
  esac
  case $w in */*) real "$w" ;; *) printf '%s\n' "$w" ;; esac
}
"""
# run with `sh -c FIND sh PROGRAM DIR`: where PROGRAM is, then DIR and the home with their links resolved
FIND: Final = WHERE_SH + 'where "$1" || echo; real "$2"; real "$HOME"\n'


def program_of(command: str) -> str | None:
    """The program a simple command line runs (its first word); None for shell syntax, where the shell decides
    (and its exit status says)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if not words or any(ch in command for ch in ";|&$`()<>") or "=" in words[0]:
        return None
    return words[0]


def hidden_parts(host_dir: str, home: str | None, root: str | None) -> list[str]:
    """The folders of the host's `dir` an agent's sandbox there hides whole: `dir` itself (every repository's folder
    in it), unless it holds the host user's home (`dir: ~`), which stays readable as on this machine (programs
    installed under it keep working): then the repository's own folder there (`root`: `dir/<repo>-<hash>`, when
    known)."""
    if not holds_home(host_dir, home):
        return [host_dir]
    return [root] if root else []


def holds_home(host_dir: str, home: str | None) -> bool:
    """Whether the host's `dir` holds the host user's home (`dir: ~`; an unknown home counts as held: nothing of
    it is hidden whole)."""
    return not home or _within(home, host_dir)


def hidden_by_sandbox(path: str, host_dir: str, home: str | None, root: str | None = None) -> str | None:
    """What of an agent's sandbox on the host hides `path` (all resolved, on the host; `root`: the repository's
    folder there, when known), in words; None when the agent sees it there."""
    if not path.startswith("/"):
        return None  # a shell builtin
    for part in hidden_parts(host_dir, home, root):
        if _within(path, part):
            where = "under the host's dir" if part == host_dir else "in the repository's folder under the host's dir"
            return f"it lies {where} ({part}), which an agent's sandbox there hides"
    if home:
        masked = next((name for name in MASKED_IN_HOME if _within(path, posixpath.join(home, name))), None)
        if masked is not None:
            return f"it lies under ~/{masked}, which an agent's sandbox hides (credentials)"
    return None


def fix(host: str, host_dir: str, root: str | None = None) -> str:
    """Where to put the CLI, in a line (`root`: the repository's folder there, when that is what is hidden of a
    `dir` that holds the home)."""
    outside = f"this repository's folder there ({root})" if root else f"its dir ({host_dir})"
    return (f"install it on host {host} outside {outside}, e.g. in /usr/local/bin or ~/.local/bin, on "
            "the PATH an ssh command gets there, or name it by its full path in the command; "
            f"`supervisor hosts check {host}` looks")


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")
