"""An agent on a host held to the same rules as one here, against the real sshd host box1 (tests/remotes.py):

- its CLI's conversation id read from the files it keeps in its folder there (Codex's rollouts, Gemini CLI's chats,
  aider's history), through the link, by the local rules (regular files only, below its folder, through no link),
  so `restart` and `restore` resume that conversation by its id there (`restart` reads it there itself when no
  watch of the host had yet);
- `escape`: a process of its tree working in another agent's worktree there (its working directory read on the
  host with its process tree);
- `tamper`: its branch moved on the host to commits its worktree did not make (an `update-ref` from outside it, a
  reset onto another agent's commits), judged at home, its merge refused until a human accepts it; `boundary` when
  its worktree there leaves its branch, `on_branch` when it is back.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from supervisor.agents import get_profile
from supervisor.agents.reader import Entry, Reader
from supervisor.core.model import Agent
from supervisor.engine.host_sessions import HostSessions
from supervisor.hosts.remote.reader import LinkReader
from tests.conftest import wait_until
from tests.remotes import HOST, SOURCE, Remote, remote_fixture  # noqa: F401  (the fixture)
from tests.sshd import SshHosts

FAKE_CODEX = SOURCE / "tests" / "fixtures" / "codex" / "fake_codex.py"
FIXTURES = Path(__file__).parent / "fixtures"
(CHAT,) = sorted((FIXTURES / "gemini" / "chats").glob("session-*.jsonl"))
GEMINI_ID = json.loads(CHAT.read_text().splitlines()[0])["sessionId"]

IDLE = """\
turns:
  - [say: "READY-FOR-WORK"]
  - [say: "SECOND-DONE"]
