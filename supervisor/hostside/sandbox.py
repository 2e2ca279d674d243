"""An agent's sandbox: what it sees of the machine, as a bubblewrap command line built from a `Spec`.

One core for every machine: it imports only the standard library, so the engine builds a sandbox of this machine
with it (supervisor/hosts/sandbox.py, local.py) and the host program builds one of its host with the same code
(sandbox_op.py), every path resolved where the sandbox runs.

The agent sees the machine read-only, with private /proc, /dev and /tmp and a PID namespace of its own (ending
its first process ends every process in it), and on top of that:
- its own worktree read-write; inside it, `.sub-agents/` (its helpers' worktrees, also those made after its
  launch) hidden but for its `status.yaml` (read-only) and `messages/` (read-write);
- the git common dir read-only, but its own ref folder, that folder's reflogs and its worktree's own git folder
  (`.git/worktrees/<id>/`: HEAD, index, its config.worktree) writable; the shared config and hooks stay
  read-only, and no other ref can move;
- at the repository's `objects/`, its own object folder, read-write (where its git writes every object it
  makes), and the shared object store read-only elsewhere, named by that folder's `info/alternates`
  (supervisor/git/object_folders.py): no pack or object main needs can be rewritten, truncated or removed;
- none of the supervisor's state (store, logs, transcripts) but its own CLI folder (read-write) and the
  commit guard's hooks (read-only); no runtime folder of the user's (every repository's engine and tmux
  sockets, `$XDG_RUNTIME_DIR` with the user's bus and agents' sockets, `$TMUX_TMPDIR`) but the agent's own
  runtime folder, read-only (its own socket to the engine: connecting to a socket needs no writable mount; and
  the contract its commit guard reads, which it must not rewrite), with the `spool/` in it writable (its hook's
  events while the engine is down);
- neither the repository's main worktree nor any other agent's worktree;
- a HOME of its own (the user's `~/.gitconfig` read-only in it, and what its CLI needs of the user's home:
  `home_read` read-only, `home_seed` copied in once by `local.prepare`); the user's real home stays readable, so
  programs installed under it keep working, less the credentials in it (`MASKED_IN_HOME`), which no entry of
  the CLI's ever carries in.

Run by root, bubblewrap makes no user namespace of its own and leaves the agent every capability (it could
unmount what hides the store, remount `/` writable): as root, the sandbox is also a user namespace in which the
agent is `nobody` (`AS_ROOT_ID`) with no capability; that uid maps back to root, so what it makes in its worktree
is root's. Its group is `nogroup` outside too, and root's groups are dropped before bubblewrap starts: with
group 0 mapped in, bubblewrap would cover parts of the sandbox's `/proc`, and a CLI's own bubblewrap (its tool
sandbox) could then mount no `/proc` of its own.

Later mounts cover earlier ones, so the order of `argv` is: the machine and the folders the user adds, what is
hidden, then what is given back inside the hidden parts. Every path is resolved first: bubblewrap cannot mount
onto a path that goes through a symbolic link (a stow-managed `~/.ssh -> /elsewhere`), and hiding the link's
target hides what it points at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

# A file at the state folder's place no process inside can remove: an engine never starts in there.
SANDBOX_MARK = ".inside-an-agent-sandbox"
NOT_INSTALLED = "bubblewrap is not installed"  # probe's words
DOES_NOT_RUN = "bubblewrap does not run"
# Credentials and keys under the user's home that no agent needs: hidden even though the home stays readable.
MASKED_IN_HOME = (".ssh", ".aws", ".config/gcloud", ".azure", ".kube", ".docker", ".gnupg", ".netrc",
                  ".git-credentials", ".password-store", ".config/gh", ".config/hub", ".npmrc", ".pypirc",
                  ".cargo/credentials", ".cargo/credentials.toml", ".vault-token", ".terraform.d",
                  ".local/share/keyrings", ".m2/settings.xml")
GITCONFIG = ".gitconfig"
# With no object folder of its own (`Spec.objects` None): what of the shared store stays read-only, so that its
# git can add loose objects but rewrite no pack and name no alternate store.
SHARED_LOOSE_READ_ONLY = ("pack", "info")
# As root: the agent's uid and gid inside (`nobody`, `nogroup`: names every system has, which CLIs that look
# their user up find), and the group bubblewrap runs with outside.
AS_ROOT_ID = 65534
_SET_GROUP = "import os,sys;os.setgroups([]);os.setgid(int(sys.argv[1]));os.execvp(sys.argv[2],sys.argv[2:])"


@dataclass(frozen=True)
class Spec:
    """Everything the sandbox of one agent is made of (absolute paths)."""

    worktree: Path  # the agent's own worktree: read-write
    common_dir: Path  # the repository's git common dir: read-only but for the writable parts below
    worktree_git_dir: Path  # common_dir/worktrees/<id>: the worktree's HEAD, index and own config
    ref_folder: Path  # common_dir/refs/heads/agent/<name>: the only refs it may move
    # its own object folder: shown read-write at common_dir/objects; None: the shared store's loose objects
    # writable in place, its packs and `info/` (alternates) read-only (a host's clone: see SHARED_LOOSE)
    objects: Path | None
    shared_objects: Path | None  # where the shared store (common_dir/objects) is shown read-only, in state_dir
    state_dir: Path  # the supervisor's state (store, logs, transcripts): hidden
    own_state: Path  # the agent's CLI folder inside it: read-write
    guard_hooks: Path  # the commit guard's hooks inside it: read-only
    runtime_dirs: tuple[Path, ...]  # every runtime folder of the user's (sockets): hidden
    own_runtime: Path  # the agent's runtime folder inside it (its socket, its contract.json): read-only
    own_spool: Path  # the spool folder in own_runtime: read-write
    root_worktree: Path  # the user's main worktree: hidden
    worktrees_dir: Path  # where the sessions' worktrees are: hidden
    home: Path  # the agent's own HOME (a folder of its own_state)
    real_home: Path | None = None  # the user's home: stays readable, less MASKED_IN_HOME
    network: bool = True  # False: a network namespace of its own (loopback only)
    readable: tuple[Path, ...] = ()  # shown read-only even inside hidden parts (PATH folders, the installation)
    helpers: Path | None = None  # worktree/.sub-agents: hidden, less its status file and messages folder
    helpers_status: str = "status.yaml"
    helpers_messages: str = "messages"
    extra_read: tuple[Path, ...] = ()  # the user's own additions (`sandbox.read`); hidden parts stay hidden
    extra_write: tuple[Path, ...] = ()  # the same, writable (`sandbox.write`)
    home_read: tuple[str, ...] = ()  # in real_home: shown read-only at the same place in home (Profile.home_read)
    home_seed: tuple[str, ...] = ()  # in real_home: copied into home once, when absent (Profile.home_seed)
    runtime: bool = True  # False: own_runtime hidden too (a command the engine runs for it: no socket, no spool)
    hidden: tuple[Path, ...] = ()  # hidden besides (a host program's own folder)
    # shown read-only even inside hidden parts: the host program it runs hooks with, the folder of its
    # `supervisor` command there
    programs: tuple[Path, ...] = ()

    @property
    def log_folder(self) -> Path:
        """The reflogs of the agent's refs: git writes them beside each ref update."""
        return self.common_dir / "logs" / self.ref_folder.relative_to(self.common_dir)


