"""Attacks on the contract an agent is held to, from inside its own pane (the demo agent's `!COMMAND`).

In the sandbox the store is hidden: the commit guard reads the contract the engine wrote into the agent's runtime
folder, which the agent cannot change. Without a sandbox the store is the agent's to write: a keyed digest tells
the engine's contract from one changed behind its back."""

from __future__ import annotations

import json
import shlex
import shutil
import sqlite3

import psutil
import pytest

from tests.conftest import DEMO_AGENT, PYTHON, TEST_FOLDER_WRITABLE, Sandbox, wait_until
from tests.test_helpers import events, in_pane, start_session, transcript

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (apt-get install bubblewrap)")

CONTRACT_FILE = '"$(dirname "$SUPERVISOR_SOCKET")/contract.json"'  # as the agent finds it, from its own socket


def _configure(box: Sandbox, isolation: str) -> None:
    box.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\nlimits:\n  idle_after: 1s\n"
                     f"isolation: {isolation}\n" + TEST_FOLDER_WRITABLE.format(folder=box.root.parent))


def _flat(text: str) -> str:
    """The transcript with its lines joined: a long line wraps at the pane's width."""
    return text.replace("\n", "")


@needs_bwrap
def test_in_the_sandbox_the_guard_holds_commits_to_the_engines_contract(sandbox: Sandbox) -> None:
    _configure(sandbox, "sandbox")
    start_session(sandbox, "boxed")  # Modify: src/**, docs/**; Don't touch: src/vendor/**
    branch = sandbox.agent("boxed")["branch"]
    base = sandbox.git("rev-parse", branch)

    in_pane(sandbox, "boxed", "mkdir -p secret && echo key > secret/key && git add secret && git commit -q -m leak")
    assert "commit refused: boxed may not change these paths" in _flat(transcript(sandbox, "boxed"))
    assert sandbox.git("rev-parse", branch) == base

    in_pane(sandbox, "boxed", "git reset -q && echo ok > src/ok.py && git add src/ok.py && git commit -q -m ok")
    assert sandbox.git("log", "-1", "--format=%s", branch) == "ok"  # its contract allows this one

    written = sandbox.agent_runtime("boxed") / "contract.json"
    before = written.read_text()
    probes = "; ".join(
        f"if sh -c {shlex.quote(command)} >/dev/null 2>&1; then echo \"PROBE {name}=yes\"; "
        f"else echo \"PROBE {name}=no\"; fi"
        for name, command in (
            ("write", f"echo '{{}}' > {CONTRACT_FILE}"),
            ("remove", f"rm -f {CONTRACT_FILE}"),
            ("rename", f"mv {CONTRACT_FILE} {CONTRACT_FILE}.old"),
            ("replace", f"echo '{{}}' > {CONTRACT_FILE}.new && mv {CONTRACT_FILE}.new {CONTRACT_FILE}"),
            ("chmod", f"chmod 600 {CONTRACT_FILE}"),
        ))
    in_pane(sandbox, "boxed", probes)
    found = dict(line.removeprefix("PROBE ").split("=") for line in transcript(sandbox, "boxed").splitlines()
                 if line.startswith("PROBE ") and line.endswith(("=yes", "=no")))
    assert found == {"write": "no", "remove": "no", "rename": "no", "replace": "no", "chmod": "no"}
    assert written.read_text() == before
    assert json.loads(before)["name"] == "boxed"

    written.unlink()  # as if no engine had written it since a reboot emptied the runtime directory
    in_pane(sandbox, "boxed", "echo again > src/ok.py && git add src/ok.py && git commit -q -m again")
    assert "commit refused: the engine has written no contract for this worktree" in _flat(transcript(sandbox, "boxed"))
    assert sandbox.git("log", "-1", "--format=%s", branch) == "ok"


