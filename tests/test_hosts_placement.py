"""Where agents run and how many each host takes (SPEC §12), against the real engine: `start --host` (an unknown
host refused with the closest name, a full host refused with the reason), `hosts.local.max_agents` held by
start, helper, restart and restore, a plan's sessions placed by free places or refused whole before anything
starts, and `--host` on the commands that act on many agents.

What is counted here needs no agent launched on a host: a remote host's agents are records written through the
store before the engine starts (as tests/test_host_watch.py does), on hosts configured at an address where
nothing listens: they are `down` at once, and their agents `unreachable`, which still takes a place. A plan
placed across real hosts, its agents running there: tests/test_remote_placement.py."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from supervisor.core.model import State
from tests.conftest import DEMO_AGENT, Sandbox
from tests.test_host_watch import place_agent
from tests.test_pane_identity import kill_tmux_server


def closed_port() -> int:
    """A loopback port nothing listens on (bound a moment, then let go): a connection there is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def configure(sandbox: Sandbox, tmp_path: Path, local: int | None = None, **remote: int) -> None:
    """supervisor.yaml: the demo agent, this machine's places (`local`), and each host of `remote` with its
    max_agents, reached through an ssh config whose every host is an address nothing listens on."""
    port = closed_port()
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("".join(f"Host {name}\n  HostName 127.0.0.1\n  Port {port}\n" for name in remote))
    lines = ["hosts:"]
    if local is not None:
        lines += ["  local:", f"    max_agents: {local}"]
    for name, places in remote.items():
        lines += [f"  {name}:", f"    ssh: {name}", f"    ssh_config: {ssh_config}", f"    max_agents: {places}"]
    sandbox.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\nlimits:\n  idle_after: 1s\n"
                         "alerts:\n  tmux: false\n" + "\n".join(lines) + "\n")


def error(done: object) -> str:
    return str(getattr(done, "stderr", ""))


def test_start_on_a_host_refuses_an_unknown_or_full_one_with_the_reason(sandbox: Sandbox, tmp_path: Path) -> None:
    configure(sandbox, tmp_path, box1=1, box2=2)
    place_agent(sandbox, "far", "box1", State.WORKING)  # box1's one place: an agent a remote launch made

    typo = sandbox.sv("start", "api", "--host", "bxo1", check=False)
    assert typo.returncode == 2, typo.stderr
    assert typo.stderr.splitlines() == ["supervisor: error: no host named 'bxo1'", "hint: did you mean 'box1'?"]

    full = sandbox.sv("start", "api", "--host", "box1", check=False)
    assert full.returncode == 1, full.stderr
    assert full.stderr.splitlines()[0] == ("supervisor: error: host box1 is full: 1 of its 1 places are taken "
                                          "(hosts.box1.max_agents)")
    assert "--host local" in full.stderr.splitlines()[1]  # where there is room
    assert set(sandbox.ls()) == {"far"}  # nothing made
    # The place counts while its host is down too: `unreachable` runs on there, as far as anyone knows.
    assert sandbox.wait_state("far", "unreachable")["host"] == "box1"
    again = sandbox.sv("start", "api", "--host", "box1", check=False)
    assert "host box1 is full" in again.stderr

    # box2 has room: not refused for it (it gets as far as the host itself, which is down).
    roomy = sandbox.sv("start", "api", "--host", "box2", check=False)
    assert "full" not in roomy.stderr and "no host named" not in roomy.stderr
    assert "api" not in sandbox.ls()

    # --best-of takes all its places or none.
    best = sandbox.sv("start", "pick", "--host", "box2", "--best-of", "3", "--task", "go", check=False)
    assert best.returncode == 1
    assert best.stderr.splitlines()[0] == ("supervisor: error: host box2 has room for 2 more, not 3: 0 of its 2 "
                                          "places are taken (hosts.box2.max_agents)")
    assert set(sandbox.ls()) == {"far"}

    local = json.loads(sandbox.sv("start", "here", "--host", "local", "--json").stdout)
    assert local["host"] == "local"
    shown = sandbox.agent("here")
    assert (shown["host"], shown["last_state"]) == ("local", None)
    far = sandbox.agent("far")
    assert (far["host"], far["state"], far["last_state"]) == ("box1", "unreachable", "working")
    listed = [line.split() for line in sandbox.sv("ls").stdout.splitlines()]  # a HOST column: one is elsewhere
    assert listed[0][:4] == ["NAME", "ROLE", "STATE", "HOST"]
    assert listed[1][:5] == ["far", "-", "unreachable", "(working)", "box1"]
    assert (listed[2][0], listed[2][3]) == ("here", "local")