"""


def events(remote: Remote, name: str, kind: str) -> list[dict[str, Any]]:
    return [event for event in remote.request("events", name=name, limit=1000) if event.get("kind") == kind]


def triggers(remote: Remote, name: str, trigger: str) -> list[dict[str, Any]]:
    return [event for event in events(remote, name, "trigger") if event.get("trigger") == trigger]


class Heard:
    """A reader that notes the files read through it."""

    def __init__(self, reader: LinkReader, read: list[str]) -> None:
        self.reader, self.read = reader, read

    def head(self, path: str, limit: int) -> bytes | None:
        self.read.append(path)
        return self.reader.head(path, limit)

    def first_line(self, path: str, limit: int) -> bytes | None:
        self.read.append(path)
        return self.reader.first_line(path, limit)

    def folders(self, folder: str) -> list[str]:
        return self.reader.folders(folder)

    def entries(self, folder: str, within: str) -> list[Entry]:
        return self.reader.entries(folder, within)


def argv_on_host(remote: Remote, pid: int) -> list[list[str]]:
    """The command lines of the process tree under `pid` on the host."""
    return [list(info["argv"]) for info in remote.link().call("ps", pids=[pid])]


# conversation ids ----------------------------------------------------------------------------------------------


def test_a_codex_agent_on_a_host_is_restarted_and_restored_in_its_own_conversation(remote: Remote,
                                                                                    ssh_hosts: SshHosts) -> None:
    box = remote.sandbox
    state = None
    try:
        remote.request("start", name="cx", task="hello from afar", command=f"python3 {FAKE_CODEX}",
                       profile="codex", host=HOST)
        state = remote.host().layout().state("cx")
        wait_until(lambda: "• Done." in remote.request("screen", name="cx")["text"], timeout=40,
                   message="its first turn")
        # The id is the one Codex wrote on the host, read there through the link.
        session = wait_until(lambda: box.agent("cx").get("session_id"), timeout=30, message="its conversation's id")
        assert remote.on_host("find", f"{state}/sessions", "-name", f"rollout-*-{session}.jsonl").strip()

        before = box.agent("cx")["pid"]
        box.sv("restart", "cx")
        # Its new process, idle: the record may still show the old one, idle, for a moment.
        pid = wait_until(lambda: (agent := box.agent("cx"))["state"] == "idle" and agent["pid"] != before
                         and agent["pid"], timeout=40, message="restarted")
        assert any(argv[-3:] == ["resume", "--", session] for argv in argv_on_host(remote, int(pid)))
        wait_until(lambda: "› hello from afar" in remote.request("screen", name="cx")["text"], timeout=30,
                   message="the conversation shown again")
        assert remote.on_host("cat", f"{state}/prompts.log") == "hello from afar\n"  # resumed: not told again

        layout = remote.host().layout()
        ssh_hosts.ssh(HOST, "tmux", "-S", layout.tmux_socket, "kill-server")
        wait_until(lambda: "cx" in remote.request("restorable")["agents"], timeout=30, message="cx restorable")
        restored = remote.request("restore", names=["cx"])
        assert [(agent["resumed"], agent["session_id"]) for agent in restored["restored"]] == [(True, session)]
        wait_until(lambda: "› hello from afar" in remote.request("screen", name="cx")["text"], timeout=30,
                   message="the conversation shown again after the restore")
        assert remote.on_host("cat", f"{state}/prompts.log") == "hello from afar\n"
    finally:
        if state is not None:  # its tool daemon outlives its panes (as Codex's does): ended here
            ssh_hosts.ssh(HOST, "sh", "-c", f'kill $(cat {shlex.quote(state)}/app-server.pid '
                          f'{shlex.quote(state)}/tool.pid) 2>/dev/null', check=False)


def test_gemini_and_aider_files_on_a_host_are_read_by_the_local_rules(remote: Remote) -> None:
    """The profiles' own code through the host's reader: the newest conversation with a message in it; never one
    reached through a link, nor a FIFO waited on, nor a file outside the agent's folder."""
    remote.request("start", name="gm", task="first", command=remote.claude("gm", IDLE), profile="claude",
                   host=HOST)
    remote.sandbox.wait_state("gm", "idle", timeout=30)
    layout = remote.host().layout()
    state, other = layout.state("gm"), f"{layout.root}/elsewhere"
    link = remote.link()
    reader = LinkReader(link, state)
    gemini, aider = get_profile("gemini"), get_profile("aider")
    chat = CHAT.read_text()
    began = json.loads(chat.splitlines()[0])["startTime"]
    since = datetime.fromisoformat(began.replace("Z", "+00:00")).timestamp() - 5
    chats = f"{state}/.gemini/tmp/project/chats"

    # Elsewhere on the host, reached through a link from the agent's folder: not its conversation.
    remote.on_host("mkdir", "-p", f"{other}/chats", f"{state}/.gemini/tmp")
    link.call("write", path=f"{other}/chats/{CHAT.name}", text=chat, timeout=30)
    remote.on_host("ln", "-s", other, f"{state}/.gemini/tmp/linked")
    assert gemini.find_session(Path(state), Path("/nowhere"), since, reader) is None
    # A FIFO where a chat would be: passed over, never waited on.
    remote.on_host("mkdir", "-p", chats)
    remote.on_host("mkfifo", f"{chats}/session-2025-01-01T00-00-fifo.jsonl")
    assert gemini.find_session(Path(state), Path("/nowhere"), since, reader) is None
    # Its own chat, as Gemini CLI writes it: found.
    link.call("write", path=f"{chats}/{CHAT.name}", text=chat, timeout=30)
    assert gemini.find_session(Path(state), Path("/nowhere"), since, reader) == GEMINI_ID

    # aider: its history restored only when it holds a prompt, never through a link.
    history = f"{state}/chat.history.md"
    remote.on_host("ln", "-s", f"{other}/history.md", history)
    link.call("write", path=f"{other}/history.md", text="# aider chat started at 2025\n#### fix it\n", timeout=30)
    assert aider.resume_line("aider", None, Path(state), reader) is None
    remote.on_host("rm", history)
    link.call("write", path=history, text="# aider chat started at 2025\n", timeout=30)
    assert aider.resume_line("aider", None, Path(state), reader) is None
    link.call("write", path=history, text="# aider chat started at 2025\n#### fix it\n", timeout=30)
    read: list[str] = []  # through the host's reader (this test's hosts share this machine's files: never here)
    heard = Heard(reader, read)
    assert aider.resume_line("aider", None, Path(state), heard) == "aider --restore-chat-history"
    assert read == [history]
    # A reader confined to the agent's folder reads nothing outside it, even named directly.
    assert reader.head(f"{other}/history.md", 1000) is None


