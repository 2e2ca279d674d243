"""What a sandboxed agent reaches of the user's machine beyond the repository: its HOME, the user's dotfiles and
credentials, the network, and its own socket to the engine once the engine was killed and started again. Each
probe runs from inside a real agent's pane (a `run:` step of the demo agent), as in test_attacks_sandbox.py."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DEMO_AGENT, PYTHON, Sandbox, made_sandbox, process_gone, wait_until
from tests.test_attacks_sandbox import _rogue

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (apt-get install bubblewrap)")

CONFIG = f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\nlimits:\n  idle_after: 1s\n"


@pytest.fixture
def at_home() -> Iterator[Sandbox]:
    """A Sandbox whose folder (the user's HOME, the repository, the scripts) is outside /tmp, where a user's home
    is: every sandbox has an empty /tmp of its own, so a home in the test's tmp_path would be out of the agent's
    sight whatever the sandbox showed or hid of it. Its agents get no `sandbox.write` of that folder either."""
    folder = Path(tempfile.mkdtemp(prefix="svh-", dir="/var/tmp"))
    try:
        with made_sandbox(folder) as box:
            box.write_config(f"{CONFIG}isolation: sandbox\n")  # chosen: no write of the test's folder added
            yield box
    finally:
        shutil.rmtree(folder, ignore_errors=True)


USER_FILES = {
    ".gitconfig": "[user]\n\tname = Home Owner\n",
    ".bashrc": "# the user's own\n",
    "notes.txt": "the user's notes\n",  # no credential: readable, as the rest of the home
    ".aws/credentials": "[default]\naws_secret_access_key = CLOUD-SECRET\n",
    ".config/gcloud/application_default_credentials.json": '{"private_key": "CLOUD-SECRET"}\n',
    ".kube/config": "token: CLOUD-SECRET\n",
    ".docker/config.json": '{"auths": {"x": {"auth": "CLOUD-SECRET"}}}\n',
    ".netrc": "machine example.com password CLOUD-SECRET\n",
}
HOME_PROBES = """
probe own_home "test \\"$HOME\\" = '{own_home}' && touch \\"$HOME/made-here\\""
probe gitconfig_read "git config --global user.name | grep -qx 'Home Owner'"
probe gitconfig_write "echo '[alias] x = !touch /tmp/owned' >> \\"$HOME/.gitconfig\\""
probe gitconfig_write_users "echo '[alias] x = !touch /tmp/owned' >> '{home}/.gitconfig'"
probe own_bashrc "echo 'export OWNED=1' >> \\"$HOME/.bashrc\\""
probe users_bashrc "echo 'export OWNED=1' >> '{home}/.bashrc'"
probe users_profile "echo 'export OWNED=1' > '{home}/.profile'"
probe users_notes "grep -q notes '{home}/notes.txt'"
probe aws "grep -rq CLOUD-SECRET '{home}/.aws'"
probe gcloud "grep -rq CLOUD-SECRET '{home}/.config/gcloud'"
probe kube "grep -rq CLOUD-SECRET '{home}/.kube'"
probe docker "grep -rq CLOUD-SECRET '{home}/.docker'"
probe netrc "grep -q CLOUD-SECRET '{home}/.netrc'"
"""


def test_an_agents_home_is_its_own_and_the_users_dotfiles_and_credentials_are_out_of_reach(at_home: Sandbox) -> None:
    """HOME is a folder of the agent's own (writable: its CLI keeps its state there) with the user's `~/.gitconfig`
    in it read-only; the user's home stays readable (programs installed there work), but no dotfile of it can be
    written and no credential folder of MASKED_IN_HOME beyond `.ssh` read."""
    home = at_home.home
    for name, text in USER_FILES.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text)
    own_home = at_home.paths.agent_state("rogue") / "home"
    found = _rogue(at_home, HOME_PROBES.format(home=home, own_home=own_home))
    assert found == {"own_home": "yes", "gitconfig_read": "yes", "gitconfig_write": "no",
                     "gitconfig_write_users": "no", "own_bashrc": "yes", "users_bashrc": "no", "users_profile": "no",
                     "users_notes": "yes", "aws": "no", "gcloud": "no", "kube": "no", "docker": "no",
                     "netrc": "no"}, found
    for name, text in USER_FILES.items():
        assert (home / name).read_text() == text, name
    assert not (home / ".profile").exists() and not (home / "made-here").exists()
    assert (own_home / "made-here").exists() and "OWNED" in (own_home / ".bashrc").read_text()


CONNECT = ("{python} -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)' "
           "127.0.0.1 {port}")


def test_network_false_refuses_a_connection_the_default_allows(sandbox: Sandbox) -> None:
    """A TCP listener on this machine's loopback: a sandboxed agent reaches it by default; with `sandbox: {network:
    false}` the agent has a network of its own, whose loopback holds nothing."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        probe = f'probe tcp "{CONNECT.format(python=sys.executable, port=listener.getsockname()[1])}"\n'
        assert _rogue(sandbox, probe, name="open") == {"tcp": "yes"}
        sandbox.sv("engine", "stop")  # the next engine reads the new configuration from its start
        sandbox.write_config(f"{CONFIG}sandbox:\n  network: false\n  write: [{sandbox.root.parent}]\n")
        assert _rogue(sandbox, probe, name="closed") == {"tcp": "no"}
    assert sandbox.agent("closed")["isolation"] == "sandbox"


def test_doctor_says_which_isolation_is_in_force(sandbox: Sandbox) -> None:
    def line() -> dict[str, object]:
        checks = {c["name"]: c for c in json.loads(sandbox.sv("doctor", "--json", check=False).stdout)}
        return dict(checks["isolation"])

    found = line()  # the default on this machine (bubblewrap works): a sandbox
    assert found["ok"] is True
    assert str(found["detail"]).startswith(f"isolation: sandbox (bubblewrap at {shutil.which('bwrap')}")
    assert "abstract sockets" in str(found["detail"])  # with the network shared: what it leaves open
    sandbox.write_config(f"{CONFIG}sandbox:\n  network: false\n")
    found = line()
    assert found["ok"] is True and str(found["detail"]).startswith("isolation: sandbox (")
    assert "abstract sockets" not in str(found["detail"])
    sandbox.write_config(f"{CONFIG}isolation: none\n")
    found = line()
    assert found["ok"] is True
    detail = str(found["detail"])
    assert detail.startswith("isolation: none: agents run as you, unsandboxed")
    assert "one OS user cannot be kept from another process of the same user" in detail


SV = f"{shlex.quote(PYTHON)} -m supervisor"


def test_an_agents_socket_answers_in_its_sandbox_after_the_engine_was_killed_and_started_again(
        sandbox: Sandbox) -> None:
    """The sandbox binds the agent's runtime folder, not its socket file: the socket a restarted engine makes anew
    (another file) is the one the agent's `supervisor` reaches from inside its pane."""
    ask = (f'if out=$({SV} show boxed --json 2>&1); then echo "answered-$((40 + 2))"; '
           f'else echo "refused-$((40 + 2)): $out"; fi')
    script = sandbox.root.parent / "asker.json"
    script.write_text(json.dumps({"turns": [[{"run": ask}], [{"run": ask}]]}))
    sandbox.sv("start", "boxed", "--command", f"{DEMO_AGENT} --script {script}")
    sandbox.wait_state("boxed", "idle")
    assert sandbox.agent("boxed")["isolation"] == "sandbox"
    own = sandbox.agent_runtime("boxed") / "engine.sock"
    sandbox.sv("send", "boxed", "first")
    wait_until(lambda: "answered-42" in sandbox.sv("log", "boxed").stdout, message="the first answer")
    made = os.stat(own)
    before = (made.st_ino, made.st_ctime_ns)  # a file made anew may get the number the old one had
    engine = sandbox.engine_pid()
    os.kill(engine, signal.SIGKILL)
    wait_until(lambda: process_gone(engine), message="the engine gone")
    sandbox.sv("engine", "start")
    wait_until(lambda: own.is_socket() and (os.stat(own).st_ino, os.stat(own).st_ctime_ns) != before, timeout=60,
               message="the agent's socket made anew")
    sandbox.wait_state("boxed", "idle")
    sandbox.sv("send", "boxed", "second")
    wait_until(lambda: sandbox.sv("log", "boxed").stdout.count("-42") >= 2, message="the second answer")
    log = sandbox.sv("log", "boxed").stdout
    assert log.count("answered-42") == 2 and "refused-42" not in log, log[-2000:]

