"""Trees of agents on a host (a session and its helpers there), as local trees work, against the real sshd host
box1 (tests/remotes.py) with the fake claude in the host's tmux: `supervisor` run in a pane there (its `!` shell
mode) as the agent runs it.

- `msg` between agents of the tree: the message is kept in `.sub-agents/messages/` of their common ancestor's
  worktree on the host and typed into the recipient's pane there; each parent's `.sub-agents/status.yaml` is
  kept current there; neither is ever written through a link planted there.
- Without a sandbox, an agent's socket on the host answers only the processes of its own pane (a detached one
  included), never another agent's, nor any other process of the host user.
- A helper's work merges into its parent's branch and worktree on the host, and comes home as its parent's.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from typing import Any

import yaml

from tests.conftest import wait_until
from tests.remotes import HOST, Remote, remote_fixture  # noqa: F401  (the fixture)

TURNS = """\
turns:
  - [say: "FIRST-TURN-DONE"]
  - [say: "SECOND-TURN-DONE"]
  - [say: "THIRD-TURN-DONE"]
"""


def transcript(remote: Remote, name: str) -> str:
    done = remote.sandbox.sv("log", name, check=False)
    return done.stdout if done.returncode == 0 else ""


def in_pane(remote: Remote, name: str, command: str) -> str:
    return remote.in_pane(name, command)


def events(remote: Remote, name: str, kind: str) -> list[dict[str, Any]]:
    return [event for event in remote.request("events", name=name, limit=1000) if event["kind"] == kind]


def start(remote: Remote, name: str) -> dict[str, Any]:
    remote.request("start", name=name, task="first", command=remote.claude(name, TURNS), profile="claude",
                   host=HOST)
    remote.sandbox.wait_state(name, "idle", timeout=60)
    return remote.sandbox.agent(name)


def start_helper(remote: Remote, parent: str, short: str) -> dict[str, Any]:
    said = in_pane(remote, parent, f"supervisor helper {short} --role test-agent --task 'look around' --no-wait")
    assert f"{parent}.{short}: " in said, said
    return remote.sandbox.wait_state(f"{parent}.{short}", "idle", timeout=60)


def host_file(remote: Remote, path: str) -> str | None:
    ran = remote.link().call("run", argv=["cat", path], timeout=30)
    return str(ran["stdout"]) if ran["rc"] == 0 else None


def test_messages_and_status_of_a_tree_on_a_host(remote: Remote) -> None:
    far = start(remote, "far")
    scout = start_helper(remote, "far", "scout")
    status_path = f"{far['worktree']}/.sub-agents/status.yaml"

    def status() -> dict[str, Any]:
        text = host_file(remote, status_path)
        return dict(yaml.safe_load(text)["helpers"] or {}) if text else {}

    found = wait_until(lambda: (now := status()).get("far.scout", {}).get("state") == "idle" and now,
                       timeout=30, message="far's status.yaml on the host")
    assert found["far.scout"]["worktree"] == ".sub-agents/scout" and found["far.scout"]["role"] == "test-agent"

    # From the helper's pane on the host, to its parent: kept in the parent's worktree there, typed into it.
    said = in_pane(remote, "far.scout", "supervisor msg parent 'the tests are green'")
    assert "to far: saved in " in said
    folder = f"{far['worktree']}/.sub-agents/messages"
    (file,) = remote.on_host("ls", folder).split()
    message = yaml.safe_load(host_file(remote, f"{folder}/{file}") or "")
    assert (message["from"], message["to"], message["text"]) == ("far.scout", "far", "the tests are green")
    assert [event["file"] for event in events(remote, "far.scout", "message_sent")] == [f"{folder}/{file}"]
    wait_until(lambda: "Message from far.scout" in transcript(remote, "far"), timeout=60,
               message="the message typed into far's pane there")

    # The parent answers its helper the same way.
    in_pane(remote, "far", "supervisor msg far.scout 'thanks'")
    wait_until(lambda: "Message from far (" in transcript(remote, "far.scout"), timeout=60,
               message="the answer typed into the helper's pane")
    assert len(remote.on_host("ls", folder).split()) == 2

    # status.yaml follows the helper's state.
    remote.request("stop", name="far.scout")
    wait_until(lambda: status().get("far.scout", {}).get("state") == "stopped", timeout=30,
               message="the stop in status.yaml")
    assert scout["worktree"] == f"{far['worktree']}/.sub-agents/scout"

    # A link planted where the messages go is refused, not followed: nothing is written where it leads.
    elsewhere = f"{remote.host_dir}/elsewhere"
    remote.on_host("sh", "-c", f"mkdir -p {shlex.quote(elsewhere)} && rm -rf {shlex.quote(folder)} && "
                   f"ln -s {shlex.quote(elsewhere)} {shlex.quote(folder)}")
    start_helper(remote, "far", "second")
    said = in_pane(remote, "far.second", "supervisor msg parent 'through the link'")
    assert "symbolic link" in said and "not written" in said, said
    assert remote.on_host("ls", "-A", elsewhere).split() == []


def test_an_agents_socket_on_a_host_answers_only_its_own_panes_processes(remote: Remote) -> None:
    alpha = start(remote, "alpha")
    start(remote, "beta")
    socket = remote.host().layout().socket("alpha")

    # Its own pane: heard, as itself; a process it detached (setsid, its parent gone) still is its own.
    said = in_pane(remote, "alpha", "supervisor report --waiting-for beta")
    assert "alpha: waiting for beta" in said
    in_pane(remote, "alpha", "setsid -f sh -c 'sleep 1; supervisor report --waiting-for gamma' >/dev/null 2>&1")
    wait_until(lambda: [event["waiting_for"] for event in events(remote, "alpha", "report")] == [["beta"], ["gamma"]],
               timeout=30, message="the detached process's report")

    # Another agent's pane, through alpha's socket: refused, nothing done as alpha.
    said = in_pane(remote, "beta", f"SUPERVISOR_SOCKET={shlex.quote(socket)} supervisor report --waiting-for beta")
    assert "is not one of agent alpha's" in said, said
    # Any other process of the host user: refused too.
    ran = remote.link().call("run", argv=["env", f"SUPERVISOR_SOCKET={socket}", "SUPERVISOR_AGENT=alpha",
                                          f"{remote.host().layout().root}/bin/supervisor", "report"], timeout=30)
    assert ran["rc"] == 1 and "is not one of agent alpha's" in ran["stderr"], ran
    # A hook event from there is refused as well, and kept nowhere (never spooled as alpha's).
    event = json.dumps({"hook_event_name": "Notification", "notification_type": "elicitation_dialog",
                        "message": "forged"})
    ran = remote.link().call("run", argv=["env", f"SUPERVISOR_SOCKET={socket}", "SUPERVISOR_AGENT=alpha",
                                          f"{remote.host().layout().root}/bin/supervisor", "hook"], stdin=event,
                             timeout=30)
    assert ran["rc"] == 0  # a hook never fails
    assert [event["waiting_for"] for event in events(remote, "alpha", "report")] == [["beta"], ["gamma"]]
    assert not any(event.get("message") == "forged" for event in events(remote, "alpha", "hook"))
    assert remote.on_host("ls", "-A", f"{remote.host().layout().spool('alpha')}/hooks").split() == []
    assert remote.sandbox.state("alpha") == "idle" and alpha["pid"]


def test_a_helper_on_a_host_merges_into_its_parent_there(remote: Remote) -> None:
    box = remote.sandbox
    far = start(remote, "far")
    start_helper(remote, "far", "scout")
    scout = box.agent("far.scout")
    parent_wt = far["worktree"]

    def head(worktree: str) -> str:
        return remote.on_host("git", "-C", worktree, "rev-parse", "HEAD").strip()

    def home(branch: str) -> str | None:
        try:
            return box.git("rev-parse", "--verify", "--quiet", f"refs/supervisor/hosts/{HOST}/heads/{branch}",
                           plain=True) or None
        except subprocess.CalledProcessError:
            return None

    # The parent's own commit, and a draft of its not committed; the helper's commit in its own worktree.
    in_pane(remote, "far", "echo mine > far.txt && git add far.txt && git commit -q -m 'the parent' && "
                           "echo draft > notes.md")
    own = head(parent_wt)
    said = in_pane(remote, "far.scout", "mkdir -p src && echo 'def test(): pass' > src/test_app.py && "
                                        "git add src && git commit -q -m 'test the app'")
    assert "commit refused" not in said
    helper_tip = head(scout["worktree"])
    wait_until(lambda: home(scout["branch"]) == helper_tip, timeout=30, message="the helper's commit home")

    merged = box.sv("merge", "far.scout")
    assert f"into {far['branch']}" in merged.stdout, merged.stdout
    # On the host: the parent's branch and worktree hold both, its draft untouched.
    tip = head(parent_wt)
    parents = remote.on_host("git", "-C", parent_wt, "rev-parse", f"{tip}^1", f"{tip}^2").split()
    assert parents == [own, helper_tip]  # the merge commit made at home, of the two
    assert host_file(remote, f"{parent_wt}/src/test_app.py") == "def test(): pass\n"
    assert host_file(remote, f"{parent_wt}/notes.md") == "draft\n"
    assert remote.on_host("git", "-C", parent_wt, "status", "--porcelain").split("\n")[0] == "?? notes.md"
    # At home: the parent's branch (its commits as fetched) is that merge.
    assert home(far["branch"]) == tip
    assert any(event["kind"] == "merged" for event in box.agent("far.scout")["events"])

    # A change of the parent's not committed where the helper's next commit goes: refused, nothing moved.
    in_pane(remote, "far.scout", "echo 'def test(): assert True' > src/test_app.py && git commit -q -am again")
    again = head(scout["worktree"])
    wait_until(lambda: home(scout["branch"]) == again, timeout=30, message="the helper's second commit home")
    in_pane(remote, "far", "echo 'my edit' > src/test_app.py")
    refused = box.sv("merge", "far.scout", check=False)
    assert refused.returncode == 1
    assert "local changes in" in refused.stderr and "src/test_app.py" in refused.stderr, refused.stderr
    assert head(parent_wt) == tip and home(far["branch"]) == tip
    assert host_file(remote, f"{parent_wt}/src/test_app.py") == "my edit\n"