def test_a_gemini_agent_on_a_host_is_restarted_by_the_id_its_files_hold(remote: Remote) -> None:
    """The watch of the host finds the id in the chat its CLI wrote there; `restart` puts it on the command line."""
    box = remote.sandbox
    record = f"{remote.host_dir}/gemini-args"
    wrapper = f"{remote.host_dir}/bin/gemini"
    script = f"{remote.host_dir}/bin/gm2.yaml"
    remote.link().call("write", path=script, text=IDLE, timeout=30)
    remote.link().call("write", path=wrapper, mode=0o755, timeout=30, text=(
        f'#!/bin/sh\necho "$*" >> {record}\nPYTHONPATH={shlex.quote(str(SOURCE))} '
        f"exec python3 -m supervisor.demo.agent --look gemini --script {script}\n"))
    remote.request("start", name="gm2", task="first", command=wrapper, profile="gemini", host=HOST)
    box.wait_state("gm2", "idle", timeout=30)
    state = remote.host().layout().state("gm2")
    chat = CHAT.read_text()
    began = json.loads(chat.splitlines()[0])["startTime"]
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    remote.link().call("write", path=f"{state}/.gemini/tmp/project/chats/session-now.jsonl",
                       text=chat.replace(began, now), timeout=30)
    wait_until(lambda: box.agent("gm2").get("session_id") == GEMINI_ID, timeout=30,
               message="its conversation's id found on the host")
    box.sv("restart", "gm2")
    wait_until(lambda: remote.on_host("cat", record).splitlines()[-1:] == [f"--resume={GEMINI_ID}"], timeout=30,
               message="launched again in its own conversation")


def test_a_restart_on_a_host_finds_the_id_in_files_written_after_its_cli_stopped(remote: Remote) -> None:
    """No watch of the host read its id (its chat was written once it had stopped): `restart` reads it from its
    files there itself, by the profile's own code through the host's reader, and resumes that conversation."""
    box = remote.sandbox
    record, wrapper = f"{remote.host_dir}/gemini-late-args", f"{remote.host_dir}/bin/gemini-late"
    script = f"{remote.host_dir}/bin/late.yaml"
    remote.link().call("write", path=script, text=IDLE, timeout=30)
    remote.link().call("write", path=wrapper, mode=0o755, timeout=30, text=(
        f'#!/bin/sh\necho "$*" >> {record}\nPYTHONPATH={shlex.quote(str(SOURCE))} '
        f"exec python3 -m supervisor.demo.agent --look gemini --script {script}\n"))
    remote.request("start", name="late", task="first", command=wrapper, profile="gemini", host=HOST)
    box.wait_state("late", "idle", timeout=30)
    box.sv("stop", "late")
    box.wait_state("late", "stopped", timeout=30)
    assert box.agent("late").get("session_id") is None
    chat = CHAT.read_text()
    began = json.loads(chat.splitlines()[0])["startTime"]
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    state = remote.host().layout().state("late")
    remote.link().call("write", path=f"{state}/.gemini/tmp/project/chats/session-now.jsonl",
                       text=chat.replace(began, now), timeout=30)
    box.sv("restart", "late")
    wait_until(lambda: remote.on_host("cat", record).splitlines() == ["", f"--resume={GEMINI_ID}"], timeout=30,
               message="launched again in its own conversation")
    assert box.agent("late").get("session_id") == GEMINI_ID


