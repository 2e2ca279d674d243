"""A host that does not speak the protocol as the host program does (an agent on the host can write into the
program's output): the link takes no second greeting, drops itself at once — saying why, failing the calls in
flight — on a line past its limit, an answer id that is not a number or a line nested too deep, and fails a call
that brings back more bytes than a call may; relayed tmux output it cannot read ends that tmux client, saying why.
The fake host here is the threat, run as the link's transport."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.hosts import link as links
from supervisor.hosts.link import Link, LinkDown, LinkError
from supervisor.hosts.remote.tmuxlink import Relays
from supervisor.tmux.control import ControlClient, ControlError
from tests.conftest import wait_until
from tests.links import Heard

# Greets as the host program does, then answers each request by its op: what a hostile host would send.
FAKE_HOST = r"""
import json, sys
def say(line):
    sys.stdout.write(line + "\n"); sys.stdout.flush()
say(json.dumps({"event": "hello", "dir": "/home/me/supervisor", "home": "/home/me", "version": "fake"}))
strange = 0
for raw in sys.stdin:
    try:
        message = json.loads(raw)
    except ValueError:
        message = None
    if not isinstance(message, dict) or "op" not in message:
        strange += 1  # the install's length line, or the program's bytes
        continue
    number, op = message["id"], message["op"]
    if op == "regreet":
        say(json.dumps({"event": "hello", "dir": "/tmp/elsewhere", "home": "/tmp"}))
        say(json.dumps({"event": "install"}))
        say(json.dumps({"event": "fatal", "error": "pretend"}))
        say(json.dumps({"id": number, "ok": "greeted again"}))
    elif op == "strange":
        say(json.dumps({"id": number, "ok": strange}))
    elif op == "long":
        say('{"event": "x", "pad": "' + "x" * int(message["size"]) + '"}')
    elif op == "listid":
        say(json.dumps({"id": [number], "ok": 1}))
    elif op == "deep":
        say("[" * 200000 + "]" * 200000)
    elif op == "chunky":
        for _ in range(4):
            say(json.dumps({"id": number, "chunk": "QUFB" * 200}))
        say(json.dumps({"id": number, "ok": "all of it"}))
    elif op == "tmux_send":  # tmux's output as no host program sends it
        say(json.dumps({"event": "tmux", "relay": message["relay"], "data": "not base64!"}))
        say(json.dumps({"id": number, "ok": {"sent": 1}}))
    elif op == "badchunk":
        say(json.dumps({"id": number, "chunk": "not base64!"}))
    else:
        say(json.dumps({"id": number, "ok": op}))
"""


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
def fake(heard: Heard, tmp_path: Path) -> Iterator[Link]:
    link = Link("fake", [sys.executable, "-I", "-c", FAKE_HOST], on_event=heard.event, on_down=heard.down,
                env=dict(os.environ))
    link.connect(timeout=30)
    try:
        yield link
    finally:
        link.close()


def test_a_second_greeting_or_install_is_not_honoured(fake: Link) -> None:
    assert fake.call("regreet", timeout=30) == "greeted again"
    assert fake.hello["dir"] == "/home/me/supervisor" and fake.hello["home"] == "/home/me"
    assert fake.installed is False
    assert fake.call("strange", timeout=30) == 0  # the program's bytes were never written to it
    assert fake.up


@pytest.mark.parametrize(("op", "said"), [
    ("long", "the host sent a line longer than 1048576 bytes; the link is dropped"),
    ("listid", r"the host sent an answer whose id is not a number \('\[1\]'\); the link is dropped"),
    ("deep", "the host sent a line nested too deep to read; the link is dropped"),
    ("badchunk", "the host sent a chunk that is not base64; the link is dropped"),
])
def test_a_line_outside_the_protocol_drops_the_link_at_once_saying_why(
        heard: Heard, monkeypatch: pytest.MonkeyPatch, op: str, said: str) -> None:
    monkeypatch.setattr(links, "LINE_LIMIT", 1 << 20)
    link = Link("fake", [sys.executable, "-I", "-c", FAKE_HOST], on_event=heard.event, on_down=heard.down,
                env=dict(os.environ))
    link.connect(timeout=30)
    try:
        # the call in flight fails as the link drops, not at its timeout
        with pytest.raises(LinkDown, match=f"^fake: {said}.* \\(during {op}\\)$"):
            link.call(op, size=2 << 20, timeout=600)
        assert not link.up
        wait_until(lambda: heard.downs, message="the drop said")
        assert [str(error) for error in heard.downs] == [f"fake: {said.replace(chr(92), '')}"]
        with pytest.raises(LinkDown):
            link.call("ping", timeout=30)
    finally:
        link.close()


def test_a_call_bringing_back_too_many_bytes_fails_and_the_link_stays(fake: Link,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(links, "CALL_BYTES_LIMIT", 1000)
    with pytest.raises(LinkError, match=r"^fake: chunky: the host sent more than 1000 bytes for one call$"):
        fake.call("chunky", timeout=30)
    assert fake.call("ping", timeout=30) == "ping" and fake.up


def test_relayed_tmux_output_that_is_not_base64_ends_that_client_at_once(tmp_path: Path) -> None:
    relays = Relays()
    link = Link("fake", [sys.executable, "-I", "-c", FAKE_HOST], on_event=relays.event, env=dict(os.environ))
    link.connect(timeout=30)
    try:
        client = ControlClient(relays.open(link, tmp_path / "tmux.sock", "_engine"))
        with pytest.raises(ControlError, match="ended: the host sent tmux output that is not base64"):
            client.run([[["list-panes", "-a"]]])  # said at once, not after the relay's deadline
        assert not client.alive and link.up
    finally:
        link.close()