def test_this_machines_places_hold_for_start_helper_restart_and_restore(sandbox: Sandbox, tmp_path: Path) -> None:
    configure(sandbox, tmp_path, local=2)
    sandbox.sv("start", "a", "--task", "go")
    sandbox.sv("helper", "t", "--role", "test-agent", "--parent", "a", "--task", "test it")  # on a's host
    assert sandbox.ls()["a.t"]["host"] == "local"

    third = sandbox.sv("start", "b", "--task", "go", check=False)
    assert third.returncode == 1
    assert third.stderr.splitlines()[0] == ("supervisor: error: this machine (local) is full: 2 of its 2 places are "
                                           "taken (hosts.local.max_agents)")
    helper = sandbox.sv("helper", "u", "--role", "test-agent", "--parent", "a", check=False)
    assert helper.returncode == 1 and "this machine (local) is full" in helper.stderr, helper.stderr
    assert set(sandbox.ls()) == {"a", "a.t"}

    sandbox.sv("stop", "a.t")
    sandbox.sv("start", "b", "--task", "go")  # the helper's place is free again
    refused = sandbox.sv("restart", "a.t", check=False)  # an ended agent takes a place again
    assert refused.returncode == 1 and "cannot be restarted: this machine (local) is full" in refused.stderr
    sandbox.sv("restart", "a")  # a running one keeps its own

    # Restore: both panes go with the tmux server; while one place is taken by a new start, only one comes back.
    kill_tmux_server(sandbox)
    for name in ("a", "b"):
        sandbox.wait_state(name, "exited")
    sandbox.sv("start", "c", "--task", "go")
    done = sandbox.sv("restore", "--all", check=False)
    assert done.returncode == 1
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == ["a"]
    assert "b not restored: b cannot be restored: this machine (local) is full" in done.stderr
    assert sandbox.ls()["b"]["state"] == "exited"


def test_a_plan_is_placed_by_free_places_or_refused_before_anything_starts(sandbox: Sandbox,
                                                                            tmp_path: Path) -> None:
    configure(sandbox, tmp_path, local=2, box1=2)
    sandbox.sv("start", "pre", "--task", "go")  # one of local's two places
    plan = tmp_path / "plan.yaml"
    plan.write_text("hosts: [local, box1]\n"
                    "sessions:\n"
                    "  - name: s1\n"
                    "    task: one\n"
                    "  - name: s2\n"
                    "    task: two\n"
                    "  - name: s3\n"
                    "    task: three\n"
                    "    after: [s1]\n"
                    "  - name: s4\n"
                    "    task: four\n"
                    "    host: box1\n")
    full = sandbox.sv("run", str(plan), check=False)
    assert full.returncode == 2, full.stderr
    assert full.stderr.splitlines()[0] == (
        f"supervisor: error: {plan}:7: session s3: none of the hosts local, box1 has room for it (local has 2 "
        "places, 2 taken; box1 has 2 places, 2 taken, counting this plan's sessions placed before it); nothing "
        "was started")
    assert set(sandbox.ls()) == {"pre"}

    plan.write_text(plan.read_text().replace("  - name: s3\n    task: three\n    after: [s1]\n", ""))
    placed = json.loads(sandbox.sv("run", str(plan), "--dry-run", "--json").stdout)
    # s4 names box1 and takes its place first; s1 ties (one free each) and goes to the first listed; s2 to box1.
    assert {s["name"]: s["host"] for s in placed["sessions"]} == {"s1": "local", "s2": "box1", "s4": "box1"}
    shown = sandbox.sv("run", str(plan), "--dry-run").stdout
    assert ["s2", "on", "box1", "starts", "now"] in [line.split() for line in shown.splitlines()]
    assert set(sandbox.ls()) == {"pre"}

    # On local alone (no `hosts:`): the session takes local's last place, and the plan runs.
    (tmp_path / "one.yaml").write_text("sessions:\n  - name: solo\n    task: one\n")
    sandbox.sv("run", str(tmp_path / "one.yaml"))
    assert sandbox.wait_state("solo", "idle", "working")["host"] == "local"
    more = sandbox.sv("run", str(plan), check=False)
    assert more.returncode == 2 and "none of the hosts local, box1 has room" in more.stderr


def test_bulk_forms_take_a_host(sandbox: Sandbox, tmp_path: Path) -> None:
    configure(sandbox, tmp_path, box1=3)
    place_agent(sandbox, "far", "box1", State.WORKING)
    for name in ("a", "b"):
        sandbox.sv("start", name, "--task", "go")

    typo = sandbox.sv("stop", "--host", "locl", check=False)
    assert typo.returncode == 2
    assert typo.stderr.splitlines() == ["supervisor: error: no host named 'locl'", "hint: did you mean 'local'?"]
    assert sandbox.state("a") != "stopped"

    nothing = sandbox.sv("approve", "--host", "local")
    assert nothing.stdout.strip() == "nothing to approve: no agent waits for an answer (on host local)"

    stopped = sandbox.sv("stop", "--host", "local")
    assert sorted(stopped.stdout.splitlines()) == ["a: stopped", "b: stopped"]
    assert sandbox.ls()["far"]["state"] in ("working", "unreachable")  # on box1: untouched

    sandbox.sv("restart", "--host", "local", "--state", "stopped")
    for name in ("a", "b"):
        sandbox.wait_state(name, "idle", "working")

    kill_tmux_server(sandbox)
    for name in ("a", "b"):
        sandbox.wait_state(name, "exited")
    elsewhere = sandbox.sv("restore", "--host", "box1")
    assert elsewhere.stdout.startswith("nothing to restore")
    back = sandbox.sv("restore", "--host", "local")
    assert sorted(line.split(":")[0] for line in back.stdout.splitlines()) == ["a", "b"]
    both = sandbox.sv("restore", "a", "--host", "local", check=False)  # a name and a host combine, as elsewhere
    assert both.returncode == 1 and "a's pane is alive: there is nothing to restore" in both.stderr