def test_the_hosts_look_for_ids_skips_a_cli_that_tells_them_by_hooks(remote: Remote,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Claude Code tells its id through its hooks: its files are not searched (no request per slow tick)."""
    remote.request("start", name="cl", task="first", command=remote.claude("cl", IDLE), profile="claude", host=HOST)
    remote.sandbox.wait_state("cl", "idle", timeout=30)
    host = remote.host()
    looked: list[str] = []
    original = host.cli_files

    def noting(agent: Agent) -> tuple[str, Reader]:
        looked.append(agent.name)
        return original(agent)

    monkeypatch.setattr(host, "cli_files", noting)
    HostSessions(remote.engine).look(host, [remote.engine.get("cl")])
    assert looked == []


# escape --------------------------------------------------------------------------------------------------------


def test_a_process_of_an_agent_on_a_host_working_in_another_agents_worktree_is_an_escape(remote: Remote) -> None:
    box = remote.sandbox
    remote.request("start", name="home", task="first", command=remote.claude("home", IDLE), profile="claude",
                   host=HOST)
    box.wait_state("home", "idle", timeout=30)
    victim = box.agent("home")["worktree"]
    roams = f"turns:\n  - [say: \"ROAMING\", spawn: \"cd {victim} && exec sleep 601\"]\n"
    remote.request("start", name="roamer", task="go", command=remote.claude("roamer", roams), profile="claude",
                   host=HOST)
    wait_until(lambda: "ROAMING" in remote.request("screen", name="roamer")["text"], timeout=30, message="roaming")
    found = wait_until(lambda: triggers(remote, "roamer", "escape"), timeout=30, message="the escape alert")
    assert found[0]["cwd"] == victim and "agent home's worktree" in found[0]["summary"], found
    assert not triggers(remote, "home", "escape")  # its own processes work in its own worktree


# tamper and off-branch -----------------------------------------------------------------------------------------


def commit_in(remote: Remote, name: str, message: str) -> str:
    """A commit in agent `name`'s worktree on the host, made from its pane (its guard asks the engine)."""
    remote.in_pane(name, f"echo {shlex.quote(message)} > {message}.txt && git add {message}.txt && "
                         f"git commit -q -m {shlex.quote(message)}")
    return remote.on_host("git", "-C", remote.host().layout().worktree(name), "rev-parse", "HEAD").strip()


def fetched(remote: Remote, name: str) -> str | None:
    ref = f"refs/supervisor/hosts/{HOST}/heads/agent/{name}/work"
    done = subprocess.run(["git", "rev-parse", "-q", "--verify", ref], cwd=remote.sandbox.root, capture_output=True,
                          text=True, check=False)
    return done.stdout.strip() or None


def test_a_branch_on_a_host_moved_from_outside_its_worktree_is_tamper_and_merge_refuses(remote: Remote) -> None:
    box = remote.sandbox
    for name in ("victim", "evil"):
        remote.request("start", name=name, task="first", command=remote.claude(name, IDLE), profile="claude",
                       host=HOST)
    for name in ("victim", "evil"):
        box.wait_state(name, "idle", timeout=30)
    evil = box.agent("evil")["worktree"]
    mine = commit_in(remote, "victim", "mine")
    wait_until(lambda: fetched(remote, "victim") == mine, timeout=30, message="its own commit home")
    sneaky = commit_in(remote, "evil", "sneaky")
    remote.on_host("git", "-C", evil, "update-ref", "refs/heads/agent/victim/work", sneaky)
    found = wait_until(lambda: triggers(remote, "victim", "tamper"), timeout=30, message="the tamper alert")
    assert found[0]["ref"] == "refs/heads/agent/victim/work" and found[0]["new"] == sneaky, found
    assert not triggers(remote, "evil", "tamper")  # its own commit is its own
    assert not triggers(remote, "victim", "tamper")[1:]
    refused = box.sv("merge", "victim", check=False)
    assert refused.returncode != 0 and "tamper: refs/heads/agent/victim/work moved" in refused.stderr
    assert "merged" in box.sv("merge", "victim", "--accept-tamper").stdout  # a human looked


def test_a_reset_onto_another_agents_commits_on_a_host_is_tamper(remote: Remote) -> None:
    box = remote.sandbox
    for name in ("taker", "giver"):
        remote.request("start", name=name, task="first", command=remote.claude(name, IDLE), profile="claude",
                       host=HOST)
    for name in ("taker", "giver"):
        box.wait_state(name, "idle", timeout=30)
    taker = box.agent("taker")["worktree"]
    commit_in(remote, "giver", "one")
    theirs = commit_in(remote, "giver", "two")
    wait_until(lambda: fetched(remote, "giver") == theirs, timeout=30, message="the other's commits home")
    own = commit_in(remote, "taker", "own")
    wait_until(lambda: fetched(remote, "taker") == own, timeout=30, message="its own commit home")
    assert not triggers(remote, "taker", "tamper")
    remote.on_host("git", "-C", taker, "reset", "-q", "--hard", theirs)
    found = wait_until(lambda: triggers(remote, "taker", "tamper"), timeout=30, message="the tamper alert")
    assert "commit(s) of other agents' branches" in found[0]["why"], found


def test_a_worktree_on_a_host_that_leaves_its_branch_is_a_boundary_until_it_is_back(remote: Remote) -> None:
    box = remote.sandbox
    remote.request("start", name="wand", task="first", command=remote.claude("wand", IDLE), profile="claude",
                   host=HOST)
    box.wait_state("wand", "idle", timeout=30)
    worktree = box.agent("wand")["worktree"]
    head = remote.on_host("git", "-C", worktree, "rev-parse", "HEAD").strip()
    remote.on_host("git", "-C", worktree, "checkout", "-q", "--detach")

    def off_branch(where: str) -> list[dict[str, Any]]:
        return [e for e in events(remote, "wand", "boundary") if e.get("off_branch") and e["head"] == where]

    wait_until(lambda: off_branch(head), timeout=30, message="the detached HEAD's boundary event")
    assert triggers(remote, "wand", "boundary")
    remote.on_host("git", "-C", worktree, "checkout", "-q", "agent/wand/work")
    wait_until(lambda: events(remote, "wand", "on_branch"), timeout=30, message="back on its branch")
    assert len(off_branch(head)) == 1  # once per departure
