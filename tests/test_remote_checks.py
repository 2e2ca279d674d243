"""`merge.check` of an agent on a host runs on that host, in a scratch worktree of the merge there, never on the
user's machine (the agent's committed code is its own code): against a real sshd host (tests/sshd.py) and the
engine's own `compare`, as a best-of's candidates are checked."""

from __future__ import annotations

import shlex

from supervisor.core.contract import Contract
from supervisor.engine import compare
from supervisor.engine.commits_home import CommitsHome
from supervisor.engine.engine import Engine
from tests.conftest import Sandbox, wait_until
from tests.sshd import SshHosts
from tests.test_remote_git import IDENTITY, PRIVATE, _ref, engine, on_host, place, remote  # noqa: F401

# Passes only as the host user, in a checkout holding the agent's commit; says where it ran.
CHECK = 'test "$(id -un)" = svbox1 && test -f src/app.py && echo "checked as $(id -un) in $PWD"'


def test_merge_check_of_an_agent_on_a_host_runs_there_and_not_here(sandbox: Sandbox, ssh_hosts: SshHosts,
                                                                   engine: Engine) -> None:  # noqa: F811
    folder = ssh_hosts.fresh_dir("box1")
    sandbox.write_config("agent:\n  profile: generic\n  command: sleep 600\n"
                         f"merge:\n  check: {shlex.quote(CHECK)}\n"
                         f"hosts:\n  box1:\n    ssh: box1\n    ssh_config: {ssh_hosts.config}\n    dir: {folder}\n")
    host = remote(engine)
    worktree = place(engine, "far-1", Contract(modify=("src/**",)))
    with engine.agent_lock("far-1"):
        agent = engine.get("far-1")
        agent.extra["best_of"] = "far"
        engine.store.save_agent(agent)
    made = on_host(ssh_hosts, f"cd {shlex.quote(worktree)} && mkdir -p src && echo 'print(1)' > src/app.py && "
                              f"git add src/app.py && git {shlex.join(IDENTITY)} commit -q --no-verify -m app && "
                              "git rev-parse HEAD")
    home = CommitsHome(engine)
    wait_until(lambda: home.bring_home("box1", [engine.get("far-1")]) and
               _ref(sandbox, PRIVATE.replace("/far/", "/far-1/")) == made, timeout=30, message="its commit home")

    compared = compare.compare(engine, "far", check=True)
    check = compared["candidates"][0]["check"]
    assert check["passed"] is True, check
    layout = host.layout()
    said = [line for line in check["output"] if line.startswith("checked as")]
    assert said and said[0].startswith(f"checked as svbox1 in {layout.root}/checks/check-")
    # the scratch worktree and its ref are gone from the host again
    assert on_host(ssh_hosts, f"ls -A {shlex.quote(layout.root)}/checks 2>/dev/null; "
                              f"git --git-dir={shlex.quote(layout.clone)} for-each-ref refs/supervisor/checks") == ""
