"""`hosts check` and `doctor` say, per host, what an agent there can reach and what still holds when the host runs
its agents without a sandbox (no bubblewrap there, or `isolation: none`), against real sshd hosts (tests/sshd.py);
a host that sandboxes its agents gets no such lines."""

from __future__ import annotations

import json

from tests.conftest import Sandbox
from tests.sshd import SshHosts
from tests.test_hosts_check import configure


def _lines(report: str, host: str) -> dict[str, str]:
    """One host's block of `hosts check`: requirement name → its line."""
    block = next(part for part in report.split("\n\n") if part.startswith(f"{host} ("))
    return {line.split()[1]: line for line in block.splitlines()[1:] if line.split()[0] in ("ok", "FAIL")}


def test_a_host_without_bubblewrap_says_what_its_agents_reach_and_what_holds(sandbox: Sandbox,
                                                                              ssh_hosts: SshHosts) -> None:
    configure(sandbox, ssh_hosts, box1="box1", box2="box2-nobwrap")
    done = sandbox.sv("hosts", "check")
    sandboxed, bare = _lines(done.stdout, "box1"), _lines(done.stdout, "box2")
    assert "exposed" not in sandboxed and "enforced" not in sandboxed  # box1 sandboxes its agents
    assert "no bubblewrap" in bare["isolation"]
    exposed, enforced = bare["exposed"], bare["enforced"]
    assert "agents on box2 run unsandboxed as svbox2" in exposed
    for reach in ("every other agent's worktree", "act as that agent", "never as you",
                  "move any branch of the host's clone", "advice only", "~/.ssh"):
        assert reach in exposed
    for holds in ("audited here", "merge refuses it", "tamper", "run on the host, never here",
                  "limits.max_auto_restarts", "alerts.max_per_hour", "only the keys of your answer",
                  "Judged from what the host says, which an agent there can rewrite"):
        assert holds in enforced

    checks = {c["name"]: c for c in json.loads(sandbox.sv("doctor", "--json", check=False).stdout)}
    assert checks["host box2: exposed"]["ok"] and "run unsandboxed as svbox2" in checks["host box2: exposed"]["detail"]
    assert "audited here" in checks["host box2: enforced"]["detail"]
    assert "host box1: exposed" not in checks
    assert "act as that agent" not in checks["host box2"]["detail"]  # said on its own lines, not in the figures


def test_isolation_none_in_supervisor_yaml_is_said_for_a_host_that_could_sandbox(sandbox: Sandbox,
                                                                                ssh_hosts: SshHosts) -> None:
    configure(sandbox, ssh_hosts, box1="box1")
    sandbox.write_config((sandbox.root / "supervisor.yaml").read_text() + "isolation: none\n")
    done = sandbox.sv("hosts", "check", "box1")
    lines = _lines(done.stdout, "box1")
    assert "none (supervisor.yaml)" in lines["isolation"]
    assert "hint: the host can sandbox them" in done.stdout
    assert "agents on box1 run unsandboxed as svbox1" in lines["exposed"]
    assert "audited here" in lines["enforced"]
