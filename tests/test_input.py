"""Inputs of any size, `--`, and names that become paths: a 1 MB task or send arrives whole and once, a request
larger than the engine takes is refused in one line, the command channel gets a big alert whole on stdin, a
text that looks like an option is sent as typed, and a path-like agent name opens nothing."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import socket
import string
import textwrap
from pathlib import Path

import pytest

from supervisor.client import request_at
from supervisor.errors import SupervisorError, UsageError
from tests.alert_servers import Rigs
from tests.conftest import DEMO_AGENT, PYTHON, Sandbox, wait_until

MIB = 1024 * 1024


def big_text(seed: int, size: int = MIB) -> str:
    """`size` characters of lines of printable text (what a long task or a pasted log looks like)."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + " .,;:-_()[]{}'\"$`\\/é€"
    lines, total, number = [], 0, 0
    while total < size:
        line = f"{number:06d} " + "".join(rng.choices(alphabet, k=rng.randint(10, 120))).strip() + "."
        lines.append(line)
        total += len(line) + 1
        number += 1
    return "\n".join(lines)[:size - 1] + "!"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def config(box: Sandbox) -> None:
    box.write_config(f"agent:\n  profile: generic\n  command: {DEMO_AGENT}\n  stagger: 0s\nlimits:\n  idle_after: 1s\n")


def fake_claude(box: Sandbox, name: str, script: str) -> tuple[str, Path]:
    """A `claude` (the demo agent with Claude Code's hooks and screen) running `script`, and the file it
    records each prompt it takes in."""
    bindir = box.root.parent / "bin"
    bindir.mkdir(exist_ok=True)
    claude = bindir / "claude"
    claude.write_text(f"#!/bin/sh\nexec {PYTHON} -m supervisor.demo.agent --look claude \"$@\"\n")
    claude.chmod(0o755)
    path = box.root.parent / f"{name}.yaml"
    path.write_text(textwrap.dedent(script))
    record = box.root.parent / f"{name}.prompts.jsonl"
    return f"{claude} --claude --script {path} --record {record}", record


def prompts(record: Path) -> list[str]:
    if not record.exists():
        return []
    text = record.read_text()
    whole = text[:text.rfind("\n") + 1]  # a line the agent is still writing is read once it is whole
    return [json.loads(line)["text"] for line in whole.splitlines() if line.strip()]


def test_a_1mb_task_given_at_start_arrives_whole_and_once(sandbox: Sandbox) -> None:
    config(sandbox)
    command, record = fake_claude(sandbox, "big", "turns:\n  - [{say: got it}]\n")
    task = big_text(1)
    task_file = sandbox.root.parent / "task.txt"
    task_file.write_text(task)
    out = sandbox.sv("start", "auth", "--task-file", str(task_file), "--command", command, timeout=120)
    assert "(task delivered)" in out.stdout
    (taken,) = wait_until(lambda: prompts(record), message="the task recorded")
    assert len(taken) == len(task) and digest(taken) == digest(task)
    # Like Claude Code, the CLI folded the paste: the text itself was never echoed back.
    assert "[Pasted text #1 +" in sandbox.screen("auth")
    sandbox.wait_state("auth", "idle")
    assert prompts(record) == [task]
    # Not carried whole by every listing and every alert: `ls` has its start, `show --json` all of it.
    listed = sandbox.ls()["auth"]
    assert listed["task"] == task[:4096] and listed["task_cut"] is True
    shown = sandbox.agent("auth")
    assert shown["task"] == task and shown["task_cut"] is False
    from tests.test_watching import events

    fired = wait_until(lambda: events(sandbox, "auth", "trigger"), message="a trigger (its turn done)")
    assert all(e["task"] == task[:65536] and e["task_cut"] == len(task) for e in fired)


def test_a_1mb_send_arrives_whole_and_once(sandbox: Sandbox) -> None:
    config(sandbox)
    command, record = fake_claude(sandbox, "send", "turns:\n  - [{say: first}]\n  - [{say: second}]\n")
    sandbox.sv("start", "auth", "--task", "warm up", "--command", command)
    sandbox.wait_state("auth", "idle")
    text = big_text(2)
    out = sandbox.sv("send", "auth", "-", input=text, timeout=120)
    assert out.stdout == "auth: sent\n"
    taken = wait_until(lambda: prompts(record)[1:], message="the sent text recorded")
    assert len(taken) == 1 and len(taken[0]) == len(text) and digest(taken[0]) == digest(text)