def folders_to_create(spec: Spec) -> list[Path]:
    """Folders bound into the sandbox that must exist before it starts (bubblewrap cannot bind a missing one)."""
    return [spec.ref_folder, spec.log_folder, *([spec.objects] if spec.objects is not None else []), spec.own_state,
            spec.own_runtime, spec.own_spool, spec.home]




def launcher(bwrap: str = "bwrap", root: bool | None = None) -> list[str]:
    """How bubblewrap is started: as itself, or as root (`root` None: whether this process is) with root's
    groups dropped and a user namespace in which the agent is `nobody`, with no capability."""
    if not (os.geteuid() == 0 if root is None else root):
        return [bwrap]
    setpriv = shutil.which("setpriv")
    group = ([setpriv, f"--regid={AS_ROOT_ID}", "--clear-groups"] if setpriv is not None
             else [sys.executable, "-I", "-S", "-c", _SET_GROUP, str(AS_ROOT_ID)])
    return [*group, bwrap, "--unshare-user", "--uid", str(AS_ROOT_ID), "--gid", str(AS_ROOT_ID)]


def probe(bwrap: str | None = None) -> tuple[str | None, str | None]:
    """Whether bubblewrap can make a sandbox here, started as agents' sandboxes are (as root: in a user namespace
    of its own, which the machine may refuse): its path, or None and why not (one line)."""
    found = bwrap or shutil.which("bwrap")
    if found is None:
        return None, NOT_INSTALLED
    try:
        done = subprocess.run([*launcher(found), "--die-with-parent", "--unshare-pid", "--ro-bind", "/", "/",
                               "--dev", "/dev", "--proc", "/proc", "--", "true"],
                              capture_output=True, text=True, timeout=10, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"{DOES_NOT_RUN}: {exc}"
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return None, f"bubblewrap cannot create namespaces here ({said})"
    return found, None


def user_runtime_folders() -> list[Path]:
    """This user's folders of sockets that every sandbox hides: `/run/user/UID`, the XDG runtime folder (the
    user's bus, gpg and ssh agents, podman), tmux's own."""
    found = [Path(f"/run/user/{os.getuid()}")]
    found += [Path(os.environ[name]) for name in ("XDG_RUNTIME_DIR", "TMUX_TMPDIR")
              if os.path.isabs(os.environ.get(name, ""))]
    return [path for path in found if path.resolve() != Path("/")]


def argv(spec: Spec, command: list[str], bwrap: str = "bwrap", root: bool | None = None) -> list[str]:
    """The bubblewrap command line that runs `command` (a program and its arguments) in the agent's sandbox.
    Paths that do not exist are left out (nothing there to show or hide), so build it once they are made."""
    real = _Resolver()  # each path resolved once per command line (a start's cost: a hundred resolves, cut by half)
    args = [*launcher(bwrap, root), "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    if not spec.network:
        args.append("--unshare-net")
    args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for path in spec.extra_read:
        args += _bind("--ro-bind", path, real)
    for path in spec.extra_write:
        args += _bind("--bind", path, real)
    if spec.real_home is not None:
        for name in MASKED_IN_HOME:
            args += _mask(spec.real_home / name, real)
    for path in (spec.root_worktree, spec.worktrees_dir, *spec.runtime_dirs, *spec.hidden):
        args += _mask(path, real)
    args += _bind("--ro-bind", spec.common_dir, real)  # again: it usually sits in the main worktree just hidden
    for path in (spec.ref_folder, spec.log_folder, spec.worktree_git_dir):
        args += _bind("--bind", path, real)
    shared = real(spec.common_dir / "objects")
    if spec.objects is not None:
        args += ["--bind", str(real(spec.objects)), str(shared)]  # its own objects where its git looks
    else:  # new loose objects in place; what the engine brought (packs) and the alternates stay as they are
        args += _bind("--bind", shared, real)
        for kept in SHARED_LOOSE_READ_ONLY:
            args += _bind("--ro-bind", shared / kept, real)
    args += _mask(spec.state_dir, real)
    if spec.objects is not None and spec.shared_objects is not None:  # a bind's source is the host's path
        args += ["--ro-bind", str(shared), str(real(spec.shared_objects))]
    # A mark no process inside can remove: an engine never starts in here (it would see none of the store,
    # the tmux server or the agents, and answer about a world of its own).
    args += ["--ro-bind", "/dev/null", str(spec.state_dir / SANDBOX_MARK)]
    args += _bind("--bind", spec.own_state, real)
    args += _bind("--ro-bind", spec.guard_hooks, real)
    if spec.runtime:
        args += _bind("--ro-bind", spec.own_runtime, real)  # connecting to a socket needs no writable mount
        args += _bind("--bind", spec.own_spool, real)
    args += _bind("--bind", spec.worktree, real)
    if spec.helpers is not None:
        args += _mask(spec.helpers, real)
        args += _bind("--ro-bind", spec.helpers / spec.helpers_status, real)
        args += _bind("--bind", spec.helpers / spec.helpers_messages, real)
    for path in unique((*_readable(spec, real), *spec.programs)):
        args += _bind("--ro-bind", path, real)
    home = real(spec.home)
    if spec.real_home is not None and (spec.real_home / GITCONFIG).is_file():
        args += ["--ro-bind", str(real(spec.real_home / GITCONFIG)), str(home / GITCONFIG)]
    for source, name in from_home(spec, spec.home_read, real):
        args += ["--ro-bind", str(source), str(home / name)]
    args += ["--chdir", str(real(spec.worktree)), "--setenv", "HOME", str(spec.home), "--", *command]
    return args


class _Resolver:
    """`Path.resolve`, each path resolved once (for one command line: the folders do not change meanwhile)."""

    def __init__(self) -> None:
        self.known: dict[Path, Path] = {}

    def __call__(self, path: Path) -> Path:
        found = self.known.get(path)
        if found is None:
            found = self.known[path] = path.resolve()
        return found


def _readable(spec: Spec, real: Callable[[Path], Path] = Path.resolve) -> list[Path]:
    """The `readable` paths that hold nothing hidden (showing a PATH entry of `/tmp` must not show the store in
    it) and lie in nothing hidden but the main worktree (a virtualenv there is fine; the store is not)."""
    hidden = [spec.state_dir, *spec.runtime_dirs, *spec.hidden, spec.common_dir, spec.worktrees_dir,
              *([spec.helpers] if spec.helpers is not None else [])]
    if spec.real_home is not None:
        hidden += [spec.real_home / name for name in MASKED_IN_HOME]
    hidden = [real(h) for h in hidden]
    root = real(spec.root_worktree)
    return [path for path in (real(p) for p in spec.readable)
            if not _within(root, path) and not any(_within(path, h) or _within(h, path) for h in hidden)]


def from_home(spec: Spec, names: Iterable[str], real: Callable[[Path], Path] = Path.resolve) -> list[tuple[Path, str]]:
    """The entries of the user's home named (relative paths) that exist, each resolved, with its name: none that
    is, holds or lies in a masked one, nor any that leaves the home (`..`, an absolute name)."""
    if spec.real_home is None:
        return []
    home = real(spec.real_home)
    masked = [real(home / name) for name in MASKED_IN_HOME]
    found = []
    for name in names:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            continue
        source = real(home / name)
        if source.exists() and not any(_within(source, m) or _within(m, source) for m in masked):
            found.append((source, name))
    return found


def _within(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or lies in it (both absolute and normalized, as resolved paths are). Compared as
    text: `folder in path.parents` builds and compares every parent, and argv asks this hundreds of times."""
    inner, outer = str(path), str(folder)
    return inner == outer or inner.startswith(outer if outer.endswith("/") else outer + "/")


def _mask(path: Path, real: Callable[[Path], Path] = Path.resolve) -> list[str]:
    """Hide `path` (what it leads to): an empty tmpfs over a folder, an empty file over a file; nothing when it
    does not exist."""
    path = real(path)
    if path.is_dir():
        return ["--tmpfs", str(path)]
    if path.exists():
        return ["--ro-bind", "/dev/null", str(path)]
    return []


def _bind(kind: str, path: Path, real: Callable[[Path], Path] = Path.resolve) -> list[str]:
    path = real(path)
    return [kind, str(path), str(path)] if path.exists() else []


def unique(paths: Iterable[Path]) -> tuple[Path, ...]:
    """`paths` without repeats, in order."""
    return tuple(dict.fromkeys(paths))