def test_a_contract_rewritten_in_the_store_is_tamper_and_still_allows_nothing(sandbox: Sandbox) -> None:
    """Without a sandbox the agent rewrites its own contract row to `Modify: **`, drops its recorded violation
    and kills the engine: the fresh engine finds the digest broken, alerts, audits the agent's commits as
    allowing nothing (the forbidden one is flagged again) and `merge` refuses until a human confirms."""
    _configure(sandbox, "none")
    start_session(sandbox, "rogue")
    in_pane(sandbox, "rogue", "mkdir -p secret && echo key > secret/key && git add secret && "
                              "git commit -q --no-verify -m leak")
    leak = sandbox.git("rev-parse", sandbox.agent("rogue")["branch"])
    wait_until(lambda: any(e.get("commit") == leak for e in events(sandbox, "rogue", "boundary")),
               message="the audit flagging the leak")

    done = sandbox.root.parent / "rewritten"
    rewrite = (
        "import sqlite3, subprocess, json, os, signal\n"
        "common = subprocess.run(['git', 'rev-parse', '--path-format=absolute', '--git-common-dir'],"
        " capture_output=True, text=True, check=True).stdout.strip()\n"
        "db = sqlite3.connect(common + '/supervisor/state.db')\n"
        "pid = int(db.execute(\"SELECT value FROM meta WHERE key = 'engine_pid'\").fetchone()[0])\n"
        "os.kill(pid, signal.SIGKILL)\n"
        "data = json.loads(db.execute(\"SELECT data FROM agents WHERE name = 'rogue'\").fetchone()[0])\n"
        "data['extra']['contract'] = '# What This Session Can Do\\n- Modify: **\\n'\n"
        "data['extra']['violations'] = []\n"
        "db.execute(\"UPDATE agents SET data = ? WHERE name = 'rogue'\", (json.dumps(data),))\n"
        "db.commit()\n"
    )
    script = sandbox.root.parent / "rewrite.py"
    script.write_text(rewrite)
    engine = sandbox.engine_pid()
    go = sandbox.root.parent / "go"  # the engine is killed only once it has answered the send
    sandbox.sv("send", "rogue", f"!while [ ! -e {go} ]; do sleep 0.1; done; {shlex.quote(PYTHON)} {script} && "
                                f"touch {done}")
    go.touch()
    wait_until(done.exists, 30, message="the agent's rewrite of its contract")
    wait_until(lambda: not _alive(engine), message="the engine killed")

    sandbox.sv("ls")  # a fresh engine
    tampered = wait_until(lambda: [e for e in events(sandbox, "rogue", "tamper") if e.get("contract")],
                          message="the tamper event")
    assert "changed outside the engine" in tampered[0]["summary"]
    assert sandbox.agent("rogue")["contract_tampered"]
    wait_until(lambda: any(e.get("commit") == leak and e["id"] > tampered[0]["id"]
                           for e in events(sandbox, "rogue", "boundary")), message="the leak flagged again")
    alerts = [e for e in events(sandbox, "rogue", "trigger") if e.get("trigger") == "tamper"]
    assert alerts and "changed outside the engine" in alerts[0]["summary"]

    refused = sandbox.sv("merge", "rogue", check=False)
    assert refused.returncode != 0
    assert "tamper" in refused.stderr and "changed outside the engine" in refused.stderr
    assert "--confirm-contract" in refused.stderr
    assert not (sandbox.root / "secret").exists()

    confirmed = sandbox.sv("merge", "rogue", "--confirm-contract")  # a human read `Modify: **` and stands by it
    assert "merged" in confirmed.stdout
    assert events(sandbox, "rogue", "contract_confirmed")[0]["tampered"]


def test_contracts_stored_before_digests_are_signed_on_first_load(sandbox: Sandbox) -> None:
    _configure(sandbox, "none")
    start_session(sandbox, "old")
    sandbox.sv("engine", "stop")

    db = sqlite3.connect(sandbox.paths.db_path)
    data = json.loads(db.execute("SELECT data FROM agents WHERE name = 'old'").fetchone()[0])
    del data["extra"]["contract_digest"]
    db.execute("UPDATE agents SET data = ? WHERE name = 'old'", (json.dumps(data),))
    db.execute("DELETE FROM meta WHERE key = 'contract_digests'")
    db.commit()
    db.close()

    sandbox.sv("ls")
    signed = wait_until(lambda: events(sandbox, "old", "contract_signed"), message="the contract signed")
    assert "signed as it is" in signed[0]["summary"]
    assert not events(sandbox, "old", "tamper")
    assert not sandbox.agent("old")["contract_tampered"]

    checks = {c["name"]: c for c in json.loads(sandbox.sv("doctor", "--json", check=False).stdout)}
    assert checks["contract digest"]["ok"] and "not a determined process" in checks["contract digest"]["detail"]
    assert "advice only" in checks["commit guard"]["detail"]
    key = sandbox.paths.contract_key
    assert key.stat().st_mode & 0o777 == 0o600 and key.parent == sandbox.paths.state_dir


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