def test_a_request_larger_than_the_limit_is_refused_in_one_line(sandbox: Sandbox) -> None:
    config(sandbox)
    done = sandbox.sv("send", "auth", "-", input="x" * (17 * MIB), check=False)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["supervisor: error: the request is too large (17.0 MiB): the engine takes "
                                        "at most 16 MiB"]
    # A client that sends it anyway gets the same answer from the engine, not a broken connection.
    sandbox.sv("engine", "start")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(str(sandbox.runtime / sandbox.paths.runtime_dir.name / "engine.sock"))
    try:
        with pytest.raises(OSError):  # the engine stops reading past its limit
            sock.sendall(b'{"method":"send","params":{"name":"auth","text":"' + b"x" * (17 * MIB) + b'"}}\n')
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    finally:
        sock.close()
    answer = json.loads(reply)
    assert answer["ok"] is False
    assert answer["error"] == "bad request: the request is larger than the engine takes (at most 16 MiB)"


NOTIFY = """\
import json, os, sys
alert = json.load(sys.stdin)
env = {k: v for k, v in os.environ.items() if k.startswith("SUPERVISOR_ALERT_")}
out = sys.argv[1]
with open(out + ".partial", "w") as handle:
    json.dump({"stdin": alert, "env": env}, handle)
os.replace(out + ".partial", out)
"""


def test_the_command_channel_gets_a_1mb_alert_whole_on_stdin_and_cut_variables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(tmp_path / "run"))
    script, out = tmp_path / "notify.py", tmp_path / "notified.json"
    script.write_text(NOTIFY)
    python = shutil.which("python3") or "python3"
    rigs = Rigs(tmp_path)
    try:
        rig = rigs(f"  group_wait: 0.1s\n  command: \"{python} {script} {out}\"\n")
        task = big_text(3)
        rig.fire("auth", "waiting", "waiting for approval", task=task, screen=["Proceed?", "❯ 1. Yes"])
        wait_until(out.exists, timeout=20, message="the alert command ran")
        got = json.loads(out.read_text())
        sent = wait_until(lambda: rig.history()[0]["deliveries"][0]["status"] == "sent" and rig.history()[0],
                          message="recorded as sent")
        assert sent["deliveries"][0]["attempts"] == 1
    finally:
        rigs.close()
    alert, env = got["stdin"], got["env"]
    # The whole alert, on stdin; its trigger kept the first 64 KB of the 1 MB task, and says so.
    kept, note = alert["task"][:65536], alert["task"][65536:]
    assert digest(kept) == digest(task[:65536])
    assert note == f"… (cut: {len(task)} characters in all; `supervisor show auth --json` has it whole)"
    assert alert["agent"] == "auth" and alert["trigger"] == "waiting" and alert["status"] == "firing"
    assert alert["screen"] == ["Proceed?", "❯ 1. Yes"] and alert["triggers"] == ["waiting"]
    # Every variable is still set, a long one cut to a size any system takes, and saying so.
    assert env["SUPERVISOR_ALERT_AGENT"] == "auth" and env["SUPERVISOR_ALERT_TRIGGER"] == "waiting"
    assert env["SUPERVISOR_ALERT_TEXT"] == alert["text"]  # short enough to stay whole
    cut = env["SUPERVISOR_ALERT_TASK"]
    assert len(cut) == 4096 and cut.endswith("… (cut: the whole alert is on stdin)")
    assert task.startswith(cut.removesuffix("… (cut: the whole alert is on stdin)"))


def test_double_dash_sends_texts_that_look_like_options(sandbox: Sandbox) -> None:
    config(sandbox)
    script = sandbox.root.parent / "d.yaml"
    script.write_text("turns:\n  - [{say: a}]\n  - [{say: b}]\n  - [{say: c}]\n")
    record = sandbox.root.parent / "d.prompts.jsonl"
    sandbox.sv("start", "auth", "--task", "warm up", "--command", f"{DEMO_AGENT} --script {script} --record {record}")
    sandbox.wait_state("auth", "idle")
    assert sandbox.sv("send", "auth", "--", "--").stdout == "auth: sent\n"
    wait_until(lambda: prompts(record)[1:] == ["--"], message="'--' delivered")
    sandbox.wait_state("auth", "idle")
    sandbox.sv("send", "auth", "--", "-x")
    wait_until(lambda: prompts(record)[2:] == ["-x"], message="'-x' delivered")
    # A request with a parameter of the wrong kind is a usage error, not a crash of the request.
    socket_path = sandbox.runtime / sandbox.paths.runtime_dir.name / "engine.sock"
    for params in ({"name": "auth", "text": []}, {"name": "auth", "text": None}, {"name": ["auth"], "text": "x"},
                   {"name": "auth", "text": "x", "extra": 1}, {"name": "auth"}):
        with pytest.raises(UsageError, match=r"^bad parameters for send: "):
            request_at(socket_path, "send", params, 10)
    with pytest.raises(UsageError, match=r"^bad parameters for stop: kill must be true or false, not a string$"):
        request_at(socket_path, "stop", {"name": "auth", "kill": "no"}, 10)
    sandbox.wait_state("auth", "idle")
    assert prompts(record) == ["warm up", "--", "-x"]  # the refused requests typed nothing


