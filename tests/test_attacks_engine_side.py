"""What an agent tries from inside a real pane (a `run:` step of the demo agent) against what runs outside its
sandbox: the sandbox itself when root starts it, and the engine's own work on what the agent left in its worktree
and its CLI folder (git in a nested repository, writes through a link, reads of a FIFO)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import DEMO_AGENT, Sandbox, wait_until
from tests.test_attacks_sandbox import _rogue

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (apt-get install bubblewrap)")


@pytest.mark.skipif(os.getuid() != 0, reason="the hole is root's: bubblewrap run by root keeps every capability")
def test_an_agent_run_by_root_cannot_unmount_its_sandbox(sandbox: Sandbox) -> None:
    """As root, bubblewrap makes no user namespace and drops no capability: `umount` takes every mask away, a
    remount makes `/` writable, and the tmux server's `run-shell` acts as the human, outside every tree."""
    sandbox.sv("start", "victim")
    victim = sandbox.wait_state("victim", "idle", "working")
    paths = sandbox.paths
    main_before = sandbox.git("rev-parse", "main")
    human = (f"cd {sandbox.root} && SUPERVISOR_RUNTIME_DIR={sandbox.runtime} PYTHONPATH={os.getcwd()} "
             f"{sys.executable} -m supervisor stop victim")
    found = _rogue(sandbox, f"""
probe caps "grep -q 'CapEff:.*[1-9a-f]' /proc/self/status"
probe store "umount -l '{paths.state_dir}' && cat '{paths.state_dir}/state.db' >/dev/null"
umount -l /tmp; cd "$PWD"
probe other_worktree "cat '{victim['worktree']}/SESSION.md' >/dev/null"
probe move_main "mount -o remount,bind,rw / && git update-ref refs/heads/main \\$(git commit-tree -m x HEAD^{{tree}})"
probe tmux "tmux -S '{sandbox.tmux_socket}' ls"
probe human_power "tmux -S '{sandbox.tmux_socket}' run-shell '{human}'"
""")
    assert set(found.values()) == {"no"}, found
    assert sandbox.git("rev-parse", "main") == main_before


def test_the_engines_git_status_runs_no_filter_of_a_nested_repository(sandbox: Sandbox) -> None:
    """A nested repository of the agent's, made a gitlink in its own index: the engine's `git status` in the
    agent's worktree (`rm`, `merge`, auto-merge, compare) recurses into it and runs the clean filter its config
    names, as the user, outside the sandbox (it sees the tmux socket)."""
    marker = sandbox.home / "PWNED"
    payload = f"touch {marker}; test -S {sandbox.tmux_socket} && touch {marker}.tmux; cat"
    script = sandbox.root.parent / "sub.sh"
    script.write_text(f"""set -e
export GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@a GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@a
mkdir sub && cd sub && git init -q . && echo hello > f && echo '* filter=evil' > .gitattributes
git add f .gitattributes && git commit -q -m s
git config filter.evil.clean '{payload}'
touch -d 2001-01-01 f && cd ..
git update-index --add --cacheinfo 160000,$(git -C sub rev-parse HEAD),sub
""")
    assert _rogue(sandbox, f'probe planted "sh {script}"\n') == {"planted": "yes"}
    sandbox.sv("stop", "rogue")
    sandbox.sv("rm", "rogue", check=False)  # the human tidies up: `rm` first looks for uncommitted work
    assert not marker.exists() and not marker.with_name("PWNED.tmux").exists()


def test_the_engine_writes_no_file_through_a_link_in_the_agents_cli_folder(sandbox: Sandbox) -> None:
    """The agent's CLI folder is its to write; at its next launch the engine (outside the sandbox) writes
    `.gemini/settings.json.tmp` and `trustedFolders.json.tmp` there following links the agent left: any file of
    the user's is overwritten (`{}`) and made 0600, here one in the user's home and the engine's contract key."""
    precious = sandbox.home / "precious.txt"
    precious.write_text("the user's own file\n")
    key = sandbox.paths.state_dir / "contract.key"
    script = sandbox.root.parent / "rogue.yaml"
    body = (f'mkdir -p "$GEMINI_CLI_HOME/.gemini" && ln -sf {precious} "$GEMINI_CLI_HOME/.gemini/settings.json.tmp" '
            f'&& ln -sf {key} "$GEMINI_CLI_HOME/.gemini/trustedFolders.json.tmp" && echo PLANTED')
    script.write_text(f"start:\n  - {{run: '{body}'}}\nturns: []\n")
    sandbox.sv("start", "rogue", "--agent", "gemini", "--command", f"{DEMO_AGENT} --script {script}")
    wait_until(lambda: "PLANTED" in sandbox.sv("log", "rogue").stdout, message="the links planted")
    assert sandbox.agent("rogue")["isolation"] == "sandbox"
    key_before = key.read_bytes()
    sandbox.sv("restart", "rogue")
    sandbox.wait_state("rogue", "idle", "working", "exited", "failed")
    assert precious.read_text() == "the user's own file\n"
    assert key.read_bytes() == key_before


def test_a_fifo_in_the_agents_cli_folder_never_takes_the_agent_from_the_human(sandbox: Sandbox) -> None:
    """A FIFO where aider keeps its chat history: `restart` opens it to look for a prompt and blocks forever,
    holding the agent's lock, so `stop` and `rm --force` of that agent hang too until the engine is killed."""
    script = sandbox.root.parent / "rogue.yaml"
    script.write_text("start:\n  - {run: 'rm -f \"$AIDER_CHAT_HISTORY_FILE\" && mkfifo \"$AIDER_CHAT_HISTORY_FILE\" "
                      "&& echo PLANTED'}\nturns: []\n")
    sandbox.sv("start", "rogue", "--agent", "aider", "--command", f"{DEMO_AGENT} --script {script}")
    wait_until(lambda: "PLANTED" in sandbox.sv("log", "rogue").stdout, message="the FIFO planted")
    with contextlib.suppress(subprocess.TimeoutExpired):  # the restart: it hangs, but what follows decides
        sandbox.sv("restart", "rogue", check=False, timeout=15)
    sandbox.sv("stop", "rogue", check=False, timeout=15)  # TimeoutExpired while the hole is open