def test_every_free_text_takes_what_follows_double_dash_as_is() -> None:
    from supervisor.cli import build_parser, parse_argv

    def parse(*argv: str) -> dict[str, object]:
        return vars(parse_argv(build_parser(), argv))

    # `send` takes its agents, then the text last (one agent or many).
    assert parse("send", "a", "--", "--")["words"] == ["a", "--"]
    assert parse("send", "a", "--", "-x")["words"] == ["a", "-x"]
    assert parse("send", "a", "b", "--", "--help")["words"] == ["a", "b", "--help"]
    assert parse("send", "a", "--", "-")["words"] == ["a", "-"]  # still stdin
    assert parse("msg", "parent", "--", "--help")["text"] == "--help"
    assert parse("start", "a", "--task", "--", "-x")["task"] == "-x"
    assert parse("task", "add", "--", "--lines")["text"] == "--lines"
    assert parse("deny", "a", "--reason", "--", "--force")["reason"] == "--force"


def test_a_path_like_agent_name_is_refused_before_any_file_is_opened(sandbox: Sandbox) -> None:
    outside = sandbox.root / ".git" / "outside.log"
    outside.write_text("SECRET from outside the transcripts\n")
    sandbox.sv("engine", "start")  # its state folders exist: a path through them resolves
    for name in ("../../outside", "../outside", "/etc/passwd", "a/../../outside"):
        done = sandbox.sv("log", name, check=False)
        assert done.returncode == 2, name
        assert done.stderr.splitlines()[0] == f"supervisor: error: invalid agent name {name!r}"
        assert "SECRET" not in done.stdout + done.stderr
    from supervisor.engine.transcripts import Transcripts

    with pytest.raises(UsageError, match="invalid agent name"):
        sandbox.paths.transcript("../../outside")
    with pytest.raises(UsageError, match="invalid agent name"):
        Transcripts(sandbox.paths.logs_dir, 1000).path("../../outside")
    # The engine checks every name it is given.
    socket_path = sandbox.runtime / sandbox.paths.runtime_dir.name / "engine.sock"
    for method in ("show", "unwritten", "screen", "stop", "send"):
        params = {"name": "../../outside", "text": "hi"} if method == "send" else {"name": "../../outside"}
        with pytest.raises(SupervisorError, match=r"^invalid agent name '\.\./\.\./outside'$"):
            request_at(socket_path, method, params, 10)


def test_an_agent_whose_task_was_not_delivered_waits_for_you_and_is_never_done(sandbox: Sandbox) -> None:
    """Its prompt shows but it takes nothing typed: `start` says so, and the agent waits with the reason
    (an alert), rather than going idle and reporting a turn it never had."""
    config(sandbox)
    deaf = sandbox.root.parent / "deaf.py"
    deaf.write_text("import sys, time, tty\ntty.setraw(0)\nprint('ready> ', end='', flush=True)\ntime.sleep(600)\n")
    done = sandbox.sv("start", "auth", "--task", "do it", "--command", f"{PYTHON} {deaf}", check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == ("supervisor: error: auth: its task could not be delivered: the agent did "
                                           "not take the pasted text (its screen did not change)")
    agent = sandbox.wait_state("auth", "waiting")
    assert agent["waiting_reason"].startswith("its task could not be delivered")
    from tests.test_watching import ticks_pass, triggers

    ticks_pass(sandbox, 15)  # idle_after (1s) passes several times over
    assert sandbox.state("auth") == "waiting"
    assert not triggers(sandbox, "auth", "done")
    assert triggers(sandbox, "auth", "waiting")[-1]["summary"].startswith("waiting: its task could not be delivered")
